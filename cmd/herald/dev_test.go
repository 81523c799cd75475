package main

import (
	"context"
	"io"
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
	var wg sync.WaitGroup
	wg.Go(func() {
		args := []string{"dev", "--http-addr", "127.0.0.1:0", "--nats-port", "0"}
		if err := run(ctx, args, []string{"HERALD_DATA_DIR=" + t.TempDir()}, nil, out, io.Discard); err != nil {
			t.Errorf("herald dev: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })

	want := []string{
		"delivered     wechat",
		"delivered     alipay",
		"reason=user_refused code=43101",
		"reason=invalid_template_data code=- field=data.thing1.value",
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
	if !strings.Contains(out.String(), "JetStream  nats://127.0.0.1:") {
		t.Fatalf("the NATS URL is not printed:\n%s", out)
	}
}
