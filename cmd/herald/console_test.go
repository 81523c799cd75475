package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
)

// herald console --read-only, configured through HERALD_* variables,
// serves the dead letters behind basic auth, answers /healthz without it,
// refuses changes, keeps its password out of the log, and stops on
// cancellation.
func TestConsoleCommandServes(t *testing.T) {
	t.Parallel()
	js := testenv.StartJetStream(t)
	_, check := js.Connect(t)
	if _, err := producer.DefaultTopology.Apply(t.Context(), check); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(job.DeadLetter{Reason: job.ReasonUserRefused, Platform: job.WeChat, App: "default",
		ID: "order-7", Code: "43101", Message: "user refuse to accept the msg", Job: json.RawMessage(`{"id":"order-7"}`)})
	msg := nats.NewMsg(job.DeadSubject(job.WeChat, job.ReasonUserRefused))
	msg.Data = data
	if _, err := check.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}

	const password = "c0nsole-pa55"
	environ := []string{
		"HERALD_NATS_URL=" + js.URL,
		"HERALD_CONSOLE_HTTP_ADDR=127.0.0.1:0",
		"HERALD_CONSOLE_BASIC_AUTH_USER=ops",
		"HERALD_CONSOLE_BASIC_AUTH_PASSWORD=" + password,
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { done <- run(ctx, []string{"console", "--read-only"}, environ, nil, io.Discard, logs) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if t.Failed() {
			t.Logf("console log:\n%s", logs)
		}
	})
	urlRE := regexp.MustCompile(`"console listening".*"url":"([^"]+)"`)
	testenv.Eventually(t, 10*time.Second, "the console to listen", func() bool { return urlRE.MatchString(logs.String()) })
	base := strings.TrimSuffix(urlRE.FindStringSubmatch(logs.String())[1], "/")

	if code, body := get(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if code, _ := get(t, base+"/dead"); code != http.StatusUnauthorized {
		t.Fatalf("/dead without credentials = %d, want 401", code)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/dead?since=", nil)
	req.SetBasicAuth("ops", password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"order-7", "user refuse to accept the msg", "read-only"} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), want) {
			t.Fatalf("/dead = %d, lacks %q:\n%s", resp.StatusCode, want, page)
		}
	}
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/purge",
		strings.NewReader(url.Values{"reason": {"user_refused"}, "expected": {"1"}, "confirm": {"yes"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("ops", password)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("purge on a read-only console = %d, want 403", resp.StatusCode)
	}
	if strings.Contains(logs.String(), password) {
		t.Fatalf("the log shows the password:\n%s", logs)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("herald console: %v", err)
	}
}

func TestConsoleCommandNeedsNATS(t *testing.T) {
	t.Parallel()
	err := run(t.Context(), []string{"console"}, []string{"HERALD_NATS_URL="}, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "nats.url is empty") {
		t.Fatalf("herald console without nats.url: %v", err)
	}
}
