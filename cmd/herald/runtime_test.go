package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
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
