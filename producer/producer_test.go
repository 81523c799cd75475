package producer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
)

func connect(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, js := testenv.StartJetStream(t).Connect(t)
	return js
}

func TestApplyIsIdempotentAndUpdates(t *testing.T) {
	t.Parallel()
	js := connect(t)
	ctx := context.Background()
	topo := producer.DefaultTopology

	changes, err := topo.Apply(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Action != "created" {
			t.Errorf("first Apply: %+v, want created", c)
		}
	}
	if len(changes) != 5 {
		t.Fatalf("first Apply made %d changes, want 4 streams and 1 consumer", len(changes))
	}
	changes, err = topo.Apply(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Action != "unchanged" {
			t.Errorf("second Apply: %+v, want unchanged", c)
		}
	}
	topo.DeadMaxAge = time.Hour
	topo.MaxAckPending = 100
	changes, err = topo.Apply(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"NOTIFY_SEND": "unchanged", "NOTIFY_DEAD": "updated", "NOTIFY_EVENTS": "unchanged",
		"NOTIFY_SUBSCRIPTIONS": "unchanged", "herald-worker": "updated"}
	for _, c := range changes {
		if want[c.Name] != c.Action {
			t.Errorf("Apply after a change: %s %s, want %s", c.Name, c.Action, want[c.Name])
		}
	}
	s, err := js.Stream(ctx, "NOTIFY_SEND")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := s.CachedInfo().Config; cfg.Retention != jetstream.WorkQueuePolicy || cfg.Duplicates != 2*time.Minute {
		t.Fatalf("NOTIFY_SEND config = %+v", cfg)
	}
}

// The streams that could grow without end have size limits: dead letters
// refuse new ones when full, receipts and subscription events drop the
// oldest. Apply creates them with the limits and updates a stream whose
// limit or discard policy differs, and only that one.
func TestApplySetsSizeLimits(t *testing.T) {
	t.Parallel()
	js := connect(t)
	ctx := context.Background()
	topo := producer.DefaultTopology
	// A stream made by hand without limits, as before they existed.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: topo.EventsStream, Description: "herald delivery receipts",
		Subjects: []string{job.SentRoot + ".>"}, MaxAge: topo.EventsMaxAge, Duplicates: topo.DuplicateWindow}); err != nil {
		t.Fatal(err)
	}
	changes, err := topo.Apply(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if changes[2] != (producer.Change{Kind: "stream", Name: topo.EventsStream, Action: "updated"}) {
		t.Fatalf("Apply over a stream without limits: %+v", changes)
	}
	want := map[string]struct {
		bytes   int64
		discard jetstream.DiscardPolicy
	}{
		"NOTIFY_SEND":          {-1, jetstream.DiscardOld},
		"NOTIFY_DEAD":          {1 << 30, jetstream.DiscardNew},
		"NOTIFY_EVENTS":        {2 << 30, jetstream.DiscardOld},
		"NOTIFY_SUBSCRIPTIONS": {1 << 30, jetstream.DiscardOld},
	}
	for name, w := range want {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if cfg := s.CachedInfo().Config; cfg.MaxBytes != w.bytes || cfg.Discard != w.discard {
			t.Errorf("%s: max_bytes %d discard %v, want %d %v", name, cfg.MaxBytes, cfg.Discard, w.bytes, w.discard)
		}
	}
	topo.DeadMaxBytes = 512 << 20
	topo.SubscriptionsMaxBytes = 0
	if changes, err = topo.Apply(ctx, js); err != nil {
		t.Fatal(err)
	}
	wantAction := map[string]string{"NOTIFY_SEND": "unchanged", "NOTIFY_DEAD": "updated", "NOTIFY_EVENTS": "unchanged",
		"NOTIFY_SUBSCRIPTIONS": "updated", "herald-worker": "unchanged"}
	for _, c := range changes {
		if wantAction[c.Name] != c.Action {
			t.Errorf("Apply after new limits: %s %s, want %s", c.Name, c.Action, wantAction[c.Name])
		}
	}
	s, _ := js.Stream(ctx, "NOTIFY_SUBSCRIPTIONS")
	if got := s.CachedInfo().Config.MaxBytes; got != -1 {
		t.Errorf("NOTIFY_SUBSCRIPTIONS max_bytes %d after 0, want no limit", got)
	}
	if changes, err = topo.Apply(ctx, js); err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Action != "unchanged" {
			t.Errorf("Apply again: %+v, want unchanged", c)
		}
	}
}

// The receiver creates the subscriptions stream alone, with the
// contract's retention and a duplicate window longer than WeChat's retries.
func TestApplySubscriptions(t *testing.T) {
	t.Parallel()
	js := connect(t)
	ctx := context.Background()
	topo := producer.DefaultTopology
	c, err := topo.ApplySubscriptions(ctx, js)
	if err != nil || c != (producer.Change{Kind: "stream", Name: "NOTIFY_SUBSCRIPTIONS", Action: "created"}) {
		t.Fatalf("ApplySubscriptions = %+v, %v; want created", c, err)
	}
	if _, err := js.Stream(ctx, "NOTIFY_SEND"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("NOTIFY_SEND lookup = %v, want not found: the receiver creates its stream only", err)
	}
	s, err := js.Stream(ctx, "NOTIFY_SUBSCRIPTIONS")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if cfg.Retention != jetstream.LimitsPolicy || cfg.Storage != jetstream.FileStorage ||
		cfg.Duplicates != 10*time.Minute || cfg.MaxAge != 30*24*time.Hour || cfg.Subjects[0] != "notify.subscription.>" {
		t.Fatalf("NOTIFY_SUBSCRIPTIONS config = %+v", cfg)
	}
	topo.SubscriptionsMaxAge = 0
	if c, err := topo.ApplySubscriptions(ctx, js); err != nil || c.Action != "updated" {
		t.Fatalf("ApplySubscriptions with a new max age = %+v, %v; want updated", c, err)
	}
	if c, err := topo.ApplySubscriptions(ctx, js); err != nil || c.Action != "unchanged" {
		t.Fatalf("ApplySubscriptions again = %+v, %v; want unchanged", c, err)
	}
}

func TestPublishValidatesAndDeduplicates(t *testing.T) {
	t.Parallel()
	js := connect(t)
	ctx := context.Background()
	if _, err := producer.DefaultTopology.Apply(ctx, js); err != nil {
		t.Fatal(err)
	}
	p := producer.New(js)
	j := job.Job{ID: "order-1", Platform: job.WeChat, TemplateID: "t", ToUser: "u",
		Data: map[string]job.Value{"thing1": {Value: "hi"}}}
	ack, err := p.Publish(ctx, j)
	if err != nil || ack.Duplicate {
		t.Fatalf("Publish = %+v, %v", ack, err)
	}
	ack, err = p.Publish(ctx, j)
	if err != nil || !ack.Duplicate {
		t.Fatalf("second Publish of the same id = %+v, %v; want a duplicate", ack, err)
	}
	if _, err := p.Publish(ctx, job.Job{ID: "x", Platform: job.WeChat}); !errors.Is(err, job.ErrMalformed) {
		t.Fatalf("Publish of an invalid job = %v, want ErrMalformed", err)
	}
	stream, err := js.Stream(ctx, "NOTIFY_SEND")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, "notify.send.wechat")
	if err != nil {
		t.Fatal(err)
	}
	got, err := job.Decode(msg.Data, "wechat")
	if err != nil || got.App != job.DefaultApp || msg.Header.Get(job.HeaderMsgID) != "order-1" {
		t.Fatalf("stored job = %+v (%v), header %v", got, err, msg.Header)
	}
}
