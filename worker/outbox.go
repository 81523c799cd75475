package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/heraldhq/herald/internal/tracing"
	"github.com/heraldhq/herald/producer/job"
)

// publisher is what the worker needs of JetStream to store receipts and dead
// letters; a jetstream.JetStream has it.
type publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// outbox stores delivery receipts off the jobs' path. A receipt is
// published asynchronously; the job it is for is acked once JetStream has
// stored it or, when the stream does not answer, failed or timed out
// (Config.ReceiptWait), whichever comes first: no handler or call slot
// waits for a receipt, and a missing, full or unreachable receipt stream
// slows no delivery. A receipt not stored is kept and published again in
// the background, oldest first, until it is (Nats-Msg-Id makes a receipt
// that was stored after all count once); a missing stream is created again
// from the config. Receipts are given up only when more than
// Config.MaxPendingReceipts wait, or when the replica stops with some
// still waiting: herald_receipts_given_up_total and an error log say so.
//
// A job's ack waits for its receipt so that a replica dying in between
// leaves the job to be redelivered, which publishes the receipt again from
// the sent marker.
type outbox struct {
	pub    publisher
	stream string // the receipts' stream, created again when missing
	ensure *ensurer
	max    int
	m      *metrics
	log    *zap.Logger

	queue    chan published // published, awaiting the server's answer, in order
	answered chan struct{}  // closed when the queue is closed and drained

	mu       sync.Mutex
	pending  []*nats.Msg // not stored yet, oldest first
	failing  bool        // receipts are failing: an error was logged, recovery is not yet
	loggedAt time.Time   // last error log, to log at most every receiptLogEvery
	lastErr  error
	givenUp  int
	kick     chan struct{} // wakes the retrier; size 1
}

// published is a receipt awaiting the server's answer.
type published struct {
	fut     jetstream.PubAckFuture
	msg     *nats.Msg
	settled func() // acks the job
}

const (
	// receiptRetryBatch is how many waiting receipts are published again at
	// once.
	receiptRetryBatch = 256
	// receiptRetryMin and receiptRetryMax bound the pause between rounds
	// that stored nothing. The longest stays well inside the receipt
	// stream's duplicate window, so a receipt stored by a publish whose
	// answer was lost is recognised as a duplicate by the next one.
	receiptRetryMin = 250 * time.Millisecond
	receiptRetryMax = 20 * time.Second
	// receiptLogEvery is how often, at most, failing receipts are logged.
	receiptLogEvery = 30 * time.Second
	// ensureEvery is how often, at most, a missing stream is created again.
	ensureEvery = 5 * time.Second
)

func newOutbox(pub publisher, stream string, ensure *ensurer, maxPending, queue int, m *metrics, log *zap.Logger) *outbox {
	return &outbox{
		pub: pub, stream: stream, ensure: ensure, max: maxPending, m: m, log: log,
		queue:    make(chan published, queue),
		answered: make(chan struct{}),
		kick:     make(chan struct{}, 1),
	}
}

// publish stores msg and calls settled once it is stored, or failed and
// kept for later. It waits only when the queue of unanswered receipts is
// full.
func (o *outbox) publish(msg *nats.Msg, settled func()) {
	fut, err := o.pub.PublishMsgAsync(msg, jetstream.WithRetryAttempts(0))
	if err != nil {
		o.keep(msg, err)
		settled()
		return
	}
	o.queue <- published{fut: fut, msg: msg, settled: settled}
}

// answers takes the server's answers in publish order until the queue is
// closed. Every future resolves within the publisher's async timeout.
func (o *outbox) answers() {
	defer close(o.answered)
	for p := range o.queue {
		select {
		case <-p.fut.Ok():
		case err := <-p.fut.Err():
			o.keep(p.msg, err)
		}
		p.settled()
	}
}

// keep adds a receipt that was not stored to those retried.
func (o *outbox) keep(msg *nats.Msg, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lastErr = err
	if len(o.pending) >= o.max {
		o.givenUp++
		o.m.receiptsGivenUp.Inc()
	} else {
		o.pending = append(o.pending, msg)
		o.m.receiptsPending.Set(float64(len(o.pending)))
	}
	o.failing = true
	o.logLocked(false)
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// logLocked logs the receipts' trouble, at most every receiptLogEvery
// unless now.
func (o *outbox) logLocked(now bool) {
	if !now && time.Since(o.loggedAt) < receiptLogEvery {
		return
	}
	o.loggedAt = time.Now()
	o.log.Error("delivery receipts not stored: kept and retried; jobs are delivered and acked meanwhile",
		zap.String("stream", o.stream), zap.Int("pending", len(o.pending)),
		zap.Int("given_up", o.givenUp), zap.Error(o.lastErr))
}

// retry publishes the waiting receipts again until ctx ends.
func (o *outbox) retry(ctx context.Context) {
	pause := receiptRetryMin
	for {
		stored, left := o.retryRound(ctx)
		switch {
		case left == 0:
			pause = receiptRetryMin
			select {
			case <-o.kick:
				continue
			case <-ctx.Done():
				return
			}
		case stored > 0:
			pause = receiptRetryMin
			continue
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		pause = min(2*pause, receiptRetryMax)
	}
}

// retryRound publishes up to receiptRetryBatch of the oldest waiting
// receipts once, and reports how many were stored and how many still wait.
func (o *outbox) retryRound(ctx context.Context) (stored, left int) {
	o.mu.Lock()
	batch := o.pending[:min(len(o.pending), receiptRetryBatch)]
	batch = batch[:len(batch):len(batch)]
	o.mu.Unlock()
	if len(batch) == 0 {
		return 0, 0
	}
	ok := make([]bool, len(batch))
	futs := make([]jetstream.PubAckFuture, len(batch))
	var lastErr error
	for i, msg := range batch {
		fut, err := o.pub.PublishMsgAsync(msg, jetstream.WithRetryAttempts(0))
		if err != nil {
			lastErr = err
			continue
		}
		futs[i] = fut
	}
	for i, fut := range futs {
		if fut == nil {
			continue
		}
		select {
		case <-fut.Ok():
			ok[i] = true
			stored++
		case err := <-fut.Err():
			lastErr = err
		case <-ctx.Done():
			lastErr = ctx.Err()
		}
	}
	if lastErr != nil {
		// A missing stream shows as no responders, or as a timeout where
		// something else listens on the subject.
		o.ensure.stream(ctx, o.stream)
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	// Only this goroutine removes receipts, and only from the front: the
	// batch is still the front of pending.
	kept := o.pending[:0]
	for i, msg := range o.pending {
		if i >= len(batch) || !ok[i] {
			kept = append(kept, msg)
		}
	}
	clear(o.pending[len(kept):])
	o.pending = kept
	o.m.receiptsPending.Set(float64(len(o.pending)))
	if lastErr != nil {
		o.lastErr = lastErr
	}
	if len(o.pending) == 0 && o.failing {
		o.failing = false
		o.log.Info("delivery receipts stored again", zap.String("stream", o.stream), zap.Int("given_up", o.givenUp))
	} else if lastErr != nil {
		o.logLocked(false)
	}
	return stored, len(o.pending)
}

// ensurer creates herald's streams again when someone deleted them, at
// most every ensureEvery per stream: publishes that fail call it, and
// creating a stream that exists costs a request and changes nothing.
type ensurer struct {
	create func(ctx context.Context, stream string) error // nil: never
	log    *zap.Logger

	mu   sync.Mutex
	last map[string]time.Time
}

// stream creates the stream called name if it is missing and was not tried
// within ensureEvery, and reports whether it tried.
func (e *ensurer) stream(ctx context.Context, name string) bool {
	if e == nil || e.create == nil {
		return false
	}
	e.mu.Lock()
	if time.Since(e.last[name]) < ensureEvery {
		e.mu.Unlock()
		return false
	}
	if e.last == nil {
		e.last = map[string]time.Time{}
	}
	e.last[name] = time.Now()
	e.mu.Unlock()
	if err := e.create(ctx, name); err != nil {
		e.log.Warn("stream not created", zap.String("stream", name), zap.Error(err))
		return false
	}
	return true
}

// close takes the answers still due, then publishes what waits until ctx
// ends, and gives up the rest. No publish may follow it.
func (o *outbox) close(ctx context.Context) {
	close(o.queue)
	<-o.answered
	for {
		stored, left := o.retryRound(ctx)
		if left == 0 {
			return
		}
		if ctx.Err() != nil {
			break
		}
		if stored == 0 {
			t := time.NewTimer(receiptRetryMin)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(o.pending)
	o.givenUp += n
	o.m.receiptsGivenUp.Add(float64(n))
	o.pending = nil
	o.m.receiptsPending.Set(0)
	o.lastErr = fmt.Errorf("replica stopping with %d receipts not stored: %w", n, o.lastErr)
	o.logLocked(true)
}

// receiptMsg is the delivery receipt of f's job.
func (w *Worker) receiptMsg(f *inflight, sent SentRecord) *nats.Msg {
	r := job.Receipt{
		ID: f.j.ID, Platform: f.j.Platform, App: f.j.App, TemplateID: f.j.TemplateID,
		ToUser: f.j.ToUser, Attempts: sent.Attempts, MsgID: sent.MsgID, SentAt: sent.At.UTC(), Worker: w.cfg.Instance,
	}
	msg, err := encodeMsg(job.SentSubject(f.j.Platform), r)
	if err != nil {
		// A receipt is strings, ints and a time: it always encodes.
		panic(err)
	}
	msg.Header.Set(job.HeaderMsgID, job.ReceiptMsgID(f.j.Platform, f.j.App, f.j.ID))
	if f.span != nil {
		tracing.Inject(f.trace, msg.Header)
	}
	return msg
}

// publishDead stores a dead letter and waits for JetStream's answer. A
// failed publish creates a missing dead-letter stream again from the config
// and tries once more. A
// duplicate answer is success only where it can be this very dead letter,
// stored by an earlier delivery or attempt of the same message: dead-letter
// ids are unique per source message (job.DeadLetterMsgID), so a duplicate on
// the first attempt of a first delivery means another dead letter holds the
// id, and that is an error, never a silent drop.
func (w *Worker) publishDead(ctx context.Context, f *inflight, dl job.DeadLetter) error {
	msg, err := encodeMsg(job.DeadSubject(dl.Platform, dl.Reason), dl)
	if err != nil {
		return err
	}
	msg.Header.Set(job.HeaderReason, dl.Reason)
	msg.Header.Set(job.HeaderCode, dl.Code)
	msg.Header.Set(job.HeaderMsgID, job.DeadLetterMsgID(f.meta.Stream, f.meta.Sequence.Stream, f.meta.Timestamp))
	if f.span != nil {
		tracing.Inject(f.trace, msg.Header)
	}
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		ack, err := w.pub.PublishMsg(pctx, msg)
		cancel()
		switch {
		case err == nil && ack.Duplicate && attempt == 1 && f.meta.NumDelivered == 1:
			return fmt.Errorf("dead letter id %s is taken by %s sequence %d: not stored",
				msg.Header.Get(job.HeaderMsgID), ack.Stream, ack.Sequence)
		case err == nil:
			return nil
		case attempt == 1 && w.ensure.stream(ctx, w.cfg.DeadStream):
			continue
		default:
			return fmt.Errorf("publish dead letter: %w", err)
		}
	}
}
