package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/providers/wechat"
	"github.com/heraldhq/herald/sandbox"
	"github.com/heraldhq/herald/worker"
	"github.com/heraldhq/herald/worker/redisstore"
)

const (
	appID  = sandbox.DevWeChatAppID
	secret = sandbox.DevWeChatSecret
)

var _ worker.Sender = (*wechat.Client)(nil)

// testBundle is one test's infrastructure: a JetStream server with herald's
// streams, a redis-server, the sandbox, and the receipts and dead letters
// published so far.
type testBundle struct {
	nats    *testenv.JetStream
	nc      *nats.Conn
	js      jetstream.JetStream
	redis   *testenv.Redis
	rdb     *redis.Client
	sandbox *sandbox.Server
	sbURL   string
	events  *events
}

func setup(t *testing.T, opts sandbox.Options) *testBundle {
	t.Helper()
	b := &testBundle{nats: testenv.StartJetStream(t), redis: testenv.StartRedis(t)}
	b.nc, b.js = b.nats.Connect(t, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	topo := producer.DefaultTopology
	topo.AckWait = 5 * time.Second
	if _, err := topo.Apply(context.Background(), b.js); err != nil {
		t.Fatal(err)
	}
	b.rdb = b.redis.Client(t)
	opts.Record = true
	b.sandbox = sandbox.New(opts)
	srv := httptest.NewServer(b.sandbox)
	t.Cleanup(srv.Close)
	b.sbURL = srv.URL
	b.events = watchEvents(t, b.nc)
	return b
}

// replica is a running worker.
type replica struct {
	w      *worker.Worker
	reg    *prometheus.Registry // its metrics
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returns
	err    error         // what Run returned
}

// stop cancels the worker and waits for Run to return.
func (r *replica) stop(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("Run returned %v", r.err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("worker did not stop within 60s")
	}
	return time.Since(start)
}

// testConfig is fast: short backoffs and ack wait, few attempts.
func testConfig(name string) worker.Config {
	return worker.Config{
		Instance:       name,
		Receipts:       true,
		Concurrency:    32,
		MaxAttempts:    3,
		AckWait:        5 * time.Second,
		ShutdownGrace:  10 * time.Second,
		RequestTimeout: 3 * time.Second,
		DedupTTL:       time.Hour,
		Retry:          retryPolicy(),
	}
}

func (b *testBundle) startWorker(t *testing.T, cfg worker.Config) *replica {
	t.Helper()
	st := redisstore.New(b.rdb, redisstore.Config{DedupTTL: cfg.DedupTTL})
	t.Cleanup(st.Close)
	return b.startWorkerOn(t, cfg, st)
}

func (b *testBundle) startWorkerOn(t *testing.T, cfg worker.Config, st worker.Store, opts ...worker.Option) *replica {
	t.Helper()
	reg := prometheus.NewRegistry()
	wc, err := wechat.New(wechat.Config{AppID: appID, AppSecret: secret, BaseURL: b.sbURL, Timeout: cfg.RequestTimeout},
		redisstore.NewTokens(b.rdb, ""), nil, wechat.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	senders := map[worker.Route]worker.Sender{{Platform: job.WeChat, App: job.DefaultApp}: wc}
	w, err := worker.New(cfg, b.js, st, senders, zaptest.NewLogger(t).Named(cfg.Instance),
		append([]worker.Option{worker.WithRegisterer(reg)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{w: w, reg: reg, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// jobs sums herald_jobs_total over the jobs with the given outcome.
func (r *replica) jobs(t *testing.T, outcome string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "herald_jobs_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// publishRaw publishes bytes the way a producer in any language would: a
// plain JetStream publish with no headers.
func (b *testBundle) publishRaw(t *testing.T, subject, data string) {
	t.Helper()
	if _, err := b.js.Publish(context.Background(), subject, []byte(data)); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func jobJSON(id, to string, data map[string]string) string {
	j := job.Job{ID: id, Platform: job.WeChat, TemplateID: "tpl", ToUser: to, Data: map[string]job.Value{}}
	for k, v := range data {
		j.Data[k] = job.Value{Value: v}
	}
	if len(data) == 0 {
		j.Data["thing1"] = job.Value{Value: "hello " + id}
	}
	out, _ := json.Marshal(j)
	return string(out)
}

// pending is how many jobs are still in NOTIFY_SEND.
func (b *testBundle) pending(t *testing.T) uint64 {
	t.Helper()
	s, err := b.js.Stream(context.Background(), "NOTIFY_SEND")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// acceptedTo counts the sandbox's accepted messages per recipient.
func (b *testBundle) acceptedTo() map[string]int {
	out := map[string]int{}
	for _, m := range b.sandbox.Accepted() {
		out[m.ToUser]++
	}
	return out
}

// events collects receipts and dead letters by job id.
type events struct {
	mu       sync.Mutex
	changed  chan struct{}
	receipts map[string][]job.Receipt
	dead     map[string][]deadLetter
}

type deadLetter struct {
	job.DeadLetter
	headers nats.Header
	subject string
}

func watchEvents(t *testing.T, nc *nats.Conn) *events {
	t.Helper()
	ev := &events{changed: make(chan struct{}), receipts: map[string][]job.Receipt{}, dead: map[string][]deadLetter{}}
	handle := func(m *nats.Msg) {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		if strings.HasPrefix(m.Subject, job.SentRoot) {
			var r job.Receipt
			if err := json.Unmarshal(m.Data, &r); err != nil {
				t.Errorf("receipt %s: %v", m.Data, err)
			}
			ev.receipts[r.ID] = append(ev.receipts[r.ID], r)
		} else {
			var d job.DeadLetter
			if err := json.Unmarshal(m.Data, &d); err != nil {
				t.Errorf("dead letter %s: %v", m.Data, err)
			}
			ev.dead[d.ID] = append(ev.dead[d.ID], deadLetter{d, m.Header, m.Subject})
		}
		close(ev.changed)
		ev.changed = make(chan struct{})
	}
	for _, subj := range []string{job.SentRoot + ".>", job.DeadRoot + ".>"} {
		if _, err := nc.Subscribe(subj, handle); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ev
}

// waitFor blocks until cond holds over the events or the timeout passes.
func (ev *events) waitFor(t *testing.T, timeout time.Duration, what string, cond func(ev *events) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		ev.mu.Lock()
		ok := cond(ev)
		ch := ev.changed
		ev.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// receiptsOf and deadOf return copies of one job's events.
func (ev *events) receiptsOf(id string) []job.Receipt {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return append([]job.Receipt(nil), ev.receipts[id]...)
}

func (ev *events) deadOf(id string) []deadLetter {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return append([]deadLetter(nil), ev.dead[id]...)
}

func (ev *events) outcomes() (delivered, dead int) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return len(ev.receipts), len(ev.dead)
}

// settled reports whether every id has exactly one outcome so far.
func (ev *events) settled(ids []string) bool {
	for _, id := range ids {
		if len(ev.receipts[id])+len(ev.dead[id]) == 0 {
			return false
		}
	}
	return true
}

func TestDeliversRawJSONJobAndPublishesReceipt(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	b.startWorker(t, testConfig("w1"))

	b.publishRaw(t, "notify.send.wechat",
		`{"id":"order-1","platform":"wechat","template_id":"tpl","to_user":"user-1","page":"pages/index?x=1",`+
			`"data":{"thing1":{"value":"Your order shipped"},"time2":{"value":"2026-11-23 10:00"}},`+
			`"wechat":{"miniprogram_state":"trial","lang":"en_US"}}`)

	b.events.waitFor(t, 10*time.Second, "receipt", func(ev *events) bool { return len(ev.receipts["order-1"]) == 1 })
	r := b.events.receiptsOf("order-1")[0]
	if r.App != "default" || r.ToUser != "user-1" || r.TemplateID != "tpl" || r.Attempts != 1 || r.Worker != "w1" || r.SentAt.IsZero() {
		t.Errorf("receipt = %+v", r)
	}
	acc := b.sandbox.Accepted()
	if len(acc) != 1 || acc[0].MsgID != r.MsgID || len(r.MsgID) < 15 {
		t.Fatalf("sandbox accepted %+v, receipt msgid %q: want one message with the receipt's msgid", acc, r.MsgID)
	}
	if acc[0].Page != "pages/index?x=1" || acc[0].Data["time2"] != "2026-11-23 10:00" {
		t.Errorf("sandbox got %+v", acc[0])
	}
	testenv.Eventually(t, 5*time.Second, "NOTIFY_SEND empty", func() bool { return b.pending(t) == 0 })
}

// With a publisher of its own, receipts and dead letters leave on that
// connection, not on the one the jobs are pulled with.
func TestReceiptsAndDeadLettersGoThroughThePublisher(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	pubNC, pubJS := b.nats.Connect(t)
	st := redisstore.New(b.rdb, redisstore.Config{})
	t.Cleanup(st.Close)
	b.startWorkerOn(t, testConfig("w1"), st, worker.WithPublisher(pubJS))

	b.publishRaw(t, "notify.send.wechat", jobJSON("ok", "user-1", nil))
	b.publishRaw(t, "notify.send.wechat", `{"id":"nobody","platform":"wechat","template_id":"tpl","data":{"thing1":{"value":"x"}}}`)
	b.events.waitFor(t, 10*time.Second, "a receipt and a dead letter", func(ev *events) bool {
		return len(ev.receipts["ok"]) == 1 && len(ev.dead["nobody"]) == 1
	})
	if out := pubNC.Stats().OutMsgs; out != 2 {
		t.Errorf("the publisher's connection sent %d messages, want the receipt and the dead letter", out)
	}
}

func TestDeadLettersCarryReasonCodeAndField(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	b.startWorker(t, testConfig("w1"))
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)

	tests := []struct {
		id, subject, give        string
		wantReason, wantPlatform string
		wantCode, wantField      string
		wantAttempts             int
	}{
		{"refused", "notify.send.wechat", jobJSON("refused", "refuse-1", nil), job.ReasonUserRefused, "wechat", "43101", "", 1},
		{"badvalue", "notify.send.wechat", jobJSON("badvalue", "u", map[string]string{"thing1": strings.Repeat("长", 21)}),
			job.ReasonInvalidTemplateData, "wechat", "", "data.thing1.value", 0},
		{"badopenid", "notify.send.wechat", jobJSON("badopenid", "badopenid-1", nil), job.ReasonInvalidRecipient, "wechat", "40003", "", 1},
		{"sensitive", "notify.send.wechat", jobJSON("sensitive", "sensitive-1", nil), job.ReasonSensitiveContent, "wechat", "45168", "", 1},
		{"badtpl", "notify.send.wechat", strings.Replace(jobJSON("badtpl", "u", nil), `"tpl"`, `"bad-tpl"`, 1),
			job.ReasonInvalidTemplate, "wechat", "40037", "", 1},
		{"badpage", "notify.send.wechat", strings.Replace(jobJSON("badpage", "u", nil), `"to_user"`, `"page":"missing/x","to_user"`, 1),
			job.ReasonInvalidPage, "wechat", "41030", "", 1},
		{"expired", "notify.send.wechat", strings.Replace(jobJSON("expired", "u", nil), `{`, `{"not_after":"`+past+`",`, 1),
			job.ReasonExpired, "wechat", "", "", 0},
		{"otherapp", "notify.send.wechat", strings.Replace(jobJSON("otherapp", "u", nil), `{`, `{"app":"shop",`, 1),
			job.ReasonUnknownApp, "wechat", "", "", 0},
		{"mismatch", "notify.send.alipay", jobJSON("mismatch", "u", nil), job.ReasonMalformedJob, "wechat", "", "", 0},
		{"", "notify.send.wechat", `this is not json`, job.ReasonMalformedJob, "wechat", "", "", 0},
	}
	for _, tt := range tests {
		b.publishRaw(t, tt.subject, tt.give)
	}
	b.events.waitFor(t, 20*time.Second, "every dead letter", func(ev *events) bool {
		n := 0
		for _, d := range ev.dead {
			n += len(d)
		}
		return n == len(tests)
	})
	for _, tt := range tests {
		t.Run(tt.wantReason+"/"+tt.id, func(t *testing.T) {
			got := b.events.deadOf(tt.id)
			if len(got) != 1 {
				t.Fatalf("%d dead letters for %q, want 1", len(got), tt.id)
			}
			d := got[0]
			if d.Reason != tt.wantReason || d.Code != tt.wantCode || d.Field != tt.wantField ||
				d.Attempts != tt.wantAttempts || d.Platform != tt.wantPlatform {
				t.Errorf("dead letter = reason %s code %q field %q attempts %d platform %s; want %s %q %q %d %s",
					d.Reason, d.Code, d.Field, d.Attempts, d.Platform, tt.wantReason, tt.wantCode, tt.wantField, tt.wantAttempts, tt.wantPlatform)
			}
			if d.headers.Get(job.HeaderReason) != tt.wantReason || d.headers.Get(job.HeaderCode) != tt.wantCode {
				t.Errorf("headers = %v", d.headers)
			}
			if want := "notify.dead." + tt.wantPlatform + "." + tt.wantReason; d.subject != want {
				t.Errorf("subject = %s, want %s", d.subject, want)
			}
			if d.Message == "" || d.Worker != "w1" || d.Source.Stream != "NOTIFY_SEND" || d.Source.Sequence == 0 || d.DeadAt.IsZero() {
				t.Errorf("dead letter misses context: %+v", d.DeadLetter)
			}
			if tt.id == "" {
				if string(d.Raw) != tt.give || d.Job != nil {
					t.Errorf("undecodable job: raw %q job %s, want the raw bytes kept", d.Raw, d.Job)
				}
			} else if string(d.Job) != tt.give {
				t.Errorf("job = %s, want the original %s", d.Job, tt.give)
			}
			if tt.wantAttempts > 0 && (d.FirstAttemptAt == nil || d.FirstAttemptAt.After(d.DeadAt)) {
				t.Errorf("first_attempt_at = %v, dead_at %v", d.FirstAttemptAt, d.DeadAt)
			}
		})
	}
	if n := len(b.sandbox.Accepted()); n != 0 {
		t.Errorf("sandbox accepted %d messages, want none", n)
	}
	testenv.Eventually(t, 5*time.Second, "NOTIFY_SEND empty", func() bool { return b.pending(t) == 0 })
	if n := b.sandbox.Stats()["wechat"].SendCalls; n != 5 {
		t.Errorf("sandbox saw %d send calls, want 5 (the rest are caught before any call)", n)
	}
}

func TestSameJobIsSentOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	b.startWorker(t, testConfig("w1"))
	b.startWorker(t, testConfig("w2"))

	// The same idempotency key under different Nats-Msg-Ids, so JetStream's
	// own dedup does not hide the copies from the workers.
	for i := range 5 {
		msg := nats.NewMsg("notify.send.wechat")
		msg.Data = []byte(jobJSON("once", "user-once", nil))
		msg.Header.Set(job.HeaderMsgID, fmt.Sprintf("copy-%d", i))
		if _, err := b.js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "all copies handled", func() bool { return b.pending(t) == 0 })
	if got := b.acceptedTo()["user-once"]; got != 1 {
		t.Fatalf("sandbox accepted %d copies, want exactly 1", got)
	}
	if got := len(b.events.receiptsOf("once")); got != 1 {
		t.Fatalf("%d receipts, want 1", got)
	}
}

func TestTransientFailuresRetryWithBackoffThenExhaust(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	b.startWorker(t, testConfig("w1"))

	b.publishRaw(t, "notify.send.wechat", jobJSON("flaky", "flaky-1", nil))
	b.publishRaw(t, "notify.send.wechat", jobJSON("failing", "fail-1", nil))
	b.publishRaw(t, "notify.send.wechat", jobJSON("http500", "http500-1", nil))
	b.publishRaw(t, "notify.send.wechat", jobJSON("unknown", "unknown-1", nil))
	b.events.waitFor(t, 30*time.Second, "all four outcomes", func(ev *events) bool {
		return ev.settled([]string{"flaky", "failing", "http500", "unknown"})
	})
	if r := b.events.receiptsOf("flaky"); len(r) != 1 || r[0].Attempts != 2 {
		t.Errorf("flaky job: receipts %+v, want one after 2 attempts", r)
	}
	for _, id := range []string{"failing", "http500", "unknown"} {
		d := b.events.deadOf(id)
		if len(d) != 1 {
			t.Fatalf("%s: %d dead letters, want 1", id, len(d))
		}
		wantReason, wantAttempts := job.ReasonRetriesExhausted, 3
		if id == "unknown" {
			// Unknown codes get 3 attempts, then are kept with their code.
			wantReason = job.ReasonPlatformRejected
		}
		if d[0].Reason != wantReason || d[0].Attempts != wantAttempts {
			t.Errorf("%s: dead letter %s after %d attempts, want %s after %d", id, d[0].Reason, d[0].Attempts, wantReason, wantAttempts)
		}
	}
	if d := b.events.deadOf("unknown"); d[0].Code != "99999" {
		t.Errorf("unknown code kept as %q", d[0].Code)
	}
}

// A deleted consumer stops the worker with an error, so the process
// restarts and recreates it, instead of idling while it looks ready.
func TestDeletedConsumerStopsTheWorker(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	r := b.startWorker(t, testConfig("w1"))
	b.publishRaw(t, "notify.send.wechat", jobJSON("before", "user-before", nil))
	b.events.waitFor(t, 10*time.Second, "first delivery", func(ev *events) bool { return len(ev.receipts["before"]) == 1 })
	if err := b.js.DeleteConsumer(context.Background(), "NOTIFY_SEND", "herald-worker"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Fatal("worker still running 20s after its consumer was deleted")
	}
	if !errors.Is(r.err, jetstream.ErrConsumerDeleted) {
		t.Fatalf("Run returned %v, want ErrConsumerDeleted", r.err)
	}
}
