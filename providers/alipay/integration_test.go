package alipay_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/providers/alipay"
	"github.com/heraldhq/herald/retry"
	"github.com/heraldhq/herald/sandbox"
	"github.com/heraldhq/herald/worker"
	"github.com/heraldhq/herald/worker/redisstore"
)

var _ worker.Sender = (*alipay.Client)(nil)

const (
	appID       = "2021000000000077"
	maxAttempts = 3
	awaitFor    = 20 * time.Second
)

// pipeline is JetStream with herald's streams, a redis-server, the sandbox
// gateway and two worker replicas sharing the consumer and Redis, each
// with its own connections, store and Alipay client, as two processes
// would have.
type pipeline struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	sandbox *sandbox.Server
	events  *events
}

func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	keys, err := sandbox.NewAlipayKeys()
	if err != nil {
		t.Fatal(err)
	}
	opts := keys.Options(appID)
	opts.Record = true
	sb := sandbox.New(opts)
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)

	ns := testenv.StartJetStream(t)
	rds := testenv.StartRedis(t)
	p := &pipeline{sandbox: sb}
	p.nc, p.js = ns.Connect(t)
	topo := producer.DefaultTopology
	topo.AckWait = 5 * time.Second
	if _, err := topo.Apply(t.Context(), p.js); err != nil {
		t.Fatal(err)
	}
	p.events = watch(t, p.nc)

	for _, name := range []string{"alipay-w1", "alipay-w2"} {
		_, js := ns.Connect(t)
		rdb := rds.Client(t)
		st := redisstore.New(rdb, redisstore.Config{DedupTTL: time.Hour})
		t.Cleanup(st.Close)
		c, err := alipay.New(alipay.Config{
			AppID:           appID,
			PrivateKey:      keys.AppPrivateKey,
			AlipayPublicKey: keys.GatewayPublicKey,
			Gateway:         srv.URL + sandbox.AlipayGatewayPath,
			Timeout:         2 * time.Second,
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		w, err := worker.New(worker.Config{
			Instance:       name,
			Receipts:       true,
			Concurrency:    16,
			MaxAttempts:    maxAttempts,
			AckWait:        5 * time.Second,
			ShutdownGrace:  5 * time.Second,
			RequestTimeout: 2 * time.Second,
			DedupTTL:       time.Hour,
			Retry:          retry.Policy{InitialInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond, Multiplier: 2, Randomization: 0.2},
		}, js, st, map[worker.Route]worker.Sender{{Platform: job.Alipay, App: job.DefaultApp}: c},
			zaptest.NewLogger(t).Named(name))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: Run = %v", name, err)
			}
		})
	}
	return p
}

// publishRaw publishes a job as bytes with a plain NATS publish, as a
// producer in any language may: no Nats-Msg-Id, so JetStream does not
// deduplicate and herald's own dedup has to.
func (p *pipeline) publishRaw(t *testing.T, data string) {
	t.Helper()
	if err := p.nc.Publish(job.SendSubject(job.Alipay), []byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := p.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// awaitDrained waits until NOTIFY_SEND holds no job: every copy has been
// acked or terminated. The stream lives in the server, so this polls.
func (p *pipeline) awaitDrained(t *testing.T) {
	t.Helper()
	s, err := p.js.Stream(t.Context(), producer.DefaultTopology.SendStream)
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(awaitFor)
	for {
		info, err := s.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("NOTIFY_SEND still holds %d jobs after %v", info.State.Msgs, awaitFor)
		}
	}
}

func (p *pipeline) calls() sandbox.PlatformStats { return p.sandbox.Stats()[job.Alipay] }

// events collects receipts and dead letters as the workers publish them.
type events struct {
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every event
	receipts []job.Receipt
	dead     []deadLetter
}

type deadLetter struct {
	job.DeadLetter
	subject string
	code    string // the Herald-Code header
}

func watch(t *testing.T, nc *nats.Conn) *events {
	t.Helper()
	e := &events{changed: make(chan struct{})}
	add := func(f func()) {
		e.mu.Lock()
		f()
		close(e.changed)
		e.changed = make(chan struct{})
		e.mu.Unlock()
	}
	subs := map[string]nats.MsgHandler{
		job.SentSubject(job.Alipay): func(m *nats.Msg) {
			var r job.Receipt
			if err := json.Unmarshal(m.Data, &r); err != nil {
				t.Errorf("receipt %s: %v", m.Data, err)
				return
			}
			add(func() { e.receipts = append(e.receipts, r) })
		},
		job.DeadRoot + "." + job.Alipay + ".>": func(m *nats.Msg) {
			d := deadLetter{subject: m.Subject, code: m.Header.Get(job.HeaderCode)}
			if err := json.Unmarshal(m.Data, &d.DeadLetter); err != nil {
				t.Errorf("dead letter %s: %v", m.Data, err)
				return
			}
			add(func() { e.dead = append(e.dead, d) })
		},
	}
	for subj, h := range subs {
		sub, err := nc.Subscribe(subj, h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return e
}

// await waits until cond, called under the lock, holds.
func (e *events) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	timeout := time.NewTimer(awaitFor)
	defer timeout.Stop()
	for {
		e.mu.Lock()
		ok, ch := cond(), e.changed
		e.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-timeout.C:
			t.Fatalf("no %s within %v", what, awaitFor)
		}
	}
}

func (e *events) receiptsFor(id string) []job.Receipt {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []job.Receipt
	for _, r := range e.receipts {
		if r.ID == id {
			out = append(out, r)
		}
	}
	return out
}

// awaitDead waits for id's dead letter and returns it.
func (e *events) awaitDead(t *testing.T, id string) deadLetter {
	t.Helper()
	var got deadLetter
	e.await(t, "dead letter for "+id, func() bool {
		for _, d := range e.dead {
			if d.ID == id {
				got = d
				return true
			}
		}
		return false
	})
	return got
}

func rawJob(id, toUser string, data map[string]string) string {
	d := map[string]map[string]string{}
	for k, v := range data {
		d[k] = map[string]string{"value": v}
	}
	b, _ := json.Marshal(map[string]any{
		"id": id, "platform": "alipay", "template_id": "tpl-order-shipped", "to_user": toUser,
		"page": "pages/order/index?id=42", "data": d,
	})
	return string(b)
}

// TestWorkerDeliversAlipayJobs runs Alipay jobs through two worker
// replicas against the sandbox gateway.
func TestWorkerDeliversAlipayJobs(t *testing.T) {
	p := startPipeline(t)
	data := map[string]string{"keyword1": "订单已发货", "keyword2": "2026-11-23 10:00"}

	t.Run("raw JSON job delivered exactly once", func(t *testing.T) {
		body := rawJob("ali-ok-1", "user-ok-1", data)
		p.publishRaw(t, body)
		p.events.await(t, "receipt for ali-ok-1", func() bool { return len(p.events.receipts) > 0 })
		// A producer publishes the same job again after its delivery:
		// whichever replica takes it finds it sent in Redis and acks it
		// without a call.
		p.publishRaw(t, body)
		p.awaitDrained(t)

		msgs := p.sandbox.Accepted()
		if len(msgs) != 1 || msgs[0].ToUser != "user-ok-1" || msgs[0].AppID != appID ||
			msgs[0].TemplateID != "tpl-order-shipped" || msgs[0].Data["keyword1"] != "订单已发货" {
			t.Fatalf("sandbox accepted %+v, want the job once", msgs)
		}
		if n := p.calls().Accepted; n != 1 {
			t.Fatalf("sandbox counted %d accepted", n)
		}
		r := p.events.receiptsFor("ali-ok-1")
		if len(r) != 1 || r[0].Platform != job.Alipay || r[0].App != job.DefaultApp || r[0].ToUser != "user-ok-1" || r[0].Attempts != 1 {
			t.Fatalf("receipts %+v, want one", r)
		}
	})

	t.Run("answer with a bad signature is never delivered", func(t *testing.T) {
		before := p.calls()
		p.publishRaw(t, rawJob("ali-badsign-1", "badsign-1", data))
		d := p.events.awaitDead(t, "ali-badsign-1")
		if d.Reason != job.ReasonRetriesExhausted || d.subject != "notify.dead.alipay.retries_exhausted" || d.Attempts != maxAttempts {
			t.Fatalf("dead letter %+v on %s", d.DeadLetter, d.subject)
		}
		if !strings.Contains(d.Message, "signature does not verify") {
			t.Fatalf("dead letter message %q does not say why", d.Message)
		}
		if r := p.events.receiptsFor("ali-badsign-1"); len(r) != 0 {
			t.Fatalf("receipts %+v for an unverified answer", r)
		}
		after := p.calls()
		if after.SendCalls-before.SendCalls != maxAttempts || after.Accepted != before.Accepted {
			t.Fatalf("sandbox calls %+v -> %+v, want %d more calls, none accepted", before, after, maxAttempts)
		}
	})

	t.Run("missing keyword dead-lettered with Alipay's sub_code", func(t *testing.T) {
		p.publishRaw(t, rawJob("ali-lackkw-1", "lackkw-1", data))
		d := p.events.awaitDead(t, "ali-lackkw-1")
		if d.Reason != job.ReasonInvalidTemplateData || d.subject != "notify.dead.alipay.invalid_template_data" ||
			d.Code != "USER_TEMPLATE_LACK_KEYWORD" || d.code != "USER_TEMPLATE_LACK_KEYWORD" || d.Message == "" || d.Attempts != 1 {
			t.Fatalf("dead letter %+v (header code %q) on %s", d.DeadLetter, d.code, d.subject)
		}
	})

	t.Run("value over 50 characters dead-lettered before any call", func(t *testing.T) {
		before := p.calls().SendCalls
		p.publishRaw(t, rawJob("ali-long-1", "user-long-1", map[string]string{"keyword1": strings.Repeat("长", 51)}))
		d := p.events.awaitDead(t, "ali-long-1")
		if d.Reason != job.ReasonInvalidTemplateData || d.Field != "data.keyword1.value" || d.Code != "" || d.Attempts != 0 {
			t.Fatalf("dead letter %+v", d.DeadLetter)
		}
		if after := p.calls().SendCalls; after != before {
			t.Fatalf("sandbox got %d calls for a job Validate rejects", after-before)
		}
	})
}
