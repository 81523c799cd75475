package worker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/heraldhq/herald/internal/tracing"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/retry"
)

// verdictKind is what becomes of a message: the rows of the outcome table
// in docs/design.md, each settled by [Worker.settle].
type verdictKind int

const (
	// deliver: the platform accepted the job. The sent marker is recorded,
	// the receipt published, and the job acked once the receipt is stored
	// (or after Config.ReceiptWait).
	deliver verdictKind = iota + 1
	// duplicate: the job was delivered before; acked without a call. When
	// this very message was delivered (its holder died before acking) its
	// receipt is published again.
	duplicate
	// handBack: not now, and no attempt spent (a hold, a busy lease, a rate
	// limit, the store down, shutdown): the lease is released and the job
	// redelivered after delay.
	handBack
	// retryLater: a transient failure. The attempt is counted; the job is
	// redelivered after the backoff, or dead-lettered once the attempts are
	// exhausted.
	retryLater
	// abandon: the call was cut short by the end of the shutdown grace; its
	// outcome is unknown, so it counts as an attempt and the job is handed
	// back at once.
	abandon
	// deadLetter: a permanent failure. The dead letter is stored, the job's
	// state forgotten and the message termed. When the dead letter cannot
	// be stored the decision is kept in the store and the job handed back:
	// its next delivery publishes the dead letter without calling again.
	deadLetter
)

var verdictNames = map[verdictKind]string{
	deliver: "deliver", duplicate: "duplicate", handBack: "hand back", retryLater: "retry",
	abandon: "abandon", deadLetter: "dead letter",
}

func (k verdictKind) String() string { return verdictNames[k] }

// verdict is a pipeline stage's conclusion about a message.
type verdict struct {
	kind verdictKind

	outcome string        // handBack: outcomeHeld or outcomeHandedBack
	delay   time.Duration // handBack: when to look again; retryLater: the least wait
	why     string        // handBack: the reason, logged

	result job.Result  // deliver
	sent   *SentRecord // duplicate: the record, when this message is the one delivered

	reason string       // deadLetter
	detail retry.Detail // deadLetter
	// limit and exhausted are retryLater's attempt cap (0: Config.MaxAttempts)
	// and the reason once it is reached.
	limit     int
	exhausted string
	// exhaust: the platform said the user has no grant left (deadLetter);
	// the ledger records it.
	exhaust bool

	err error // the failure, logged
}

func delivered(res job.Result) verdict { return verdict{kind: deliver, result: res} }

func heldBack(outcome string, delay time.Duration, why string) verdict {
	return verdict{kind: handBack, outcome: outcome, delay: delay, why: why}
}

func deadLettered(reason string, dt retry.Detail) verdict {
	return verdict{kind: deadLetter, reason: reason, detail: dt}
}

// settle carries out v for the message f: the store operation, the
// publish, the ack, nak or term, the metric and the log line. It is the
// only place that acts on a message.
func (w *Worker) settle(ctx context.Context, f *inflight, v verdict) {
	switch v.kind {
	case deliver:
		w.settleDelivered(ctx, f, v)
	case duplicate:
		w.count(f, outcomeDuplicate)
		if v.sent != nil && w.cfg.Receipts {
			f.logAt(zap.InfoLevel, "redelivered after delivery: receipt published again, acked without a call")
			w.out.publish(w.receiptMsg(f, *v.sent), func() { w.ack(f) })
			return
		}
		f.logAt(zap.InfoLevel, "duplicate: already delivered, acked without a call")
		w.ack(f)
	case handBack:
		w.release(f)
		if f.enabled(zap.DebugLevel) {
			f.logAt(zap.DebugLevel, "handed back: "+v.why, zap.Duration("delay", v.delay), zap.Error(v.err))
		}
		w.nak(f, v.outcome, v.delay)
	case abandon:
		w.fail(ctx, f)
		f.logAt(zap.InfoLevel, "handed back: shutdown during the call", zap.Error(v.err))
		w.nak(f, outcomeHandedBack, 0)
	case retryLater:
		n := w.fail(ctx, f)
		limit, reason := w.cfg.MaxAttempts, job.ReasonRetriesExhausted
		if v.limit > 0 && v.limit <= limit {
			limit, reason = v.limit, v.exhausted
		}
		if n >= limit {
			w.settleDead(ctx, f, verdict{kind: deadLetter, reason: reason, detail: v.detail, err: v.err})
			return
		}
		delay := max(w.cfg.Retry.Backoff(n), v.delay)
		f.logFailure(zap.WarnLevel, "transient failure, retrying", zap.Int("attempt", n), zap.Duration("delay", delay),
			zap.String("code", v.detail.Code), zap.Error(v.err))
		w.nak(f, outcomeRetry, delay)
	case deadLetter:
		w.settleDead(ctx, f, v)
	default:
		panic(fmt.Sprintf("worker: settle of an unknown verdict %d", v.kind))
	}
}

// settleDelivered records the platform's acceptance, hands the receipt to
// the outbox and acks the job once the receipt is stored (the outbox bounds
// that wait): the handler and its call slot are not held for it.
func (w *Worker) settleDelivered(ctx context.Context, f *inflight, v verdict) {
	// The sent marker closes the only duplicate window: keep trying briefly
	// even while shutting down.
	markCtx := context.WithoutCancel(ctx)
	sent := SentRecord{Seq: f.meta.Sequence.Stream, MsgID: v.result.MsgID, Attempts: f.attempts, At: w.now()}
	if w.cfg.Subscriptions != SubscriptionsOff {
		// One grant of a one-time template taken, and the message id kept
		// for its final result: in the sent marker's batch.
		if k := f.subscriptionKey(); w.cfg.LongTerm == nil || !w.cfg.LongTerm(k.Platform, k.App, k.Template) {
			sent.Take = &k
		}
		if v.result.MsgID != "" {
			sent.Ref = &MsgRef{Platform: f.j.Platform, App: f.j.App, ID: f.j.ID, TemplateID: f.j.TemplateID, ToUser: f.j.ToUser}
			if f.span != nil {
				sent.Ref.TraceParent = tracing.TraceParent(f.trace)
			}
			sent.RefTTL = w.cfg.StatusTTL
		}
	}
	var err error
	for i := range 3 {
		if err = w.store.MarkSent(markCtx, f.j.Key(), w.cfg.DedupTTL, sent); err == nil {
			break
		}
		time.Sleep(time.Duration(100*(i+1)) * time.Millisecond)
	}
	if err != nil {
		w.health.failed(err)
		// The job was delivered: acking is right. Only a republish of the
		// same id could now be sent again; the lease guards it meanwhile.
		f.logAt(zap.ErrorLevel, "delivered but the sent marker could not be recorded", zap.Error(err))
	}
	w.count(f, outcomeDelivered)
	if f.enabled(zap.DebugLevel) {
		f.logAt(zap.DebugLevel, "delivered", zap.Int("attempts", f.attempts), zap.String("msgid", v.result.MsgID))
	}
	if !w.cfg.Receipts {
		w.ack(f)
		return
	}
	w.out.publish(w.receiptMsg(f, sent), func() { w.ack(f) })
}

// settleDead stores the dead letter, then terms the job. A dead letter that
// cannot be stored is decided in the store, so no redelivery calls the
// platform again, and the job is handed back with a growing delay until it
// is stored.
func (w *Worker) settleDead(ctx context.Context, f *inflight, v verdict) {
	if v.exhaust {
		if err := w.ledger.Exhaust(context.WithoutCancel(ctx), f.subscriptionKey(), w.now()); err != nil {
			w.health.failed(err)
			f.logAt(zap.WarnLevel, "the ledger did not record the 43101", zap.Error(err))
		}
	}
	dl := w.deadLetterOf(f, v.reason, v.detail)
	if err := w.publishDead(ctx, f, dl); err != nil {
		// Only a job that reached the store can have its decision kept; the
		// others are dead-lettered before any call, by rules that decide the
		// same again.
		if f.claimed || f.decided {
			d := Decision{Reason: v.reason, Code: v.detail.Code, Message: v.detail.Message, Field: v.detail.Field,
				Attempts: f.attempts, First: f.first}
			if serr := w.store.Decide(context.WithoutCancel(ctx), f.j.Key(), f.owner, d); serr != nil {
				w.health.failed(serr)
				f.logAt(zap.ErrorLevel, "dead letter decided but neither stored nor recorded", zap.Error(serr))
			}
			f.claimed = false
		}
		delay := w.cfg.Retry.Backoff(int(min(f.meta.NumDelivered, 30)))
		f.logAt(zap.ErrorLevel, "dead letter not stored, job handed back", zap.String("reason", v.reason),
			zap.Duration("delay", delay), zap.Error(err))
		w.nak(f, outcomeHandedBack, delay)
		return
	}
	if f.claimed || f.decided || f.attempts > 0 {
		if err := w.store.Forget(context.WithoutCancel(ctx), f.j.Key()); err != nil {
			f.logAt(zap.WarnLevel, "dead-lettered job state not cleared; a replay waits for its lease", zap.Error(err))
		}
	}
	w.m.deadLetters.WithLabelValues(dl.Platform, v.reason).Inc()
	w.count(f, outcomeDeadLetter)
	f.logFailure(zap.WarnLevel, "dead-lettered", zap.String("reason", v.reason), zap.String("code", v.detail.Code),
		zap.String("field", v.detail.Field), zap.Int("attempts", f.attempts), zap.Error(v.err))
	// Term, not TermWithReason: servers before 2.10.4 ignore a term with a
	// reason and would redeliver the job for ever. The reason is in the
	// dead letter.
	if err := f.msg.Term(); err != nil {
		f.logAt(zap.WarnLevel, "term after dead letter", zap.Error(err))
	}
}

// fail counts a failed call in the store and returns the attempts so far.
// If the store is down it falls back to the local count: the job is
// redelivered either way.
func (w *Worker) fail(ctx context.Context, f *inflight) int {
	n, err := w.store.Fail(context.WithoutCancel(ctx), f.j.Key(), f.owner)
	if err != nil {
		w.health.failed(err)
		f.logAt(zap.WarnLevel, "could not count the failed attempt", zap.Error(err))
		return f.attempts
	}
	f.claimed = false
	f.attempts = n
	return n
}

// release gives the lease back, if the message holds it.
func (w *Worker) release(f *inflight) {
	if !f.claimed {
		return
	}
	if err := w.store.Release(context.Background(), f.j.Key(), f.owner); err != nil {
		w.health.failed(err)
		f.logAt(zap.WarnLevel, "could not release the lease; it expires by itself", zap.Error(err))
	}
	f.claimed = false
}

func (w *Worker) ack(f *inflight) {
	if err := f.msg.Ack(); err != nil {
		f.logAt(zap.WarnLevel, "ack", zap.Error(err))
	}
}

func (w *Worker) nak(f *inflight, outcome string, delay time.Duration) {
	w.count(f, outcome)
	if delay > 0 {
		// Spread redeliveries so held jobs do not return in one wave.
		delay += rand.N(delay/10 + time.Millisecond)
	}
	if err := f.msg.NakWithDelay(delay); err != nil {
		f.logAt(zap.WarnLevel, "nak", zap.Error(err))
	}
}

// count adds the message's outcome to herald_jobs_total.
func (w *Worker) count(f *inflight, outcome string) {
	w.m.job(f.metricPlatform(), w.templateLabel(f), outcome).Inc()
}

// deadLetterOf builds the dead letter of f.
func (w *Worker) deadLetterOf(f *inflight, reason string, dt retry.Detail) job.DeadLetter {
	dl := job.DeadLetter{
		Reason: reason, Platform: f.metricPlatform(), App: f.j.App, TemplateID: f.j.TemplateID,
		ToUser: f.j.ToUser, ID: f.j.ID, Code: dt.Code, Message: dt.Message, Field: dt.Field,
		Attempts: f.attempts, DeadAt: w.now().UTC(), Worker: w.cfg.Instance,
		Source: job.Source{Stream: f.meta.Stream, Subject: f.msg.Subject(), Sequence: f.meta.Sequence.Stream},
	}
	if !f.first.IsZero() && f.attempts > 0 {
		first := f.first.UTC()
		dl.FirstAttemptAt = &first
	}
	if data := f.msg.Data(); isJSONObject(data) {
		dl.Job = data
	} else {
		dl.Raw = data
	}
	if h := f.msg.Headers(); h != nil {
		dl.Replays, _ = strconv.Atoi(h.Get(job.HeaderReplays))
	}
	return dl
}

// enabled reports whether level is logged: a hot path checks it before
// it builds the fields of a line nobody reads.
func (f *inflight) enabled(level zapcore.Level) bool { return f.base.Core().Enabled(level) }

// logAt logs with the job's fields. They are attached on first use: most
// messages log nothing at the enabled levels.
func (f *inflight) logAt(level zapcore.Level, msg string, fields ...zap.Field) {
	if !f.base.Core().Enabled(level) {
		return
	}
	if f.log == nil {
		f.log = f.base.With(
			zap.String("job_id", f.j.ID), zap.String("platform", f.platform),
			zap.String("app", f.j.App), zap.String("template_id", f.j.TemplateID),
			zap.Uint64("stream_seq", f.meta.Sequence.Stream), zap.Uint64("delivery", f.meta.NumDelivered))
	}
	f.log.Log(level, msg, fields...)
}

// logFailure logs at level, or at error level when the provider flagged
// the failure with retry.Alert.
func (f *inflight) logFailure(level zapcore.Level, msg string, fields ...zap.Field) {
	if f.alert {
		level = zap.ErrorLevel
	}
	f.logAt(level, msg, fields...)
}
