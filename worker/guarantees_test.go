package worker_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/sandbox"
	"github.com/heraldhq/herald/worker"
	"github.com/heraldhq/herald/worker/redisstore"
)

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// Guarantee 3: a rate limit holds across replicas; waiting spends no attempt.
func TestRateLimitIsSharedByReplicas(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	const perSecond, burst, jobs = 20.0, 5, 70
	limited := func(name string) worker.Config {
		cfg := testConfig(name)
		cfg.MaxAttempts = 1 // a wait that counted as an attempt would dead-letter
		cfg.RateLimit = func(platform, app, tpl string) (worker.Limit, bool) {
			return worker.Limit{Key: platform + ":" + app + ":" + tpl, PerSecond: perSecond, Burst: burst}, tpl == "tpl"
		}
		return cfg
	}
	b.startWorker(t, limited("w1"))
	b.startWorker(t, limited("w2"))
	// Warm up: fetch the token and open connections with an unlimited
	// template, so the limited burst is not delayed by them.
	b.publishRaw(t, "notify.send.wechat", strings.Replace(jobJSON("warm", "user-warm", nil), `"tpl"`, `"other"`, 1))
	b.events.waitFor(t, 10*time.Second, "warm-up", func(ev *events) bool { return ev.settled([]string{"warm"}) })
	all := ids("rl", jobs)
	for _, id := range all {
		b.publishRaw(t, "notify.send.wechat", jobJSON(id, "user-"+id, nil))
	}
	b.events.waitFor(t, 30*time.Second, "every job delivered", func(ev *events) bool { return ev.settled(all) })
	if _, dead := b.events.outcomes(); dead != 0 {
		t.Fatalf("%d jobs dead-lettered while waiting for the limit", dead)
	}
	// Times are taken where the limit matters: at the platform.
	var sent []time.Time
	for _, m := range b.sandbox.Accepted() {
		if m.TemplateID == "tpl" {
			sent = append(sent, m.At)
		}
	}
	workers := map[string]int{}
	for _, id := range all {
		workers[b.events.receiptsOf(id)[0].Worker]++
	}
	slices.SortFunc(sent, func(a, b time.Time) int { return a.Compare(b) })
	// No one-second window holds more than rate + burst sends.
	for i := range sent {
		n := 0
		for j := i; j < len(sent) && sent[j].Sub(sent[i]) < time.Second; j++ {
			n++
		}
		if n > int(perSecond)+burst {
			t.Fatalf("%d sends within one second from %v, limit %v/s burst %d", n, sent[i], perSecond, burst)
		}
	}
	// After the burst, sends keep to the rate: never faster. (Slower is
	// the machine's doing, not the limit's; herald bench measures how close
	// to the limit it runs.)
	span := sent[len(sent)-1].Sub(sent[0]).Seconds()
	rate := float64(jobs-burst) / span
	if rate > perSecond*1.05 {
		t.Fatalf("sent %d jobs in %.2fs: %.1f/s after the burst, limit %v/s", jobs, span, rate, perSecond)
	}
	t.Logf("%d jobs in %.2fs (%.1f/s after a burst of %d) by %v", jobs, span, rate, burst, workers)
}

// Guarantee 6: on shutdown a replica stops pulling, finishes what is in
// flight, hands back the rest, and Run returns.
func TestShutdownFinishesInFlightAndHandsBackTheRest(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{Latency: 300 * time.Millisecond})
	cfg := testConfig("w1")
	cfg.Concurrency = 4
	r := b.startWorker(t, cfg)
	all := ids("sd", 40)
	for _, id := range all {
		b.publishRaw(t, "notify.send.wechat", jobJSON(id, "user-"+id, nil))
	}
	b.events.waitFor(t, 10*time.Second, "first deliveries", func(ev *events) bool { return len(ev.receipts) >= 4 })
	took := r.stop(t)
	if took > cfg.ShutdownGrace {
		t.Fatalf("stop took %v, grace is %v", took, cfg.ShutdownGrace)
	}
	delivered, _ := b.events.outcomes()
	if delivered == len(all) {
		t.Fatal("every job was delivered before the stop; the test proves nothing")
	}
	// What is left is still queued and goes out, once, with the next replica.
	b.startWorker(t, testConfig("w2"))
	b.events.waitFor(t, 30*time.Second, "the rest delivered", func(ev *events) bool { return ev.settled(all) })
	for user, n := range b.acceptedTo() {
		if n != 1 {
			t.Errorf("%s got %d messages, want 1", user, n)
		}
	}
	if got := len(b.sandbox.Accepted()); got != len(all) {
		t.Fatalf("sandbox accepted %d, want %d", got, len(all))
	}
	t.Logf("stopped in %v with %d of %d delivered; the next replica delivered the rest", took, delivered, len(all))
}

// Guarantee 7: with Redis down nothing is sent, readiness fails, and the
// worker recovers by itself when Redis returns.
func TestRedisOutageHoldsJobsAndRecovers(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	r := b.startWorker(t, testConfig("w1"))
	b.publishRaw(t, "notify.send.wechat", jobJSON("before", "user-before", nil))
	b.events.waitFor(t, 10*time.Second, "first delivery", func(ev *events) bool { return len(ev.receipts["before"]) == 1 })

	b.redis.Stop()
	all := ids("down", 10)
	for _, id := range all {
		b.publishRaw(t, "notify.send.wechat", jobJSON(id, "user-"+id, nil))
	}
	testenv.Eventually(t, 20*time.Second, "readiness to fail", func() bool { return r.w.Ready() != nil })
	if got := b.sandbox.Stats()["wechat"].SendCalls; got != 1 {
		t.Fatalf("%d send calls with Redis down, want none beyond the first job's", got-1)
	}
	if p := b.pending(t); p != uint64(len(all)) {
		t.Fatalf("%d jobs queued while Redis is down, want %d", p, len(all))
	}

	b.redis.Start(t)
	b.events.waitFor(t, 30*time.Second, "delivery after Redis returns", func(ev *events) bool { return ev.settled(all) })
	if err := r.w.Ready(); err != nil {
		t.Fatalf("Ready() = %v after recovery", err)
	}
	if _, dead := b.events.outcomes(); dead != 0 {
		t.Fatalf("%d jobs dead-lettered during the outage", dead)
	}
}

// Guarantee 7 after a Redis failover: the Redis the worker talks to is
// demoted to a replica (REPLICAOF). It still answers reads, but records
// nothing; the worker must report itself unready on its own, without a job
// to fail on, claim nothing while it stays so, and resume by itself once
// the server is a master again (REPLICAOF NO ONE).
func TestReadOnlyRedisHoldsJobsAndRecovers(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	r := b.startWorker(t, testConfig("w1"))
	b.publishRaw(t, "notify.send.wechat", jobJSON("before", "user-before", nil))
	b.events.waitFor(t, 10*time.Second, "first delivery", func(ev *events) bool { return len(ev.receipts["before"]) == 1 })

	master := testenv.StartRedis(t)
	b.redis.ReplicaOf(t, master)
	// No job flows: only the health probe can notice.
	testenv.Eventually(t, 20*time.Second, "readiness to fail", func() bool { return r.w.Ready() != nil })

	all := ids("ro", 10)
	for _, id := range all {
		b.publishRaw(t, "notify.send.wechat", jobJSON(id, "user-"+id, nil))
	}
	// For three seconds and at least three more refused probes (the
	// prober pings every second while the store is down, and at once when
	// a job fails on it), readiness must hold false: no flapping back up
	// between probes, as TIME and PING alone would have it.
	probes, since := b.redis.Rejected(t, "set"), time.Now()
	testenv.Eventually(t, 20*time.Second, "three seconds of refused probes", func() bool {
		if err := r.w.Ready(); err == nil {
			t.Fatal("the worker reported ready while Redis was read-only")
		}
		return b.redis.Rejected(t, "set") >= probes+3 && time.Since(since) >= 3*time.Second
	})
	if got := b.sandbox.Stats()["wechat"].SendCalls; got != 1 {
		t.Fatalf("%d send calls while Redis was read-only, want none beyond the first job's", got-1)
	}
	if p := b.pending(t); p != uint64(len(all)) {
		t.Fatalf("%d jobs queued while Redis was read-only, want %d", p, len(all))
	}

	b.redis.Promote(t)
	b.events.waitFor(t, 30*time.Second, "delivery after the promotion", func(ev *events) bool { return ev.settled(all) })
	if err := r.w.Ready(); err != nil {
		t.Fatalf("Ready() = %v after the promotion", err)
	}
	for user, n := range b.acceptedTo() {
		if n != 1 {
			t.Errorf("%s got %d messages, want 1", user, n)
		}
	}
}

// A worker that starts while Redis is down reports it unready and sends
// nothing until Redis answers; then it delivers every job, none of them
// handed back meanwhile.
func TestWorkerStartedWithRedisDownWaitsForIt(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	b.redis.Stop()
	all := ids("cold", 5)
	for _, id := range all {
		b.publishRaw(t, "notify.send.wechat", jobJSON(id, "user-"+id, nil))
	}
	r := b.startWorker(t, testConfig("w1"))
	testenv.Eventually(t, 10*time.Second, "readiness to fail", func() bool { return r.w.Ready() != nil })
	if got := b.sandbox.Stats()["wechat"].SendCalls; got != 0 {
		t.Fatalf("%d send calls with Redis down, want none", got)
	}
	b.redis.Start(t)
	// The counter moves after the receipt: wait for it, not the receipts.
	testenv.Eventually(t, 30*time.Second, "every job delivered", func() bool { return r.jobs(t, "delivered") == float64(len(all)) })
	if held := r.jobs(t, "held"); held != 0 {
		t.Errorf("%v jobs handed back while Redis was down, want 0: the worker pulled before it knew", held)
	}
}

// Guarantee 7: a platform that keeps failing trips the breaker, and held
// jobs spend no attempts.
func TestBreakerHoldsJobsWithoutSpendingAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	cfg := testConfig("w1")
	cfg.MaxAttempts = 3
	cfg.BreakerFailures = 3
	cfg.BreakerCooldown = 500 * time.Millisecond
	cfg.BreakerMax = time.Second
	b.sandbox.SetOutage("wechat", time.Hour)
	b.startWorker(t, cfg)
	all := ids("br", 30)
	for _, id := range all {
		b.publishRaw(t, "notify.send.wechat", jobJSON(id, "user-"+id, nil))
	}
	// With the breaker open, few calls reach the failing platform.
	testenv.Eventually(t, 10*time.Second, "the breaker to trip", func() bool { return b.sandbox.Stats()["wechat"].SendCalls >= 3 })
	b.sandbox.SetOutage("wechat", 0)
	b.events.waitFor(t, 30*time.Second, "every job delivered", func(ev *events) bool { return ev.settled(all) })
	_, dead := b.events.outcomes()
	calls := b.sandbox.Stats()["wechat"].SendCalls
	if dead != 0 {
		t.Fatalf("%d jobs dead-lettered: the breaker let attempts burn", dead)
	}
	if failed := calls - int64(len(all)); failed > int64(len(all)) {
		t.Fatalf("%d failed calls for %d jobs: the breaker did not hold them", failed, len(all))
	}
	t.Logf("%d jobs delivered after an outage with %d calls in all", len(all), calls)
}

// Only a call can be the breaker's probe. Jobs settled without one (here
// duplicates of a delivered job; in enforce mode, jobs the ledger skips)
// settle while the gate is half-open, instead of each taking the probe's
// place and holding every job of the app for the probe's whole time (the
// request timeout + 5 s) with no answer coming to close the gate.
func TestJobsWithoutACallNeverHoldTheBreakersProbe(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	cfg := testConfig("w1")
	cfg.BreakerFailures = 1
	cfg.BreakerCooldown = 500 * time.Millisecond
	cfg.BreakerMax = 500 * time.Millisecond
	r := b.startWorker(t, cfg)
	b.publishRaw(t, "notify.send.wechat", jobJSON("first", "user-first", nil))
	b.events.waitFor(t, 10*time.Second, "the first job delivered", func(ev *events) bool { return ev.settled([]string{"first"}) })

	// The platform fails from now on: the failing job opens the breaker
	// and, as each probe, opens it again.
	b.sandbox.SetOutage("wechat", time.Hour)
	b.publishRaw(t, "notify.send.wechat", jobJSON("failing", "user-failing", nil))
	testenv.Eventually(t, 10*time.Second, "the breaker to trip", func() bool { return r.jobs(t, "retry") >= 1 })
	const copies = 20
	for range copies {
		b.publishRaw(t, "notify.send.wechat", jobJSON("first", "user-first", nil))
	}
	// Before, a copy that took the probe held the gate for 8 s and only
	// one copy went through per 8 s: 20 copies took minutes.
	testenv.Eventually(t, 30*time.Second, "every copy settled as a duplicate", func() bool {
		return r.jobs(t, "duplicate") == copies
	})
	if calls := b.sandbox.Stats()["wechat"].SendCalls; calls < 2 {
		t.Fatalf("%d send calls: the failing job never reached the platform", calls)
	}
}

// Guarantee 1: a dead letter that cannot be stored leaves the job queued.
func TestDeadLetterPublishFailureKeepsTheJob(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	ctx := context.Background()
	if err := b.js.DeleteStream(ctx, "NOTIFY_DEAD"); err != nil {
		t.Fatal(err)
	}
	b.startWorker(t, testConfig("w1"))
	b.publishRaw(t, "notify.send.wechat", jobJSON("kept", "refuse-kept", nil))
	testenv.Eventually(t, 10*time.Second, "a refused call", func() bool { return b.sandbox.Stats()["wechat"].SendCalls >= 1 })
	if p := b.pending(t); p != 1 {
		t.Fatalf("%d jobs queued after a failed dead-letter publish, want 1", p)
	}
	if _, err := producer.DefaultTopology.Apply(ctx, b.js); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the dead letter stored", func() bool {
		s, err := b.js.Stream(ctx, "NOTIFY_DEAD")
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	testenv.Eventually(t, 5*time.Second, "NOTIFY_SEND empty", func() bool { return b.pending(t) == 0 })
	s, _ := b.js.Stream(ctx, "NOTIFY_DEAD")
	msg, err := s.GetLastMsgForSubject(ctx, "notify.dead.wechat.user_refused")
	if err != nil {
		t.Fatalf("dead letter not under notify.dead.wechat.user_refused: %v", err)
	}
	if msg.Header.Get(job.HeaderReason) != job.ReasonUserRefused {
		t.Fatalf("stored dead letter headers %v", msg.Header)
	}
}

// Guarantee 5: replicas share one token; an invalidated token is refreshed
// once for all of them.
func TestInvalidatedTokenIsRefreshedOnceForAllReplicas(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	fetches := func() int64 {
		var n int64
		for _, v := range b.sandbox.Stats()["wechat"].TokenFetches {
			n += v
		}
		return n
	}
	b.startWorker(t, testConfig("w1"))
	b.startWorker(t, testConfig("w2"))
	// The replicas get the token before any job arrives.
	testenv.Eventually(t, 10*time.Second, "token fetched at start", func() bool { return fetches() == 1 })
	first := ids("tk1", 20)
	for _, id := range first {
		b.publishRaw(t, "notify.send.wechat", jobJSON(id, "user-"+id, nil))
	}
	b.events.waitFor(t, 10*time.Second, "first batch", func(ev *events) bool { return ev.settled(first) })
	if n := fetches(); n != 1 {
		t.Fatalf("%d token fetches for two replicas, want 1", n)
	}
	if n := b.sandbox.RotateWeChat(appID); n == 0 {
		t.Fatal("sandbox rotated no token")
	}
	second := ids("tk2", 20)
	for _, id := range second {
		b.publishRaw(t, "notify.send.wechat", jobJSON(id, "user-"+id, nil))
	}
	b.events.waitFor(t, 10*time.Second, "second batch", func(ev *events) bool { return ev.settled(second) })
	if n := fetches(); n != 2 {
		t.Fatalf("%d token fetches after one invalidation, want 2 in all", n)
	}
	if _, dead := b.events.outcomes(); dead != 0 {
		t.Fatalf("%d jobs dead-lettered across the token change", dead)
	}
}

// freezeAfterMark is a store whose MarkSent records the job and then hangs,
// as a replica that froze between recording a delivery and acking it. A
// frozen replica takes nothing further either: once the mark is recorded,
// every Admit hangs too, so a redelivery that reaches the frozen replica's
// idle handlers goes back to JetStream after the ack wait.
type freezeAfterMark struct {
	worker.Store
	marked  chan struct{}
	release chan struct{}
}

func (f *freezeAfterMark) Admit(ctx context.Context, c worker.Claim) (worker.Admission, error) {
	select {
	case <-f.marked:
		<-f.release
	default:
	}
	return f.Store.Admit(ctx, c)
}

func (f *freezeAfterMark) MarkSent(ctx context.Context, key string, ttl time.Duration, d worker.SentRecord) error {
	err := f.Store.MarkSent(ctx, key, ttl, d)
	close(f.marked)
	<-f.release
	return err
}

// Guarantee 2: a message redelivered after its job was delivered (the ack
// never arrived) is acked without a second send, and the receipt the frozen
// replica never published is published by the one that acks.
func TestRedeliveryAfterDeliveryIsNotSentAgain(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	frozen := &freezeAfterMark{
		Store:   redisstore.New(b.rdb, redisstore.Config{}),
		marked:  make(chan struct{}),
		release: make(chan struct{}),
	}
	t.Cleanup(func() { frozen.Store.(*redisstore.Store).Close() })
	defer close(frozen.release)
	// One call slot: two handlers, so the frozen replica can hold the
	// redelivery at most once more before the healthy one gets it.
	frozenCfg := testConfig("frozen")
	frozenCfg.Concurrency = 1
	b.startWorkerOn(t, frozenCfg, frozen)
	b.publishRaw(t, "notify.send.wechat", jobJSON("redelivered", "user-redelivered", nil))
	select {
	case <-frozen.marked:
	case <-time.After(10 * time.Second):
		t.Fatal("the job was never delivered")
	}

	// The frozen replica never acks; after the ack wait (5 s, once or twice
	// more if its idle handler or its pull takes the redelivery) JetStream
	// hands the message to the healthy one.
	b.startWorker(t, testConfig("healthy"))
	testenv.Eventually(t, 30*time.Second, "the redelivery acked", func() bool { return b.pending(t) == 0 })
	if got := b.acceptedTo()["user-redelivered"]; got != 1 {
		t.Fatalf("sandbox accepted %d messages after a redelivery, want 1", got)
	}
	b.events.waitFor(t, 5*time.Second, "the receipt", func(ev *events) bool { return len(ev.receipts["redelivered"]) == 1 })
	r := b.events.receiptsOf("redelivered")[0]
	if acc := b.sandbox.Accepted(); r.MsgID != acc[0].MsgID || r.Attempts != 1 || r.Worker != "healthy" {
		t.Fatalf("receipt %+v, want the frozen delivery's msgid %s and 1 attempt, from the healthy replica", r, acc[0].MsgID)
	}
}

// A job waiting out its rate-limit slot holds no call slot: with one call
// slot, a job of another template is sent while a limited one waits.
func TestRateLimitWaitHoldsNoCallSlot(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	cfg := testConfig("w1")
	cfg.Concurrency = 1 // one call slot, two handlers
	cfg.RateLimit = func(platform, app, tpl string) (worker.Limit, bool) {
		return worker.Limit{Key: platform + ":" + app + ":" + tpl, PerSecond: 0.5, Burst: 1}, tpl == "tpl"
	}
	b.startWorker(t, cfg)
	// The first limited job takes the burst; the second waits about 2 s.
	b.publishRaw(t, "notify.send.wechat", jobJSON("lim1", "user-lim1", nil))
	b.events.waitFor(t, 10*time.Second, "first limited job", func(ev *events) bool { return ev.settled([]string{"lim1"}) })
	b.publishRaw(t, "notify.send.wechat", jobJSON("lim2", "user-lim2", nil))
	testenv.Eventually(t, 10*time.Second, "the second limited job taken and waiting", func() bool {
		c, err := b.js.Consumer(context.Background(), "NOTIFY_SEND", "herald-worker")
		if err != nil {
			return false
		}
		ci := c.CachedInfo()
		return ci.NumPending == 0 && ci.NumAckPending == 1
	})
	b.publishRaw(t, "notify.send.wechat", strings.Replace(jobJSON("free", "user-free", nil), `"tpl"`, `"other"`, 1))
	b.events.waitFor(t, 10*time.Second, "both jobs", func(ev *events) bool { return ev.settled([]string{"lim2", "free"}) })
	order := map[string]time.Time{}
	for _, m := range b.sandbox.Accepted() {
		order[m.ToUser] = m.At
	}
	if !order["user-free"].Before(order["user-lim2"]) {
		t.Fatalf("the unlimited job was sent at %v, after the waiting limited one at %v: the wait held the call slot",
			order["user-free"], order["user-lim2"])
	}
}
