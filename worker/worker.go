package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/retry"
)

// ErrShutdownGrace is the cause of the context handed to in-flight jobs when
// they outlast Config.ShutdownGrace.
var ErrShutdownGrace = errors.New("shutdown grace period over")

// Config tunes a Worker. Zero fields take the defaults noted.
type Config struct {
	Instance      string // this replica's name, in dead letters and receipts; required
	Stream        string // NOTIFY_SEND
	Consumer      string // herald-worker
	Receipts      bool   // publish delivery receipts to notify.sent.<platform>
	Concurrency   int    // provider calls in flight; 256
	MaxAttempts   int    // provider calls before retries_exhausted; 8
	AckWait       time.Duration
	ShutdownGrace time.Duration // 25s
	// RequestTimeout bounds one provider call; 10s. It must stay well below
	// AckWait.
	RequestTimeout time.Duration
	DedupTTL       time.Duration // 24h
	Retry          retry.Policy
	// RateLimit returns the limit for a (platform, app, template), if any.
	RateLimit func(platform, app, templateID string) (Limit, bool)
	// MaxRateWait is the longest rate-limit wait a job is held in place for
	// (its ack deadline kept alive); longer waits hand the job back. 5s.
	MaxRateWait time.Duration
	// Breaker: consecutive transient failures of one app that open its
	// breaker (10), the first hold (30s) and the longest (5m).
	BreakerFailures int
	BreakerCooldown time.Duration
	BreakerMax      time.Duration
	// PullBatch is how many messages the pull iterator keeps requested
	// ahead of the handlers; Concurrency, at most 512. A small batch leaves
	// handlers idle between pull round trips.
	// The handlers hold up to half PullBatch (rounded up) messages beyond
	// Concurrency: jobs being claimed, waiting for a call slot, or being
	// settled after their call (sent marker, receipt, ack), so that those
	// steps overlap the provider calls instead of holding call slots. With
	// the iterator's buffer, a replica has at most Concurrency + 1.5 ×
	// PullBatch messages unacknowledged.
	PullBatch int
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Stream == "" {
		c.Stream = "NOTIFY_SEND"
	}
	if c.Consumer == "" {
		c.Consumer = "herald-worker"
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 256
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	def(&c.AckWait, 30*time.Second)
	def(&c.ShutdownGrace, 25*time.Second)
	def(&c.RequestTimeout, 10*time.Second)
	def(&c.DedupTTL, 24*time.Hour)
	def(&c.MaxRateWait, 5*time.Second)
	def(&c.BreakerCooldown, 30*time.Second)
	def(&c.BreakerMax, 5*time.Minute)
	if c.BreakerFailures <= 0 {
		c.BreakerFailures = 10
	}
	if c.Retry == (retry.Policy{}) {
		c.Retry = retry.DefaultPolicy
	}
	if c.PullBatch <= 0 {
		c.PullBatch = min(c.Concurrency, 512)
	}
	c.PullBatch = min(c.PullBatch, c.Concurrency)
}

// MaxUnacked is how many messages a replica with c's settings holds
// unacknowledged at most: Concurrency + 1.5 × PullBatch (the handlers'
// messages and the iterator's buffer). A consumer's max_ack_pending must
// cover it for every replica, and an autoscaler's lag threshold must stay
// above it.
func (c Config) MaxUnacked() int {
	c.setDefaults()
	return c.Concurrency + (c.PullBatch+1)/2 + c.PullBatch
}

// Validate reports a config the worker cannot run with.
func (c *Config) Validate() error {
	var errs []error
	if c.Instance == "" {
		errs = append(errs, errors.New("instance is required"))
	}
	if c.RequestTimeout >= c.AckWait {
		errs = append(errs, fmt.Errorf("request timeout %v must be below ack wait %v", c.RequestTimeout, c.AckWait))
	}
	if err := c.Retry.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("retry: %w", err))
	}
	return errors.Join(errs...)
}

// Worker is one replica's delivery loop. Create it with New and run it with Run.
type Worker struct {
	cfg     Config
	js      jetstream.JetStream // pulls the jobs
	pub     jetstream.JetStream // publishes receipts and dead letters; js by default
	store   Store
	senders map[Route]Sender
	log     *zap.Logger
	m       *metrics
	gates   gates
	health  *health
	calls   chan struct{} // a slot per provider call in flight
	now     func() time.Time
}

// Option configures rare seams of a Worker.
type Option func(*Worker)

// WithClock replaces the wall clock.
func WithClock(now func() time.Time) Option { return func(w *Worker) { w.now = now } }

// WithPublisher publishes receipts and dead letters through pub instead
// of the JetStream context the jobs are pulled with. On a connection of its
// own their publish acks do not share the pull's traffic: with both on one
// connection, a replica at thousands of jobs in flight saw its pull
// iterator stall for a second at a time.
func WithPublisher(pub jetstream.JetStream) Option { return func(w *Worker) { w.pub = pub } }

// WithRegisterer registers the worker's metrics with reg instead of a
// private registry.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(w *Worker) { w.m = newMetrics(reg) }
}

// New returns a Worker. senders maps each configured (platform, app) to its
// provider; jobs naming any other app are dead-lettered as unknown_app. A
// nil logger discards logs.
func New(cfg Config, js jetstream.JetStream, store Store, senders map[Route]Sender, log *zap.Logger, opts ...Option) (*Worker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("worker config: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	w := &Worker{
		cfg:     cfg,
		js:      js,
		pub:     js,
		store:   store,
		senders: senders,
		log:     log.With(zap.String("component", "worker")),
		calls:   make(chan struct{}, cfg.Concurrency),
		now:     time.Now,
	}
	for _, o := range opts {
		o(w)
	}
	if w.m == nil {
		w.m = newMetrics(prometheus.NewRegistry())
	}
	w.gates = gates{m: map[Route]*gate{}, mk: func() *gate {
		return newGate(cfg.BreakerFailures, cfg.BreakerCooldown, cfg.BreakerMax, cfg.RequestTimeout+5*time.Second)
	}}
	w.health = newHealth(store, w.m, w.log)
	return w, nil
}

// Ready reports why the worker should not get traffic, or nil.
func (w *Worker) Ready() error { return w.health.ready() }

// Run pulls and handles jobs until ctx is cancelled, then stops pulling,
// hands back what it pulled but did not start, lets in-flight jobs finish
// within ShutdownGrace, hands back the rest and returns nil.
func (w *Worker) Run(ctx context.Context) error {
	cons, err := w.js.Consumer(ctx, w.cfg.Stream, w.cfg.Consumer)
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", w.cfg.Consumer, w.cfg.Stream, err)
	}
	w.warm(ctx)
	iter, err := cons.Messages(PullOptions(w.cfg.PullBatch)...)
	if err != nil {
		return fmt.Errorf("pull from %s: %w", w.cfg.Consumer, err)
	}
	stopPulling := context.AfterFunc(ctx, iter.Drain)
	defer stopPulling()

	// Jobs get their own context: shutdown does not cancel them until the
	// grace period is over.
	jobCtx, cancelJobs := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelJobs(nil)

	healthCtx, stopHealth := context.WithCancel(ctx)
	defer stopHealth()
	var healthWG sync.WaitGroup
	healthWG.Add(1)
	go func() {
		defer healthWG.Done()
		w.health.run(healthCtx)
	}()

	// A fixed pool of handlers, one per message the worker may hold. Each
	// pulls its next message itself, when it is free: no dispatcher
	// goroutine has to be scheduled between the iterator and the handlers
	// (with thousands of runnable goroutines it would be the bottleneck),
	// and no goroutine per message grows a fresh stack for every job.
	// Half a pull batch beyond the call slots covers the claims and the
	// settling that overlap the calls (at 100 ms a call, a few dozen); a
	// full batch measured no faster and held 4–6 MiB more.
	held := w.cfg.Concurrency + (w.cfg.PullBatch+1)/2
	var (
		handlers sync.WaitGroup
		stopOnce sync.Once
		runErr   error // why pulling stopped, if not shutdown
	)
	stop := func(err error) {
		stopOnce.Do(func() { runErr = err })
		iter.Stop()
	}
	w.log.Info("worker started",
		zap.String("instance", w.cfg.Instance), zap.String("stream", w.cfg.Stream),
		zap.String("consumer", w.cfg.Consumer), zap.Int("concurrency", w.cfg.Concurrency))
	for range held {
		handlers.Go(func() { w.pullAndHandle(ctx, jobCtx, iter, stop) })
	}

	done := make(chan struct{})
	go func() { handlers.Wait(); close(done) }()
	select {
	case <-ctx.Done(): // shutdown: the iterator drains, handlers finish
	case <-done: // the iterator stopped by itself
	}
	timer := time.NewTimer(w.cfg.ShutdownGrace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		w.log.Warn("shutdown grace over, handing back in-flight jobs", zap.Duration("grace", w.cfg.ShutdownGrace))
		cancelJobs(ErrShutdownGrace)
		<-done
	}
	stopHealth()
	healthWG.Wait()
	w.log.Info("worker stopped", zap.String("instance", w.cfg.Instance), zap.Error(runErr))
	return runErr
}

// pullAndHandle is one handler: it takes the next message when it is free
// and handles it, until the iterator is closed. Once ctx ends (the iterator
// is draining) the messages the client still buffers are handed back
// untouched.
func (w *Worker) pullAndHandle(ctx, jobCtx context.Context, iter jetstream.MessagesContext, stop func(error)) {
	// The handler's own child of jobCtx: each job's contexts (the call's
	// deadline) register with it, not all at once with the shared jobCtx,
	// which would serialise every handler on its lock.
	jobCtx, cancel := context.WithCancel(jobCtx)
	defer cancel()
	for {
		// Store down: pull nothing until it is back (or shutdown drains).
		_ = w.health.waitUp(ctx)
		msg, err := iter.Next()
		switch {
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			return
		case errors.Is(err, jetstream.ErrConsumerDeleted):
			// Nothing will arrive again: stop, so the process restarts and
			// recreates the consumer.
			stop(fmt.Errorf("consumer %s: %w", w.cfg.Consumer, err))
			return
		case err != nil:
			// Missed heartbeats while NATS reconnects, a consumer being
			// recreated: the iterator recovers by itself. Do not spin.
			w.log.Warn("pull", zap.Error(err))
			select {
			case <-time.After(250 * time.Millisecond):
			case <-ctx.Done():
			}
		case ctx.Err() != nil:
			// Pulled after shutdown began: hand it back untouched.
			_ = msg.Nak()
		default:
			w.handle(jobCtx, msg)
		}
	}
}

// warm pings the store and readies every sender that can be, within one
// request timeout. A sender that cannot is only logged: its first job will
// try again.
func (w *Worker) warm(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	var wg sync.WaitGroup
	// A store that is down holds the pulling back from the start; one that
	// answers times a round trip while nothing else is queued (see
	// redisstore's clock estimate).
	wg.Go(func() {
		if err := w.store.Ping(ctx); err != nil {
			w.health.failed(err)
		}
	})
	for route, s := range w.senders {
		if wr, ok := s.(Warmer); ok {
			wg.Go(func() {
				if err := wr.Warm(ctx); err != nil {
					w.log.Warn("sender not warmed", zap.String("platform", route.Platform),
						zap.String("app", route.App), zap.Error(err))
				}
			})
		}
	}
	wg.Wait()
}

// PullOptions are the pull iterator's settings for batch messages kept
// requested ahead. Pull requests expire after 5 s. The server sends a
// heartbeat every 500 ms while a request waits with nothing to deliver, and
// two missed heartbeats make the client forget what it thinks is still
// requested and ask again: when the client's count of requested messages
// drifts above the server's, the iterator waits for messages that will
// never come, and this bounds that wait to a second instead of the
// 2 × 2.5 s the defaults give.
func PullOptions(batch int) []jetstream.PullMessagesOpt {
	return []jetstream.PullMessagesOpt{
		jetstream.PullMaxMessages(batch),
		jetstream.PullExpiry(5 * time.Second),
		jetstream.PullHeartbeat(500 * time.Millisecond),
	}
}

// delivery is one message being handled.
type delivery struct {
	msg      jetstream.Msg
	meta     *jetstream.MsgMetadata
	j        job.Job
	platform string // from the subject: the job may not say
	owner    string
	base     *zap.Logger
	log      *zap.Logger // base with the job's fields, built by logAt

	claimed  bool // we hold the job's lease in the store
	attempts int
	first    time.Time
	alert    bool // the provider asked for its failure to be logged at error level
}

func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	w.m.inFlight.Inc()
	defer w.m.inFlight.Dec()

	d := &delivery{msg: msg, base: w.log}
	meta, err := msg.Metadata()
	if err != nil {
		// Not a JetStream message: nothing to ack, nothing to lose.
		w.log.Error("message without metadata", zap.String("subject", msg.Subject()), zap.Error(err))
		return
	}
	d.meta = meta
	d.owner = w.cfg.Instance + ":" + strconv.FormatUint(meta.Sequence.Stream, 10) + ":" + strconv.FormatUint(meta.NumDelivered, 10)

	d.platform = job.PlatformOf(msg.Subject())
	d.j, err = job.Decode(msg.Data(), d.platform)
	if err != nil {
		w.deadLetter(ctx, d, job.ReasonMalformedJob, retry.Detail{Message: err.Error()})
		return
	}
	route := Route{Platform: d.j.Platform, App: d.j.App}
	sender, ok := w.senders[route]
	if !ok {
		w.deadLetter(ctx, d, job.ReasonUnknownApp,
			retry.Detail{Message: fmt.Sprintf("app %q is not configured for %s", d.j.App, d.j.Platform)})
		return
	}
	if err := sender.Validate(d.j); err != nil {
		dec := retry.Decide(err)
		reason := dec.Reason
		if dec.Action != retry.DeadLetter || reason == "" {
			reason = job.ReasonInvalidTemplateData
		}
		if dec.Detail.Message == "" {
			dec.Detail.Message = err.Error()
		}
		w.deadLetter(ctx, d, reason, dec.Detail)
		return
	}
	if w.expired(ctx, d) {
		return
	}
	g := w.gates.get(route)
	if ok, wait := g.allow(w.now()); !ok {
		w.handBack(d, outcomeHeld, wait, "app held")
		return
	}

	if !w.admit(ctx, d) {
		return
	}
	if w.expired(ctx, d) {
		return
	}
	select {
	case w.calls <- struct{}{}:
	case <-ctx.Done():
		w.release(d)
		w.handBack(d, outcomeHandedBack, 0, "shutdown before the call")
		return
	}
	res, err := w.call(ctx, d, sender)
	<-w.calls
	w.settle(ctx, d, g, res, err)
}

// expired dead-letters the job if its not_after has passed, and reports
// whether it did. It is checked before the claim and again after it, since
// a rate-limit wait can outlast the deadline.
func (w *Worker) expired(ctx context.Context, d *delivery) bool {
	if !d.j.Expired(w.now()) {
		return false
	}
	w.deadLetter(ctx, d, job.ReasonExpired, retry.Detail{Message: "not_after " + d.j.NotAfter.Format(time.RFC3339) + " passed"})
	return true
}

// call makes the provider call; the caller holds a call slot.
func (w *Worker) call(ctx context.Context, d *delivery, sender Sender) (job.Result, error) {
	callCtx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	start := time.Now()
	res, err := sender.Send(callCtx, d.j)
	cancel()
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	w.m.sendSeconds.WithLabelValues(d.j.Platform, outcome).Observe(time.Since(start).Seconds())
	d.attempts++
	return res, err
}

// admit claims the job in the store and waits out its rate-limit slot. It
// reports whether the caller should go on and send.
func (w *Worker) admit(ctx context.Context, d *delivery) bool {
	c := Claim{
		Key:   d.j.Key(),
		Owner: d.owner,
		// The rate-limit wait, the wait for a call slot (at most about one
		// request timeout: every call ends by then), the call, and margin.
		Lease:   w.cfg.MaxRateWait + 2*w.cfg.RequestTimeout + 5*time.Second,
		TTL:     w.cfg.DedupTTL,
		MaxWait: w.cfg.MaxRateWait,
	}
	if w.cfg.RateLimit != nil {
		if l, ok := w.cfg.RateLimit(d.j.Platform, d.j.App, d.j.TemplateID); ok {
			c.Limit = &l
		}
	}
	adm, err := w.store.Admit(ctx, c)
	if err != nil {
		w.health.failed(err)
		w.handBack(d, outcomeHeld, time.Second, "store unavailable", zap.Error(err))
		return false
	}
	switch adm.Status {
	case AlreadySent:
		w.m.jobs.WithLabelValues(d.j.Platform, d.j.TemplateID, outcomeDuplicate).Inc()
		if sent := adm.Delivered; w.cfg.Receipts && sent.Seq == d.meta.Sequence.Stream {
			// This very message was delivered and its holder died before
			// acking it, perhaps before the receipt: publish it again.
			// Nats-Msg-Id keeps the stream from storing it twice.
			d.logAt(zap.InfoLevel, "redelivered after delivery: receipt published again, acked without a call")
			w.receipt(ctx, d, sent)
		} else {
			d.logAt(zap.InfoLevel, "duplicate: already delivered, acked without a call")
		}
		w.ack(d)
		return false
	case Busy:
		// Look again soon: the holder usually finishes well before its
		// lease ends, and then this copy is acked as a duplicate.
		w.handBack(d, outcomeHeld, min(adm.Wait, time.Second), "another delivery holds the job")
		return false
	case Throttled:
		w.m.rateWaits.WithLabelValues(d.j.Platform).Inc()
		w.handBack(d, outcomeHeld, adm.Wait, "rate limited")
		return false
	}
	d.claimed, d.attempts, d.first = true, adm.Attempts, adm.FirstAttempt
	if adm.Wait > 0 {
		w.m.rateWaits.WithLabelValues(d.j.Platform).Inc()
		w.m.rateWaitSec.Observe(adm.Wait.Seconds())
		if err := w.waitKeepingAlive(ctx, d.msg, adm.Wait); err != nil {
			w.release(d)
			w.handBack(d, outcomeHandedBack, 0, "shutdown during rate-limit wait")
			return false
		}
	}
	return true
}

// settle acts on a call's outcome: delivered, retried, held or
// dead-lettered.
func (w *Worker) settle(ctx context.Context, d *delivery, g *gate, res job.Result, err error) {
	route := Route{d.j.Platform, d.j.App}
	if err == nil {
		if g.success() {
			w.m.appPaused.WithLabelValues(route.Platform, route.App).Set(0)
			d.logAt(zap.InfoLevel, "app resumed: probe delivered")
		}
		w.delivered(ctx, d, res)
		return
	}
	dec := retry.Decide(err)
	d.alert = dec.Alert
	if ctx.Err() != nil {
		// Cancelled by the end of the shutdown grace: the outcome is
		// unknown, so the call counts, and the job goes back to the queue.
		w.fail(ctx, d)
		w.handBack(d, outcomeHandedBack, 0, "shutdown during send", zap.Error(err))
		return
	}
	switch dec.Action {
	case retry.DeadLetter:
		if g.success() {
			w.m.appPaused.WithLabelValues(route.Platform, route.App).Set(0)
			d.logAt(zap.InfoLevel, "app resumed: the probe was answered")
		}
		w.deadLetter(ctx, d, dec.Reason, detailOf(dec, err))
	case retry.Throttle, retry.Pause:
		w.release(d)
		d.attempts-- // holds spend no attempt
		hold := g.pause(w.now(), dec.Delay, dec.Action.String())
		w.m.appPaused.WithLabelValues(route.Platform, route.App).Set(1)
		d.logAt(zap.ErrorLevel, "app held: platform refused the app, not the job",
			zap.String("action", dec.Action.String()), zap.Duration("hold", hold),
			zap.String("code", dec.Detail.Code), zap.Error(err))
		w.handBack(d, outcomeHeld, hold, "app held")
	default:
		if opened, hold := g.failure(w.now()); opened {
			w.m.appPaused.WithLabelValues(route.Platform, route.App).Set(1)
			d.logAt(zap.ErrorLevel, "breaker open: repeated transient failures", zap.Duration("hold", hold), zap.Error(err))
		}
		n := w.fail(ctx, d)
		limit, reason := w.cfg.MaxAttempts, job.ReasonRetriesExhausted
		if dec.Limit > 0 && dec.Limit <= limit {
			limit, reason = dec.Limit, dec.Reason
		}
		if n >= limit {
			w.deadLetter(ctx, d, reason, detailOf(dec, err))
			return
		}
		delay := max(w.cfg.Retry.Backoff(n), dec.Delay)
		d.logFailure(zap.WarnLevel, "transient failure, retrying", zap.Int("attempt", n), zap.Duration("delay", delay),
			zap.String("code", dec.Detail.Code), zap.Error(err))
		w.nak(d, outcomeRetry, delay)
	}
}

func detailOf(dec retry.Decision, err error) retry.Detail {
	dt := dec.Detail
	if dt.Message == "" && dt.Code == "" {
		dt.Message = err.Error()
	}
	return dt
}

// fail counts a failed call in the store and returns the attempts so far.
// If the store is down it falls back to the local count: the job is
// redelivered either way.
func (w *Worker) fail(ctx context.Context, d *delivery) int {
	n, err := w.store.Fail(context.WithoutCancel(ctx), d.j.Key(), d.owner)
	if err != nil {
		w.health.failed(err)
		d.logAt(zap.WarnLevel, "could not count the failed attempt", zap.Error(err))
		return d.attempts
	}
	d.claimed = false
	d.attempts = n
	return n
}

func (w *Worker) release(d *delivery) {
	if !d.claimed {
		return
	}
	if err := w.store.Release(context.Background(), d.j.Key(), d.owner); err != nil {
		w.health.failed(err)
		d.logAt(zap.WarnLevel, "could not release the lease; it expires by itself", zap.Error(err))
	}
	d.claimed = false
}

// delivered records the platform's acceptance, publishes the receipt and acks.
func (w *Worker) delivered(ctx context.Context, d *delivery, res job.Result) {
	// The sent marker closes the only duplicate window: keep trying briefly
	// even while shutting down.
	markCtx := context.WithoutCancel(ctx)
	sent := Delivery{Seq: d.meta.Sequence.Stream, MsgID: res.MsgID, Attempts: d.attempts, At: w.now()}
	var err error
	for i := range 3 {
		if err = w.store.MarkSent(markCtx, d.j.Key(), w.cfg.DedupTTL, sent); err == nil {
			break
		}
		time.Sleep(time.Duration(100*(i+1)) * time.Millisecond)
	}
	if err != nil {
		w.health.failed(err)
		// The job was delivered: acking is right. Only a republish of the
		// same id could now be sent again; the lease guards it meanwhile.
		d.logAt(zap.ErrorLevel, "delivered but the sent marker could not be recorded", zap.Error(err))
	}
	if w.cfg.Receipts {
		w.receipt(ctx, d, sent)
	}
	w.m.jobs.WithLabelValues(d.j.Platform, d.j.TemplateID, outcomeDelivered).Inc()
	d.logAt(zap.DebugLevel, "delivered", zap.Int("attempts", d.attempts), zap.String("msgid", res.MsgID))
	w.ack(d)
}

func (w *Worker) receipt(ctx context.Context, d *delivery, sent Delivery) {
	r := job.Receipt{
		ID: d.j.ID, Platform: d.j.Platform, App: d.j.App, TemplateID: d.j.TemplateID,
		ToUser: d.j.ToUser, Attempts: sent.Attempts, MsgID: sent.MsgID, SentAt: sent.At.UTC(), Worker: w.cfg.Instance,
	}
	msg, err := encodeMsg(job.SentSubject(d.j.Platform), r)
	if err == nil {
		msg.Header.Set(job.HeaderMsgID, "sent:"+d.j.Key())
		err = w.publishReceipt(ctx, d, msg)
	}
	if err != nil {
		d.logAt(zap.WarnLevel, "delivery receipt not published", zap.Error(err))
	}
}

// publishReceipt stores a receipt, trying again through a JetStream
// reconnect or leader election (which outlast one publish) for up to
// receiptBudget, keeping the job's ack deadline alive meanwhile. Nats-Msg-Id
// keeps a retried receipt from being stored twice. It stops trying when ctx
// ends (the shutdown grace is over), but an attempt under way is not cut
// short.
func (w *Worker) publishReceipt(ctx context.Context, d *delivery, msg *nats.Msg) error {
	deadline := time.Now().Add(receiptBudget)
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(2*time.Second, time.Until(deadline)))
		_, err := w.pub.PublishMsg(pctx, msg)
		cancel()
		wait := min(time.Duration(attempt)*100*time.Millisecond, time.Second)
		if err == nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		_ = d.msg.InProgress()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// receiptBudget is how long a delivery receipt is retried: longer than a
// JetStream leader election.
const receiptBudget = 20 * time.Second

// deadLetter stores the job in the dead-letter stream, then acks it. If the
// publish fails the job is handed back, never dropped.
func (w *Worker) deadLetter(ctx context.Context, d *delivery, reason string, dt retry.Detail) {
	dl := w.deadLetterOf(d, reason, dt)
	msg, err := encodeMsg(job.DeadSubject(dl.Platform, reason), dl)
	if err == nil {
		msg.Header.Set(job.HeaderReason, reason)
		msg.Header.Set(job.HeaderCode, dt.Code)
		msg.Header.Set(job.HeaderMsgID, "dead:"+w.cfg.Stream+":"+strconv.FormatUint(d.meta.Sequence.Stream, 10))
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_, err = w.pub.PublishMsg(pctx, msg)
		cancel()
	}
	if err != nil {
		w.release(d)
		d.logAt(zap.ErrorLevel, "dead letter not stored, job handed back", zap.String("reason", reason), zap.Error(err))
		w.nak(d, outcomeHandedBack, w.cfg.Retry.Backoff(1))
		return
	}
	if d.claimed || d.attempts > 0 {
		if err := w.store.Forget(context.WithoutCancel(ctx), d.j.Key()); err != nil {
			d.logAt(zap.WarnLevel, "dead-lettered job state not cleared; a replay waits for its lease", zap.Error(err))
		}
	}
	w.m.deadLetters.WithLabelValues(dl.Platform, reason).Inc()
	w.m.jobs.WithLabelValues(dl.Platform, d.j.TemplateID, outcomeDeadLetter).Inc()
	d.logFailure(zap.WarnLevel, "dead-lettered", zap.String("reason", reason), zap.String("code", dt.Code),
		zap.String("field", dt.Field), zap.Int("attempts", d.attempts))
	// Term, not TermWithReason: servers before 2.10.4 ignore a term with a
	// reason and would redeliver the job for ever. The reason is in the
	// dead letter.
	if err := d.msg.Term(); err != nil {
		d.logAt(zap.WarnLevel, "term after dead letter", zap.Error(err))
	}
}

func (w *Worker) deadLetterOf(d *delivery, reason string, dt retry.Detail) job.DeadLetter {
	platform := d.j.Platform
	if platform != job.WeChat && platform != job.Alipay {
		platform = job.PlatformOf(d.msg.Subject())
		if platform != job.WeChat && platform != job.Alipay {
			platform = job.UnknownPlatform
		}
	}
	dl := job.DeadLetter{
		Reason: reason, Platform: platform, App: d.j.App, TemplateID: d.j.TemplateID,
		ToUser: d.j.ToUser, ID: d.j.ID, Code: dt.Code, Message: dt.Message, Field: dt.Field,
		Attempts: d.attempts, DeadAt: w.now().UTC(), Worker: w.cfg.Instance,
		Source: job.Source{Stream: d.meta.Stream, Subject: d.msg.Subject(), Sequence: d.meta.Sequence.Stream},
	}
	if !d.first.IsZero() && d.attempts > 0 {
		first := d.first.UTC()
		dl.FirstAttemptAt = &first
	}
	if data := d.msg.Data(); isJSONObject(data) {
		dl.Job = data
	} else {
		dl.Raw = data
	}
	if h := d.msg.Headers(); h != nil {
		dl.Replays, _ = strconv.Atoi(h.Get(job.HeaderReplays))
	}
	return dl
}

// logAt logs with the job's fields. They are attached on first use: most
// deliveries log nothing at the enabled levels.
func (d *delivery) logAt(level zapcore.Level, msg string, fields ...zap.Field) {
	if !d.base.Core().Enabled(level) {
		return
	}
	if d.log == nil {
		d.log = d.base.With(
			zap.String("job_id", d.j.ID), zap.String("platform", d.platform),
			zap.String("app", d.j.App), zap.String("template_id", d.j.TemplateID),
			zap.Uint64("stream_seq", d.meta.Sequence.Stream), zap.Uint64("delivery", d.meta.NumDelivered))
	}
	d.log.Log(level, msg, fields...)
}

// logFailure logs at level, or at error level when the provider flagged
// the failure with retry.Alert.
func (d *delivery) logFailure(level zapcore.Level, msg string, fields ...zap.Field) {
	if d.alert {
		level = zap.ErrorLevel
	}
	d.logAt(level, msg, fields...)
}

func (w *Worker) ack(d *delivery) {
	if err := d.msg.Ack(); err != nil {
		d.logAt(zap.WarnLevel, "ack", zap.Error(err))
	}
}

// handBack returns the job to the queue without counting an attempt.
func (w *Worker) handBack(d *delivery, outcome string, delay time.Duration, why string, fields ...zap.Field) {
	d.logAt(zap.DebugLevel, "handed back: "+why, append(fields, zap.Duration("delay", delay))...)
	w.nak(d, outcome, delay)
}

func (w *Worker) nak(d *delivery, outcome string, delay time.Duration) {
	w.m.jobs.WithLabelValues(d.j.Platform, d.j.TemplateID, outcome).Inc()
	if delay > 0 {
		// Spread redeliveries so held jobs do not return in one wave.
		delay += rand.N(delay/10 + time.Millisecond)
	}
	if err := d.msg.NakWithDelay(delay); err != nil {
		d.logAt(zap.WarnLevel, "nak", zap.Error(err))
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
