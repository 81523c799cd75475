package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/sandbox"
)

// streamGauge is the value of a gauge or counter in reg: the series whose one
// label is stream, or the series without labels for stream "".
func streamGauge(t *testing.T, reg *prometheus.Registry, name, stream string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := m.GetLabel()
			if stream == "" && len(l) == 0 || len(l) == 1 && l[0].GetValue() == stream {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}

// streamState is a stream's messages and bytes.
func (b *testBundle) streamState(t *testing.T, name string) (msgs, bytes uint64) {
	t.Helper()
	s, err := b.js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs, info.State.Bytes
}

// A full dead-letter stream (discard new) refuses the dead letter: the
// job stays queued with its decided dead letter, the platform is not
// called again, the size gauges show the stream at its limit, and once
// there is room the dead letter is stored, once.
func TestFullDeadStreamKeepsTheJobUntilThereIsRoom(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	ctx := context.Background()
	const limit = 8 << 10
	topo := producer.DefaultTopology
	topo.AckWait = 5 * time.Second
	topo.DeadMaxBytes = limit
	if _, err := topo.Apply(ctx, b.js); err != nil {
		t.Fatal(err)
	}
	// Fill it with letters of another kind until it refuses one.
	filler := `{"id":"filler","reason":"filler","message":"` + strings.Repeat("f", 900) + `"}`
	for i := 0; ; i++ {
		_, err := b.js.Publish(ctx, "notify.dead.filler", []byte(filler))
		if err != nil {
			var apiErr *jetstream.APIError
			if !errors.As(err, &apiErr) || !strings.Contains(err.Error(), "maximum bytes") {
				t.Fatalf("filling NOTIFY_DEAD: %v", err)
			}
			break
		}
		if i > 100 {
			t.Fatal("NOTIFY_DEAD takes more than its max_bytes")
		}
	}
	cfg := testConfig("w1")
	cfg.StreamStatsEvery = 50 * time.Millisecond
	r := b.startWorker(t, cfg)
	testenv.Eventually(t, 10*time.Second, "the dead stream's size in the metrics", func() bool {
		size, _ := streamGauge(t, r.reg, "herald_stream_bytes", "NOTIFY_DEAD")
		max, _ := streamGauge(t, r.reg, "herald_stream_max_bytes", "NOTIFY_DEAD")
		return max == limit && size > 0.8*limit
	})

	b.publishRaw(t, "notify.send.wechat", jobJSON("kept", "refuse-kept", nil))
	testenv.Eventually(t, 10*time.Second, "the refused call", func() bool { return b.sandbox.Stats()["wechat"].SendCalls == 1 })
	// Redeliveries come every 50-200 ms: let a few find the stream full.
	testenv.Eventually(t, 10*time.Second, "the job handed back three times", func() bool { return r.jobs(t, "handed_back") >= 3 })
	if p := b.pending(t); p != 1 {
		t.Fatalf("%d jobs queued while the dead stream was full, want the refused one", p)
	}
	// Each refused publish still reaches core subscribers, but none is
	// stored.
	s, err := b.js.Stream(ctx, "NOTIFY_DEAD")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLastMsgForSubject(ctx, "notify.dead.wechat.user_refused"); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("a dead letter in a full stream: %v", err)
	}

	if err := s.Purge(ctx, jetstream.WithPurgeSubject("notify.dead.filler")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the dead letter stored and the job gone", func() bool {
		msgs, _ := b.streamState(t, "NOTIFY_DEAD")
		return msgs > 0 && b.pending(t) == 0
	})
	if msgs, _ := b.streamState(t, "NOTIFY_DEAD"); msgs != 1 {
		t.Fatalf("NOTIFY_DEAD holds %d messages, want the one dead letter", msgs)
	}
	m, err := s.GetLastMsgForSubject(ctx, "notify.dead.wechat.user_refused")
	if err != nil {
		t.Fatal(err)
	}
	var d job.DeadLetter
	if err := json.Unmarshal(m.Data, &d); err != nil || d.ID != "kept" || d.Code != "43101" || d.Attempts != 1 {
		t.Fatalf("stored dead letter %s: %v; want kept, 43101, 1 attempt", m.Data, err)
	}
	if n := b.sandbox.Stats()["wechat"].SendCalls; n != 1 {
		t.Fatalf("%d send calls, want 1: the decided dead letter was decided again", n)
	}
}

// A full receipt stream (discard old) keeps taking receipts, dropping
// the oldest: every job is delivered and acked, no receipt is held back
// or given up, and the stream stays within its limit.
func TestFullReceiptStreamDropsTheOldest(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	ctx := context.Background()
	const limit = 16 << 10
	topo := producer.DefaultTopology
	topo.AckWait = 5 * time.Second
	topo.EventsMaxBytes = limit
	if _, err := topo.Apply(ctx, b.js); err != nil {
		t.Fatal(err)
	}
	r := b.startWorker(t, testConfig("w1"))
	all := ids("rc", 150)
	for _, id := range all {
		b.publishRaw(t, "notify.send.wechat", jobJSON(id, "user-"+id, nil))
	}
	b.events.waitFor(t, 30*time.Second, "every receipt published", func(ev *events) bool { return ev.settled(all) })
	testenv.Eventually(t, 10*time.Second, "NOTIFY_SEND empty", func() bool { return b.pending(t) == 0 })
	testenv.Eventually(t, 10*time.Second, "every job counted", func() bool { return r.jobs(t, "delivered") == float64(len(all)) })
	msgs, size := b.streamState(t, "NOTIFY_EVENTS")
	if size > limit || msgs == 0 || msgs >= uint64(len(all)) {
		t.Fatalf("NOTIFY_EVENTS holds %d receipts in %d bytes, want fewer than %d within %d bytes", msgs, size, len(all), limit)
	}
	t.Logf("%d bytes per stored receipt", size/msgs)
	for _, m := range []string{"herald_receipts_pending", "herald_receipts_given_up_total"} {
		if n, ok := streamGauge(t, r.reg, m, ""); !ok || n != 0 {
			t.Errorf("%s = %v, want 0", m, n)
		}
	}
}
