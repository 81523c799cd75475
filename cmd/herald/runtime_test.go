package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/heraldhq/herald/config"
	"github.com/heraldhq/herald/internal/testenv"
)

// A slow consumer means the client dropped messages the server delivered:
// the worker must say so, not lose them silently until the ack wait.
func TestNATSAsyncErrorsAreLogged(t *testing.T) {
	t.Parallel()
	js := testenv.StartJetStream(t)
	core, logs := observer.New(zap.WarnLevel)
	nc, err := connectNATS(config.NATS{URL: js.URL}, "herald test", zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("slow")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(1, -1); err != nil {
		t.Fatal(err)
	}
	// The server must hold the subscription before the publishes, or
	// it drops them and nothing is slow.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	pub, _ := js.Connect(t)
	for i := range 10 {
		if err := pub.Publish("slow", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "a slow-consumer warning", func() bool {
		for _, e := range logs.FilterMessage("nats").All() {
			err, _ := e.ContextMap()["error"].(string)
			if err == nats.ErrSlowConsumer.Error() && e.ContextMap()["subject"] == "slow" {
				return true
			}
		}
		return false
	})
}

// /dev/null is a character device but no terminal: scripts that redirect
// from it get no prompt, and logs written to it no colour.
func TestDevNullIsNoTerminal(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Fatal("isTerminal(/dev/null) = true")
	}
}

// Console logs written to a pipe or file carry no colour escapes, and
// durations carry their unit.
func TestConsoleLogsArePlainOffTerminals(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&env{stderr: &buf}, "info", "console")
	if err != nil {
		t.Fatal(err)
	}
	log.Error("app held", zap.Duration("hold", 30*time.Second))
	if s := buf.String(); strings.Contains(s, "\x1b[") || !strings.Contains(s, `"hold": "30s"`) {
		t.Fatalf("console log %q: want no escape codes and hold 30s", s)
	}
}

// A platform URL that allow_insecure lets through in plain http is named
// in a warning at start; loopback and https are not.
func TestWorkerWarnsOfInsecurePlatformURLs(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Apps = map[string]config.App{
		"sandbox": {WeChat: &config.WeChatApp{BaseURL: "http://127.0.0.1:9100"}},
		"proxied": {WeChat: &config.WeChatApp{BaseURL: "http://wechat-proxy.internal", AllowInsecure: true},
			Alipay: &config.AlipayApp{Gateway: "https://openapi.alipay.com/gateway.do", AllowInsecure: true}},
	}
	core, logs := observer.New(zap.WarnLevel)
	warnInsecure(cfg, zap.New(core))
	got := logs.All()
	if len(got) != 1 || got[0].ContextMap()["key"] != "apps.proxied.wechat.base_url" ||
		!strings.Contains(got[0].Message, "plain http") {
		t.Fatalf("warnings %+v, want one for apps.proxied.wechat.base_url", got)
	}
}

// /readyz says which link is down in one fixed word, never the error,
// which may name a job's key or a server; the error goes to the log, once
// per cause and period rather than at every probe.
func TestReadyzAnswersWithoutDetail(t *testing.T) {
	t.Parallel()
	var cause atomic.Pointer[error]
	set := func(err error) { cause.Store(&err) }
	set(unready("store", errors.New("shared store unreachable: EVALSHA herald:job:wechat:default:secret-order-42: READONLY")))
	ready := func() error { return *cause.Load() }
	core, logs := observer.New(zap.InfoLevel)
	addr, stop, err := serveHTTP(t.Context(), "127.0.0.1:0", newRegistry(), ready, nil, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	url := "http://" + addr.String() + "/readyz"
	for range 5 {
		if code, body := get(t, url); code != http.StatusServiceUnavailable || body != "not ready: store\n" {
			t.Fatalf("/readyz = %d %q, want 503 \"not ready: store\"", code, body)
		}
	}
	set(unready("nats", errors.New("nats RECONNECTING to nats://user:pw@nats-0:4222")))
	if code, body := get(t, url); code != http.StatusServiceUnavailable || body != "not ready: nats\n" {
		t.Fatalf("/readyz = %d %q, want 503 \"not ready: nats\"", code, body)
	}
	set(nil)
	if code, body := get(t, url); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz = %d %q, want 200 ready", code, body)
	}
	var got []string
	for _, e := range logs.All() {
		got = append(got, fmt.Sprintf("%s/%v/%v", e.Message, e.ContextMap()["failed"], e.ContextMap()["was"]))
	}
	want := []string{"not ready/store/<nil>", "not ready/nats/<nil>", "ready again/<nil>/nats"}
	if !slices.Equal(got, want) {
		t.Errorf("logged %q, want %q", got, want)
	}
	if e := logs.FilterMessage("not ready").All(); len(e) == 0 || !strings.Contains(e[0].ContextMap()["error"].(string), "secret-order-42") {
		t.Errorf("the log lacks the detail: %+v", e)
	}
}

// --pprof binds loopback: a port alone gets 127.0.0.1, another host needs
// --pprof-allow-remote.
func TestPprofBindsLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give   string
		remote bool
		want   string // "" for an error
	}{
		{":6060", false, "127.0.0.1:6060"},
		{"127.0.0.1:6060", false, "127.0.0.1:6060"},
		{"localhost:6060", false, "localhost:6060"},
		{"[::1]:6060", false, "[::1]:6060"},
		{"0.0.0.0:6060", false, ""},
		{"10.0.0.7:6060", false, ""},
		{"pod.example:6060", false, ""},
		{"0.0.0.0:6060", true, "0.0.0.0:6060"},
		{"6060", false, ""},
	}
	for _, tt := range tests {
		got, err := pprofListenAddr(tt.give, tt.remote)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("pprofListenAddr(%q, %v) = %q, %v; want %q", tt.give, tt.remote, got, err, tt.want)
		}
	}
	addr, err := pprofListenAddr(":0", false)
	if err != nil {
		t.Fatal(err)
	}
	l, stop, err := servePprof(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if ip := l.(*net.TCPAddr).IP; !ip.IsLoopback() {
		t.Fatalf("pprof listens on %s", l)
	}
	if code, _ := get(t, "http://"+l.String()+"/debug/pprof/"); code != http.StatusOK {
		t.Fatalf("pprof index answered %d", code)
	}
	var out, errOut bytes.Buffer
	err = run(t.Context(), []string{"worker", "--pprof", "0.0.0.0:0"}, nil, strings.NewReader(""), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--pprof-allow-remote") {
		t.Fatalf("worker --pprof 0.0.0.0:0 = %v, want a refusal", err)
	}
}
