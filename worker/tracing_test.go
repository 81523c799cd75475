package worker_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/sandbox"
)

// A job's traceparent is continued: the job's span is its child, with
// spans for the claim, the provider call (with the platform's code) and
// the settlement, and the receipt and the dead letter carry the trace on.
// A job without one starts a trace of its own.
func TestJobsAreTraced(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	exp := tracetest.NewInMemoryExporter()
	jobEnded := make(chan struct{}, 16)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithSpanProcessor(endSignal{"herald.job", jobEnded}))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg := testConfig("w1")
	cfg.Tracer = tp.Tracer("test")
	b.startWorker(t, cfg)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	parent := "00-" + traceID + "-00f067aa0ba902b7-01"
	for _, j := range []struct{ id, to string }{{"t1", "u1"}, {"t2", "refuse-u2"}} {
		msg := nats.NewMsg("notify.send.wechat")
		msg.Data = []byte(jobJSON(j.id, j.to, nil))
		msg.Header.Set("traceparent", parent)
		if _, err := b.js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	b.publishRaw(t, "notify.send.wechat", jobJSON("t3", "u3", nil)) // no traceparent
	b.events.waitFor(t, 20*time.Second, "every job settled", func(ev *events) bool {
		return ev.settled([]string{"t1", "t2", "t3"})
	})
	// A job's span ends after its settlement, which its receipt or dead
	// letter can precede: wait for the three to end before counting.
	for i := 0; i < 3; i++ {
		select {
		case <-jobEnded:
		case <-time.After(20 * time.Second):
			t.Fatalf("%d of 3 job spans ended", i)
		}
	}
	if got := b.events.receiptsOf("t1"); len(got) != 1 {
		t.Fatalf("receipts of t1: %v", got)
	}
	// The trace goes on into what the jobs produced.
	for _, h := range []nats.Header{receiptHeader(t, b, "t1"), b.events.deadOf("t2")[0].headers} {
		if tp := h.Get("traceparent"); !strings.Contains(tp, traceID) {
			t.Errorf("traceparent %q, want trace %s carried on", tp, traceID)
		}
	}

	var jobs, calls, claims, settles int
	var codes []string
	for _, s := range exp.GetSpans() {
		switch s.Name {
		case "herald.job":
			jobs++
			tid := s.SpanContext.TraceID().String()
			id := attr(s, "herald.job_id")
			if (id == "t1" || id == "t2") != (tid == traceID) {
				t.Errorf("job %s in trace %s: want the producer's trace exactly for t1 and t2", id, tid)
			}
		case "herald.provider_call":
			calls++
			codes = append(codes, attr(s, "herald.platform_code"))
		case "herald.claim":
			claims++
		case "herald.settle":
			settles++
		}
	}
	if jobs != 3 || calls != 3 || claims != 3 || settles != 3 {
		t.Fatalf("spans: %d jobs, %d calls, %d claims, %d settlements; want 3 of each", jobs, calls, claims, settles)
	}
	if !strings.Contains(strings.Join(codes, ","), "43101") {
		t.Fatalf("provider call codes %v: want WeChat's 43101 among them", codes)
	}
}

// endSignal is a span processor that signals on ch when a span named
// name ends: the exporter is read once the spans it waits for are there.
type endSignal struct {
	name string
	ch   chan<- struct{}
}

func (e endSignal) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (e endSignal) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.Name() == e.name {
		select {
		case e.ch <- struct{}{}:
		default: // more than the test waits for: never block the worker
		}
	}
}
func (e endSignal) Shutdown(context.Context) error   { return nil }
func (e endSignal) ForceFlush(context.Context) error { return nil }

func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.String()
		}
	}
	return ""
}

// receiptHeader reads the headers of job id's stored receipt.
func receiptHeader(t *testing.T, b *testBundle, id string) nats.Header {
	t.Helper()
	ctx := context.Background()
	s, err := b.js.Stream(ctx, "NOTIFY_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var rc job.Receipt
		if json.Unmarshal(m.Data, &rc) == nil && rc.ID == id {
			return m.Header
		}
	}
	t.Fatalf("no receipt of %s stored", id)
	return nil
}
