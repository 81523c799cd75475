package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/sandbox"
)

// Guarantee 10: a missing receipt stream slows no delivery. Every job is
// delivered and acked while NOTIFY_EVENTS is gone; once it is back (here
// created again by the worker itself, from the config) every receipt is
// stored, each once.
func TestMissingReceiptStreamStallsNoDelivery(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	ctx := context.Background()
	if err := b.js.DeleteStream(ctx, "NOTIFY_EVENTS"); err != nil {
		t.Fatal(err)
	}
	var mayCreate atomic.Bool
	cfg := testConfig("w1")
	cfg.ReceiptWait = time.Second
	cfg.EnsureStream = func(ctx context.Context, name string) error {
		if !mayCreate.Load() {
			return errors.New("not yet")
		}
		return producer.DefaultTopology.EnsureStream(ctx, b.js, name)
	}
	r := b.startWorker(t, cfg)
	all := ids("rs", 200)
	for _, id := range all {
		b.publishRaw(t, "notify.send.wechat", jobJSON(id, "user-"+id, nil))
	}
	// Every job acked while the stream is still missing: the worker did
	// not wait for receipts it could not store. Each handler used to hold
	// its job for 20 s of receipt retries, so 200 jobs took minutes.
	testenv.Eventually(t, 30*time.Second, "every job acked without the receipt stream", func() bool {
		return b.pending(t) == 0 && r.jobs(t, "delivered") == float64(len(all))
	})
	if _, err := b.js.Stream(ctx, "NOTIFY_EVENTS"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("receipt stream: %v, want still missing", err)
	}
	if got := b.acceptedTo(); len(got) != len(all) {
		t.Fatalf("%d recipients accepted, want %d", len(got), len(all))
	}

	mayCreate.Store(true)
	testenv.Eventually(t, 60*time.Second, "every receipt stored once the stream is back", func() bool {
		return len(storedReceipts(t, b)) == len(all)
	})
	got := storedReceipts(t, b)
	for _, id := range all {
		if got[id] != 1 {
			t.Fatalf("receipt of %s stored %d times, want once", id, got[id])
		}
	}
	if n := gauge(t, r, "herald_receipts_pending"); n != 0 {
		t.Fatalf("herald_receipts_pending = %v once every receipt is stored", n)
	}
}

// Guarantee 10: a dead letter that cannot be stored is decided once. With
// NOTIFY_DEAD full, the refused job is handed back again and again, but
// WeChat is called once; when space frees, one dead letter is stored,
// saying 1 attempt. Before, every redelivery called WeChat again.
func TestFullDeadLetterStreamCallsThePlatformOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	ctx := context.Background()
	dead, err := b.js.Stream(ctx, "NOTIFY_DEAD")
	if err != nil {
		t.Fatal(err)
	}
	full := dead.CachedInfo().Config
	full.MaxMsgs, full.Discard = 1, jetstream.DiscardNew
	if _, err := b.js.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	b.publishRaw(t, "notify.dead.wechat.expired", `{"filler":true}`)

	cfg := testConfig("w1")
	cfg.Retry.MaxInterval = 50 * time.Millisecond
	cfg.Retry.InitialInterval = 50 * time.Millisecond
	r := b.startWorker(t, cfg)
	b.publishRaw(t, "notify.send.wechat", jobJSON("full-1", "refuse-full-1", nil))
	testenv.Eventually(t, 30*time.Second, "the job handed back several times", func() bool {
		return r.jobs(t, "handed_back") >= 4
	})
	if n := b.sandbox.Stats()["wechat"].SendCalls; n != 1 {
		t.Fatalf("%d send calls for one refused job while its dead letter could not be stored, want 1", n)
	}
	if err := dead.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the dead letter stored and the job termed", func() bool {
		info, err := dead.Info(ctx)
		return err == nil && info.State.Msgs == 1 && b.pending(t) == 0
	})
	msg, err := dead.GetLastMsgForSubject(ctx, "notify.dead.wechat.user_refused")
	if err != nil {
		t.Fatal(err)
	}
	var dl job.DeadLetter
	if err := json.Unmarshal(msg.Data, &dl); err != nil {
		t.Fatal(err)
	}
	if dl.Attempts != 1 || dl.Code != "43101" || dl.FirstAttemptAt == nil {
		t.Fatalf("dead letter attempts %d code %q first %v: want the one call's", dl.Attempts, dl.Code, dl.FirstAttemptAt)
	}
	if n := b.sandbox.Stats()["wechat"].SendCalls; n != 1 {
		t.Fatalf("%d send calls in all, want 1", n)
	}
}

// Guarantee 10: a dead letter is never dropped as a duplicate of another
// job's. NOTIFY_SEND deleted and created again starts its sequences over;
// the new job at sequence 1 gets a dead letter of its own.
func TestDeadLettersSurviveARecreatedJobStream(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	ctx := context.Background()
	r := b.startWorker(t, testConfig("w1"))
	b.publishRaw(t, "notify.send.wechat", jobJSON("before", "refuse-before", nil))
	b.events.waitFor(t, 10*time.Second, "the first dead letter", func(ev *events) bool { return len(ev.dead["before"]) == 1 })
	r.stop(t)

	if err := b.js.DeleteStream(ctx, "NOTIFY_SEND"); err != nil {
		t.Fatal(err)
	}
	topo := producer.DefaultTopology
	topo.AckWait = 5 * time.Second
	if _, err := topo.Apply(ctx, b.js); err != nil {
		t.Fatal(err)
	}
	b.startWorker(t, testConfig("w2"))
	b.publishRaw(t, "notify.send.wechat", jobJSON("after", "refuse-after", nil))
	b.events.waitFor(t, 10*time.Second, "the second dead letter", func(ev *events) bool { return len(ev.dead["after"]) == 1 })
	testenv.Eventually(t, 10*time.Second, "the job acked", func() bool { return b.pending(t) == 0 })

	dead, err := b.js.Stream(ctx, "NOTIFY_DEAD")
	if err != nil {
		t.Fatal(err)
	}
	info, err := dead.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("%d dead letters stored, want 2: one was dropped as a duplicate", info.State.Msgs)
	}
	before, after := b.events.deadOf("before")[0], b.events.deadOf("after")[0]
	if before.Source.Sequence != after.Source.Sequence {
		t.Fatalf("source sequences %d and %d: the test needs both at the same sequence", before.Source.Sequence, after.Source.Sequence)
	}
}

// storedReceipts counts the receipts NOTIFY_EVENTS holds, by job id.
func storedReceipts(t *testing.T, b *testBundle) map[string]int {
	t.Helper()
	ctx := context.Background()
	s, err := b.js.Stream(ctx, "NOTIFY_EVENTS")
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	if info.State.Msgs == 0 {
		return out
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(m.Subject, job.SentRoot) {
			continue
		}
		var rc job.Receipt
		if err := json.Unmarshal(m.Data, &rc); err != nil {
			t.Fatal(err)
		}
		out[rc.ID]++
	}
	return out
}

// gauge reads one unlabelled gauge of r.
func gauge(t *testing.T, r *replica, name string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
