// Package storetest is the behaviour every [worker.Store] must have, run
// against each implementation by its own tests. It is imported by tests
// only.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/heraldhq/herald/worker"
)

// Run runs the suite against stores made by newStore, one per subtest.
func Run(t *testing.T, newStore func(t *testing.T) worker.Store) {
	t.Run("lifecycle", func(t *testing.T) { lifecycle(t, newStore(t)) })
	t.Run("release", func(t *testing.T) { release(t, newStore(t)) })
	t.Run("expired lease", func(t *testing.T) { expiredLease(t, newStore(t)) })
	t.Run("rate limit", func(t *testing.T) { rateLimit(t, newStore(t)) })
	t.Run("decided", func(t *testing.T) { decided(t, newStore(t)) })
	t.Run("ledger", func(t *testing.T) { ledger(t, newStore(t)) })
}

// decided: a dead letter that could not be stored is remembered with the
// job, so its next delivery publishes it instead of calling again.
func decided(t *testing.T, s worker.Store) {
	ctx := context.Background()
	const key = "wechat:default:d1"
	a, err := s.Admit(ctx, claim(key, "w1:1:1"))
	if err != nil || a.Status != worker.Claimed {
		t.Fatalf("Admit = %+v, %v", a, err)
	}
	if n, err := s.Fail(ctx, key, "w1:1:1"); err != nil || n != 1 {
		t.Fatalf("Fail = %d, %v", n, err)
	}
	if _, err := s.Admit(ctx, claim(key, "w1:1:2")); err != nil {
		t.Fatal(err)
	}
	d := worker.Decision{Reason: "user_refused", Code: "43101", Message: "user refuse to accept the msg rid: 1-2-3",
		Field: "", Attempts: 2, First: a.FirstAttempt}
	if err := s.Decide(ctx, key, "w1:1:2", d); err != nil {
		t.Fatalf("Decide: %v", err)
	}
	// Whoever comes next, the lease is gone and the decision stands.
	got, err := s.Admit(ctx, claim(key, "w2:1:3"))
	if err != nil || got.Status != worker.Decided || got.Attempts != 2 {
		t.Fatalf("Admit after Decide = %+v, %v; want Decided with 2 attempts", got, err)
	}
	if got.Decision.Reason != d.Reason || got.Decision.Code != d.Code || got.Decision.Message != d.Message ||
		got.Decision.Attempts != d.Attempts || got.Decision.First.Sub(d.First).Abs() > time.Microsecond {
		t.Fatalf("Decision = %+v, want %+v", got.Decision, d)
	}
	if err := s.Forget(ctx, key); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Admit(ctx, claim(key, "w2:1:4")); a.Status != worker.Claimed || a.Attempts != 0 {
		t.Fatalf("Admit after Forget = %+v, want a fresh claim", a)
	}
}

func claim(key, owner string) worker.Claim {
	return worker.Claim{Key: key, Owner: owner, Lease: 10 * time.Second, TTL: time.Hour, MaxWait: time.Second}
}

func lifecycle(t *testing.T, s worker.Store) {
	ctx := context.Background()
	a, err := s.Admit(ctx, claim("wechat:default:1", "w1:1:1"))
	if err != nil || a.Status != worker.Claimed || a.Attempts != 0 || a.FirstAttempt.IsZero() {
		t.Fatalf("first Admit = %+v, %v; want Claimed with no attempts and a first-attempt time", a, err)
	}
	if a, _ := s.Admit(ctx, claim("wechat:default:1", "w2:1:2")); a.Status != worker.Busy || a.Wait <= 0 {
		t.Fatalf("Admit by another owner = %+v, want Busy with a wait", a)
	}
	n, err := s.Fail(ctx, "wechat:default:1", "w1:1:1")
	if err != nil || n != 1 {
		t.Fatalf("Fail = %d, %v; want 1", n, err)
	}
	// The same delivery failing again (a retried request) counts nothing.
	if n, err := s.Fail(ctx, "wechat:default:1", "w1:1:1"); err != nil || n != 1 {
		t.Fatalf("Fail again by the same owner = %d, %v; want still 1", n, err)
	}
	a, _ = s.Admit(ctx, claim("wechat:default:1", "w2:1:2"))
	if a.Status != worker.Claimed || a.Attempts != 1 {
		t.Fatalf("Admit after a failure = %+v, want Claimed with 1 attempt", a)
	}
	sent := worker.SentRecord{Seq: 42, MsgID: "2317554938710732141", Attempts: 2, At: time.UnixMicro(1_800_000_000_123_456)}
	if err := s.MarkSent(ctx, "wechat:default:1", time.Hour, sent); err != nil {
		t.Fatalf("MarkSent: %v", err)
	}
	a, _ = s.Admit(ctx, claim("wechat:default:1", "w3:1:3"))
	if a.Status != worker.AlreadySent || a.Sent != sent {
		t.Fatalf("Admit after MarkSent = %+v, want AlreadySent with the delivery %+v", a, sent)
	}
	if err := s.Forget(ctx, "wechat:default:1"); err != nil {
		t.Fatalf("Forget: %v", err)
	}
	if a, _ := s.Admit(ctx, claim("wechat:default:1", "w3:1:3")); a.Status != worker.Claimed || a.Attempts != 0 {
		t.Fatalf("Admit after Forget = %+v, want a fresh claim", a)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func release(t *testing.T, s worker.Store) {
	ctx := context.Background()
	key := "wechat:default:r"
	if _, err := s.Admit(ctx, claim(key, "a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, key, "someone-else"); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Admit(ctx, claim(key, "b")); a.Status != worker.Busy {
		t.Fatalf("Admit after a stranger's Release = %+v, want Busy", a)
	}
	if err := s.Release(ctx, key, "a"); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Admit(ctx, claim(key, "b")); a.Status != worker.Claimed || a.Attempts != 0 {
		t.Fatalf("Admit after the owner's Release = %+v, want Claimed with no attempt spent", a)
	}
}

func expiredLease(t *testing.T, s worker.Store) {
	ctx := context.Background()
	c := claim("wechat:default:lease", "crashed")
	c.Lease = time.Millisecond
	if _, err := s.Admit(ctx, c); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		a, err := s.Admit(ctx, claim("wechat:default:lease", "next"))
		if err != nil {
			t.Fatal(err)
		}
		if a.Status == worker.Claimed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease of 1ms still held after 5s: %+v", a)
		}
	}
}

func rateLimit(t *testing.T, s worker.Store) {
	ctx := context.Background()
	limit := &worker.Limit{Key: "wechat:default:tpl", PerSecond: 10, Burst: 3}
	var waits []time.Duration
	for i := range 6 {
		c := claim(fmt.Sprintf("wechat:default:%d", i), "o")
		c.Limit = limit
		a, err := s.Admit(ctx, c)
		if err != nil || a.Status != worker.Claimed {
			t.Fatalf("Admit %d = %+v, %v", i, a, err)
		}
		waits = append(waits, a.Wait)
	}
	// Three go at once (the burst); each later one waits one more interval
	// of 100ms, less the little time the calls themselves took.
	for i, w := range waits[:3] {
		if w != 0 {
			t.Errorf("wait[%d] = %v, want 0 within the burst", i, w)
		}
	}
	for i, w := range waits[3:] {
		want := time.Duration(i+1) * 100 * time.Millisecond
		if w > want || w < want-50*time.Millisecond {
			t.Errorf("wait[%d] = %v, want about %v", i+3, w, want)
		}
	}
	c := claim("wechat:default:late", "o")
	c.Limit, c.MaxWait = limit, 50*time.Millisecond
	a, err := s.Admit(ctx, c)
	if err != nil || a.Status != worker.Throttled || a.Wait <= 50*time.Millisecond {
		t.Fatalf("Admit beyond MaxWait = %+v, %v; want Throttled with the wait", a, err)
	}
	if a, _ := s.Admit(ctx, claim("wechat:default:late", "o2")); a.Status != worker.Claimed {
		t.Fatalf("a throttled Admit must not take the lease: %+v", a)
	}
}

// ledger: every transition of contract section 7, events twice and out
// of order, and the message id join.
func ledger(t *testing.T, s worker.Store) {
	l, ok := s.(worker.Ledger)
	if !ok {
		t.Fatalf("%T is no worker.Ledger", s)
	}
	ctx := context.Background()
	k := worker.SubscriptionKey{Platform: "wechat", App: "default", User: "oUser\r\n1", Template: "TPL"}
	at := func(sec int) time.Time { return time.Unix(1_800_000_000+int64(sec), 0) }
	state := func(want worker.SubscriptionState, grants int, what string) {
		t.Helper()
		subs, _, err := l.Subscriptions(ctx, k.Platform, k.App, k.User, k.Template)
		if err != nil || len(subs) != 1 || subs[0].State != want || subs[0].Grants != grants {
			t.Fatalf("%s: subscription %+v, %v; want %s with %d grants", what, subs, err, want, grants)
		}
		// The admission reads the same state.
		c := claim("wechat:default:probe-"+what, "probe")
		c.Subscription = &k
		a, err := s.Admit(ctx, c)
		if err != nil || a.Subscription.State != want || a.Subscription.Grants != grants {
			t.Fatalf("%s: admission's subscription %+v, %v; want %s with %d", what, a.Subscription, err, want, grants)
		}
	}
	apply := func(id string, accept bool, sec int, wantApplied bool) {
		t.Helper()
		got, err := l.Apply(ctx, k, worker.LedgerEvent{ID: id, Accept: accept, At: at(sec)})
		if err != nil || got != wantApplied {
			t.Fatalf("Apply %s = %v, %v; want %v", id, got, err, wantApplied)
		}
	}
	sent := func(key, msgID string, sec int) {
		t.Helper()
		r := worker.SentRecord{Seq: 1, MsgID: msgID, Attempts: 1, At: at(sec), Take: &k,
			Ref: &worker.MsgRef{Platform: k.Platform, App: k.App, ID: key, TemplateID: k.Template, ToUser: k.User}, RefTTL: time.Hour}
		if err := s.MarkSent(ctx, "wechat:default:"+key, time.Hour, r); err != nil {
			t.Fatal(err)
		}
	}

	state(worker.SubUnknown, 0, "unknown")
	sent("before", "100", 5) // a delivery says nothing of an unknown user's grants
	state(worker.SubUnknown, 0, "unknown after a delivery")
	apply("e1", true, 10, true)
	apply("e1", true, 10, false) // the same event again
	state(worker.SubGranted, 1, "one accept")
	apply("e2", true, 11, true)
	state(worker.SubGranted, 2, "two accepts")
	sent("j1", "101", 12)
	state(worker.SubGranted, 1, "a grant taken")
	sent("j2", "102", 13)
	sent("j3", "103", 14) // never below 0
	state(worker.SubGranted, 0, "grants used up")
	if err := l.Exhaust(ctx, k, at(15)); err != nil {
		t.Fatal(err)
	}
	state(worker.SubExhausted, 0, "43101")
	apply("e3", true, 9, true) // an accept from before the 43101, late
	state(worker.SubExhausted, 0, "a stale accept")
	apply("e4", true, 20, true)
	state(worker.SubGranted, 1, "a new accept")
	apply("e5", false, 21, true)
	state(worker.SubRejected, 0, "a reject")
	apply("e6", true, 19, true) // older than the reject
	state(worker.SubRejected, 0, "an accept older than the reject")
	sent("j4", "104", 22) // a delivery proves a grant
	state(worker.SubGranted, 0, "delivered while held rejected")
	apply("e7", false, 18, true) // a reject from before the delivery
	state(worker.SubGranted, 0, "a stale reject")

	subs, hist, err := l.Subscriptions(ctx, k.Platform, k.App, k.User)
	if err != nil || len(subs) != 1 || subs[0].Template != "TPL" || len(hist) == 0 || hist[0].Template != "TPL" {
		t.Fatalf("Subscriptions without templates = %+v, history %+v, %v", subs, hist, err)
	}

	ref, ok, err := l.Join(ctx, "wechat", "default", "101", worker.MsgRef{Status: "delivered", ErrorCode: "0", StatusAt: at(30)})
	if err != nil || !ok || ref.ID != "j1" || ref.ToUser != k.User || ref.TemplateID != "TPL" || !ref.SentAt.Equal(at(12)) {
		t.Fatalf("Join 101 = %+v, %v, %v; want job j1", ref, ok, err)
	}
	if _, ok, err := l.Join(ctx, "wechat", "default", "999", worker.MsgRef{Status: "failed"}); ok || err != nil {
		t.Fatalf("Join of an unknown msgid = %v, %v; want no match", ok, err)
	}
	js, jref, err := l.Job(ctx, "wechat:default:j1")
	if err != nil || js.State != "sent" || js.Sent.MsgID != "101" || jref.Status != "delivered" || !jref.StatusAt.Equal(at(30)) {
		t.Fatalf("Job j1 = %+v, %+v, %v; want sent with its joined status", js, jref, err)
	}
	if js, _, err := l.Job(ctx, "wechat:default:nobody"); err != nil || js.State != "" {
		t.Fatalf("Job of an unknown key = %+v, %v", js, err)
	}
}
