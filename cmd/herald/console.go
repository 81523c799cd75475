package main

import (
	"context"
	"errors"
	"net"
	"os"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/heraldhq/herald/config"
	"github.com/heraldhq/herald/console"
)

func init() { commands = append(commands, newConsoleCmd) }

func newConsoleCmd(e *env) *cobra.Command {
	var logLevel, logFormat string
	var readOnly bool
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Serve the operators' web console: dead letters, replays, jobs, overview",
		Long: `Serve a web console on console.http_addr (default 127.0.0.1:8090, loopback only)
for the people who run herald:

  Overview      jobs delivered and dead-lettered per minute over the last hour,
                the worker consumer's pending and ack pending, the streams, the
                readiness of each replica in console.replicas
  Dead letters  counts by reason, platform, app, template and code over a time
                range (a chart and tables); the list, filtered as herald dlq
                filters, newest first, paged by stream sequence; one letter in
                full, its raw bytes shown safely
  Replay/purge  the same filters, a dry run with samples, a rate, an explicit
                confirmation and progress: the code of herald dlq replay/purge
  Jobs          one job by platform, app and id: what herald jobs show reads
                (its state in Redis, the platform's final result, its receipt
                and dead letters)
  Subscriptions one user's subscription ledger, as herald subscriptions show

It reads and changes JetStream (nats.*), like herald dlq, and reads Redis
(redis.url) for the jobs' state and the ledger; without redis.url those two
are left out. Everything it shows is rendered on the server; nothing is
fetched from the internet.

Protection: it listens on loopback unless console.http_addr says otherwise.
console.basic_auth.user and console.basic_auth.password (or password_file, or
HERALD_CONSOLE_BASIC_AUTH_PASSWORD) require basic authentication;
console.trusted_user_header (X-Forwarded-User) makes it refuse requests that did
not come through an authenticating proxy, which must strip that header from what
clients send. Changes are POSTs refused when they come from another site, and
--read-only (console.read_only) refuses them all. /healthz answers without
credentials. On SIGTERM or SIGINT it stops replays and purges after the dead
letter in hand (run them again to finish) and exits 0.`,
		Example: `  herald console --config /etc/herald/herald.yaml
  HERALD_NATS_URL=nats://10.0.0.5:4222 herald console      # open http://127.0.0.1:8090 (herald dev starts its own)
  herald console --config herald.yaml --read-only
  HERALD_CONSOLE_HTTP_ADDR=0.0.0.0:8090 HERALD_CONSOLE_TRUSTED_USER_HEADER=X-Forwarded-User \
    herald console --config herald.yaml                    # behind oauth2-proxy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, e)
			if err != nil {
				return err
			}
			if readOnly {
				cfg.Console.ReadOnly = true
			}
			log, err := newLogger(e, logLevel, logFormat)
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			return runConsole(cmd.Context(), cfg, log, nil)
		},
	}
	cmd.Flags().BoolVar(&readOnly, "read-only", false, "show everything, change nothing (console.read_only)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&logFormat, "log-format", "json", "json or console")
	return cmd
}

// consoleConfig is the console package's view of herald's configuration.
func consoleConfig(cfg *config.Config) console.Config {
	c := cfg.Console
	return console.Config{
		SendStream:        cfg.NATS.Stream,
		DeadStream:        cfg.NATS.DeadStream,
		EventsStream:      cfg.NATS.EventsStream,
		Consumer:          cfg.NATS.Consumer,
		OtherStreams:      []string{cfg.NATS.SubscriptionsStream},
		ReadOnly:          c.ReadOnly,
		BasicAuthUser:     c.BasicAuth.User,
		BasicAuthPassword: c.BasicAuth.Password.Reveal(),
		TrustedUserHeader: c.TrustedUserHeader,
		Replicas:          c.Replicas,
	}
}

// runConsole serves the console until ctx ends. onStart, when set, is told
// the address it listens on.
func runConsole(ctx context.Context, cfg *config.Config, log *zap.Logger, onStart func(net.Addr)) error {
	if cfg.NATS.URL == "" {
		return errors.New("nats.url is empty: the console reads the shared JetStream; give its URL (or HERALD_NATS_URL)")
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	nc, js, err := connectJetStream(cfg.NATS, "herald console "+host, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	var opts []console.Option
	ledger, closeStore, err := openLedger(cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	if ledger != nil {
		opts = append(opts, console.WithLedger(ledger))
	}
	c, err := console.New(consoleConfig(cfg), js, log, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	cc := cfg.Console
	if !console.IsLoopback(cc.HTTPAddr) && cc.BasicAuth.User == "" && cc.TrustedUserHeader == "" {
		log.Warn("console listens beyond loopback without authentication: anyone who reaches it can replay and purge; "+
			"set console.basic_auth or console.trusted_user_header, or console.read_only",
			zap.String("addr", cc.HTTPAddr))
	}
	addr, stop, err := console.Serve(ctx, cc.HTTPAddr, c, log)
	if err != nil {
		return err
	}
	log.Info("console listening", zap.String("url", "http://"+addr.String()+"/"), zap.Bool("read_only", cc.ReadOnly),
		zap.Bool("basic_auth", cc.BasicAuth.User != ""), zap.String("trusted_user_header", cc.TrustedUserHeader))
	if onStart != nil {
		onStart(addr)
	}
	<-ctx.Done()
	c.Close() // replays and purges stop after the dead letter in hand
	stop()
	return nil
}
