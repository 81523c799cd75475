package worker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/retry"
	"github.com/heraldhq/herald/worker"
	"github.com/heraldhq/herald/worker/memstore"
)

// The outcome table of docs/design.md, as settle carries it out: for each
// verdict, what happens to the message (ack, nak with its delay, term), which
// store operations run, what is published, and which outcome is counted.
func TestSettleTable(t *testing.T) {
	t.Parallel()
	policy := retry.Policy{InitialInterval: time.Second, MaxInterval: time.Minute, Multiplier: 2}
	tests := []struct {
		name    string
		give    worker.Verdict
		claimed bool  // the message holds the job's lease
		decoded bool  // the job decoded; false for a malformed one
		attempt int   // attempts before this settlement
		pubErr  error // what publishing answers
		pubDup  bool  // publishing answers Duplicate

		wantAck     string        // ack, nak or term
		wantDelay   time.Duration // nak: at least this, at most 10% + 1ms more
		wantStore   []string      // store operations, in order
		wantPub     []string      // subjects published
		wantOutcome string        // herald_jobs_total outcome counted once
		wantPending int           // receipts kept for a retry
	}{
		{
			name: "delivered", give: worker.VerdictDelivered(job.Result{MsgID: "7"}), claimed: true, decoded: true, attempt: 1,
			wantAck: "ack", wantStore: []string{"MarkSent"}, wantPub: []string{"notify.sent.wechat"}, wantOutcome: worker.OutcomeDelivered,
		},
		{
			name: "delivered, receipt stream missing", give: worker.VerdictDelivered(job.Result{}), claimed: true, decoded: true, attempt: 1,
			pubErr:  jetstream.ErrNoStreamResponse,
			wantAck: "ack", wantStore: []string{"MarkSent"}, wantPub: []string{"notify.sent.wechat"}, wantOutcome: worker.OutcomeDelivered,
			wantPending: 1,
		},
		{
			name: "duplicate", give: worker.VerdictDuplicate(nil), decoded: true,
			wantAck: "ack", wantOutcome: worker.OutcomeDuplicate,
		},
		{
			name: "duplicate of this very message", give: worker.VerdictDuplicate(&worker.SentRecord{Seq: 9, Attempts: 1}), decoded: true,
			wantAck: "ack", wantPub: []string{"notify.sent.wechat"}, wantOutcome: worker.OutcomeDuplicate,
		},
		{
			name: "held", give: worker.VerdictHeldBack(worker.OutcomeHeld, 5*time.Second, "app held"), claimed: true, decoded: true,
			wantAck: "nak", wantDelay: 5 * time.Second, wantStore: []string{"Release"}, wantOutcome: worker.OutcomeHeld,
		},
		{
			name: "transient failure", give: worker.VerdictRetry(errors.New("503")), claimed: true, decoded: true, attempt: 1,
			wantAck: "nak", wantDelay: time.Second, wantStore: []string{"Fail"}, wantOutcome: worker.OutcomeRetry,
		},
		{
			name: "transient failure, attempts exhausted", give: worker.VerdictRetry(errors.New("503")), claimed: true, decoded: true, attempt: 3,
			wantAck: "term", wantStore: []string{"Fail", "Forget"}, wantPub: []string{"notify.dead.wechat.retries_exhausted"},
			wantOutcome: worker.OutcomeDeadLetter,
		},
		{
			name: "shutdown during the call", give: worker.VerdictAbandon(), claimed: true, decoded: true, attempt: 1,
			wantAck: "nak", wantStore: []string{"Fail"}, wantOutcome: worker.OutcomeHandedBack,
		},
		{
			name: "dead letter", give: worker.VerdictDead(job.ReasonUserRefused, retry.Detail{Code: "43101"}), claimed: true, decoded: true, attempt: 1,
			wantAck: "term", wantStore: []string{"Forget"}, wantPub: []string{"notify.dead.wechat.user_refused"}, wantOutcome: worker.OutcomeDeadLetter,
		},
		{
			name: "dead letter not stored", give: worker.VerdictDead(job.ReasonUserRefused, retry.Detail{Code: "43101"}), claimed: true, decoded: true, attempt: 1,
			pubErr:  errors.New("maximum bytes exceeded"),
			wantAck: "nak", wantDelay: time.Second, wantStore: []string{"Decide"}, wantPub: []string{"notify.dead.wechat.user_refused"},
			wantOutcome: worker.OutcomeHandedBack,
		},
		{
			name: "dead letter id taken by another", give: worker.VerdictDead(job.ReasonUserRefused, retry.Detail{Code: "43101"}), claimed: true, decoded: true, attempt: 1,
			pubDup:  true,
			wantAck: "nak", wantDelay: time.Second, wantStore: []string{"Decide"}, wantPub: []string{"notify.dead.wechat.user_refused"},
			wantOutcome: worker.OutcomeHandedBack,
		},
		{
			name: "malformed job, dead letter not stored", give: worker.VerdictDead(job.ReasonMalformedJob, retry.Detail{Message: "not JSON"}),
			pubErr:  errors.New("maximum bytes exceeded"),
			wantAck: "nak", wantDelay: time.Second, wantPub: []string{"notify.dead.wechat.malformed_job"}, wantOutcome: worker.OutcomeHandedBack,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &recordingStore{Store: memstore.New(nil)}
			pub := &fakePublisher{err: tt.pubErr, dup: tt.pubDup}
			h := worker.NewSettleHarness(st, pub, prometheus.NewRegistry(), policy, 3)
			msg := newFakeMsg(`{"id":"j1","platform":"wechat","template_id":"t","to_user":"u","data":{"thing1":{"value":"v"}}}`)
			var j job.Job
			if tt.decoded {
				j = job.Job{ID: "j1", Platform: job.WeChat, App: job.DefaultApp, TemplateID: "t", ToUser: "u"}
			}
			if tt.claimed {
				// Earlier deliveries' failed calls, then this delivery's claim.
				for i := 1; i < tt.attempt; i++ {
					if _, err := st.Store.Fail(context.Background(), j.Key(), fmt.Sprintf("earlier:%d", i)); err != nil {
						t.Fatal(err)
					}
				}
				c := worker.Claim{Key: j.Key(), Owner: h.Owner(msg), Lease: time.Minute, TTL: time.Hour}
				if _, err := st.Store.Admit(context.Background(), c); err != nil {
					t.Fatal(err)
				}
			}
			h.Settle(msg, j, tt.decoded, tt.claimed, tt.attempt, tt.give)
			ack := msg.wait(t)
			h.Close()

			if ack.kind != tt.wantAck {
				t.Errorf("message %s, want %s", ack.kind, tt.wantAck)
			}
			if ack.kind == "nak" && (ack.delay < tt.wantDelay || ack.delay > tt.wantDelay+tt.wantDelay/10+time.Millisecond) {
				t.Errorf("nak delay %v, want %v plus up to 10%%", ack.delay, tt.wantDelay)
			}
			if got := st.calls(); !slices.Equal(got, tt.wantStore) {
				t.Errorf("store operations %v, want %v", got, tt.wantStore)
			}
			// Subjects published, a receipt retried counted once.
			if got := slices.Compact(pub.subjects()); !slices.Equal(got, tt.wantPub) {
				t.Errorf("published %v, want %v", got, tt.wantPub)
			}
			if n := testutil.ToFloat64(h.Jobs().WithLabelValues(job.WeChat, templateLabelOf(tt.decoded), tt.wantOutcome)); n != 1 {
				t.Errorf("herald_jobs_total{outcome=%q} = %v, want 1", tt.wantOutcome, n)
			}
			if n := testutil.CollectAndCount(h.Jobs()); n != 1 {
				t.Errorf("%d outcomes counted, want 1", n)
			}
			if tt.wantPending > 0 {
				// close gave up what was pending: it was pending until then.
				if n := testutil.ToFloat64(h.ReceiptsGivenUp()); n != float64(tt.wantPending) {
					t.Errorf("receipts given up at close %v, want %d", n, tt.wantPending)
				}
			}
		})
	}
}

// A decided dead letter comes back through admission with its decision:
// the next settlement publishes it without a call.
func TestDecidedOutcomeIsNotDecidedAgain(t *testing.T) {
	t.Parallel()
	st := memstore.New(nil)
	ctx := context.Background()
	j := job.Job{ID: "j1", Platform: job.WeChat, App: job.DefaultApp, TemplateID: "t"}
	if _, err := st.Admit(ctx, worker.Claim{Key: j.Key(), Owner: "o1", Lease: time.Minute, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	d := worker.Decision{Reason: job.ReasonUserRefused, Code: "43101", Message: "refused", Attempts: 1, First: time.Now()}
	if err := st.Decide(ctx, j.Key(), "o1", d); err != nil {
		t.Fatal(err)
	}
	h := worker.NewSettleHarness(st, &fakePublisher{}, prometheus.NewRegistry(), retry.DefaultPolicy, 3)
	defer h.Close()
	v, done, attempts := h.Admit(newFakeMsg(`{}`), j)
	if !done || v.Kind() != "dead letter" || v.Reason() != d.Reason || v.Code() != d.Code || attempts != 1 {
		t.Fatalf("admit = %s %s %s (done %v, attempts %d), want the stored dead letter", v.Kind(), v.Reason(), v.Code(), done, attempts)
	}
}

func templateLabelOf(decoded bool) string {
	if decoded {
		return "other"
	}
	return "none"
}

// recordingStore records which store operations settle runs.
type recordingStore struct {
	worker.Store
	mu  sync.Mutex
	ops []string
}

func (s *recordingStore) record(op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = append(s.ops, op)
}

func (s *recordingStore) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ops)
}

func (s *recordingStore) MarkSent(ctx context.Context, key string, ttl time.Duration, r worker.SentRecord) error {
	s.record("MarkSent")
	return s.Store.MarkSent(ctx, key, ttl, r)
}

func (s *recordingStore) Decide(ctx context.Context, key, owner string, d worker.Decision) error {
	s.record("Decide")
	return s.Store.Decide(ctx, key, owner, d)
}

func (s *recordingStore) Fail(ctx context.Context, key, owner string) (int, error) {
	s.record("Fail")
	return s.Store.Fail(ctx, key, owner)
}

func (s *recordingStore) Release(ctx context.Context, key, owner string) error {
	s.record("Release")
	return s.Store.Release(ctx, key, owner)
}

func (s *recordingStore) Forget(ctx context.Context, key string) error {
	s.record("Forget")
	return s.Store.Forget(ctx, key)
}

// fakePublisher answers every publish at once, with err or a pub ack.
type fakePublisher struct {
	err error
	dup bool

	mu   sync.Mutex
	subs []string
}

func (p *fakePublisher) subjects() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.subs)
}

func (p *fakePublisher) answer(msg *nats.Msg) (*jetstream.PubAck, error) {
	p.mu.Lock()
	p.subs = append(p.subs, msg.Subject)
	p.mu.Unlock()
	if p.err != nil {
		return nil, p.err
	}
	stream := "NOTIFY_EVENTS"
	if strings.HasPrefix(msg.Subject, job.DeadRoot) {
		stream = "NOTIFY_DEAD"
	}
	return &jetstream.PubAck{Stream: stream, Sequence: 1, Duplicate: p.dup}, nil
}

func (p *fakePublisher) PublishMsg(_ context.Context, msg *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return p.answer(msg)
}

func (p *fakePublisher) PublishMsgAsync(msg *nats.Msg, _ ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	ack, err := p.answer(msg)
	f := &fakeFuture{msg: msg, ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
	if err != nil {
		f.err <- err
	} else {
		f.ok <- ack
	}
	return f, nil
}

type fakeFuture struct {
	msg *nats.Msg
	ok  chan *jetstream.PubAck
	err chan error
}

func (f *fakeFuture) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *fakeFuture) Err() <-chan error            { return f.err }
func (f *fakeFuture) Msg() *nats.Msg               { return f.msg }

// fakeMsg is a job message from NOTIFY_SEND, stream sequence 9, delivered
// once; it reports how it was settled.
type fakeMsg struct {
	data    []byte
	meta    *jetstream.MsgMetadata
	settled chan ackEvent
}

type ackEvent struct {
	kind  string
	delay time.Duration
}

func newFakeMsg(data string) *fakeMsg {
	return &fakeMsg{
		data: []byte(data),
		meta: &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: 9, Consumer: 1}, NumDelivered: 1,
			Stream: "NOTIFY_SEND", Consumer: "herald-worker", Timestamp: time.Unix(1_800_000_000, 0)},
		settled: make(chan ackEvent, 4),
	}
}

func (m *fakeMsg) wait(t *testing.T) ackEvent {
	t.Helper()
	select {
	case ev := <-m.settled:
		select {
		case again := <-m.settled:
			t.Fatalf("settled twice: %s, then %s", ev.kind, again.kind)
		default:
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("the message was never settled")
		return ackEvent{}
	}
}

func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) { return m.meta, nil }
func (m *fakeMsg) Data() []byte                              { return m.data }
func (m *fakeMsg) Headers() nats.Header                      { return nats.Header{} }
func (m *fakeMsg) Subject() string                           { return "notify.send.wechat" }
func (m *fakeMsg) Reply() string                             { return "" }
func (m *fakeMsg) Ack() error                                { m.settled <- ackEvent{kind: "ack"}; return nil }
func (m *fakeMsg) DoubleAck(context.Context) error           { return m.Ack() }
func (m *fakeMsg) Nak() error                                { return m.NakWithDelay(0) }
func (m *fakeMsg) NakWithDelay(d time.Duration) error {
	m.settled <- ackEvent{kind: "nak", delay: d}
	return nil
}
func (m *fakeMsg) InProgress() error           { return nil }
func (m *fakeMsg) Term() error                 { m.settled <- ackEvent{kind: "term"}; return nil }
func (m *fakeMsg) TermWithReason(string) error { return m.Term() }

var _ jetstream.Msg = (*fakeMsg)(nil)
