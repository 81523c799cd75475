package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/testenv"
)

// herald dev starts everything, answers /readyz, and its demo jobs end as
// the README says: two deliveries and two dead letters.
func TestDevRunsTheDemo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	// Made before the goroutine: t.TempDir's cleanup must run after the
	// one below has stopped herald dev, which registers later.
	dataDir := t.TempDir()
	var wg sync.WaitGroup
	wg.Go(func() {
		args := []string{"dev", "--http-addr", "127.0.0.1:0", "--receiver-addr", "127.0.0.1:0", "--console-addr", "127.0.0.1:0", "--nats-port", "0"}
		if err := run(ctx, args, []string{"HERALD_DATA_DIR=" + dataDir}, nil, out, io.Discard); err != nil {
			t.Errorf("herald dev: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })

	want := []string{
		"delivered     wechat",
		"delivered     alipay",
		"reason=user_refused code=43101",
		"reason=invalid_template_data code=- field=data.thing1.value",
		// The sandbox pushed the user's accept to the receiver, which
		// stored it; and the final result of the send.
		"subscription  wechat   popup accept user=user-1 template=demo-template",
		"subscription  wechat   sent success user=user-1",
		// The ledger's story: delivered, then 43101, then skipped.
		"status        wechat   id=demo-ok-",
		"reason=user_refused code=no_subscription",
		"herald subscriptions show --user user-1",
	}
	testenv.Eventually(t, 30*time.Second, "the demo's outcomes", func() bool {
		s := out.String()
		for _, w := range want {
			if !strings.Contains(s, w) {
				return false
			}
		}
		return true
	})
	m := regexp.MustCompile(`worker\s+(http://\S+/readyz)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no readiness URL in:\n%s", out)
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d, want 200", m[1], resp.StatusCode)
	}
	// The console it prints lists the demo's dead letters.
	m = regexp.MustCompile(`console\s+(http://\S+/)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no console URL in:\n%s", out)
	}
	resp, err = http.Get(m[1] + "dead?reason=user_refused")
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "43101") {
		t.Fatalf("GET %sdead?reason=user_refused = %d, %v; want 200 listing the 43101:\n%s", m[1], resp.StatusCode, err, page)
	}
	if !strings.Contains(out.String(), "JetStream  nats://127.0.0.1:") {
		t.Fatalf("the NATS URL is not printed:\n%s", out)
	}
}

// A second herald dev on a taken port fails at once, before it starts
// anything, and says what to do.
func TestDevRefusesATakenPortBeforeStarting(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out := &syncBuffer{}
	err = run(t.Context(), []string{"dev", "--http-addr", l.Addr().String(), "--receiver-addr", "127.0.0.1:0", "--nats-port", "0"}, nil, nil, out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "is taken") || !strings.Contains(err.Error(), "--http-addr 127.0.0.1:0") {
		t.Fatalf("herald dev on a taken port = %v, want a refusal naming the way out", err)
	}
	if out.String() != "" {
		t.Fatalf("herald dev printed %q before refusing", out)
	}
}
