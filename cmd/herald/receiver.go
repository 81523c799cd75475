package main

import (
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/heraldhq/herald/config"
	"github.com/heraldhq/herald/providers/wechat/push"
	"github.com/heraldhq/herald/receiver"
	"github.com/heraldhq/herald/worker"
)

func init() { commands = append(commands, newReceiverCmd) }

func newReceiverCmd(e *env) *cobra.Command {
	var logLevel, logFormat string
	cmd := &cobra.Command{
		Use:   "receiver",
		Short: "Serve the WeChat subscription push URLs and store their events",
		Long: `Serve WeChat's "message push" URL of every app that has apps.<app>.wechat.push.token,
at receiver.path_prefix + the app's name (default /wechat/<app>), with /metrics,
/healthz and /readyz, on receiver.http_addr (default :8081). Run as many replicas
as wanted behind one Service or Ingress: the receiver keeps no state.

Each push is verified before it is read (signature and a timestamp at most 5
minutes off; with push.encoding_aes_key also msg_signature, the AES decryption and
the appid; previous_encoding_aes_key is tried when the key fails, for rotation),
then every item of a popup, change or sent event is stored as one event on
notify.subscription.wechat.<popup|change|sent> in nats.subscriptions_stream
(NOTIFY_SUBSCRIPTIONS, created at start when missing). Answers:
  200 success  every event stored (WeChat's retries store nothing twice)
  200 echostr  the console's URL check
  401          bad signature or msg_signature, another app's appid, stale timestamp
  400          a body that cannot be parsed, or over 64 KiB
  404          an app without push settings
  503          JetStream did not store the events: WeChat retries
Other message types and events are answered success, counted, not stored.

An app with an EncodingAESKey takes compatible and safe mode pushes only, one
without takes plaintext pushes only. Use safe mode: in plaintext mode the body is
not signed, so anyone who saw one signed URL can forge events for 5 minutes.
On SIGTERM or SIGINT the receiver stops taking connections, lets the requests in
flight finish and exits 0.`,
		Example: `  herald receiver --config /etc/herald/herald.yaml
  HERALD_APPS_DEFAULT_WECHAT_PUSH_TOKEN_FILE=/secrets/push/token \
    HERALD_APPS_DEFAULT_WECHAT_PUSH_ENCODING_AES_KEY_FILE=/secrets/push/aes_key \
    herald receiver --config herald.yaml
  # the console's URL for app "default": https://push.example.com/wechat/default
  curl -s localhost:8081/readyz`,
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
			return runReceiver(cmd.Context(), cfg, log, nil)
		},
	}
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&logFormat, "log-format", "json", "json or console")
	return cmd
}

// receiverStarted is told the address a running receiver listens on.
type receiverStarted func(httpAddr net.Addr)

// pushApps lists the WeChat apps that have push settings, by name.
func pushApps(cfg *config.Config) []receiver.WeChatApp {
	var apps []receiver.WeChatApp
	for name, app := range cfg.Apps {
		w := app.WeChat
		if w == nil || w.Push.Token == "" {
			continue
		}
		apps = append(apps, receiver.WeChatApp{Name: name, Config: push.Config{
			AppID:                  w.AppID,
			Token:                  w.Push.Token.Reveal(),
			EncodingAESKey:         w.Push.EncodingAESKey.Reveal(),
			PreviousEncodingAESKey: w.Push.PreviousEncodingAESKey.Reveal(),
		}})
	}
	slices.SortFunc(apps, func(a, b receiver.WeChatApp) int { return strings.Compare(a.Name, b.Name) })
	return apps
}

// runReceiver serves the push URLs until ctx ends: NATS, the
// subscriptions stream, the receiver and the HTTP endpoints.
func runReceiver(ctx context.Context, cfg *config.Config, log *zap.Logger, onStart receiverStarted) error {
	apps := pushApps(cfg)
	if len(apps) == 0 {
		return errors.New("no app has apps.<app>.wechat.push.token: the receiver would serve nothing")
	}
	if cfg.NATS.URL == "" {
		return errors.New("nats.url is empty: the receiver stores events in a shared JetStream; give its URL")
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	// A publish while disconnected fails at once (503, WeChat retries)
	// rather than waiting in a buffer past the answer deadline.
	nc, js, err := connectJetStream(cfg.NATS, "herald receiver "+host, log, nats.ReconnectBufSize(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	change, err := topologyOf(cfg).ApplySubscriptions(ctx, js)
	if err != nil {
		return err
	}
	if change.Action != "unchanged" {
		log.Info("jetstream "+change.Kind+" "+change.Action, zap.String("name", change.Name))
	}
	wx, err := receiver.NewWeChat(cfg.Receiver.PathPrefix, apps)
	if err != nil {
		return err
	}
	reg := newRegistry()
	r, err := receiver.New(receiver.Config{Stream: cfg.NATS.SubscriptionsStream}, js, []receiver.Platform{wx}, log,
		receiver.WithRegisterer(reg))
	if err != nil {
		return err
	}
	ready := func() error { return unready("nats", worker.NATSReady(nc)) }
	addr, stopHTTP, err := serveHTTP(ctx, cfg.Receiver.HTTPAddr, reg, ready, r, log)
	if err != nil {
		return err
	}
	log.Info("receiver listening", zap.String("addr", addr.String()))
	for _, a := range apps {
		mode := "plaintext"
		if a.EncodingAESKey != "" {
			mode = "compatible or safe"
		}
		log.Info("serving push URL", zap.String("app", a.Name), zap.String("path", cfg.Receiver.PathPrefix+a.Name),
			zap.String("mode", mode))
	}
	if onStart != nil {
		onStart(addr)
	}
	<-ctx.Done()
	stopHTTP() // requests in flight finish: each is bounded by the receiver's deadline
	if err := nc.Drain(); err != nil {
		log.Warn("nats drain", zap.Error(err))
	}
	return nil
}
