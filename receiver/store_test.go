package receiver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/providers/wechat/push"
	"github.com/heraldhq/herald/receiver"
)

// WeChat retries a push it got no success for; the second copy is
// answered success and stores nothing more.
func TestSamePushTwiceStoresOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, receiver.Config{})
	// One user action: its CreateTime is part of its events' ids, so every
	// copy carries the same one, however long the copies take.
	msg := popupMessage(time.Now())
	q, body, err := sealer(t, safeApp, push.ModeSafe, push.FormatJSON).Seal(msg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if a := b.post(t, safeApp, q, body); a != (answer{200, "success"}) {
			t.Fatalf("answer %+v", a)
		}
	}
	if n := b.count(t); n != 2 {
		t.Fatalf("stream holds %d events, want the push's 2 once", n)
	}
	if d := b.metric(t, "herald_receiver_events_total", "result", "duplicate"); d != 2 {
		t.Fatalf("duplicates counted %v, want 2", d)
	}
	// The same push sealed again (a new nonce, timestamp and ciphertext)
	// carries the same events: still stored once.
	q, body, err = sealer(t, safeApp, push.ModeSafe, push.FormatXML).Seal(msg, time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if a := b.post(t, safeApp, q, body); a.status != 200 {
		t.Fatalf("answer %+v", a)
	}
	if n := b.count(t); n != 2 {
		t.Fatalf("stream holds %d events after a resealed copy, want 2", n)
	}
}

func TestIgnoredPushesAreAnsweredAndCounted(t *testing.T) {
	t.Parallel()
	b := setup(t, receiver.Config{})
	s := sealer(t, plainApp, push.ModePlain, push.FormatXML)
	tests := []struct {
		name string
		body string
		kind string
	}{
		{"a text message", `<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>` +
			`<MsgType>text</MsgType><Content>hello</Content></xml>`, receiver.IgnoredMessage},
		{"another event", `<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>` +
			`<MsgType>event</MsgType><Event>user_enter_tempsession</Event></xml>`, receiver.IgnoredEvent},
	}
	for _, tt := range tests {
		q, body, err := s.SealBody([]byte(tt.body), "gh_1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if a := b.post(t, plainApp, q, body); a != (answer{200, "success"}) {
			t.Fatalf("%s: answer %+v, want 200 success", tt.name, a)
		}
		if n := b.metric(t, "herald_receiver_ignored_total", "app", plainApp, "kind", tt.kind); n != 1 {
			t.Fatalf("%s: ignored{kind=%s} = %v, want 1", tt.name, tt.kind, n)
		}
	}
	if n := b.count(t); n != 0 {
		t.Fatalf("stream holds %d events, want 0", n)
	}
}

// With JetStream down the push is answered 503 within the deadline and
// nothing is stored; WeChat's retry, once JetStream is back, stores it.
func TestJetStreamDownAnswers503(t *testing.T) {
	t.Parallel()
	b := setup(t, receiver.Config{Deadline: time.Second})
	q, body, err := sealer(t, safeApp, push.ModeSafe, push.FormatXML).Seal(popupMessage(time.Now()), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.srv.Shutdown()
	start := time.Now()
	if a := b.post(t, safeApp, q, body); a.status != http.StatusServiceUnavailable {
		t.Fatalf("answer with JetStream down %+v, want 503", a)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("answered after %v, want within the 1s deadline", d)
	}
	b.srv.Restart(t)
	testenv.Eventually(t, 10*time.Second, "the receiver's reconnection", b.nc.IsConnected)
	if n := b.count(t); n != 0 {
		t.Fatalf("stream holds %d events of a push answered 503, want 0", n)
	}
	testenv.Eventually(t, 10*time.Second, "the retried push to be stored", func() bool {
		return b.post(t, safeApp, q, body).status == http.StatusOK
	})
	if n := b.count(t); n != 2 {
		t.Fatalf("stream holds %d events after the retry, want 2", n)
	}
}

// A stream that cannot take the events (here: deleted, and JetStream
// answers nobody) is a 503 too.
func TestMissingStreamAnswers503(t *testing.T) {
	t.Parallel()
	b := setup(t, receiver.Config{Deadline: time.Second})
	if err := b.js.DeleteStream(context.Background(), stream); err != nil {
		t.Fatal(err)
	}
	q, body, err := sealer(t, safeApp, push.ModeSafe, push.FormatXML).Seal(popupMessage(time.Now()), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a := b.post(t, safeApp, q, body); a.status != http.StatusServiceUnavailable {
		t.Fatalf("answer without the stream %+v, want 503", a)
	}
	if n := b.metric(t, "herald_receiver_requests_total", "app", safeApp, "code", "503"); n != 1 {
		t.Fatalf("requests{code=503} = %v, want 1", n)
	}
}

// A push whose second event cannot be stored is answered 503; the retry
// stores the rest and nothing twice.
func TestHalfStoredPushCompletesOnRetry(t *testing.T) {
	t.Parallel()
	b := setup(t, receiver.Config{})
	ctx := context.Background()
	cfg := producer.DefaultTopology.SubscriptionsStreamConfig()
	full := cfg
	full.MaxMsgs, full.Discard = 1, jetstream.DiscardNew
	if _, err := b.js.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	q, body, err := sealer(t, safeApp, push.ModeSafe, push.FormatJSON).Seal(popupMessage(time.Now()), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a := b.post(t, safeApp, q, body); a.status != http.StatusServiceUnavailable {
		t.Fatalf("answer with room for one event %+v, want 503", a)
	}
	if n := b.count(t); n != 1 {
		t.Fatalf("stream holds %d events, want the first one", n)
	}
	if _, err := b.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if a := b.post(t, safeApp, q, body); a != (answer{200, "success"}) {
		t.Fatalf("answer to the retry %+v", a)
	}
	got := b.stored(t)
	ids := []string{}
	for _, s := range got {
		ids = append(ids, s.msgID)
	}
	if len(got) != 2 || got[0].event.TemplateID != tpl1 || got[1].event.TemplateID != tpl2 || ids[0] == ids[1] {
		t.Fatalf("stored after the retry: %+v, want each of the push's two events once", got)
	}
}

// bodyTrap fails the test if anyone reads it.
type bodyTrap struct{ t *testing.T }

func (b bodyTrap) Read([]byte) (int, error) {
	b.t.Error("the body was read before the signature was checked")
	return 0, nil
}

// A forged request is refused on its query: its body, however large, is
// never read.
func TestVerifiesBeforeReading(t *testing.T) {
	t.Parallel()
	b := setup(t, receiver.Config{})
	q, _, err := sealer(t, safeApp, push.ModeSafe, push.FormatXML).Seal(popupMessage(time.Now()), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(){
		func() { q.Set("signature", push.Sign("guess", q.Get("timestamp"), q.Get("nonce"))) },
		func() { q.Set("timestamp", "1") },
	} {
		bad()
		req := httptest.NewRequest(http.MethodPost, receiver.DefaultWeChatPrefix+safeApp+"?"+q.Encode(), bodyTrap{t})
		rec := httptest.NewRecorder()
		b.recv.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("answer %d, want 401", rec.Code)
		}
	}
}

// Whatever pushes carry, the metrics' labels stay within the configured
// apps and the fixed lists.
func TestMetricLabelsAreBounded(t *testing.T) {
	t.Parallel()
	b := setup(t, receiver.Config{})
	now := time.Now()
	weird := push.Message{ToUserName: "gh_x", FromUserName: "o-weird-<script>", CreateTime: now.Unix(), MsgType: "event",
		Event: "subscribe_msg_popup_event", Items: []push.Item{{TemplateID: "tpl-ünïcode", SubscribeStatus: "accept", PopupScene: "99"}}}
	s := sealer(t, plainApp, push.ModePlain, push.FormatJSON)
	for _, m := range []push.Message{weird, {FromUserName: "o", CreateTime: now.Unix(), MsgType: "event", Event: "made_up_event_name"},
		{FromUserName: "o", CreateTime: now.Unix(), MsgType: "made_up_type"}} {
		q, body, err := s.Seal(m, now)
		if err != nil {
			t.Fatal(err)
		}
		if a := b.post(t, plainApp, q, body); a.status != 200 {
			t.Fatalf("answer %+v", a)
		}
	}
	for _, path := range []string{"made-up-app", "x/y", "%2e%2e"} {
		b.post(t, path, nil, []byte("x"))
	}
	allowed := map[string][]string{
		"platform": {job.WeChat},
		"app":      {"", safeApp, plainApp, otherApp},
		"code":     {"200", "400", "401", "404", "405", "503"},
		"reason": {receiver.ReasonTooLarge, receiver.ReasonUnreadable, receiver.ReasonSignature, receiver.ReasonMsgSignature,
			receiver.ReasonStale, receiver.ReasonMode, receiver.ReasonDecrypt, receiver.ReasonAppID, receiver.ReasonMalformed},
		"event":  job.SubscriptionEvents,
		"result": {"stored", "duplicate"},
		"kind":   {receiver.IgnoredMessage, receiver.IgnoredEvent},
	}
	families, err := b.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := 0
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "herald_receiver_") {
			continue
		}
		for _, m := range f.GetMetric() {
			series++
			for _, l := range m.GetLabel() {
				if !slices.Contains(allowed[l.GetName()], l.GetValue()) {
					t.Errorf("%s has label %s=%q, outside the fixed set", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	if series == 0 {
		t.Fatal("no receiver metrics gathered")
	}
	if n := b.metric(t, "herald_receiver_requests_total", "app", "", "code", "404"); n != 3 {
		t.Fatalf("requests{app=\"\",code=404} = %v, want 3", n)
	}
}
