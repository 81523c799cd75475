package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/heraldhq/herald/config"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/providers/wechat/push"
	"github.com/heraldhq/herald/sandbox"
)

func init() { commands = append(commands, newDevCmd) }

// devNATSPort is where herald dev's embedded JetStream listens when it is
// free: next to, not on, a local nats-server's 4222.
const devNATSPort = 4223

func newDevCmd(e *env) *cobra.Command {
	var o devOptions
	var logLevel string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process on embedded defaults, for a first look",
		Long: `Run an embedded JetStream server, the sandbox WeChat API and Alipay gateway
(with RSA keys generated for this run), one worker, herald receiver (which the
sandbox pushes WeChat's subscription events to) and herald console, all in this
process, and a redis-server of its own when one is installed (else dedup, rate
limits and the subscription ledger stay in the process). It prints the URLs
and the commands to try, sends a few demo jobs (an accepted template and its
delivery, a user who refused: 43101, a job the ledger skips, a value WeChat
would reject: 47003, an Alipay delivery) and prints every receipt, dead letter
and subscription event as it happens. Stop it with Ctrl-C.

Each run starts afresh in a temporary directory that is removed when it stops,
so two herald dev side by side do not meet. --data-dir (or $HERALD_DATA_DIR)
keeps the JetStream data in a directory of your choice across runs instead;
--fresh empties it first.

A platform that keeps failing opens the app's breaker as in production, but
dev holds the app for 2 s at first and at most 10 s, not 30 s to 5 min.`,
		Example: `  herald dev
  herald dev --http-addr 127.0.0.1:18080 --demo=false
  herald dev --data-dir ./herald-data --fresh
  # then, from another shell (go install ./cmd/herald puts herald on your PATH):
  export HERALD_NATS_URL=nats://127.0.0.1:4223
  herald send --platform wechat --template tpl --to user1 --data thing1=hello
  herald dlq list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(e, logLevel, "console")
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			if o.dataDir == "" {
				o.dataDir = config.LookupEnv(e.environ, envDataDir)
			}
			return runDev(cmd.Context(), e, o, log)
		},
	}
	cmd.Flags().StringVar(&o.httpAddr, "http-addr", "127.0.0.1:8080", "address of /metrics, /healthz and /readyz")
	cmd.Flags().StringVar(&o.sandboxAddr, "sandbox-addr", sandbox.DevAddr, "address of the sandbox platform APIs; a free port when this one is taken")
	cmd.Flags().StringVar(&o.receiverAddr, "receiver-addr", "127.0.0.1:8081", "address of herald receiver, which the sandbox pushes subscription events to")
	cmd.Flags().StringVar(&o.consoleAddr, "console-addr", "127.0.0.1:8090", "address of the operators' web console (herald console)")
	cmd.Flags().IntVar(&o.natsPort, "nats-port", devNATSPort, "loopback port of the embedded JetStream server; 0 picks a free one")
	cmd.Flags().StringVar(&o.dataDir, "data-dir", "", "keep JetStream data in this directory across runs (default: a temporary one per run; $"+envDataDir+")")
	cmd.Flags().BoolVar(&o.fresh, "fresh", false, "empty --data-dir before starting")
	cmd.Flags().BoolVar(&o.demo, "demo", true, "publish demo jobs at start (--demo=false to skip)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

type devOptions struct {
	httpAddr, sandboxAddr, receiverAddr, consoleAddr string
	natsPort                                         int
	dataDir                                          string // "": a temporary directory for this run
	fresh                                            bool
	demo                                             bool
}

func runDev(ctx context.Context, e *env, o devOptions, log *zap.Logger) error {
	// Fail before starting anything when a port is taken, by another
	// herald dev say. A port of 0 is picked now: the sandbox is told where
	// to push before the receiver starts, and the console where the worker
	// and the receiver answer.
	httpAddr, err := pickAddr("--http-addr", o.httpAddr)
	if err != nil {
		return err
	}
	receiverAddr, err := pickAddr("--receiver-addr", o.receiverAddr)
	if err != nil {
		return err
	}
	consoleAddr, err := pickAddr("--console-addr", o.consoleAddr)
	if err != nil {
		return err
	}
	dir := o.dataDir
	switch {
	case dir == "":
		tmp, err := os.MkdirTemp("", "herald-dev-")
		if err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		defer func() { _ = os.RemoveAll(tmp) }()
		dir = tmp
	case o.fresh:
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("--fresh: %w", err)
		}
	}
	port := o.natsPort
	if port != 0 && !portFree(port) {
		port = 0
	}
	ns, err := embeddedNATS(filepath.Join(dir, "jetstream"), port)
	if err != nil {
		return err
	}
	defer ns.Shutdown()

	// Alipay keys are generated for this run only: nothing to leak or commit.
	aliKeys, err := sandbox.NewAlipayKeys()
	if err != nil {
		return err
	}
	sbOpts := aliKeys.Options(sandbox.DevAlipayAppID)
	sbOpts.WeChatApps = map[string]string{sandbox.DevWeChatAppID: sandbox.DevWeChatSecret}
	// WeChat's other half: the user's subscriptions as one-time grants, and
	// their events pushed to the receiver in safe mode, as JSON.
	sbOpts.Grants = true
	sbOpts.WeChatPush = map[string]sandbox.PushTarget{sandbox.DevWeChatAppID: {
		URL:   "http://" + receiverAddr + config.Default().Receiver.PathPrefix + job.DefaultApp,
		Token: sandbox.DevPushToken, EncodingAESKey: sandbox.DevEncodingAESKey,
		Mode: push.ModeSafe, Format: push.FormatJSON,
	}}
	sb := sandbox.New(sbOpts)
	defer sb.Close()
	sl, err := net.Listen("tcp", o.sandboxAddr)
	if err != nil {
		// Taken, by a herald sandbox say: any free loopback port will do.
		if sl, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fmt.Errorf("sandbox listen: %w", err)
		}
	}
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(sl) }()
	defer func() { _ = srv.Close() }()
	sandboxURL := "http://" + sl.Addr().String()

	// A Redis of its own when redis-server is installed, so that herald's
	// commands can read the jobs' state and the ledger; else in-process.
	redisURL, stopRedis, err := startDevRedis(ctx, filepath.Join(dir, "redis"))
	if err != nil {
		log.Warn("no redis-server for herald dev: dedup, limits and the ledger stay in this process", zap.Error(err))
	}
	defer stopRedis()

	cfg := config.Default()
	cfg.NATS.URL = ns.ClientURL()
	cfg.Redis.URL = redisURL
	// The ledger skips what cannot succeed: the demo shows it.
	cfg.Subscriptions.Mode = config.SubscriptionsEnforce
	cfg.Worker.Instance = "herald-dev"
	cfg.Worker.HTTPAddr = httpAddr
	cfg.Receiver.HTTPAddr = receiverAddr
	cfg.Console.HTTPAddr = consoleAddr
	cfg.Console.Replicas = []string{"http://" + httpAddr, "http://" + receiverAddr}
	cfg.Worker.Concurrency = 64
	// A demo that pauses for minutes is no demo: short breaker holds.
	cfg.Worker.Breaker = config.Breaker{Failures: 10, Cooldown: 2 * time.Second, MaxHold: 10 * time.Second}
	cfg.Retry.InitialInterval = 500 * time.Millisecond
	cfg.Retry.MaxInterval = 5 * time.Second
	cfg.Apps = map[string]config.App{job.DefaultApp: {WeChat: &config.WeChatApp{
		AppID:         sandbox.DevWeChatAppID,
		AppSecret:     config.Secret(sandbox.DevWeChatSecret),
		BaseURL:       sandboxURL,
		TokenEndpoint: config.TokenEndpointStable,
		AllowInsecure: true, // the sandbox, wherever --sandbox-addr puts it
		Push: config.WeChatPush{
			Token:          config.Secret(sandbox.DevPushToken),
			EncodingAESKey: config.Secret(sandbox.DevEncodingAESKey),
		},
	}, Alipay: &config.AlipayApp{
		AppID:           sandbox.DevAlipayAppID,
		PrivateKey:      config.Secret(aliKeys.AppPrivateKey),
		AlipayPublicKey: aliKeys.GatewayPublicKey,
		Gateway:         sandboxURL + sandbox.AlipayGatewayPath,
		Recipient:       config.RecipientOpenID,
		AllowInsecure:   true,
	}}}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("dev config: %w", err)
	}

	out := e.stdout
	kept := "removed when herald dev stops"
	if o.dataDir != "" {
		kept = "kept across runs; --fresh empties it"
	}
	// The receiver runs beside the worker; the demo waits for it, as the
	// sandbox pushes to it from the first accept on.
	receiving := make(chan struct{})
	exportRedis := ""
	if redisURL != "" {
		exportRedis = " HERALD_REDIS_URL=" + redisURL
	}
	demoCtx, stopDemo := context.WithCancel(ctx)
	var demo sync.WaitGroup
	defer func() { stopDemo(); demo.Wait() }()
	tellDemo := func(natsURL string) {
		select {
		case <-receiving:
		case <-demoCtx.Done():
			return
		}
		ids, err := publishDemo(demoCtx, natsURL, sandboxURL)
		if err != nil {
			log.Error("demo jobs", zap.Error(err))
			return
		}
		look := "the CLI reads the ledger and the jobs' state from Redis: install redis-server and restart herald dev to try"
		if redisURL != "" {
			look = "look at them (with HERALD_REDIS_URL exported as above):"
		}
		fmt.Fprintf(out, `
The demo's story, told by user-1: an accept, a delivery WeChat confirmed, a
43101 that marked the user exhausted, then a job skipped without a call. To
%s
  herald jobs show %s
  herald jobs show %s
  herald jobs show %s
  herald subscriptions show --user user-1
`, look, ids.ok, ids.again, ids.skipped)
	}
	onStart := func(natsURL string, httpAddr net.Addr) {
		fmt.Fprintf(out, `herald dev is running
  JetStream  %s   (embedded; data in %s, %s)
  sandbox    %s   (fake WeChat API and Alipay gateway; scripted answers: herald sandbox --help)
  worker     http://%s/readyz   /metrics   /healthz
  receiver   http://%s%s%s   (WeChat's subscription pushes, from the sandbox, in safe mode)
  console    http://%s/   (dead letters, replays, jobs, overview)

Try it from another shell. Install the CLI once (it lands in $(go env GOPATH)/bin):
  go install ./cmd/herald
then point it at this JetStream and publish, inspect, replay. The sandbox keeps
one-time grants as WeChat does: a user accepts a template before each send.
  export HERALD_NATS_URL=%s%s
  curl -X POST '%s/sandbox/wechat/subscribe?appid=%s&openid=user-1&template=demo&status=accept'
  herald send --platform wechat --template demo --to user-1 --data thing1=hello
  herald send --platform wechat --template demo --to fail-user-9 --data thing1=hello   # a failing platform: retries, then a dead letter
  herald dlq list
  herald dlq replay --reason user_refused --dry-run
  herald streams status
or publish with any NATS client, as raw JSON with the job's id as Nats-Msg-Id:
  nats --server %s pub -H Nats-Msg-Id:j1 notify.send.wechat '{"id":"j1","platform":"wechat","template_id":"demo","to_user":"user-1","data":{"thing1":{"value":"hello"}}}'

Receipts (notify.sent.>), dead letters (notify.dead.>) and subscription events
(notify.subscription.>) appear below. Ctrl-C stops.

`, natsURL, dir, kept, sandboxURL, httpAddr, receiverAddr, cfg.Receiver.PathPrefix, job.DefaultApp, consoleAddr,
			natsURL, exportRedis, sandboxURL, sandbox.DevWeChatAppID, natsURL)
		if err := tailEvents(ctx, natsURL, e); err != nil {
			log.Error("watch receipts and dead letters", zap.Error(err))
		}
		if o.demo {
			// The story waits for each step's outcome: it runs beside the
			// worker, which starts once this returns.
			demo.Go(func() { tellDemo(natsURL) })
		}
	}
	// The receiver and the console run beside the worker, and stop with it.
	sideCtx, stopSide := context.WithCancel(ctx)
	recvDone, consoleDone := make(chan error, 1), make(chan error, 1)
	go func() {
		recvDone <- runReceiver(sideCtx, cfg, log, func(net.Addr) { close(receiving) })
	}()
	go func() { consoleDone <- runConsole(sideCtx, cfg, log, nil) }()
	err = runWorker(ctx, e, cfg, log, onStart)
	stopSide()
	if rerr := <-recvDone; rerr != nil && err == nil {
		err = fmt.Errorf("receiver: %w", rerr)
	}
	if cerr := <-consoleDone; cerr != nil && err == nil {
		err = fmt.Errorf("console: %w", cerr)
	}
	return err
}

// pickAddr returns addr, or a free loopback address for a port of 0, after
// checking it can be listened on; flag names the option that set it.
func pickAddr(flag, addr string) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("%s %s is taken (is another herald dev running?); pass %s 127.0.0.1:0 for any free port: %w", flag, addr, flag, err)
	}
	picked := l.Addr().String()
	return picked, l.Close()
}

// tailEvents prints receipts and dead letters as they are published. The
// subscription ends with the process.
func tailEvents(ctx context.Context, url string, e *env) error {
	nc, err := nats.Connect(url, nats.Name("herald dev events"))
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, nc.Close)
	show := func(m *nats.Msg) { fmt.Fprintln(e.stdout, eventLine(m.Subject, m.Data)) }
	for _, subj := range []string{job.SentRoot + ".>", job.DeadRoot + ".>", job.SubscriptionRoot + ".>", job.StatusRoot + ".>"} {
		if _, err := nc.Subscribe(subj, show); err != nil {
			return err
		}
	}
	return nc.Flush()
}

// eventLine is the line tailEvents prints for a receipt, a dead letter, a
// subscription event or a delivery status; every value a producer, a user
// or a platform gave is made terminal-safe.
func eventLine(subject string, data []byte) string {
	var v map[string]any
	_ = json.Unmarshal(data, &v)
	raw := func(key string) string {
		if x, ok := v[key]; ok && x != nil && x != "" {
			return fmt.Sprint(x)
		}
		return "-"
	}
	f := func(key string) string { return termSafe(raw(key)) }
	switch {
	case strings.HasPrefix(subject, job.SubscriptionRoot+"."):
		return fmt.Sprintf("subscription  %-8s %s %s user=%s template=%s msgid=%s",
			f("platform"), f("event"), f("status"), f("to_user"), f("template_id"), f("msgid"))
	case strings.HasPrefix(subject, job.StatusRoot+"."):
		return fmt.Sprintf("status        %-8s id=%s %s msgid=%s code=%s",
			f("platform"), f("id"), f("status"), f("msgid"), f("error_code"))
	case strings.HasPrefix(subject, job.SentRoot+"."):
		return fmt.Sprintf("delivered     %-8s id=%s to=%s msgid=%s attempts=%s",
			f("platform"), f("id"), f("to_user"), f("msgid"), f("attempts"))
	}
	// %q escapes what a terminal would act on, as termSafe does.
	return fmt.Sprintf("dead letter   %-8s id=%s reason=%s code=%s field=%s message=%q",
		f("platform"), f("id"), f("reason"), f("code"), f("field"), raw("message"))
}

// publishDemo tells the story of contract sections 7 and 8 with user-1,
// one step after the other: the user accepts the demo template (one
// grant); a send is delivered, and WeChat's sent event marks it delivered;
// a second finds no grant left, WeChat answers 43101 and the ledger marks
// the user exhausted; a third is skipped without a call. Beside it, one job
// of each other kind the sandbox answers. It returns the story's job ids.
func publishDemo(ctx context.Context, url, sandboxURL string) (demoIDs, error) {
	stamp := time.Now().Format("150405")
	ids := demoIDs{ok: "demo-ok-" + stamp, again: "demo-again-" + stamp, skipped: "demo-skipped-" + stamp}
	nc, err := nats.Connect(url, nats.Name("herald dev demo"))
	if err != nil {
		return ids, err
	}
	defer nc.Close()
	// Each step waits for the outcome of the one before.
	outcomes := make(chan string, 64)
	for _, subj := range []string{job.StatusRoot + ".>", job.DeadRoot + ".>"} {
		if _, err := nc.Subscribe(subj, func(m *nats.Msg) {
			var v struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(m.Data, &v) == nil && v.ID != "" {
				outcomes <- v.ID
			}
		}); err != nil {
			return ids, err
		}
	}
	if err := nc.Flush(); err != nil {
		return ids, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return ids, err
	}
	p := producer.New(js)
	send := func(j job.Job) error {
		if j.Platform == "" {
			j.Platform = job.WeChat
		}
		j.App, j.TemplateID = job.DefaultApp, "demo-template"
		if j.Data == nil {
			j.Data = map[string]job.Value{"thing1": {Value: "Your order shipped"}, "time2": {Value: "2026-11-23 10:00"}}
		}
		_, err := p.Publish(ctx, j)
		return err
	}
	await := func(id string) error {
		timeout := time.After(30 * time.Second)
		for {
			select {
			case got := <-outcomes:
				if got == id {
					return nil
				}
			case <-timeout:
				return fmt.Errorf("demo job %s: no outcome within 30s", id)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	for _, step := range []func() error{
		func() error { return subscribe(ctx, sandboxURL, "user-1", "demo-template") },
		func() error { return send(job.Job{ID: ids.ok, ToUser: "user-1"}) },
		func() error { return await(ids.ok) }, // its status event: delivered
		func() error { return send(job.Job{ID: ids.again, ToUser: "user-1"}) },
		func() error { return await(ids.again) }, // its dead letter: 43101
		func() error { return send(job.Job{ID: ids.skipped, ToUser: "user-1"}) },
		func() error {
			return errors.Join(
				send(job.Job{ID: "demo-refused-" + stamp, ToUser: "refuse-user-2"}),
				send(job.Job{ID: "demo-baddata-" + stamp, ToUser: "user-3",
					Data: map[string]job.Value{"thing1": {Value: "This value is much longer than twenty characters"}}}),
				send(job.Job{ID: "demo-alipay-" + stamp, Platform: job.Alipay, ToUser: "user-4",
					Data: map[string]job.Value{"keyword1": {Value: "Your order shipped"}, "keyword2": {Value: "2026-11-23 10:00"}}}))
		},
		func() error { return await(ids.skipped) },
	} {
		if err := step(); err != nil {
			return ids, err
		}
	}
	return ids, nil
}

// demoIDs are the jobs of the demo's story.
type demoIDs struct{ ok, again, skipped string }

// subscribe has the sandbox act out user accepting template: a grant, and
// a popup event pushed to the receiver.
func subscribe(ctx context.Context, sandboxURL, user, template string) error {
	q := url.Values{"appid": {sandbox.DevWeChatAppID}, "openid": {user}, "template": {template}, "status": {"accept"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sandboxURL+"/sandbox/wechat/subscribe?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", user, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("subscribe %s: sandbox answered %s", user, resp.Status)
	}
	return nil
}
