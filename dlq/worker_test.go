package dlq_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/heraldhq/herald/dlq"
	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/providers/wechat"
	"github.com/heraldhq/herald/retry"
	"github.com/heraldhq/herald/sandbox"
	"github.com/heraldhq/herald/worker"
	"github.com/heraldhq/herald/worker/redisstore"
)

// pipeline is a running worker delivering to the sandbox WeChat API.
type pipeline struct {
	*testBundle
	sandbox *sandbox.Server
}

// startPipeline runs a worker (Redis store, WeChat provider against the
// sandbox) on a fresh JetStream until the test ends. Jobs get two attempts
// a few milliseconds apart.
func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	b := setup(t)
	sb := sandbox.New(sandbox.Options{Record: true})
	api := httptest.NewServer(sb)
	t.Cleanup(api.Close)

	rdb := testenv.StartRedis(t).Client(t)
	store := redisstore.New(rdb, redisstore.Config{DedupTTL: time.Hour})
	t.Cleanup(store.Close)
	client, err := wechat.New(wechat.Config{
		AppID: sandbox.DevWeChatAppID, AppSecret: sandbox.DevWeChatSecret, BaseURL: api.URL,
	}, redisstore.NewTokens(rdb, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{
		Instance:    "dlq-test",
		Concurrency: 8,
		MaxAttempts: 2,
		Retry:       retry.Policy{InitialInterval: 10 * time.Millisecond, MaxInterval: 20 * time.Millisecond, Multiplier: 2},
	}, b.js, store, map[worker.Route]worker.Sender{{Platform: job.WeChat, App: job.DefaultApp}: client}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	return &pipeline{testBundle: b, sandbox: sb}
}

func (p *pipeline) publish(t *testing.T, id, toUser string) {
	t.Helper()
	_, err := producer.New(p.js).Publish(t.Context(), job.Job{
		ID: id, Platform: job.WeChat, TemplateID: "tpl-order", ToUser: toUser,
		Data: map[string]job.Value{"thing1": {Value: "Order shipped"}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// awaitDead waits for a dead letter matching f and returns it.
func (p *pipeline) awaitDead(t *testing.T, f dlq.Filter) dlq.Entry {
	t.Helper()
	var got []dlq.Entry
	testenv.Eventually(t, 10*time.Second, "a dead letter", func() bool {
		var err error
		got, err = dlq.List(t.Context(), p.js, p.topo.DeadStream, f, 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(got) > 0
	})
	if len(got) != 1 {
		t.Fatalf("%d dead letters match %+v, want 1", len(got), f)
	}
	return got[0]
}

// awaitIdle waits until the worker has settled every job.
func (p *pipeline) awaitIdle(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "an empty job stream", func() bool {
		return p.state(t, p.topo.SendStream).Msgs == 0
	})
}

func TestReplayRefusedComesBackDeadAgain(t *testing.T) {
	t.Parallel()
	p := startPipeline(t)
	p.publish(t, "job-refused", "refuse-user-1")

	first := p.awaitDead(t, dlq.Filter{Reasons: []string{job.ReasonUserRefused}})
	if first.Letter.ID != "job-refused" || first.Letter.Code != "43101" || first.Letter.Replays != 0 {
		t.Fatalf("first dead letter = %+v", first.Letter)
	}

	res, err := dlq.Replay(t.Context(), p.js, dlq.ReplayOptions{
		Stream: p.topo.DeadStream, SendStream: p.topo.SendStream,
		Filter: dlq.Filter{Reasons: []string{job.ReasonUserRefused}},
	})
	if err != nil || res.Replayed != 1 || res.Deleted != 1 {
		t.Fatalf("Replay() = %+v, %v", res, err)
	}
	again := p.awaitDead(t, dlq.Filter{Reasons: []string{job.ReasonUserRefused}, Since: first.Time.Add(time.Nanosecond)})
	if again.Seq == first.Seq || again.Letter.ID != "job-refused" || again.Letter.Replays != 1 {
		t.Fatalf("dead letter after replay = seq %d %+v, want a new one with replays 1", again.Seq, again.Letter)
	}
	if _, err := dlq.Get(t.Context(), p.js, p.topo.DeadStream, first.Seq); err == nil {
		t.Fatalf("replayed dead letter %d is still stored", first.Seq)
	}
	if n := p.sandbox.Stats()[job.WeChat].Accepted; n != 0 {
		t.Fatalf("sandbox accepted %d messages for a refusing user", n)
	}
}

func TestReplayAfterOutageDeliversOnce(t *testing.T) {
	t.Parallel()
	p := startPipeline(t)
	p.sandbox.SetOutage(job.WeChat, time.Hour)
	p.publish(t, "job-outage", "user-2")

	dead := p.awaitDead(t, dlq.Filter{Reasons: []string{job.ReasonRetriesExhausted}})
	if dead.Letter.ID != "job-outage" || dead.Letter.Attempts != 2 {
		t.Fatalf("dead letter = %+v", dead.Letter)
	}

	p.sandbox.SetOutage(job.WeChat, 0)
	opts := dlq.ReplayOptions{
		Stream: p.topo.DeadStream, SendStream: p.topo.SendStream,
		Filter: dlq.Filter{Reasons: []string{job.ReasonRetriesExhausted}},
	}
	res, err := dlq.Replay(t.Context(), p.js, opts)
	if err != nil || res.Replayed != 1 {
		t.Fatalf("Replay() = %+v, %v", res, err)
	}
	testenv.Eventually(t, 10*time.Second, "the replayed job's delivery", func() bool {
		return p.sandbox.Stats()[job.WeChat].Accepted == 1
	})
	p.awaitIdle(t)

	// A second replay finds nothing: the job is delivered once.
	res, err = dlq.Replay(t.Context(), p.js, opts)
	if err != nil || res.Matched != 0 {
		t.Fatalf("second Replay() = %+v, %v; want nothing left", res, err)
	}
	if n := p.state(t, p.topo.DeadStream).Msgs; n != 0 {
		t.Fatalf("%d dead letters after a successful replay", n)
	}
	msgs := p.sandbox.Accepted()
	if len(msgs) != 1 || msgs[0].ToUser != "user-2" {
		t.Fatalf("sandbox accepted %+v, want one message to user-2", msgs)
	}
}
