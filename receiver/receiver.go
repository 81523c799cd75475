package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/heraldhq/herald/producer/job"
)

// Defaults of [Config].
const (
	// DefaultDeadline leaves WeChat's 5-second answer deadline a margin
	// for the network both ways.
	DefaultDeadline = 3 * time.Second
	// DefaultMaxBody is far above any subscription push (well under 4 KiB
	// for a handful of items, encrypted).
	DefaultMaxBody = 64 << 10
)

// Config tunes a [Server].
type Config struct {
	// Stream is the stream events must be stored in:
	// NOTIFY_SUBSCRIPTIONS. Required.
	Stream string
	// Deadline bounds the handling of one request, from its arrival to
	// its answer. Default [DefaultDeadline].
	Deadline time.Duration
	// MaxBody is the largest body read, in bytes. Default
	// [DefaultMaxBody].
	MaxBody int64
}

func (c *Config) setDefaults() {
	if c.Deadline <= 0 {
		c.Deadline = DefaultDeadline
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
}

// Server serves the push URLs of its platforms. It is an http.Handler:
// paths under no platform's prefix answer 404, so it can be mounted beside
// /metrics and the health checks.
type Server struct {
	cfg      Config
	js       jetstream.JetStream
	log      *zap.Logger
	sampled  *zap.Logger // refusals and store failures: a flood is sampled
	m        *metrics
	reg      prometheus.Registerer
	now      func() time.Time
	mux      *http.ServeMux
	prefixes []string
}

var _ http.Handler = (*Server)(nil)

// Option configures rare seams of a Server.
type Option func(*Server)

// WithRegisterer registers the server's metrics with reg instead of a
// private registry.
func WithRegisterer(reg prometheus.Registerer) Option { return func(s *Server) { s.reg = reg } }

// WithClock replaces the wall clock that timestamps are checked against
// and events are stamped with.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// New returns a Server storing the events of platforms' pushes through js.
// A nil logger discards logs.
func New(cfg Config, js jetstream.JetStream, platforms []Platform, log *zap.Logger, opts ...Option) (*Server, error) {
	cfg.setDefaults()
	if cfg.Stream == "" {
		return nil, errors.New("receiver: stream is required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{cfg: cfg, js: js, log: log.With(zap.String("component", "receiver")), now: time.Now, mux: http.NewServeMux()}
	for _, o := range opts {
		o(s)
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	s.m = newMetrics(s.reg)
	s.sampled = s.log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, 5, 0)
	}))
	for _, p := range platforms {
		if err := s.mount(p); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// mount serves p under its prefix.
func (s *Server) mount(p Platform) error {
	prefix := p.Prefix()
	if p.Name() == "" || len(prefix) < 3 || prefix[0] != '/' || prefix[len(prefix)-1] != '/' || strings.ContainsAny(prefix, "{}") {
		return fmt.Errorf("receiver: platform %q: prefix %q must be /name/", p.Name(), prefix)
	}
	if slices.Contains(s.prefixes, prefix) {
		return fmt.Errorf("receiver: platform %q: prefix %q is taken", p.Name(), prefix)
	}
	s.prefixes = append(s.prefixes, prefix)
	reasons := slices.Concat([]string{ReasonTooLarge, ReasonUnreadable}, p.Reasons())
	apps := make(map[string]bool)
	for _, a := range p.Apps() {
		apps[a] = true
	}
	s.m.init(p, reasons)
	s.mux.Handle(prefix, &handler{s: s, p: p, apps: apps, reasons: reasons})
	return nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// handler serves one platform's apps.
type handler struct {
	s       *Server
	p       Platform
	apps    map[string]bool
	reasons []string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s, platform := h.s, h.p.Name()
	start := time.Now()
	defer func() { s.m.seconds.WithLabelValues(platform).Observe(time.Since(start).Seconds()) }()
	app := strings.TrimPrefix(r.URL.Path, h.p.Prefix())
	if !h.apps[app] {
		s.m.requests.WithLabelValues(platform, "", "404").Inc()
		http.Error(w, "no push URL here", http.StatusNotFound)
		return
	}
	code := h.serve(w, r, app, start)
	s.m.requests.WithLabelValues(platform, app, strconv.Itoa(code)).Inc()
}

// serve answers one request to app's URL and returns the status.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, app string, start time.Time) int {
	s, platform := h.s, h.p.Name()
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return http.StatusMethodNotAllowed
	}
	deadline := start.Add(s.cfg.Deadline)
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()
	// A body trickling in must not outlive the deadline either.
	_ = http.NewResponseController(w).SetReadDeadline(deadline)
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
	now := s.now()

	push, err := h.p.Open(r.WithContext(ctx), app, now)
	if err != nil {
		var ref *Refusal
		if !errors.As(err, &ref) {
			ref = &Refusal{Status: http.StatusBadRequest, Reason: ReasonUnreadable, Err: err}
		}
		reason := ref.Reason
		if !slices.Contains(h.reasons, reason) {
			reason = ReasonUnreadable
		}
		status := ref.Status
		if status != http.StatusUnauthorized {
			status = http.StatusBadRequest
		}
		s.m.refused.WithLabelValues(platform, app, reason).Inc()
		s.sampled.Warn("push refused", zap.String("platform", platform), zap.String("app", app),
			zap.String("reason", reason), zap.Int("status", status), zap.Error(ref.Err))
		http.Error(w, http.StatusText(status), status)
		return status
	}
	if push.Ignored != "" {
		kind := IgnoredEvent
		if push.Ignored == IgnoredMessage {
			kind = IgnoredMessage
		}
		s.m.ignored.WithLabelValues(platform, app, kind).Inc()
	}
	for i := range push.Events {
		e := &push.Events[i]
		e.Platform, e.App, e.ReceivedAt = platform, app, now.UTC()
	}
	if err := h.store(ctx, app, push.Events); err != nil {
		s.sampled.Error("push not stored: answered 503 for the platform to retry", zap.String("platform", platform),
			zap.String("app", app), zap.Int("events", len(push.Events)), zap.Error(err))
		http.Error(w, "events not stored, retry", http.StatusServiceUnavailable)
		return http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write([]byte(push.Answer))
	return http.StatusOK
}

// store publishes the events, in order, each with its Nats-Msg-Id, and
// waits for each acknowledgement.
func (h *handler) store(ctx context.Context, app string, events []job.SubscriptionEvent) error {
	s := h.s
	for i := range events {
		e := &events[i]
		if !slices.Contains(job.SubscriptionEvents, e.Event) {
			return fmt.Errorf("event %d: unknown kind %q", i, e.Event)
		}
		data, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		msg := nats.NewMsg(job.SubscriptionSubject(e.Platform, e.Event))
		msg.Data = data
		msg.Header.Set(job.HeaderMsgID, e.DedupID())
		ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(s.cfg.Stream))
		if err != nil {
			return fmt.Errorf("publish %s: %w", msg.Subject, err)
		}
		result := resultStored
		if ack.Duplicate {
			result = resultDuplicate
		}
		s.m.events.WithLabelValues(e.Platform, app, e.Event, result).Inc()
	}
	return nil
}
