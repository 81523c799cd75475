package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/heraldhq/herald/internal/tracing"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/retry"
)

// The subscription ledger's consumer: every replica takes events from the
// shared durable consumer on the subscriptions stream, applies popup and
// change events to the ledger, and turns each sent event into a delivery
// status event naming the job its message id was sent for.

// ledgerHandlers is how many events a replica applies at once.
const ledgerHandlers = 4

// runLedger applies subscription events until ctx ends.
func (w *Worker) runLedger(ctx context.Context) error {
	cons, err := w.js.Consumer(ctx, w.cfg.SubscriptionsStream, w.cfg.LedgerConsumer)
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", w.cfg.LedgerConsumer, w.cfg.SubscriptionsStream, err)
	}
	iter, err := cons.Messages(PullOptions(64)...)
	if err != nil {
		return fmt.Errorf("pull from %s: %w", w.cfg.LedgerConsumer, err)
	}
	defer context.AfterFunc(ctx, iter.Stop)()
	var wg sync.WaitGroup
	for range ledgerHandlers {
		wg.Go(func() {
			for {
				msg, err := iter.Next()
				switch {
				case errors.Is(err, jetstream.ErrMsgIteratorClosed):
					return
				case err != nil:
					w.log.Warn("pull subscription events", zap.Error(err))
					select {
					case <-time.After(250 * time.Millisecond):
					case <-ctx.Done():
						return
					}
				default:
					w.applyEvent(context.WithoutCancel(ctx), msg)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// applyEvent applies one subscription event and acks it, or naks it to
// be applied again when the store or the status stream failed. An event
// that does not decode is termed: no retry can mend it.
func (w *Worker) applyEvent(ctx context.Context, msg jetstream.Msg) {
	var ev job.SubscriptionEvent
	if err := json.Unmarshal(msg.Data(), &ev); err != nil || !validEvent(ev) {
		w.m.subscriptionEvents.WithLabelValues(job.UnknownPlatform, "unknown", "malformed").Inc()
		w.log.Warn("subscription event that does not decode, dropped", zap.String("subject", msg.Subject()), zap.Error(err))
		_ = msg.Term()
		return
	}
	id := msg.Headers().Get(job.HeaderMsgID)
	if id == "" {
		id = ev.DedupID()
	}
	result, err := "applied", error(nil)
	switch ev.Event {
	case job.EventSent:
		var later bool
		later, err = w.joinStatus(ctx, msg, ev, id)
		if err == nil && later {
			_ = msg.NakWithDelay(joinRetryWait)
			return
		}
	default:
		k := SubscriptionKey{Platform: ev.Platform, App: ev.App, User: ev.ToUser, Template: ev.TemplateID}
		var applied bool
		applied, err = w.ledger.Apply(ctx, k, LedgerEvent{ID: id, Accept: ev.Status == job.StatusAccept, At: ev.CreatedAt})
		if err == nil && !applied {
			result = "duplicate"
		}
	}
	if err != nil {
		w.m.subscriptionEvents.WithLabelValues(ev.Platform, ev.Event, "error").Inc()
		w.health.failed(err)
		w.log.Warn("subscription event not applied, redelivered later", zap.String("event", ev.Event),
			zap.String("app", ev.App), zap.Error(err))
		_ = msg.NakWithDelay(time.Second)
		return
	}
	w.m.subscriptionEvents.WithLabelValues(ev.Platform, ev.Event, result).Inc()
	if err := msg.Ack(); err != nil {
		w.log.Warn("ack subscription event", zap.Error(err))
	}
}

// validEvent reports whether ev is one the ledger can apply: known
// platform and kind, a status of its kind, the fields it needs.
func validEvent(ev job.SubscriptionEvent) bool {
	if (ev.Platform != job.WeChat && ev.Platform != job.Alipay) || ev.App == "" || ev.ToUser == "" || ev.CreatedAt.IsZero() {
		return false
	}
	switch ev.Event {
	case job.EventPopup, job.EventChange:
		return ev.TemplateID != "" && (ev.Status == job.StatusAccept || ev.Status == job.StatusReject)
	case job.EventSent:
		return ev.MsgID != "" && (ev.Status == job.StatusSuccess || ev.Status == job.StatusFailed)
	}
	return false
}

// A sent event can overtake the sent marker of the job it reports on: the
// platform pushes it as soon as it has the result, while the replica that
// made the call may not have recorded the message id yet. An unmatched
// sent event is therefore tried again joinRetries times, joinRetryWait
// apart, before it is reported as matching no job.
const (
	joinRetries   = 3
	joinRetryWait = 2 * time.Second
)

// joinStatus publishes the delivery status of the send a sent event
// reports, naming the job its message id was sent for (or none). later
// asks for the event to come back: no job matches yet, but one may.
func (w *Worker) joinStatus(ctx context.Context, msg jetstream.Msg, ev job.SubscriptionEvent, id string) (later bool, err error) {
	status := job.StatusDelivered
	if ev.Status != job.StatusSuccess {
		status = job.StatusFailed
	}
	ref, matched, err := w.ledger.Join(ctx, ev.Platform, ev.App, ev.MsgID,
		MsgRef{Status: status, ErrorCode: ev.ErrorCode, ErrorStatus: ev.ErrorStatus, StatusAt: ev.CreatedAt})
	if err != nil {
		return false, err
	}
	if !matched {
		if meta, err := msg.Metadata(); err == nil && meta.NumDelivered < joinRetries {
			return true, nil
		}
	}
	se := job.StatusEvent{
		App: ev.App, TemplateID: ev.TemplateID, ToUser: ev.ToUser, Platform: ev.Platform, MsgID: ev.MsgID,
		Status: status, ErrorCode: ev.ErrorCode, ErrorStatus: ev.ErrorStatus, StatusAt: ev.CreatedAt.UTC(),
	}
	if matched {
		se.ID, se.TemplateID, se.ToUser, se.SentAt = ref.ID, ref.TemplateID, ref.ToUser, ref.SentAt.UTC()
	}
	out, err := encodeMsg(job.StatusSubject(ev.Platform), se)
	if err != nil {
		return false, err
	}
	out.Header.Set(job.HeaderMsgID, job.StatusMsgID(id))
	if matched && ref.TraceParent != "" {
		// The job's trace goes on into its status event.
		tracing.Inject(tracing.FromTraceParent(ctx, ref.TraceParent), out.Header)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := w.pub.PublishMsg(pctx, out); err != nil {
		w.ensure.stream(ctx, w.cfg.EventsStream)
		return false, fmt.Errorf("publish delivery status: %w", err)
	}
	w.m.statusEvents.WithLabelValues(ev.Platform, status, fmt.Sprint(matched)).Inc()
	return false, nil
}

// subscriptionKey is the ledger's key for f's job.
func (f *inflight) subscriptionKey() SubscriptionKey {
	return SubscriptionKey{Platform: f.j.Platform, App: f.j.App, User: f.j.ToUser, Template: f.j.TemplateID}
}

// subscribed checks the ledger's state of the job's recipient: in enforce
// mode a job for a user who rejected the template or has no grant left is
// dead-lettered without a call; in observe mode it is only counted. An
// unknown user always goes.
func (w *Worker) subscribed(f *inflight) (verdict, bool) {
	if w.cfg.Subscriptions == SubscriptionsOff {
		return verdict{}, false
	}
	sub := f.sub
	state := ""
	switch {
	case sub.State == SubRejected, sub.State == SubExhausted:
		state = string(sub.State)
	case sub.State == SubGranted && sub.Grants == 0 && w.cfg.TrustCounts:
		state = "no_grants"
	default:
		return verdict{}, false
	}
	w.m.subscriptionSkips.WithLabelValues(f.j.Platform, string(w.cfg.Subscriptions), state).Inc()
	if w.cfg.Subscriptions != SubscriptionsEnforce {
		return verdict{}, false
	}
	msg := fmt.Sprintf("the subscription ledger holds %s since %s; not sent", sub.State, sub.Since.UTC().Format(time.RFC3339))
	if state == "no_grants" {
		msg = fmt.Sprintf("the subscription ledger knows no grant left since %s; not sent", sub.Since.UTC().Format(time.RFC3339))
	}
	return deadLettered(job.ReasonUserRefused, retry.Detail{Code: CodeNoSubscription, Message: msg}), true
}

// CodeNoSubscription is the code of a job the ledger skipped.
const CodeNoSubscription = "no_subscription"
