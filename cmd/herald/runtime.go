package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/heraldhq/herald/config"
	"github.com/heraldhq/herald/internal/buildinfo"
	"github.com/heraldhq/herald/internal/httpclient"
	"github.com/heraldhq/herald/internal/httpserve"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/providers/alipay"
	"github.com/heraldhq/herald/providers/wechat"
	"github.com/heraldhq/herald/worker"
	"github.com/heraldhq/herald/worker/memstore"
	"github.com/heraldhq/herald/worker/redisstore"
)

// newLogger builds the process logger on standard error: JSON for
// machines, console for people. The console's level is coloured only on a
// terminal, and never when NO_COLOR is set (no-color.org). Durations carry
// their unit ("30s").
func newLogger(e *env, level, format string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	encCfg.EncodeDuration = zapcore.StringDurationEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		if isTerminal(e.stderr) && config.LookupEnv(e.environ, "NO_COLOR") == "" {
			encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		}
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("log format %q is not json or console", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(e.stderr)), lvl)), nil
}

func topologyOf(cfg *config.Config) producer.Topology {
	ledger := ""
	if cfg.SubscriptionMode() != config.SubscriptionsOff {
		ledger = cfg.Subscriptions.Consumer
	}
	return producer.Topology{
		LedgerConsumer:      ledger,
		SendStream:          cfg.NATS.Stream,
		DeadStream:          cfg.NATS.DeadStream,
		EventsStream:        cfg.NATS.EventsStream,
		Consumer:            cfg.NATS.Consumer,
		SubscriptionsStream: cfg.NATS.SubscriptionsStream,
		Replicas:            cfg.NATS.Replicas,
		DuplicateWindow:     cfg.NATS.DuplicateWindow,
		DeadMaxAge:          cfg.NATS.DeadMaxAge,
		EventsMaxAge:        cfg.NATS.EventsMaxAge,
		SubscriptionsMaxAge: cfg.NATS.SubscriptionsMaxAge,
		AckWait:             cfg.Worker.AckWait,
		MaxAckPending:       cfg.NATS.MaxAckPending,

		DeadMaxBytes:          int64(cfg.NATS.DeadMaxBytes),
		EventsMaxBytes:        int64(cfg.NATS.EventsMaxBytes),
		SubscriptionsMaxBytes: int64(cfg.NATS.SubscriptionsMaxBytes),
	}
}

// connectNATS connects to n.URL with n's credentials and TLS, reconnecting
// for ever: a worker outlives JetStream restarts. extra options come last
// and win.
func connectNATS(n config.NATS, name string, log *zap.Logger, extra ...nats.Option) (*nats.Conn, error) {
	auth, err := natsAuthOptions(n)
	if err != nil {
		return nil, err
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", zap.String("url", nc.ConnectedUrlRedacted()))
		}),
		// Asynchronous errors, e.g. a slow consumer: the client dropped
		// messages the server delivered, which come back only after the
		// ack wait.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			fields := []zap.Field{zap.Error(err)}
			if sub != nil {
				fields = append(fields, zap.String("subject", sub.Subject))
			}
			log.Warn("nats", fields...)
		}),
	}
	opts = append(opts, auth...)
	nc, err := nats.Connect(n.URL, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", redactURL(n.URL), err)
	}
	return nc, nil
}

// connectJetStream connects as connectNATS does and opens JetStream on
// the connection.
func connectJetStream(n config.NATS, name string, log *zap.Logger, extra ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := connectNATS(n, name, log, extra...)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// embeddedNATS starts a single-node JetStream server on loopback with its
// data in dir. port 0 picks a free one.
func embeddedNATS(dir string, port int) (*server.Server, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("jetstream dir: %w", err)
	}
	if port == 0 {
		port = -1
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "herald-embedded",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded nats: not ready within 10s")
	}
	return s, nil
}

// portFree reports whether a TCP port can be listened on at loopback.
func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// stores are the shared state a worker runs on: Redis, or in-process when
// no Redis is configured.
type stores struct {
	jobs   worker.Store
	tokens wechat.TokenStore
	close  func()
}

func newStores(cfg *config.Config, log *zap.Logger) (*stores, error) {
	if cfg.Redis.URL == "" {
		log.Warn("redis.url is empty: dedup, rate limits and tokens stay in this process; run one replica only")
		return &stores{jobs: memstore.New(nil), tokens: wechat.NewMemoryTokens(), close: func() {}}, nil
	}
	rdb, mode, err := newRedis(cfg.Redis)
	if err != nil {
		return nil, err
	}
	log.Info("redis", zap.String("mode", string(mode)), zap.String("url", redisTarget(cfg.Redis, mode)))
	st := redisstore.New(rdb, redisstore.Config{DedupTTL: cfg.Dedup.TTL, LedgerTTL: cfg.Subscriptions.LedgerTTL})
	return &stores{
		jobs:   st,
		tokens: redisstore.NewTokens(rdb, ""),
		close:  func() { st.Close(); _ = rdb.Close() },
	}, nil
}

// senders builds one provider per configured (platform, app).
func senders(cfg *config.Config, tokens wechat.TokenStore, reg prometheus.Registerer) (map[worker.Route]worker.Sender, error) {
	out := map[worker.Route]worker.Sender{}
	hc := httpclient.New()
	var errs []error
	for name, app := range cfg.Apps {
		if w := app.WeChat; w != nil {
			c, err := wechat.New(wechat.Config{
				Name:          name,
				AppID:         w.AppID,
				AppSecret:     w.AppSecret.Reveal(),
				BaseURL:       w.BaseURL,
				TokenEndpoint: w.TokenEndpoint,
				Timeout:       cfg.Worker.RequestTimeout,
			}, tokens, hc, wechat.WithRegisterer(reg))
			if err != nil {
				errs = append(errs, fmt.Errorf("apps.%s.wechat: %w", name, err))
			} else {
				out[worker.Route{Platform: "wechat", App: name}] = c
			}
		}
		if a := app.Alipay; a != nil {
			c, err := alipayClient(cfg, name, a, hc)
			if err != nil {
				errs = append(errs, err)
			} else {
				out[worker.Route{Platform: "alipay", App: name}] = c
			}
		}
	}
	return out, errors.Join(errs...)
}

// alipayClient builds the client of app name's Alipay settings a: the
// worker sends with it, herald subscriptions query asks with it.
func alipayClient(cfg *config.Config, name string, a *config.AlipayApp, hc *http.Client) (*alipay.Client, error) {
	c, err := alipay.New(alipay.Config{
		AppID:           a.AppID,
		PrivateKey:      a.PrivateKey.Reveal(),
		AlipayPublicKey: a.AlipayPublicKey,
		Gateway:         a.Gateway,
		Recipient:       a.Recipient,
		Timeout:         cfg.Worker.RequestTimeout,
	}, hc)
	if err != nil {
		return nil, fmt.Errorf("apps.%s.alipay: %w", name, err)
	}
	return c, nil
}

func workerConfig(cfg *config.Config, instance string) worker.Config {
	return worker.Config{
		Instance:            instance,
		Stream:              cfg.NATS.Stream,
		Consumer:            cfg.NATS.Consumer,
		DeadStream:          cfg.NATS.DeadStream,
		EventsStream:        cfg.NATS.EventsStream,
		Receipts:            cfg.NATS.EventsStream != "",
		ReceiptWait:         cfg.Worker.ReceiptWait,
		MaxPendingReceipts:  cfg.Worker.MaxPendingReceipts,
		KnownTemplate:       cfg.MetricTemplate,
		Subscriptions:       worker.SubscriptionMode(cfg.SubscriptionMode()),
		TrustCounts:         cfg.Subscriptions.TrustCounts,
		StatusTTL:           cfg.Subscriptions.StatusTTL,
		LongTerm:            cfg.LongTerm,
		SubscriptionsStream: cfg.NATS.SubscriptionsStream,
		LedgerConsumer:      cfg.Subscriptions.Consumer,
		Concurrency:         cfg.Worker.Concurrency,
		MaxAttempts:         cfg.Worker.MaxAttempts,
		AckWait:             cfg.Worker.AckWait,
		ShutdownGrace:       cfg.Worker.ShutdownGrace,
		RequestTimeout:      cfg.Worker.RequestTimeout,
		BreakerFailures:     cfg.Worker.Breaker.Failures,
		BreakerCooldown:     cfg.Worker.Breaker.Cooldown,
		BreakerMax:          cfg.Worker.Breaker.MaxHold,
		DedupTTL:            cfg.Dedup.TTL,
		Retry:               retryPolicy(cfg),
		RateLimit: func(platform, app, tpl string) (worker.Limit, bool) {
			r, ok := cfg.RateLimit(platform, app, tpl)
			if !ok {
				return worker.Limit{}, false
			}
			// Jobs matched by one rule share one cell: a wildcard rule
			// limits the app (or platform) as a whole.
			key := strings.Join([]string{platform, pick(r.App, app), pick(r.TemplateID, tpl)}, ":")
			return worker.Limit{Key: key, PerSecond: r.PerSecond, Burst: r.Burst}, true
		},
	}
}

// pick returns the job's value where the rule names one, "*" where the rule
// is a wildcard.
func pick(rule, value string) string {
	if rule == "" || rule == config.Wildcard {
		return config.Wildcard
	}
	return value
}

// serveHTTP serves /metrics, /healthz and /readyz on addr, and app (when
// not nil) on every other path, until stop is called. The server may face
// the internet (herald receiver): headers are bounded in size and time,
// idle connections closed, and /readyz answers 503 with a fixed word
// ("not ready: nats", see [unready]) while the detail, which may name a
// job's key or a server, goes to the log.
func serveHTTP(ctx context.Context, addr string, reg *prometheus.Registry, ready func() error, app http.Handler, log *zap.Logger) (net.Addr, func(), error) {
	mux := http.NewServeMux()
	if app != nil {
		mux.Handle("/", app)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	probes := &readinessLog{log: log, every: readinessLogEvery}
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			what := probes.notReady(err)
			http.Error(w, "not ready: "+what, http.StatusServiceUnavailable)
			return
		}
		probes.ready()
		_, _ = w.Write([]byte("ready\n"))
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	return httpserve.Start(ctx, addr, srv, log)
}

// unready wraps a readiness failure with what failed, one fixed word
// ("nats", "store") that /readyz may show; nil stays nil.
func unready(what string, err error) error {
	if err == nil {
		return nil
	}
	return &notReadyError{what: what, err: err}
}

type notReadyError struct {
	what string
	err  error
}

func (e *notReadyError) Error() string { return e.what + ": " + e.err.Error() }
func (e *notReadyError) Unwrap() error { return e.err }

// readinessLogEvery is how often, at most, an unchanged readiness failure
// is logged again: probes come every few seconds.
const readinessLogEvery = 30 * time.Second

// readinessLog logs why /readyz fails: when the cause changes, and at most
// every period while it does not.
type readinessLog struct {
	log   *zap.Logger
	every time.Duration

	mu     sync.Mutex
	failed string // what failed at the last probe; "" while ready
	logged time.Time
}

// notReady logs err if it is due and returns the word /readyz shows.
func (r *readinessLog) notReady(err error) string {
	what := "unknown"
	var nr *notReadyError
	if errors.As(err, &nr) {
		what = nr.what
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if what != r.failed || time.Since(r.logged) >= r.every {
		r.failed, r.logged = what, time.Now()
		r.log.Warn("not ready", zap.String("failed", what), zap.Error(err))
	}
	return what
}

// ready logs the return to readiness after a failure.
func (r *readinessLog) ready() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failed != "" {
		r.log.Info("ready again", zap.String("was", r.failed))
		r.failed = ""
	}
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildinfo.Collector())
	return reg
}

// redactURL drops user info from a URL list for logs and errors.
func redactURL(u string) string {
	parts := strings.Split(u, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "<redacted>@" + p[at+1:]
			}
		}
	}
	return strings.Join(parts, ",")
}

// envDataDir names the directory herald dev keeps its JetStream data in
// when --data-dir is not given.
const envDataDir = "HERALD_DATA_DIR"

// workerDataDir is where a worker without nats.url keeps its embedded
// JetStream data: $HERALD_DATA_DIR, else $TMPDIR/herald-worker.
func workerDataDir(environ []string) string {
	if v := config.LookupEnv(environ, envDataDir); v != "" {
		return v
	}
	return filepath.Join(os.TempDir(), "herald-worker")
}
