package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/heraldhq/herald/retry"
)

// ErrShutdownGrace is the cause of the context handed to in-flight jobs when
// they outlast Config.ShutdownGrace.
var ErrShutdownGrace = errors.New("shutdown grace period over")

// Config tunes a Worker. Zero fields take the defaults noted.
type Config struct {
	Instance string // this replica's name, in dead letters and receipts; required
	Stream   string // NOTIFY_SEND
	Consumer string // herald-worker
	// DeadStream and EventsStream are the streams dead letters and receipts
	// go to (NOTIFY_DEAD, NOTIFY_EVENTS): EnsureStream creates them again
	// by these names when they are missing.
	DeadStream   string
	EventsStream string
	Receipts     bool // publish delivery receipts to notify.sent.<platform>
	// ReceiptWait is how long a delivered job waits, at most, for its
	// receipt to be stored before it is acked anyway (the receipt is then
	// kept and retried in the background); 2s.
	ReceiptWait time.Duration
	// MaxPendingReceipts bounds the receipts kept for a retry; beyond it
	// they are given up (counted and logged). 100000.
	MaxPendingReceipts int
	// EnsureStream creates a stream of herald's from the config when it is
	// missing (someone deleted it); nil leaves it missing.
	EnsureStream func(ctx context.Context, name string) error
	// Subscriptions is the subscription ledger's mode (contract section
	// 7): "" is off. With observe or enforce the Store must be a Ledger.
	Subscriptions SubscriptionMode
	// TrustCounts makes enforce skip a granted user with no grant known to
	// be left, as well as rejected and exhausted ones.
	TrustCounts bool
	// StatusTTL is how long a delivered job's message id is remembered for
	// its final result to be joined; 24h.
	StatusTTL time.Duration
	// LongTerm reports the long-term templates, whose grants a send never
	// takes; nil: none.
	LongTerm func(platform, app, templateID string) bool
	// SubscriptionsStream and LedgerConsumer are where the ledger's events
	// come from (NOTIFY_SUBSCRIPTIONS, herald-ledger).
	SubscriptionsStream string
	LedgerConsumer      string
	// Tracer, when set, traces every job: a span per job, continuing the
	// producer's W3C traceparent header, with spans for the claim, the
	// rate-limit wait, the provider call and the settlement; receipts, dead
	// letters and status events carry the trace on. nil: no traces, at no
	// cost.
	Tracer trace.Tracer
	// KnownTemplate reports whether a template may be a metric label: one
	// the config names. Any other is counted as "other", so producers
	// cannot grow the metrics. nil: every template is "other".
	KnownTemplate func(platform, app, templateID string) bool
	Concurrency   int // provider calls in flight; 256
	MaxAttempts   int // provider calls before retries_exhausted; 8
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
	// StreamStatsEvery is how often the worker reads its streams' sizes
	// into herald_stream_bytes and herald_stream_max_bytes; 30s.
	StreamStatsEvery time.Duration
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
	if c.DeadStream == "" {
		c.DeadStream = "NOTIFY_DEAD"
	}
	if c.EventsStream == "" {
		c.EventsStream = "NOTIFY_EVENTS"
	}
	if c.Subscriptions == "" {
		c.Subscriptions = SubscriptionsOff
	}
	def(&c.StatusTTL, 24*time.Hour)
	if c.SubscriptionsStream == "" {
		c.SubscriptionsStream = "NOTIFY_SUBSCRIPTIONS"
	}
	if c.LedgerConsumer == "" {
		c.LedgerConsumer = "herald-ledger"
	}
	if c.MaxPendingReceipts <= 0 {
		c.MaxPendingReceipts = 100_000
	}
	def(&c.ReceiptWait, 2*time.Second)
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
	def(&c.StreamStatsEvery, 30*time.Second)
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
	return c.MaxHeld() + c.PullBatch
}

// MaxHeld is how many messages a replica's handlers hold at most, one each:
// the call slots and half a pull batch beyond them. A job the platform has
// accepted but whose sent marker is not yet written is in one of them, so
// a replica killed at any moment can cause at most this many duplicates.
func (c Config) MaxHeld() int {
	c.setDefaults()
	return c.Concurrency + (c.PullBatch+1)/2
}

// SubscriptionMode is what the worker does with the subscription ledger.
type SubscriptionMode string

// The ledger's modes (contract section 7).
const (
	// SubscriptionsOff keeps no ledger and runs no ledger consumer.
	SubscriptionsOff SubscriptionMode = "off"
	// SubscriptionsObserve keeps the ledger and skips nothing; a metric
	// counts the jobs enforce would have skipped.
	SubscriptionsObserve SubscriptionMode = "observe"
	// SubscriptionsEnforce dead-letters, without a call, a job for a user
	// who rejected the template or has no grant left.
	SubscriptionsEnforce SubscriptionMode = "enforce"
)

// Validate reports a config the worker cannot run with.
func (c *Config) Validate() error {
	var errs []error
	switch c.Subscriptions {
	case SubscriptionsOff, SubscriptionsObserve, SubscriptionsEnforce:
	default:
		errs = append(errs, fmt.Errorf("subscription mode %q is not off, observe or enforce", c.Subscriptions))
	}
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
	pub     publisher           // publishes dead letters; js by default
	out     *outbox             // stores receipts
	ensure  *ensurer            // creates deleted streams again
	store   Store
	ledger  Ledger // the store's ledger, when the mode is not off
	senders map[Route]Sender
	log     *zap.Logger
	m       *metrics
	gates   gates
	health  *health
	calls   chan struct{} // a slot per provider call in flight
	now     func() time.Time
	pubJS   jetstream.JetStream // set by WithPublisher
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
func WithPublisher(pub jetstream.JetStream) Option { return func(w *Worker) { w.pubJS = pub } }

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
		pubJS:   js,
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
	if cfg.Subscriptions != SubscriptionsOff {
		l, ok := store.(Ledger)
		if !ok {
			return nil, fmt.Errorf("subscription mode %s needs a store with a ledger; %T has none", cfg.Subscriptions, store)
		}
		w.ledger = l
	}
	for _, name := range w.streams() {
		w.m.streamBytes.WithLabelValues(name)
		w.m.streamMaxBytes.WithLabelValues(name)
	}
	w.pub = w.pubJS
	// Receipts are published asynchronously on the publish connection:
	// an answer that has not come within ReceiptWait is a failure, and the
	// receipt is retried.
	outJS, err := jetstream.New(w.pubJS.Conn(),
		jetstream.WithPublishAsyncTimeout(cfg.ReceiptWait),
		jetstream.WithPublishAsyncMaxPending(outboxQueue(cfg)))
	if err != nil {
		return nil, fmt.Errorf("receipt publisher: %w", err)
	}
	w.ensure = &ensurer{create: cfg.EnsureStream, log: w.log}
	w.out = newOutbox(outJS, cfg.EventsStream, w.ensure, cfg.MaxPendingReceipts, outboxQueue(cfg), w.m, w.log)
	return w, nil
}

// outboxQueue is how many receipts may await JetStream's answer at once:
// more than a replica delivers within ReceiptWait at any realistic rate.
func outboxQueue(cfg Config) int { return max(4*cfg.Concurrency, 4096) }

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
	healthWG.Go(func() { w.health.run(healthCtx) })
	healthWG.Go(func() { w.watchStreams(healthCtx) })
	// Receipts outlive the pulling: they are settled after the handlers.
	retryCtx, stopRetry := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRetry()
	var outWG sync.WaitGroup
	outWG.Go(w.out.answers)
	outWG.Go(func() { w.out.retry(retryCtx) })
	// The ledger's events stop with the pulling.
	var ledgerWG sync.WaitGroup
	if w.cfg.Subscriptions != SubscriptionsOff {
		ledgerWG.Go(func() {
			if err := w.runLedger(ctx); err != nil {
				w.log.Error("subscription ledger stopped", zap.Error(err))
			}
		})
	}

	// A fixed pool of handlers, one per message the worker may hold. Each
	// pulls its next message itself, when it is free: no dispatcher
	// goroutine has to be scheduled between the iterator and the handlers
	// (with thousands of runnable goroutines it would be the bottleneck),
	// and no goroutine per message grows a fresh stack for every job.
	// Half a pull batch beyond the call slots covers the claims and the
	// settling that overlap the calls (at 100 ms a call, a few dozen); a
	// full batch measured no faster and held 4–6 MiB more.
	held := w.cfg.MaxHeld()
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
	graceEnd := time.Now().Add(w.cfg.ShutdownGrace)
	timer := time.NewTimer(w.cfg.ShutdownGrace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		w.log.Warn("shutdown grace over, handing back in-flight jobs", zap.Duration("grace", w.cfg.ShutdownGrace))
		cancelJobs(ErrShutdownGrace)
		<-done
	}
	ledgerWG.Wait()
	// No handler publishes now. The receipts still due get what is left of
	// the grace, and at least their answers' time.
	stopRetry()
	outEnd := time.Now().Add(w.cfg.ReceiptWait)
	if graceEnd.After(outEnd) {
		outEnd = graceEnd
	}
	outCtx, cancelOut := context.WithDeadline(context.WithoutCancel(ctx), outEnd)
	w.out.close(outCtx)
	cancelOut()
	outWG.Wait()
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

// streams are the streams the worker uses (jobs, dead letters, receipts,
// and the subscription events when the ledger is on), by their names in
// the config: the only values of the stream label.
func (w *Worker) streams() []string {
	out := []string{w.cfg.Stream, w.cfg.DeadStream}
	if w.cfg.Receipts {
		out = append(out, w.cfg.EventsStream)
	}
	if w.cfg.Subscriptions != SubscriptionsOff {
		out = append(out, w.cfg.SubscriptionsStream)
	}
	return out
}

// watchStreams reads the streams' sizes into the metrics at once, then
// every StreamStatsEvery, until ctx ends: a dead-letter stream near its
// max_bytes is worth an alert before it refuses dead letters.
func (w *Worker) watchStreams(ctx context.Context) {
	t := time.NewTicker(w.cfg.StreamStatsEvery)
	defer t.Stop()
	for {
		for _, name := range w.streams() {
			w.streamStats(ctx, name)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// streamStats sets the size metrics of the stream name. While NATS cannot
// be reached they keep their last values: readiness tells that story.
func (w *Worker) streamStats(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var size, limit float64
	s, err := w.js.Stream(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
	case err != nil:
		w.log.Debug("stream info", zap.String("stream", name), zap.Error(err))
		return
	default:
		info := s.CachedInfo()
		size, limit = float64(info.State.Bytes), float64(max(info.Config.MaxBytes, 0))
	}
	w.m.streamBytes.WithLabelValues(name).Set(size)
	w.m.streamMaxBytes.WithLabelValues(name).Set(limit)
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
