package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/worker"
)

// BaselineOptions configure the bare consumer.
type BaselineOptions struct {
	NATSURL     string
	Stream      string
	Durable     string
	SandboxURL  string // WeChat base URL
	AppID       string
	AppSecret   string
	Concurrency int
}

// sendBody is the WeChat subscribeMessage.send body, as herald's provider
// builds it.
type sendBody struct {
	ToUser           string               `json:"touser"`
	TemplateID       string               `json:"template_id"`
	Page             string               `json:"page,omitempty"`
	Data             map[string]job.Value `json:"data"`
	MiniprogramState string               `json:"miniprogram_state"`
	Lang             string               `json:"lang"`
}

// RunBaseline is the bare baseline: a plain nats.go pull consumer on a
// shared durable, Concurrency goroutines each taking the next message,
// decoding the job, POSTing the same WeChat send body herald would (with a
// token fetched once) and acking, whatever the answer. No dedup, no limits,
// no dead letters, no metrics, no logs. It runs until ctx ends.
func RunBaseline(ctx context.Context, o BaselineOptions) error {
	if o.Concurrency <= 0 {
		return errors.New("baseline: concurrency must be positive")
	}
	nc, err := nats.Connect(o.NATSURL, nats.Name("herald bench baseline"))
	if err != nil {
		return fmt.Errorf("baseline: connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("baseline: jetstream: %w", err)
	}
	cons, err := js.Consumer(ctx, o.Stream, o.Durable)
	if err != nil {
		return fmt.Errorf("baseline: consumer %s: %w", o.Durable, err)
	}
	hc := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        o.Concurrency * 2,
			MaxIdleConnsPerHost: o.Concurrency * 2,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	base := strings.TrimRight(o.SandboxURL, "/")
	token, err := fetchToken(ctx, hc, base, o.AppID, o.AppSecret)
	if err != nil {
		return err
	}
	sendURL := base + "/cgi-bin/message/subscribe/send?access_token=" + url.QueryEscape(token)

	// The same pull settings as herald's worker: with the defaults a
	// stalled iterator waits 30 s for a heartbeat, which measures the
	// stall, not the consumer.
	iter, err := cons.Messages(worker.PullOptions(min(o.Concurrency, 512))...)
	if err != nil {
		return fmt.Errorf("baseline: messages: %w", err)
	}
	stop := context.AfterFunc(ctx, iter.Stop)
	defer stop()
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Go(func() {
			for {
				msg, err := iter.Next()
				if err != nil {
					return
				}
				bareHandle(hc, sendURL, msg)
			}
		})
	}
	wg.Wait()
	return nil
}

func bareHandle(hc *http.Client, sendURL string, msg jetstream.Msg) {
	var j job.Job
	if err := json.Unmarshal(msg.Data(), &j); err != nil {
		_ = msg.Term()
		return
	}
	body, err := json.Marshal(sendBody{
		ToUser: j.ToUser, TemplateID: j.TemplateID, Page: j.Page, Data: j.Data,
		MiniprogramState: "formal", Lang: "zh_CN",
	})
	if err != nil {
		_ = msg.Term()
		return
	}
	req, err := http.NewRequest(http.MethodPost, sendURL, bytes.NewReader(body))
	if err != nil {
		_ = msg.Nak()
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		_ = msg.Nak()
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	_ = msg.Ack()
}

func fetchToken(ctx context.Context, hc *http.Client, base, appID, secret string) (string, error) {
	body, _ := json.Marshal(map[string]any{
		"grant_type": "client_credential", "appid": appID, "secret": secret, "force_refresh": false,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/cgi-bin/stable_token", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("baseline: token: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("baseline: token: %w", err)
	}
	defer resp.Body.Close()
	var t struct {
		AccessToken string `json:"access_token"`
		ErrCode     int    `json:"errcode"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil || t.AccessToken == "" {
		return "", fmt.Errorf("baseline: token: errcode %d, %v", t.ErrCode, err)
	}
	return t.AccessToken, nil
}
