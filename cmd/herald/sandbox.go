package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/providers/wechat/push"
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
	pushes   []string
	grants   bool
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

Test hooks: GET /sandbox/stats (token fetches per endpoint, send calls, Alipay
queries, accepted sends), GET /sandbox/messages (accepted messages, with --record),
POST /sandbox/wechat/rotate?appid= (invalidate the current tokens),
POST /sandbox/wechat/expire?appid= (expire them),
POST /sandbox/wechat/outage?seconds=N (every send answers HTTP 503; 0 ends it).

WeChat's push side (off unless --wechat-push is given): the sandbox pushes
subscription events to a receiver (herald receiver) as WeChat does, signed and, in
compatible or safe mode, encrypted, in XML or JSON, each tried up to 3 times until
the receiver answers success:
  POST /sandbox/wechat/subscribe?appid=&openid=&template=T1&template=T2&status=accept|reject
      a user answers the popup: one subscribe_msg_popup_event, an item per template
  POST /sandbox/wechat/change?appid=&openid=&template=T1
      a user turns templates off: one subscribe_msg_change_event (reject)
  every accepted send: a subscribe_msg_sent_event (ErrorCode 0), or a failure for
      touser asyncfail… (see below)
appid may be left out when one app is configured. --wechat-push takes
comma-separated key=value pairs: url (the app's push URL) and token are required;
aes_key (the 43-character EncodingAESKey), mode (plain, compatible or safe; safe
when aes_key is given, else plain), format (xml or json; xml) and appid (default
the one WeChat app) are optional. The dev values are token ` + sandbox.DevPushToken + `
and aes_key ` + sandbox.DevEncodingAESKey + `.
--grants keeps one-time grants per (appid, openid, template) as WeChat does: an
accept adds one, a send takes one, a change takes them all, and a send with none
left answers 43101. GET /sandbox/wechat/grants?appid=&openid=&template= shows them.
For Alipay it keeps a grant per subscribed one-time relation set with
POST /sandbox/alipay/subscribe (below); an accepted send takes one and the relation
goes with the last (a send is never refused: Alipay's answer for it is unknown).

` + sandbox.ScriptsHelp() + "\n" + sandbox.AlipayScriptsHelp(),
		Example: `  herald sandbox
  herald sandbox --addr 127.0.0.1:9200 --latency 100ms
  herald sandbox --wechat-app wx1111111111111111:secret1 --wechat-app wx2222222222222222:secret2
  herald sandbox --alipay-keys ./sandbox-keys
  herald sandbox --grants --wechat-push url=http://127.0.0.1:8081/wechat/default,token=` + sandbox.DevPushToken + `,aes_key=` + sandbox.DevEncodingAESKey + `,format=json
  curl -s -X POST 'localhost:9100/sandbox/wechat/subscribe?openid=o1&template=T1'
  curl -s -X POST 'localhost:9100/sandbox/alipay/subscribe?user=o1&template=T1&state=1&subscribe_type=onetime'
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
	fl.StringArrayVar(&f.pushes, "wechat-push", nil,
		"push an app's subscription events to a receiver: url=URL,token=T[,aes_key=K][,mode=safe][,format=json][,appid=wx…] (repeatable)")
	fl.BoolVar(&f.grants, "grants", false, "keep one-time grants per user and template; a WeChat send with none left answers 43101")
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
	pushes, err := parseWeChatPushes(f.pushes, apps)
	if err != nil {
		return err
	}
	opts := sandbox.Options{Latency: f.latency, WeChatApps: apps, TokenTTL: f.tokenTTL, Record: f.record,
		WeChatPush: pushes, Grants: f.grants}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("--wechat-push: %w", err)
	}
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
	sb := sandbox.New(opts)
	defer sb.Close()
	srv := &http.Server{
		Handler:           sb,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	url := "http://" + ln.Addr().String()
	printSandbox(out, f, url, apps, pushes)

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
func printSandbox(out io.Writer, f sandboxFlags, url string, apps map[string]string, pushes map[string]sandbox.PushTarget) {
	ids := make([]string, 0, len(apps))
	for id := range apps {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	gateway := url + sandbox.AlipayGatewayPath
	// The push targets, without their token and key.
	type shownPush struct {
		AppID  string `json:"appid"`
		URL    string `json:"url"`
		Mode   string `json:"mode"`
		Format string `json:"format"`
	}
	var shown []shownPush
	for _, id := range slices.Sorted(maps.Keys(pushes)) {
		p := pushes[id]
		shown = append(shown, shownPush{id, p.URL, string(p.Mode), string(p.Format)})
	}
	if f.json {
		v := map[string]any{"url": url, "wechat_apps": ids}
		if f.aliKeys != "" {
			v["alipay_gateway"], v["alipay_app"] = gateway, sandbox.DevAlipayAppID
		}
		if len(shown) > 0 {
			v["wechat_pushes"] = shown
		}
		if f.grants {
			v["grants"] = true
		}
		b, _ := json.Marshal(v)
		fmt.Fprintf(out, "%s\n", b)
		return
	}
	fmt.Fprintf(out, "herald sandbox listening on %s\nWeChat base_url: %s  apps: %s\n", url, url, strings.Join(ids, ", "))
	for _, p := range shown {
		fmt.Fprintf(out, "WeChat pushes of %s: %s (%s mode, %s)\n", p.AppID, p.URL, p.Mode, p.Format)
	}
	if f.grants {
		fmt.Fprintln(out, "One-time grants kept: POST /sandbox/wechat/subscribe before a send, or it answers 43101.")
	}
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

// parseWeChatPushes reads the --wechat-push specs: comma-separated
// key=value pairs.
func parseWeChatPushes(specs []string, apps map[string]string) (map[string]sandbox.PushTarget, error) {
	out := make(map[string]sandbox.PushTarget, len(specs))
	for _, spec := range specs {
		var t sandbox.PushTarget
		appID := ""
		if len(apps) == 1 {
			for id := range apps {
				appID = id
			}
		}
		for kv := range strings.SplitSeq(spec, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				return nil, fmt.Errorf("--wechat-push: %q is not key=value", kv)
			}
			switch k {
			case "url":
				t.URL = v
			case "token":
				t.Token = v
			case "aes_key":
				t.EncodingAESKey = v
			case "mode":
				t.Mode = push.Mode(v)
			case "format":
				t.Format = push.Format(v)
			case "appid":
				appID = v
			default:
				return nil, fmt.Errorf("--wechat-push: unknown key %q (url, token, aes_key, mode, format, appid)", k)
			}
		}
		switch _, known := apps[appID]; {
		case appID == "":
			return nil, errors.New("--wechat-push: appid is required with several --wechat-app")
		case !known:
			return nil, fmt.Errorf("--wechat-push: appid %s is not a --wechat-app", appID)
		case t.URL == "" || t.Token == "":
			return nil, fmt.Errorf("--wechat-push for %s: url and token are required", appID)
		}
		if _, dup := out[appID]; dup {
			return nil, fmt.Errorf("--wechat-push: %s given twice", appID)
		}
		if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--wechat-push for %s: url must be an http or https URL", appID)
		}
		if t.Mode == "" {
			t.Mode = push.ModePlain
			if t.EncodingAESKey != "" {
				t.Mode = push.ModeSafe
			}
		}
		if t.Format == "" {
			t.Format = push.FormatXML
		}
		out[appID] = t
	}
	return out, nil
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
