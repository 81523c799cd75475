// Package jobs answers "did it arrive?" for one job: what the shared store
// knows of it (claimed, sent with its msgid and attempts, decided to be
// dead-lettered), its delivery receipt, its dead letters and the platform's
// final result. `herald jobs show` prints it; the console shows it.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/dlq"
	"github.com/heraldhq/herald/internal/text"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/worker"
)

// Streams names the streams a lookup reads.
type Streams struct {
	Events string // NOTIFY_EVENTS: receipts (and status events)
	Dead   string // NOTIFY_DEAD
}

// Key names a job: (platform, app, id).
type Key struct {
	Platform string `json:"platform"`
	App      string `json:"app"`
	ID       string `json:"id"`
}

// Report is everything herald knows of one job.
type Report struct {
	Key
	// Verdict answers "did it arrive?" in a line.
	Verdict string `json:"verdict"`
	// Outcome is the verdict's word: arrived, failed, accepted, dead,
	// in_progress, queued_or_unknown.
	Outcome string `json:"outcome"`
	// State is the shared store's view; nil where it holds nothing (never
	// seen, or older than dedup.ttl).
	State *State `json:"state,omitempty"`
	// Receipt is the delivery receipt, found near the time the store says
	// the job was sent; its stream sequence beside it.
	Receipt    *job.Receipt `json:"receipt,omitempty"`
	ReceiptSeq uint64       `json:"receipt_seq,omitempty"`
	// Status is the platform's final result, once its sent event arrived.
	Status *Status `json:"status,omitempty"`
	// DeadLetters are the job's dead letters still stored.
	DeadLetters []dlq.Entry `json:"dead_letters"`
}

// State is the store's record of the job.
type State struct {
	State        string     `json:"state"` // lease, idle, sent or dead
	Attempts     int        `json:"attempts"`
	FirstAttempt *time.Time `json:"first_attempt_at,omitempty"`
	Owner        string     `json:"owner,omitempty"`   // the delivery holding the lease
	MsgID        string     `json:"msgid,omitempty"`   // sent
	SentAt       *time.Time `json:"sent_at,omitempty"` // sent
	StreamSeq    uint64     `json:"stream_seq,omitempty"`
	// Decision is the dead letter decided but not yet stored.
	Decision *worker.Decision `json:"decision,omitempty"`
}

// Status is the platform's final result of the send.
type Status struct {
	Status      string    `json:"status"` // delivered or failed
	ErrorCode   string    `json:"error_code,omitempty"`
	ErrorStatus string    `json:"error_status,omitempty"`
	At          time.Time `json:"at"`
}

// receiptWindow bounds the search for a receipt: from a little before the
// sent time to this long after it (a receipt retried while its stream was
// missing is stored late).
const receiptWindow = 10 * time.Minute

// Show looks up one job. The store may be nil (no Redis configured): the
// streams still tell receipts and dead letters, without the store's
// times to narrow the search for a receipt.
func Show(ctx context.Context, js jetstream.JetStream, st worker.Ledger, streams Streams, k Key) (Report, error) {
	r := Report{Key: k, DeadLetters: []dlq.Entry{}}
	var sentAt time.Time
	if st != nil {
		var err error
		if r.State, r.Status, err = Stored(ctx, st, k); err != nil {
			return r, err
		}
		if r.State != nil && r.State.SentAt != nil {
			sentAt = *r.State.SentAt
		}
	}
	if streams.Events != "" && !sentAt.IsZero() {
		rc, seq, err := findReceipt(ctx, js, streams.Events, k, sentAt)
		if err != nil {
			return r, err
		}
		r.Receipt, r.ReceiptSeq = rc, seq
	}
	if streams.Dead != "" {
		dead, err := dlq.List(ctx, js, streams.Dead, dlq.Filter{Platforms: []string{k.Platform}, Apps: []string{k.App}, IDs: []string{k.ID}}, 0)
		if err != nil {
			return r, err
		}
		if dead != nil {
			r.DeadLetters = dead
		}
	}
	r.Outcome, r.Verdict = verdict(r)
	return r, nil
}

// Stored reads what the shared store knows of a job: its state (nil when
// it holds none: never seen, or older than dedup.ttl) and the platform's
// final result (nil until its sent event was joined).
func Stored(ctx context.Context, st worker.Ledger, k Key) (*State, *Status, error) {
	state, ref, err := st.Job(ctx, k.Platform+":"+k.App+":"+k.ID)
	if err != nil {
		return nil, nil, err
	}
	var s *State
	if state.State != "" {
		s = stateOf(state)
	}
	var status *Status
	if ref.Status != "" {
		status = &Status{Status: ref.Status, ErrorCode: ref.ErrorCode, ErrorStatus: ref.ErrorStatus, At: ref.StatusAt.UTC()}
	}
	return s, status, nil
}

func stateOf(js worker.JobState) *State {
	s := &State{State: js.State, Attempts: js.Attempts, Owner: js.Owner}
	if !js.First.IsZero() {
		t := js.First.UTC()
		s.FirstAttempt = &t
	}
	switch js.State {
	case "sent":
		t := js.Sent.At.UTC()
		s.MsgID, s.SentAt, s.StreamSeq = js.Sent.MsgID, &t, js.Sent.Seq
	case "dead":
		d := js.Decision
		s.Decision = &d
	}
	return s
}

// verdict words what the report says, most certain first.
func verdict(r Report) (outcome, line string) {
	switch {
	case r.Status != nil && r.Status.Status == job.StatusDelivered:
		return "arrived", fmt.Sprintf("arrived: %s reported it delivered at %s", r.Platform, r.Status.At.Format(time.RFC3339))
	case r.Status != nil:
		return "failed", fmt.Sprintf("not arrived: %s accepted it, then reported it failed (%s %s) at %s",
			r.Platform, r.Status.ErrorCode, r.Status.ErrorStatus, r.Status.At.Format(time.RFC3339))
	case r.State != nil && r.State.State == "sent":
		return "accepted", fmt.Sprintf("accepted by %s at %s (msgid %s); no final result yet",
			r.Platform, r.State.SentAt.Format(time.RFC3339), text.Dash(r.State.MsgID))
	case len(r.DeadLetters) > 0:
		l := r.DeadLetters[len(r.DeadLetters)-1].Letter
		return "dead", fmt.Sprintf("not sent: dead-lettered as %s (code %s)", l.Reason, text.Dash(l.Code))
	case r.State != nil && r.State.State == "dead":
		return "dead", fmt.Sprintf("not sent: decided as %s, its dead letter not stored yet", r.State.Decision.Reason)
	case r.State != nil:
		return "in_progress", fmt.Sprintf("in progress: %d attempts so far", r.State.Attempts)
	case r.Receipt != nil:
		return "accepted", "accepted by the platform (receipt found); the store no longer holds it"
	}
	return "queued_or_unknown", "unknown to the store: still queued, never published, or older than dedup.ttl"
}

// findReceipt reads the receipts stored from a little before sentAt for
// receiptWindow, and returns the job's.
func findReceipt(ctx context.Context, js jetstream.JetStream, stream string, k Key, sentAt time.Time) (*job.Receipt, uint64, error) {
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("receipt stream %s: %w", stream, err)
	}
	state := s.CachedInfo().State
	start := sentAt.Add(-5 * time.Second)
	if state.Msgs == 0 || state.LastTime.Before(start) {
		return nil, 0, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{job.SentSubject(k.Platform)},
		DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
		OptStartTime:      &start,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("browse %s: %w", stream, err)
	}
	defer func() {
		if info := c.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = js.DeleteConsumer(dctx, stream, info.Name)
			cancel()
		}
	}()
	end := sentAt.Add(receiptWindow)
	for {
		batch, err := c.Fetch(256, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, 0, fmt.Errorf("browse %s: %w", stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			if meta.Timestamp.After(end) {
				return nil, 0, nil
			}
			var rc job.Receipt
			if json.Unmarshal(m.Data(), &rc) == nil && rc.ID == k.ID && rc.App == k.App {
				return &rc, meta.Sequence.Stream, nil
			}
			if meta.Sequence.Stream >= state.LastSeq {
				return nil, 0, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, 0, fmt.Errorf("browse %s: %w", stream, err)
		}
		if n == 0 {
			return nil, 0, nil
		}
	}
}
