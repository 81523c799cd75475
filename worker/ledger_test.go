package worker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldhq/herald/dlq"
	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/providers/wechat/push"
	"github.com/heraldhq/herald/receiver"
	"github.com/heraldhq/herald/sandbox"
	"github.com/heraldhq/herald/worker"
	"github.com/heraldhq/herald/worker/redisstore"
)

// ledgerBundle is the whole loop: WeChat's sandbox with one-time grants
// pushing subscription events to a real receiver, which stores them in
// JetStream, where the workers' ledger takes them.
type ledgerBundle struct {
	*testBundle
	status   *statusWatch
	answered map[string]int64 // user and template: the second of the last answer
}

func ledgerSetup(t *testing.T) *ledgerBundle {
	t.Helper()
	b := &testBundle{nats: testenv.StartJetStream(t), redis: testenv.StartRedis(t)}
	b.nc, b.js = b.nats.Connect(t, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	topo := producer.DefaultTopology
	topo.AckWait = 5 * time.Second
	topo.LedgerConsumer = "herald-ledger"
	if _, err := topo.Apply(context.Background(), b.js); err != nil {
		t.Fatal(err)
	}
	b.rdb = b.redis.Client(t)

	wx, err := receiver.NewWeChat("/wechat/", []receiver.WeChatApp{{Name: job.DefaultApp, Config: push.Config{
		AppID: appID, Token: sandbox.DevPushToken, EncodingAESKey: sandbox.DevEncodingAESKey,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	recv, err := receiver.New(receiver.Config{Stream: topo.SubscriptionsStream}, b.js, []receiver.Platform{wx}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs := httptest.NewServer(recv)
	t.Cleanup(rs.Close)

	b.sandbox = sandbox.New(sandbox.Options{Record: true, Grants: true, WeChatPush: map[string]sandbox.PushTarget{appID: {
		URL: rs.URL + "/wechat/" + job.DefaultApp, Token: sandbox.DevPushToken, EncodingAESKey: sandbox.DevEncodingAESKey,
		Mode: push.ModeSafe, Format: push.FormatJSON,
	}}})
	t.Cleanup(b.sandbox.Close)
	srv := httptest.NewServer(b.sandbox)
	t.Cleanup(srv.Close)
	b.sbURL = srv.URL
	b.events = watchEvents(t, b.nc)
	return &ledgerBundle{testBundle: b, status: watchStatus(t, b.nc), answered: map[string]int64{}}
}

func ledgerConfig(name string, mode worker.SubscriptionMode) worker.Config {
	cfg := testConfig(name)
	cfg.Subscriptions = mode
	cfg.StatusTTL = time.Hour
	return cfg
}

// subscribe has the sandbox act out user answering the popup for tpl, and
// waits until the ledger of st holds the answer. A popup event is known by
// its user, template and CreateTime in whole seconds (contract section 6),
// as WeChat's retries of one push are: a second answer of the same user
// within the same second would be taken for a retry of the first, so it
// waits for the second to turn. No user taps a popup twice in a second.
func (b *ledgerBundle) subscribe(t *testing.T, st worker.Ledger, user, tpl, status string, wantGrants int) {
	t.Helper()
	if last, ok := b.answered[user+"\x00"+tpl]; ok {
		for time.Now().Unix() == last {
			time.Sleep(time.Until(time.Unix(last+1, 0)))
		}
	}
	defer func() { b.answered[user+"\x00"+tpl] = time.Now().Unix() }()
	q := url.Values{"appid": {appID}, "openid": {user}, "template": {tpl}, "status": {status}}
	resp, err := http.Post(b.sbURL+"/sandbox/wechat/subscribe?"+q.Encode(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sandbox subscribe: %s", resp.Status)
	}
	want := worker.SubGranted
	if status == job.StatusReject {
		want = worker.SubRejected
	}
	testenv.Eventually(t, 20*time.Second, "the ledger holds "+user+"'s "+status, func() bool {
		subs, _, err := st.Subscriptions(context.Background(), job.WeChat, job.DefaultApp, user, tpl)
		return err == nil && subs[0].State == want && subs[0].Grants == wantGrants
	})
}

// The whole story of contract sections 7 and 8, in enforce mode on two
// replicas sharing the ledger: a user accepts; a send is delivered and
// WeChat's sent event marks it delivered; a second send finds no grant
// left (43101) and the user exhausted; a third is skipped without a call;
// a new accept and a replay of the skipped job deliver it.
func TestLedgerEnforcesAndReportsDelivery(t *testing.T) {
	t.Parallel()
	b := ledgerSetup(t)
	st := redisstore.New(b.rdb, redisstore.Config{DedupTTL: time.Hour})
	t.Cleanup(st.Close)
	b.startWorkerOn(t, ledgerConfig("w1", worker.SubscriptionsEnforce), st)
	b.startWorkerOn(t, ledgerConfig("w2", worker.SubscriptionsEnforce), st)

	b.subscribe(t, st, "u1", "tpl", job.StatusAccept, 1)
	b.publishRaw(t, "notify.send.wechat", jobJSON("s1", "u1", nil))
	b.events.waitFor(t, 20*time.Second, "s1 delivered", func(ev *events) bool { return len(ev.receipts["s1"]) == 1 })
	got := b.status.waitFor(t, "s1")
	if got.ID != "s1" || got.Status != job.StatusDelivered || got.MsgID != b.events.receiptsOf("s1")[0].MsgID || got.SentAt.IsZero() {
		t.Fatalf("status of s1 = %+v, want delivered naming the job and its msgid", got)
	}
	subs, _, _ := st.Subscriptions(context.Background(), job.WeChat, job.DefaultApp, "u1", "tpl")
	if subs[0].State != worker.SubGranted || subs[0].Grants != 0 {
		t.Fatalf("after one send: %+v, want granted with none left", subs[0])
	}

	// Granted with none known left goes (trust_counts is off): WeChat
	// answers 43101 and the user is exhausted.
	b.publishRaw(t, "notify.send.wechat", jobJSON("s2", "u1", nil))
	b.events.waitFor(t, 20*time.Second, "s2 refused", func(ev *events) bool { return len(ev.dead["s2"]) == 1 })
	if d := b.events.deadOf("s2")[0]; d.Code != "43101" || d.Attempts != 1 {
		t.Fatalf("s2 dead letter %+v, want WeChat's 43101", d.DeadLetter)
	}
	testenv.Eventually(t, 10*time.Second, "u1 exhausted", func() bool {
		subs, _, _ := st.Subscriptions(context.Background(), job.WeChat, job.DefaultApp, "u1", "tpl")
		return subs[0].State == worker.SubExhausted
	})

	calls := b.sandbox.Stats()["wechat"].SendCalls
	b.publishRaw(t, "notify.send.wechat", jobJSON("s3", "u1", nil))
	b.events.waitFor(t, 20*time.Second, "s3 skipped", func(ev *events) bool { return len(ev.dead["s3"]) == 1 })
	d := b.events.deadOf("s3")[0]
	if d.Reason != job.ReasonUserRefused || d.Code != worker.CodeNoSubscription || d.Attempts != 0 || !strings.Contains(d.Message, "exhausted") {
		t.Fatalf("s3 dead letter %+v, want user_refused/no_subscription without attempts", d.DeadLetter)
	}
	if n := b.sandbox.Stats()["wechat"].SendCalls; n != calls {
		t.Fatalf("%d send calls for a skipped job, want none", n-calls)
	}

	// A new accept, then a replay: delivered.
	b.subscribe(t, st, "u1", "tpl", job.StatusAccept, 1)
	res, err := dlq.Replay(context.Background(), b.js, dlq.ReplayOptions{
		Stream: "NOTIFY_DEAD", SendStream: "NOTIFY_SEND", Filter: dlq.Filter{Codes: []string{worker.CodeNoSubscription}},
	})
	if err != nil || res.Replayed != 1 {
		t.Fatalf("replay = %+v, %v", res, err)
	}
	b.events.waitFor(t, 20*time.Second, "s3 delivered after the accept", func(ev *events) bool { return len(ev.receipts["s3"]) == 1 })
}

// In observe mode nothing is skipped, but the jobs enforce would skip are
// counted; with the ledger off nothing is read at all.
func TestLedgerObserveCountsWhatEnforceWouldSkip(t *testing.T) {
	t.Parallel()
	b := ledgerSetup(t)
	st := redisstore.New(b.rdb, redisstore.Config{DedupTTL: time.Hour})
	t.Cleanup(st.Close)
	r := b.startWorkerOn(t, ledgerConfig("w1", worker.SubscriptionsObserve), st)

	b.subscribe(t, st, "u2", "tpl", job.StatusReject, 0)
	b.publishRaw(t, "notify.send.wechat", jobJSON("o1", "u2", nil))
	b.events.waitFor(t, 20*time.Second, "o1 settled", func(ev *events) bool { return ev.settled([]string{"o1"}) })
	if n := b.sandbox.Stats()["wechat"].SendCalls; n != 1 {
		t.Fatalf("%d send calls in observe mode, want the one", n)
	}
	if n := counter(t, r, "herald_subscription_skips_total", "mode", "observe"); n != 1 {
		t.Fatalf("would-skip count %v, want 1", n)
	}
	// An unknown user is never skipped, and not counted.
	b.publishRaw(t, "notify.send.wechat", jobJSON("o2", "nobody-knows", nil))
	b.events.waitFor(t, 20*time.Second, "o2 settled", func(ev *events) bool { return ev.settled([]string{"o2"}) })
	if n := counter(t, r, "herald_subscription_skips_total", "mode", "observe"); n != 1 {
		t.Fatalf("would-skip count %v after an unknown user, want still 1", n)
	}
}

// Every sent event becomes one status event: matched and delivered,
// matched and failed (a scripted asynchronous failure), and unmatched.
func TestLedgerJoinsSentEvents(t *testing.T) {
	t.Parallel()
	b := ledgerSetup(t)
	st := redisstore.New(b.rdb, redisstore.Config{DedupTTL: time.Hour})
	t.Cleanup(st.Close)
	b.startWorkerOn(t, ledgerConfig("w1", worker.SubscriptionsObserve), st)

	b.subscribe(t, st, "asyncfail-u3", "tpl", job.StatusAccept, 1)
	b.publishRaw(t, "notify.send.wechat", jobJSON("f1", "asyncfail-u3", nil))
	failed := b.status.waitFor(t, "f1")
	if failed.Status != job.StatusFailed || failed.ErrorCode == "" || failed.ErrorCode == "0" {
		t.Fatalf("status of f1 = %+v, want failed with the platform's code", failed)
	}

	// A sent event for a message no job of herald's was sent as.
	ev := job.SubscriptionEvent{Platform: job.WeChat, App: job.DefaultApp, Event: job.EventSent, ToUser: "u4",
		TemplateID: "tpl", Status: job.StatusSuccess, MsgID: "424242", ErrorCode: "0", ErrorStatus: "success",
		CreatedAt: time.Now().Truncate(time.Second), ReceivedAt: time.Now()}
	data, _ := json.Marshal(ev)
	msg := nats.NewMsg(job.SubscriptionSubject(job.WeChat, job.EventSent))
	msg.Data = data
	msg.Header.Set(job.HeaderMsgID, ev.DedupID())
	for range 2 { // stored once, applied once
		if _, err := b.js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	un := b.status.waitForMsgID(t, "424242")
	if un.ID != "" || un.Status != job.StatusDelivered || un.ToUser != "u4" {
		t.Fatalf("unmatched status = %+v, want no job", un)
	}
	if n := b.status.count("424242"); n != 1 {
		t.Fatalf("%d status events for one sent event, want 1", n)
	}
}

// statusWatch collects the delivery status events stored.
type statusWatch struct {
	mu     sync.Mutex
	byID   map[string]job.StatusEvent
	byMsg  map[string][]job.StatusEvent
	change chan struct{}
}

func watchStatus(t *testing.T, nc *nats.Conn) *statusWatch {
	t.Helper()
	w := &statusWatch{byID: map[string]job.StatusEvent{}, byMsg: map[string][]job.StatusEvent{}, change: make(chan struct{})}
	_, err := nc.Subscribe(job.StatusRoot+".>", func(m *nats.Msg) {
		var se job.StatusEvent
		if err := json.Unmarshal(m.Data, &se); err != nil {
			t.Errorf("status event %s: %v", m.Data, err)
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if se.ID != "" {
			w.byID[se.ID] = se
		}
		w.byMsg[se.MsgID] = append(w.byMsg[se.MsgID], se)
		close(w.change)
		w.change = make(chan struct{})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *statusWatch) wait(t *testing.T, what string, get func() (job.StatusEvent, bool)) job.StatusEvent {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		w.mu.Lock()
		se, ok := get()
		ch := w.change
		w.mu.Unlock()
		if ok {
			return se
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no status event for %s", what)
		}
	}
}

func (w *statusWatch) waitFor(t *testing.T, id string) job.StatusEvent {
	t.Helper()
	return w.wait(t, id, func() (job.StatusEvent, bool) { se, ok := w.byID[id]; return se, ok })
}

func (w *statusWatch) waitForMsgID(t *testing.T, msgID string) job.StatusEvent {
	t.Helper()
	return w.wait(t, "msgid "+msgID, func() (job.StatusEvent, bool) {
		if l := w.byMsg[msgID]; len(l) > 0 {
			return l[0], true
		}
		return job.StatusEvent{}, false
	})
}

// count is how many status events were published for msgID.
func (w *statusWatch) count(msgID string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.byMsg[msgID])
}

// counter sums one labelled counter of r's over the series whose label
// has value.
func counter(t *testing.T, r *replica, name, label, value string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}
