package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/heraldhq/herald/config"
	"github.com/heraldhq/herald/internal/tracing"
	"github.com/heraldhq/herald/retry"
	"github.com/heraldhq/herald/worker"
)

func init() { commands = append(commands, newWorkerCmd) }

func newWorkerCmd(e *env) *cobra.Command {
	var logLevel, logFormat, pprofAddr string
	var pprofRemote bool
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run one worker replica",
		Long: `Run one worker replica: create the streams and the consumer when they are missing,
pull jobs from the shared durable consumer, deliver them, and serve /metrics,
/healthz and /readyz on worker.http_addr.

On SIGTERM or SIGINT the worker stops pulling, lets in-flight jobs finish within
worker.shutdown_grace, hands the rest back to JetStream and exits 0.`,
		Example: `  herald worker --config /etc/herald/herald.yaml
  HERALD_NATS_URL=nats://nats:4222 HERALD_REDIS_URL=redis://redis:6379/0 herald worker`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, e)
			if err != nil {
				return err
			}
			log, err := newLogger(e, logLevel, logFormat)
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			if pprofAddr != "" {
				addr, err := pprofListenAddr(pprofAddr, pprofRemote)
				if err != nil {
					return err
				}
				_, stop, err := servePprof(addr)
				if err != nil {
					return err
				}
				defer stop()
			}
			return runWorker(cmd.Context(), e, cfg, log, nil)
		},
	}
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&logFormat, "log-format", "json", "json or console")
	cmd.Flags().StringVar(&pprofAddr, "pprof", "", "serve net/http/pprof on this address, for profiling; a port alone (:6060) binds 127.0.0.1")
	cmd.Flags().BoolVar(&pprofRemote, "pprof-allow-remote", false, "let --pprof bind an address other than loopback")
	_ = cmd.Flags().MarkHidden("pprof")
	_ = cmd.Flags().MarkHidden("pprof-allow-remote")
	return cmd
}

// pprofListenAddr is where --pprof addr listens: loopback unless told
// otherwise. Profiles show what the process holds in memory (jobs,
// tokens) and a CPU profile or trace costs the worker dearly, so an
// address without a host (":6060") binds 127.0.0.1, and a host other than
// loopback needs allowRemote.
func pprofListenAddr(addr string, allowRemote bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--pprof %q: want host:port, such as 127.0.0.1:6060 or :6060", addr)
	}
	switch {
	case host == "":
		return net.JoinHostPort("127.0.0.1", port), nil
	case host == "localhost", net.ParseIP(host) != nil && net.ParseIP(host).IsLoopback(), allowRemote:
		return addr, nil
	}
	return "", fmt.Errorf("--pprof %s: not a loopback address, and profiles expose the process's memory; "+
		"bind 127.0.0.1 (reach it with kubectl port-forward), or pass --pprof-allow-remote", addr)
}

// servePprof serves the runtime profiles on addr until stop is called,
// and tells where it listens.
func servePprof(addr string) (net.Addr, func(), error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("pprof listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	return l.Addr(), func() { _ = srv.Close(); <-done }, nil
}

// started is told the addresses a running worker listens on.
type started func(natsURL string, httpAddr net.Addr)

// runWorker runs one replica until ctx ends: NATS (embedded when nats.url is
// empty), streams, stores, providers, the HTTP endpoints and the worker.
func runWorker(ctx context.Context, e *env, cfg *config.Config, log *zap.Logger, onStart started) error {
	instance := cfg.Worker.Instance
	if instance == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("worker.instance is empty and the host name is unknown: %w", err)
		}
		instance = h
	}
	link := cfg.NATS
	if link.URL == "" {
		s, err := embeddedNATS(workerDataDir(e.environ), 0)
		if err != nil {
			return err
		}
		defer s.Shutdown()
		// The embedded server takes neither credentials nor TLS.
		link = config.NATS{URL: s.ClientURL()}
		log.Warn("nats.url is empty: started an embedded single-node JetStream server", zap.String("url", link.URL))
	}
	connect := func(name string) (*nats.Conn, jetstream.JetStream, error) {
		return connectJetStream(link, name, log)
	}
	nc, js, err := connect("herald worker " + instance)
	if err != nil {
		return err
	}
	defer nc.Close()
	// Receipts and dead letters go out on a connection of their own (see
	// worker.WithPublisher).
	pubNC, pubJS, err := connect("herald worker " + instance + " publish")
	if err != nil {
		return err
	}
	defer pubNC.Close()
	changes, err := topologyOf(cfg).Apply(ctx, js)
	if err != nil {
		return err
	}
	for _, c := range changes {
		if c.Action != "unchanged" {
			log.Info("jetstream "+c.Kind+" "+c.Action, zap.String("name", c.Name))
		}
	}

	warnInsecure(cfg, log)
	st, err := newStores(cfg, log)
	if err != nil {
		return err
	}
	defer st.close()
	reg := newRegistry()
	sends, err := senders(cfg, st.tokens, reg)
	if err != nil {
		return err
	}
	wcfg := workerConfig(cfg, instance)
	tracer, stopTracing, err := tracing.Setup(ctx, func(k string) string { return config.LookupEnv(e.environ, k) }, "herald-worker")
	if err != nil {
		return err
	}
	defer func() { _ = stopTracing(context.WithoutCancel(ctx)) }()
	if tracer != nil {
		log.Info("tracing: exporting spans over OTLP as the OTEL_* environment says")
	}
	wcfg.Tracer = tracer
	topo := topologyOf(cfg)
	wcfg.EnsureStream = func(ctx context.Context, name string) error { return topo.EnsureStream(ctx, pubJS, name) }
	w, err := worker.New(wcfg, js, st.jobs, sends, log, worker.WithRegisterer(reg), worker.WithPublisher(pubJS))
	if err != nil {
		return err
	}
	ready := func() error {
		if err := worker.NATSReady(nc); err != nil {
			return unready("nats", err)
		}
		if err := worker.NATSReady(pubNC); err != nil {
			return unready("nats", err)
		}
		return unready("store", w.Ready())
	}
	addr, stopHTTP, err := serveHTTP(ctx, cfg.Worker.HTTPAddr, reg, ready, nil, log)
	if err != nil {
		return err
	}
	defer stopHTTP()
	if onStart != nil {
		onStart(link.URL, addr)
	}
	if err := w.Run(ctx); err != nil {
		return err
	}
	for _, c := range []*nats.Conn{nc, pubNC} {
		if err := c.Drain(); err != nil {
			log.Warn("nats drain", zap.Error(err))
		}
	}
	return nil
}

// warnInsecure logs every platform URL that allow_insecure lets through
// in plain http.
func warnInsecure(cfg *config.Config, log *zap.Logger) {
	for _, key := range cfg.InsecureURLs() {
		log.Warn("platform calls in plain http (allow_insecure): the app's secret, tokens and messages cross the network unencrypted",
			zap.String("key", key))
	}
}

func retryPolicy(cfg *config.Config) retry.Policy {
	return retry.Policy{
		InitialInterval: cfg.Retry.InitialInterval,
		MaxInterval:     cfg.Retry.MaxInterval,
		Multiplier:      cfg.Retry.Multiplier,
		Randomization:   cfg.Retry.Randomization,
	}
}
