package receiver_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/providers/wechat/push"
	"github.com/heraldhq/herald/receiver"
	"github.com/heraldhq/herald/sandbox"
)

// lossyBalancer spreads pushes over replicas the way a load balancer
// would, and loses the answer to each push's first try after the replica
// stored it: WeChat then retries, the retry goes to the other replica, and
// that replica must not store the events again.
type lossyBalancer struct {
	replicas []string

	mu   sync.Mutex
	seen map[string]int // push (its signature) -> replica of its first try
	n    int
}

func (lb *lossyBalancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("signature") + r.URL.Query().Get("nonce")
	lb.mu.Lock()
	first, retried := lb.seen[key]
	if !retried {
		first = lb.n % len(lb.replicas)
		lb.seen[key] = first
		lb.n++
	}
	lb.mu.Unlock()
	replica := first
	if retried {
		replica = (first + 1) % len(lb.replicas)
	}
	body, _ := io.ReadAll(r.Body)
	resp, err := http.Post(lb.replicas[replica]+r.URL.RequestURI(), r.Header.Get("Content-Type"), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !retried {
		http.Error(w, "answer lost", http.StatusGatewayTimeout)
		return
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

// Two receiver replicas behind one JetStream take the sandbox's pushes in
// every mode and format; with every first answer lost, each event is
// still stored once.
func TestReplicasStoreEachEventOnce(t *testing.T) {
	t.Parallel()
	for _, mode := range []push.Mode{push.ModePlain, push.ModeCompatible, push.ModeSafe} {
		for _, format := range []push.Format{push.FormatXML, push.FormatJSON} {
			t.Run(string(mode)+" "+string(format), func(t *testing.T) {
				t.Parallel()
				replicasStoreEachEventOnce(t, mode, format)
			})
		}
	}
}

func replicasStoreEachEventOnce(t *testing.T, mode push.Mode, format push.Format) {
	js := testenv.StartJetStream(t)
	_, check := js.Connect(t)
	if _, err := producer.DefaultTopology.ApplySubscriptions(t.Context(), check); err != nil {
		t.Fatal(err)
	}
	app := receiver.WeChatApp{Name: "default", Config: push.Config{AppID: sandbox.DevWeChatAppID, Token: sandbox.DevPushToken}}
	if mode != push.ModePlain {
		app.EncodingAESKey = sandbox.DevEncodingAESKey
	}
	var urls []string
	var regs []*prometheus.Registry
	for range 2 {
		_, rjs := js.Connect(t, nats.ReconnectBufSize(-1))
		wx, err := receiver.NewWeChat("", []receiver.WeChatApp{app})
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		r, err := receiver.New(receiver.Config{Stream: stream}, rjs, []receiver.Platform{wx}, zaptest.NewLogger(t), receiver.WithRegisterer(reg))
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(r)
		t.Cleanup(hs.Close)
		urls, regs = append(urls, hs.URL), append(regs, reg)
	}
	lb := httptest.NewServer(&lossyBalancer{replicas: urls, seen: map[string]int{}})
	t.Cleanup(lb.Close)

	sb := sandbox.New(sandbox.Options{Grants: true, PushRetryWait: 10 * time.Millisecond, WeChatPush: map[string]sandbox.PushTarget{
		sandbox.DevWeChatAppID: {URL: lb.URL + "/wechat/default", Token: sandbox.DevPushToken,
			EncodingAESKey: sandbox.DevEncodingAESKey, Mode: mode, Format: format},
	}})
	t.Cleanup(sb.Close)
	sbs := httptest.NewServer(sb)
	t.Cleanup(sbs.Close)

	// A user accepts two templates, gets a message, turns one off.
	sandboxPost(t, sbs.URL+"/sandbox/wechat/subscribe?openid=o-replicas&template=T1&template=T2", nil, nil)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	sandboxPost(t, sbs.URL+"/cgi-bin/stable_token", map[string]any{"grant_type": "client_credential",
		"appid": sandbox.DevWeChatAppID, "secret": sandbox.DevWeChatSecret}, &tok)
	var sent struct {
		ErrCode int         `json:"errcode"`
		MsgID   json.Number `json:"msgid"`
	}
	sandboxPost(t, sbs.URL+"/cgi-bin/message/subscribe/send?access_token="+url.QueryEscape(tok.AccessToken), map[string]any{
		"touser": "o-replicas", "template_id": "T1", "data": map[string]any{"thing1": map[string]string{"value": "hi"}}}, &sent)
	if sent.ErrCode != 0 {
		t.Fatalf("send: errcode %d", sent.ErrCode)
	}
	sandboxPost(t, sbs.URL+"/sandbox/wechat/change?openid=o-replicas&template=T2", nil, nil)

	testenv.Eventually(t, 15*time.Second, "the sandbox's three pushes to be answered success", func() bool {
		st := sb.Stats()["wechat"]
		if st.PushFailures > 0 {
			t.Fatalf("pushes failed: %+v", st)
		}
		return st.Pushes == 3
	})
	got := storedIn(t, check)
	kinds := map[string]int{}
	ids := map[string]bool{}
	for _, s := range got {
		kinds[s.event.Event]++
		ids[s.msgID] = true
		if s.event.ToUser != "o-replicas" || s.event.App != "default" {
			t.Errorf("stored %+v", s.event)
		}
		if s.event.Event == job.EventSent && s.event.MsgID != sent.MsgID.String() {
			t.Errorf("sent event msgid %q, want the send's %s", s.event.MsgID, sent.MsgID)
		}
	}
	if len(got) != 4 || len(ids) != 4 || kinds[job.EventPopup] != 2 || kinds[job.EventSent] != 1 || kinds[job.EventChange] != 1 {
		t.Fatalf("stored %d events (%v), want 2 popup, 1 sent and 1 change, each once", len(got), kinds)
	}
	// Both replicas stored, and both saw the other's events come again.
	for i, reg := range regs {
		b := &testBundle{reg: reg}
		if b.metric(t, "herald_receiver_events_total", "result", "stored") == 0 ||
			b.metric(t, "herald_receiver_events_total", "result", "duplicate") == 0 {
			t.Errorf("replica %d did not both store and deduplicate", i)
		}
	}
}

func sandboxPost(t *testing.T, u string, body, into any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	resp, err := http.Post(u, "application/json", rd)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", u, resp.Status)
	}
	if into != nil {
		d := json.NewDecoder(resp.Body)
		d.UseNumber()
		if err := d.Decode(into); err != nil {
			t.Fatal(err)
		}
	}
}
