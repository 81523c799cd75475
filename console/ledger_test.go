package console_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/heraldhq/herald/console"
	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/worker"
	"github.com/heraldhq/herald/worker/redisstore"
)

// With the shared store, the job page shows what herald jobs show reads
// in Redis, and the subscriptions page one user's ledger, escaped.
func TestJobAndSubscriptionsFromTheStore(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := redisstore.New(testenv.StartRedis(t).Client(t), redisstore.Config{})
	t.Cleanup(st.Close)
	ctx := t.Context()
	now := time.Now().Truncate(time.Second)

	claim := func(id string) string {
		key := job.WeChat + ":" + job.DefaultApp + ":" + id
		if a, err := st.Admit(ctx, worker.Claim{Key: key, Owner: "w-1", Lease: time.Minute, TTL: time.Hour}); err != nil || a.Status != worker.Claimed {
			t.Fatalf("Admit %s = %+v, %v", key, a, err)
		}
		return key
	}
	// order-42: sent, then WeChat reported the user did not get it.
	ref := &worker.MsgRef{Platform: job.WeChat, App: job.DefaultApp, ID: "order-42", TemplateID: "T1", ToUser: "u1", SentAt: now}
	err := st.MarkSent(ctx, claim("order-42"), time.Hour,
		worker.SentRecord{Seq: 7, MsgID: "2317554938710732141", Attempts: 2, At: now, Ref: ref, RefTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.Join(ctx, job.WeChat, job.DefaultApp, "2317554938710732141",
		worker.MsgRef{Status: job.StatusFailed, ErrorCode: "10005", ErrorStatus: "<user blocked>", StatusAt: now}); err != nil || !ok {
		t.Fatalf("Join = %v, %v", ok, err)
	}
	// order-43: decided as a dead letter.
	if err := st.Decide(ctx, claim("order-43"), "w-1", worker.Decision{Reason: job.ReasonUserRefused, Code: "43101",
		Message: "<script>refused</script>", Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	// A user (named by a hostile producer) who accepted T1 and used T2 up.
	user := `u"><b>1`
	if _, err := st.Apply(ctx, worker.SubscriptionKey{Platform: job.WeChat, App: job.DefaultApp, User: user, Template: "T1"},
		worker.LedgerEvent{ID: "e1", Accept: true, At: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := st.Exhaust(ctx, worker.SubscriptionKey{Platform: job.WeChat, App: job.DefaultApp, User: user, Template: "T2"}, now); err != nil {
		t.Fatal(err)
	}

	without := b.url
	b.serve(t, consoleConfig(), console.WithLedger(st))

	sent := b.get(t, "/jobs?id=order-42", http.StatusOK)
	mustContain(t, sent, "Shared state", "Accepted by the platform.", "2317554938710732141",
		"Accepted, then not delivered: the platform reported 10005 &lt;user blocked&gt;", "No receipt")
	dead := b.get(t, "/jobs?id=order-43", http.StatusOK)
	mustContain(t, dead, "Decided as a dead letter", "43101", "&lt;script&gt;refused&lt;/script&gt;", "No final result")
	mustNotContain(t, dead, "<script>refused")
	unknown := b.get(t, "/jobs?id=order-44", http.StatusOK)
	mustContain(t, unknown, "Unknown to the store")

	subs := b.get(t, "/subscriptions?user=u%22%3E%3Cb%3E1", http.StatusOK)
	mustContain(t, subs, "T1</td><td>granted</td><td>1</td>", "T2</td><td>exhausted</td><td>-</td>", "u&#34;&gt;&lt;b&gt;1")
	mustNotContain(t, subs, `u"><b>1`)
	nobody := b.get(t, "/subscriptions?user=u2", http.StatusOK)
	mustContain(t, nobody, "The ledger knows nothing of")
	b.get(t, "/subscriptions?platform=sms&user=u2", http.StatusBadRequest)

	// A console without the store says how to give it one.
	b.url = without
	mustContain(t, b.get(t, "/subscriptions?user=u2", http.StatusOK), "no shared store")
	mustNotContain(t, b.get(t, "/jobs?id=order-42", http.StatusOK), "Shared state")
}
