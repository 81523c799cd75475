package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/jobs"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/worker"
	"github.com/heraldhq/herald/worker/redisstore"
)

// herald jobs show and herald subscriptions show read what the worker and
// the ledger wrote: the store's state, the receipt, the final result, the
// ledger and its history.
func TestJobsAndSubscriptionsShow(t *testing.T) {
	t.Parallel()
	b := opsSetup(t)
	rs := testenv.StartRedis(t)
	b.environ = append(b.environ, "HERALD_REDIS_URL="+rs.URL)
	st := redisstore.New(rs.Client(t), redisstore.Config{})
	t.Cleanup(st.Close)
	ctx := context.Background()

	sentAt := time.Now().UTC().Truncate(time.Microsecond)
	k := worker.SubscriptionKey{Platform: job.WeChat, App: job.DefaultApp, User: "oU1", Template: "TPL"}
	if _, err := st.Apply(ctx, k, worker.LedgerEvent{ID: "ev1", Accept: true, At: sentAt.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	rec := worker.SentRecord{Seq: 3, MsgID: "2317554938710732141", Attempts: 1, At: sentAt, Take: &k,
		Ref: &worker.MsgRef{Platform: job.WeChat, App: job.DefaultApp, ID: "j1", TemplateID: "TPL", ToUser: "oU1"}, RefTTL: time.Hour}
	if err := st.MarkSent(ctx, "wechat:default:j1", time.Hour, rec); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.Join(ctx, job.WeChat, job.DefaultApp, rec.MsgID, worker.MsgRef{Status: job.StatusDelivered, ErrorCode: "0", StatusAt: sentAt.Add(time.Second)}); !ok || err != nil {
		t.Fatalf("join: %v, %v", ok, err)
	}
	receipt, _ := json.Marshal(job.Receipt{ID: "j1", Platform: job.WeChat, App: job.DefaultApp, TemplateID: "TPL",
		ToUser: "oU1", Attempts: 1, MsgID: rec.MsgID, SentAt: sentAt, Worker: "w1"})
	msg := nats.NewMsg(job.SentSubject(job.WeChat))
	msg.Data = receipt
	if _, err := b.js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	b.storeDead(t, job.ReasonUserRefused, "43101", "d", 1)

	var r jobs.Report
	if err := b.runJSON(t, &r, "", "jobs", "show", "j1", "--json"); err != nil {
		t.Fatal(err)
	}
	if r.Outcome != "arrived" || r.State == nil || r.State.MsgID != rec.MsgID || r.Receipt == nil || r.Receipt.ID != "j1" ||
		r.Status == nil || r.Status.Status != job.StatusDelivered || len(r.DeadLetters) != 0 {
		t.Fatalf("jobs show j1 = %+v", r)
	}
	out, _, err := b.run(t, "", "jobs", "show", "j1")
	if err != nil || !strings.HasPrefix(out, "wechat default j1: arrived") {
		t.Fatalf("jobs show j1:\n%s%v", out, err)
	}
	if err := b.runJSON(t, &r, "", "jobs", "show", "d-1", "--json"); err != nil || r.Outcome != "dead" || len(r.DeadLetters) != 1 {
		t.Fatalf("jobs show d-1 = %+v, %v", r, err)
	}
	if err := b.runJSON(t, &r, "", "jobs", "show", "never", "--json"); err != nil || r.Outcome != "queued_or_unknown" {
		t.Fatalf("jobs show never = %+v, %v", r, err)
	}

	var sr subscriptionsReport
	if err := b.runJSON(t, &sr, "", "subscriptions", "show", "--user", "oU1", "--json"); err != nil {
		t.Fatal(err)
	}
	if len(sr.Subscriptions) != 1 || sr.Subscriptions[0].State != worker.SubGranted || sr.Subscriptions[0].Grants != 0 ||
		len(sr.History) != 2 || sr.History[0].What != "sent" || sr.History[1].What != "accept" {
		t.Fatalf("subscriptions show = %+v", sr)
	}
	out, _, err = b.run(t, "", "subscriptions", "show", "--user", "nobody")
	if err != nil || !strings.Contains(out, "knows nothing of nobody") {
		t.Fatalf("subscriptions show of an unknown user:\n%s%v", out, err)
	}
}
