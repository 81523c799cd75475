package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/sandbox"
)

func init() { commands = append(commands, newSandboxCmd) }

type sandboxFlags struct {
	addr     string
	latency  time.Duration
	tokenTTL time.Duration
	apps     []string
	aliKeys  string
	record   bool
	json     bool
}

func newSandboxCmd(e *env) *cobra.Command {
	var f sandboxFlags
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Serve fake platform APIs on loopback, for development, tests and benchmarks",
		Long: `Serve a fake of the platform APIs herald calls: WeChat's /cgi-bin/token,
/cgi-bin/stable_token and /cgi-bin/message/subscribe/send, with tokens that expire
and rotate as WeChat's do and the documented keyword value rules, and Alipay's
gateway (/gateway.do) with RSA2 signatures both ways. Point an app's base_url
(or gateway) at the printed URL. It listens on loopback only and runs until
stopped.

Alipay needs keys: --alipay-keys DIR generates a matching set in DIR (or reuses
the one there) and prints the apps section of a herald config that uses it.

Test hooks: GET /sandbox/stats (token fetches per endpoint, send calls, accepted
sends), GET /sandbox/messages (accepted messages, with --record),
POST /sandbox/wechat/rotate?appid= (invalidate the current tokens),
POST /sandbox/wechat/expire?appid= (expire them),
POST /sandbox/wechat/outage?seconds=N (every send answers HTTP 503; 0 ends it).

` + sandbox.ScriptsHelp() + "\n" + sandbox.AlipayScriptsHelp(),
		Example: `  herald sandbox
  herald sandbox --addr 127.0.0.1:9200 --latency 100ms
  herald sandbox --wechat-app wx1111111111111111:secret1 --wechat-app wx2222222222222222:secret2
  herald sandbox --alipay-keys ./sandbox-keys
  curl -s localhost:9100/sandbox/stats
  curl -s -X POST 'localhost:9100/sandbox/wechat/outage?seconds=30'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSandbox(cmd.Context(), e.stdout, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", sandbox.DevAddr, "loopback address to listen on (port 0 picks a free one)")
	fl.DurationVar(&f.latency, "latency", 0, "extra latency of every send call, e.g. 100ms")
	fl.DurationVar(&f.tokenTTL, "token-ttl", sandbox.DefaultTokenTTL, "lifetime of an access token")
	fl.StringArrayVar(&f.apps, "wechat-app", []string{sandbox.DevWeChatAppID + ":" + sandbox.DevWeChatSecret},
		"a WeChat app as appid:secret (repeatable)")
	fl.StringVar(&f.aliKeys, "alipay-keys", "", "serve Alipay (app "+sandbox.DevAlipayAppID+") with the key set kept in this directory, generated if absent")
	fl.BoolVar(&f.record, "record", false, "keep accepted messages for GET /sandbox/messages")
	fl.BoolVar(&f.json, "json", false, "print the listening address as one JSON line")
	return cmd
}

func runSandbox(ctx context.Context, out io.Writer, f sandboxFlags) error {
	if err := checkLoopback(f.addr); err != nil {
		return err
	}
	apps, err := parseWeChatApps(f.apps)
	if err != nil {
		return err
	}
	if f.latency < 0 || f.tokenTTL <= 0 {
		return errors.New("--latency must not be negative and --token-ttl must be positive")
	}
	opts := sandbox.Options{Latency: f.latency, WeChatApps: apps, TokenTTL: f.tokenTTL, Record: f.record}
	if f.aliKeys != "" {
		keys, _, err := sandbox.LoadOrGenerateAlipayKeys(f.aliKeys)
		if err != nil {
			return err
		}
		ali := keys.Options(sandbox.DevAlipayAppID)
		opts.AlipayApps, opts.AlipayGatewayKey = ali.AlipayApps, ali.AlipayGatewayKey
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("sandbox listen: %w", err)
	}
	srv := &http.Server{
		Handler:           sandbox.New(opts),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	url := "http://" + ln.Addr().String()
	printSandbox(out, f, url, apps)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("sandbox serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-served // http.ErrServerClosed once Shutdown has begun
	if err != nil {
		return fmt.Errorf("sandbox shutdown: %w", err)
	}
	return nil
}

// printSandbox tells where the sandbox listens and what it answers.
func printSandbox(out io.Writer, f sandboxFlags, url string, apps map[string]string) {
	ids := make([]string, 0, len(apps))
	for id := range apps {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	gateway := url + sandbox.AlipayGatewayPath
	if f.json {
		v := map[string]any{"url": url, "wechat_apps": ids}
		if f.aliKeys != "" {
			v["alipay_gateway"], v["alipay_app"] = gateway, sandbox.DevAlipayAppID
		}
		b, _ := json.Marshal(v)
		fmt.Fprintf(out, "%s\n", b)
		return
	}
	fmt.Fprintf(out, "herald sandbox listening on %s\nWeChat base_url: %s  apps: %s\n", url, url, strings.Join(ids, ", "))
	if f.aliKeys != "" {
		fmt.Fprintf(out, "Alipay gateway: %s  app: %s\n\n%s", gateway, sandbox.DevAlipayAppID,
			sandbox.AlipayConfigSnippet(sandbox.DevAlipayAppID, gateway, f.aliKeys))
	}
	fmt.Fprintf(out, "\n%s\n", sandbox.ScriptsHelp())
	if f.aliKeys != "" {
		fmt.Fprintf(out, "%s\n", sandbox.AlipayScriptsHelp())
	}
	fmt.Fprintln(out, "Stop it with Ctrl-C.")
}

// checkLoopback refuses any address that is not on loopback: the sandbox
// hands out tokens to anyone who asks.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--addr %q: the sandbox listens on loopback only (127.0.0.1, ::1 or localhost)", addr)
}

// parseWeChatApps reads appid:secret pairs.
func parseWeChatApps(pairs []string) (map[string]string, error) {
	apps := make(map[string]string, len(pairs))
	for _, p := range pairs {
		id, secret, ok := strings.Cut(p, ":")
		if !ok || id == "" || secret == "" {
			return nil, fmt.Errorf("--wechat-app %q: want appid:secret", p)
		}
		apps[id] = secret
	}
	if len(apps) == 0 {
		return nil, errors.New("--wechat-app: at least one app is required")
	}
	return apps, nil
}
