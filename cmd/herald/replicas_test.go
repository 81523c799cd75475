package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/sandbox"
)

// syncBuffer is a goroutine-safe sink for a command's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Two `herald worker` replicas, configured only through HERALD_*
// variables, share one JetStream consumer and one Redis, and deliver jobs
// that a client with no NATS library wrote on the wire: bash speaking the
// NATS protocol over /dev/tcp.
func TestTwoWorkerReplicasDeliverRawJobsFromAnyClient(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatalf("bash is needed to publish as a non-Go client: %v", err)
	}
	t.Parallel()
	js := testenv.StartJetStream(t)
	rd := testenv.StartRedis(t)
	sb := sandbox.New(sandbox.Options{Record: true, Latency: 5 * time.Millisecond})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)

	nc, jsc := js.Connect(t)
	receipts := make(chan job.Receipt, 1024)
	if _, err := nc.Subscribe(job.SentRoot+".>", func(m *nats.Msg) {
		var r job.Receipt
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Errorf("receipt %s: %v", m.Data, err)
		}
		receipts <- r
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	logs := map[string]*syncBuffer{}
	for _, name := range []string{"replica-a", "replica-b"} {
		environ := []string{
			"HERALD_NATS_URL=" + js.URL,
			"HERALD_REDIS_URL=" + rd.URL,
			"HERALD_WORKER_INSTANCE=" + name,
			"HERALD_WORKER_HTTP_ADDR=127.0.0.1:0",
			"HERALD_WORKER_CONCURRENCY=16",
			"HERALD_APPS_DEFAULT_WECHAT_APP_ID=" + sandbox.DevWeChatAppID,
			"HERALD_APPS_DEFAULT_WECHAT_APP_SECRET=" + sandbox.DevWeChatSecret,
			"HERALD_APPS_DEFAULT_WECHAT_BASE_URL=" + srv.URL,
		}
		out := &syncBuffer{}
		logs[name] = out
		wg.Go(func() {
			if err := run(ctx, []string{"worker"}, environ, nil, io.Discard, out); err != nil {
				t.Errorf("%s: herald worker: %v", name, err)
			}
		})
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if t.Failed() {
			for name, out := range logs {
				t.Logf("%s log:\n%s", name, out)
			}
		}
	})

	// Wait until the workers made the streams, then publish on the wire.
	testenv.Eventually(t, 10*time.Second, "the workers' consumer", func() bool {
		_, err := jsc.Consumer(ctx, "NOTIFY_SEND", "herald-worker")
		return err == nil
	})
	const jobs = 200
	publishWithBash(t, js.URL, jobs)

	got := map[string]job.Receipt{}
	workers := map[string]int{}
	deadline := time.After(30 * time.Second)
	for len(got) < jobs {
		select {
		case r := <-receipts:
			if _, dup := got[r.ID]; dup {
				t.Fatalf("second receipt for %s", r.ID)
			}
			got[r.ID] = r
			workers[r.Worker]++
		case <-deadline:
			t.Fatalf("%d of %d jobs delivered within 30s", len(got), jobs)
		}
	}
	perUser := map[string]int{}
	for _, m := range sb.Accepted() {
		perUser[m.ToUser]++
	}
	if len(perUser) != jobs {
		t.Fatalf("sandbox accepted messages for %d recipients, want %d", len(perUser), jobs)
	}
	for u, n := range perUser {
		if n != 1 {
			t.Fatalf("%s received %d messages", u, n)
		}
	}
	if workers["replica-a"] == 0 || workers["replica-b"] == 0 {
		t.Fatalf("deliveries by replica: %v, want both to take part", workers)
	}
	t.Logf("%d raw jobs delivered once each, by replica: %v", jobs, workers)
}

// publishWithBash writes n jobs with the NATS text protocol from bash.
func publishWithBash(t *testing.T, url string, n int) {
	t.Helper()
	host, port, err := net.SplitHostPort(url[len("nats://"):])
	if err != nil {
		t.Fatal(err)
	}
	script := `
set -e
exec 3<>/dev/tcp/` + host + `/` + port + `
read -r info <&3
printf 'CONNECT {"verbose":false,"pedantic":false}\r\n' >&3
for i in $(seq 1 ` + strconv.Itoa(n) + `); do
  body='{"id":"sh-'$i'","platform":"wechat","template_id":"tpl","to_user":"sh-user-'$i'","data":{"thing1":{"value":"from bash"}}}'
  printf 'PUB notify.send.wechat %d\r\n%s\r\n' "${#body}" "$body" >&3
done
printf 'PING\r\n' >&3
while read -r -t 10 line <&3; do
  case "$line" in PONG*) exit 0;; -ERR*) echo "$line" >&2; exit 1;; esac
done
echo "no PONG" >&2; exit 1
`
	cmd := exec.Command("bash", "-c", script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bash publisher: %v\n%s", err, out)
	}
}
