package worker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/heraldhq/herald/internal/tracing"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/retry"
)

// inflight is one message being handled: the job, and what the pipeline
// learnt of it so far.
type inflight struct {
	msg      jetstream.Msg
	meta     *jetstream.MsgMetadata
	j        job.Job
	decoded  bool   // j decoded and passed the contract's rules
	platform string // from the subject: the job may not say
	owner    string
	base     *zap.Logger
	log      *zap.Logger // base with the job's fields, built by logAt

	claimed  bool // we hold the job's lease in the store
	decided  bool // the store holds the job's dead-letter decision
	attempts int
	first    time.Time
	alert    bool         // the provider asked for its failure to be logged at error level
	sub      Subscription // the ledger's state of the recipient, when kept

	span  trace.Span      // the job's span, when traced
	trace context.Context // carries span, when traced
}

// noEnd ends no span: the child of a message that is not traced.
func noEnd(...attribute.KeyValue) {}

// child starts a span under the job's and returns what ends it, with
// attributes; nothing when the job is not traced.
func (w *Worker) child(f *inflight, name string) func(...attribute.KeyValue) {
	if f.span == nil {
		return noEnd
	}
	_, s := w.cfg.Tracer.Start(f.trace, name)
	return func(attrs ...attribute.KeyValue) {
		s.SetAttributes(attrs...)
		s.End()
	}
}

// metricPlatform is the platform for labels and dead-letter subjects:
// the job's, else the subject's when it names one, else "unknown". A
// producer cannot make up a label value.
func (f *inflight) metricPlatform() string {
	for _, p := range []string{f.j.Platform, f.platform} {
		if p == job.WeChat || p == job.Alipay {
			return p
		}
	}
	return job.UnknownPlatform
}

// handle runs one message through the pipeline and settles its verdict.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	w.m.inFlight.Inc()
	defer w.m.inFlight.Dec()
	meta, err := msg.Metadata()
	if err != nil {
		// Not a JetStream message: nothing to ack, nothing to lose.
		w.log.Error("message without metadata", zap.Error(err))
		return
	}
	f := &inflight{
		msg: msg, meta: meta, base: w.log,
		platform: job.PlatformOf(msg.Subject()),
		owner:    w.cfg.Instance + ":" + strconv.FormatUint(meta.Sequence.Stream, 10) + ":" + strconv.FormatUint(meta.NumDelivered, 10),
	}
	if w.cfg.Tracer != nil {
		// The producer's traceparent, if any, is the job span's parent.
		f.trace, f.span = w.cfg.Tracer.Start(tracing.Extract(ctx, msg.Headers()), "herald.job",
			trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
				attribute.String("messaging.system", "nats"),
				attribute.String("messaging.destination.name", msg.Subject()),
				attribute.Int64("herald.stream_seq", int64(meta.Sequence.Stream)),
				attribute.Int64("herald.delivery", int64(meta.NumDelivered))))
		defer f.span.End()
	}
	v := w.process(ctx, f)
	end := w.child(f, "herald.settle")
	w.settle(ctx, f, v)
	if f.span != nil {
		end(attribute.String("herald.verdict", v.kind.String()), attribute.String("herald.reason", v.reason))
		f.span.SetAttributes(attribute.String("herald.job_id", f.j.ID), attribute.String("herald.app", f.j.App))
	}
}

// process runs the stages in order until one reaches a verdict: decode,
// route, validate, deadline, app gate (held), admission (dedup, decided
// outcome, rate limit), deadline again, subscription gate, app gate (the
// probe), call slot, call, classification.
func (w *Worker) process(ctx context.Context, f *inflight) verdict {
	var err error
	f.j, err = job.Decode(f.msg.Data(), f.platform)
	if err != nil {
		return deadLettered(job.ReasonMalformedJob, retry.Detail{Message: err.Error()})
	}
	f.decoded = true
	route := Route{Platform: f.j.Platform, App: f.j.App}
	sender, ok := w.senders[route]
	if !ok {
		return deadLettered(job.ReasonUnknownApp,
			retry.Detail{Message: fmt.Sprintf("app %q is not configured for %s", f.j.App, f.j.Platform)})
	}
	if err := sender.Validate(f.j); err != nil {
		return invalid(err)
	}
	if v, done := w.deadline(f); done {
		return v
	}
	g := w.gates.get(route)
	if wait, held := g.holding(w.now()); held {
		return heldBack(outcomeHeld, wait, "app held")
	}
	end := w.child(f, "herald.claim")
	v, done := w.admit(ctx, f)
	end()
	if done {
		return v
	}
	// A rate-limit wait can outlast the deadline.
	if v, done := w.deadline(f); done {
		return v
	}
	if v, done := w.subscribed(f); done {
		return v
	}
	// The gate again, now that the job will call: in the half-open state
	// this picks the probe, and every other call waits for its answer.
	if ok, wait := g.allow(w.now()); !ok {
		return heldBack(outcomeHeld, wait, "app held")
	}
	select {
	case w.calls <- struct{}{}:
	case <-ctx.Done():
		return heldBack(outcomeHandedBack, 0, "shutdown before the call")
	}
	res, err := w.call(ctx, f, sender)
	<-w.calls
	return w.classify(ctx, f, route, g, res, err)
}

// invalid is the verdict on a job its sender's rules reject before a call.
func invalid(err error) verdict {
	dec := retry.Decide(err)
	reason := dec.Reason
	if dec.Action != retry.DeadLetter || reason == "" {
		reason = job.ReasonInvalidTemplateData
	}
	if dec.Detail.Message == "" {
		dec.Detail.Message = err.Error()
	}
	return deadLettered(reason, dec.Detail)
}

// deadline dead-letters a job whose not_after has passed.
func (w *Worker) deadline(f *inflight) (verdict, bool) {
	if !f.j.Expired(w.now()) {
		return verdict{}, false
	}
	return deadLettered(job.ReasonExpired, retry.Detail{Message: "not_after " + f.j.NotAfter.Format(time.RFC3339) + " passed"}), true
}

// admit claims the job in the store and waits out its rate-limit slot; it
// is done when the job goes no further now.
func (w *Worker) admit(ctx context.Context, f *inflight) (verdict, bool) {
	c := Claim{
		Key:   f.j.Key(),
		Owner: f.owner,
		// The rate-limit wait, the wait for a call slot (at most about one
		// request timeout: every call ends by then), the call, and margin.
		Lease:   w.cfg.MaxRateWait + 2*w.cfg.RequestTimeout + 5*time.Second,
		TTL:     w.cfg.DedupTTL,
		MaxWait: w.cfg.MaxRateWait,
	}
	if w.cfg.RateLimit != nil {
		if l, ok := w.cfg.RateLimit(f.j.Platform, f.j.App, f.j.TemplateID); ok {
			c.Limit = &l
		}
	}
	if w.cfg.Subscriptions != SubscriptionsOff {
		k := f.subscriptionKey()
		c.Subscription = &k
	}
	adm, err := w.store.Admit(ctx, c)
	if err != nil {
		w.health.failed(err)
		return verdict{kind: handBack, outcome: outcomeHeld, delay: time.Second, why: "store unavailable", err: err}, true
	}
	switch adm.Status {
	case AlreadySent:
		v := verdict{kind: duplicate}
		if adm.Sent.Seq == f.meta.Sequence.Stream {
			// This very message was delivered and its holder died before
			// acking it, perhaps before the receipt.
			v.sent = &adm.Sent
		}
		return v, true
	case Decided:
		d := adm.Decision
		f.decided, f.attempts, f.first = true, d.Attempts, d.First
		return deadLettered(d.Reason, retry.Detail{Code: d.Code, Message: d.Message, Field: d.Field}), true
	case Busy:
		// Look again soon: the holder usually finishes well before its
		// lease ends, and then this copy is acked as a duplicate.
		return heldBack(outcomeHeld, min(adm.Wait, time.Second), "another delivery holds the job"), true
	case Throttled:
		w.m.rateWaits.WithLabelValues(f.j.Platform).Inc()
		return heldBack(outcomeHeld, adm.Wait, "rate limited"), true
	}
	f.claimed, f.attempts, f.first, f.sub = true, adm.Attempts, adm.FirstAttempt, adm.Subscription
	if adm.Wait > 0 {
		w.m.rateWaits.WithLabelValues(f.j.Platform).Inc()
		w.m.rateWaitSec.Observe(adm.Wait.Seconds())
		end := w.child(f, "herald.rate_limit_wait")
		err := w.waitKeepingAlive(ctx, f.msg, adm.Wait)
		end(attribute.Int64("herald.wait_ms", adm.Wait.Milliseconds()))
		if err != nil {
			return heldBack(outcomeHandedBack, 0, "shutdown during rate-limit wait"), true
		}
	}
	return verdict{}, false
}

// call makes the provider call; the caller holds a call slot.
func (w *Worker) call(ctx context.Context, f *inflight, sender Sender) (job.Result, error) {
	callCtx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	end := w.child(f, "herald.provider_call")
	start := time.Now()
	res, err := sender.Send(callCtx, f.j)
	cancel()
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	if f.span != nil {
		code := "0"
		if err != nil {
			code = retry.Decide(err).Detail.Code
		}
		end(attribute.String("herald.platform", f.j.Platform), attribute.String("herald.result", outcome),
			attribute.String("herald.platform_code", code))
	}
	w.m.sendSeconds.WithLabelValues(f.j.Platform, outcome).Observe(time.Since(start).Seconds())
	f.attempts++
	return res, err
}

// classify turns a call's outcome into a verdict, and keeps the app's gate:
// an answer closes it, an app-level refusal or quota opens it, and so do
// repeated transient failures.
func (w *Worker) classify(ctx context.Context, f *inflight, route Route, g *gate, res job.Result, err error) verdict {
	if err == nil {
		w.gateClosed(f, route, g, "probe delivered")
		return delivered(res)
	}
	dec := retry.Decide(err)
	f.alert = dec.Alert
	if ctx.Err() != nil {
		return verdict{kind: abandon, err: err}
	}
	switch dec.Action {
	case retry.DeadLetter:
		w.gateClosed(f, route, g, "the probe was answered")
		dt := dec.Detail
		if dt.Message == "" && dt.Code == "" {
			dt.Message = err.Error()
		}
		// The platform says the user has no grant: the ledger learns it.
		exhaust := dec.Reason == job.ReasonUserRefused && w.cfg.Subscriptions != SubscriptionsOff
		return verdict{kind: deadLetter, reason: dec.Reason, detail: dt, err: err, exhaust: exhaust}
	case retry.Throttle, retry.Pause:
		f.attempts-- // holds spend no attempt
		hold := g.pause(w.now(), dec.Delay, dec.Action.String())
		w.m.appPaused.WithLabelValues(route.Platform, route.App).Set(1)
		f.logAt(zap.ErrorLevel, "app held: platform refused the app, not the job",
			zap.String("action", dec.Action.String()), zap.Duration("hold", hold),
			zap.String("code", dec.Detail.Code), zap.Error(err))
		return heldBack(outcomeHeld, hold, "app held")
	default:
		if opened, hold := g.failure(w.now()); opened {
			w.m.appPaused.WithLabelValues(route.Platform, route.App).Set(1)
			f.logAt(zap.ErrorLevel, "breaker open: repeated transient failures", zap.Duration("hold", hold), zap.Error(err))
		}
		dt := dec.Detail
		if dt.Message == "" && dt.Code == "" {
			dt.Message = err.Error()
		}
		return verdict{kind: retryLater, delay: dec.Delay, detail: dt, limit: dec.Limit, exhausted: dec.Reason, err: err}
	}
}

// gateClosed closes the app's gate after an answer, saying so if it was
// open.
func (w *Worker) gateClosed(f *inflight, route Route, g *gate, why string) {
	if g.success() {
		w.m.appPaused.WithLabelValues(route.Platform, route.App).Set(0)
		f.logAt(zap.InfoLevel, "app resumed: "+why)
	}
}

// waitKeepingAlive waits d, telling JetStream the message is in progress
// often enough that its ack deadline never passes.
func (w *Worker) waitKeepingAlive(ctx context.Context, msg jetstream.Msg, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	tick := time.NewTicker(w.cfg.AckWait / 3)
	defer tick.Stop()
	for {
		select {
		case <-timer.C:
			return nil
		case <-tick.C:
			_ = msg.InProgress()
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}
