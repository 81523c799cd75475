package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/sandbox"
	heraldworker "github.com/heraldhq/herald/worker"
)

// heraldBin is the herald binary the tests run as workers.
var heraldBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "herald-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	heraldBin = filepath.Join(dir, "herald")
	build := exec.Command("go", "build", "-o", heraldBin, "github.com/heraldhq/herald/cmd/herald")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "faults: building herald:", err)
		return 1
	}
	return m.Run()
}

// Worker settings every test shares: fast retries, an ack wait and a
// request timeout short enough that crashed work comes back within seconds.
const (
	concurrency    = 32
	maxAttempts    = 3
	ackWait        = 10 * time.Second
	requestTimeout = 3 * time.Second
	shutdownGrace  = 5 * time.Second
)

// heldPerReplica is how many jobs one replica with these settings holds
// at most: the bound on what a crash can send twice.
func heldPerReplica() int { return heraldworker.Config{Concurrency: concurrency}.MaxHeld() }

// rig is one test's world: JetStream (one server or a cluster), a
// redis-server, the sandbox, and the jobs published so far.
type rig struct {
	t        *testing.T
	natsURL  string // comma-separated for a cluster
	replicas int
	redis    *testenv.Redis
	sandbox  *sandbox.Server
	sbURL    string
	nc       *nats.Conn
	js       jetstream.JetStream

	published []string
}

func newRig(t *testing.T, natsURL string, replicas int, latency time.Duration) *rig {
	t.Helper()
	r := &rig{t: t, natsURL: natsURL, replicas: replicas, redis: testenv.StartRedis(t)}
	r.sandbox = sandbox.New(sandbox.Options{Latency: latency, Record: true})
	srv := httptest.NewServer(r.sandbox)
	t.Cleanup(srv.Close)
	r.sbURL = srv.URL
	var err error
	r.nc, err = nats.Connect(natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.nc.Close)
	r.js, err = jetstream.New(r.nc)
	if err != nil {
		t.Fatal(err)
	}
	// The streams as the workers will find them (they apply the same).
	topo := producer.DefaultTopology
	topo.Replicas = replicas
	topo.AckWait = ackWait
	testenv.Eventually(t, 30*time.Second, "the streams created", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := topo.Apply(ctx, r.js)
		return err == nil
	})
	return r
}

// worker is a `herald worker` child process.
type worker struct {
	name string
	cmd  *exec.Cmd
	addr string // its /readyz, /healthz and /metrics
	logs string // its log file
	done chan struct{}
	err  error // from Wait, once done is closed
}

// startWorker starts a worker and waits until it is ready.
func (r *rig) startWorker(name string) *worker {
	t := r.t
	t.Helper()
	w := &worker{name: name, addr: freeAddr(t), logs: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HERALD_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"HERALD_NATS_URL="+r.natsURL,
		"HERALD_NATS_REPLICAS="+strconv.Itoa(r.replicas),
		"HERALD_REDIS_URL="+r.redis.URL,
		"HERALD_WORKER_INSTANCE="+name,
		"HERALD_WORKER_HTTP_ADDR="+w.addr,
		"HERALD_WORKER_CONCURRENCY="+strconv.Itoa(concurrency),
		"HERALD_WORKER_MAX_ATTEMPTS="+strconv.Itoa(maxAttempts),
		"HERALD_WORKER_ACK_WAIT="+ackWait.String(),
		"HERALD_WORKER_REQUEST_TIMEOUT="+requestTimeout.String(),
		"HERALD_WORKER_SHUTDOWN_GRACE="+shutdownGrace.String(),
		"HERALD_WORKER_BREAKER_COOLDOWN=3s",
		"HERALD_RETRY_INITIAL_INTERVAL=100ms",
		"HERALD_RETRY_MAX_INTERVAL=1s",
		"HERALD_DEDUP_TTL=1h",
		"HERALD_APPS_DEFAULT_WECHAT_APP_ID="+sandbox.DevWeChatAppID,
		"HERALD_APPS_DEFAULT_WECHAT_APP_SECRET="+sandbox.DevWeChatSecret,
		"HERALD_APPS_DEFAULT_WECHAT_BASE_URL="+r.sbURL,
	)
	logf, err := os.Create(w.logs)
	if err != nil {
		t.Fatal(err)
	}
	w.cmd = exec.Command(heraldBin, "worker", "--log-level", "info")
	w.cmd.Env = env
	w.cmd.Stdout, w.cmd.Stderr = logf, logf
	if err := w.cmd.Start(); err != nil {
		_ = logf.Close()
		t.Fatal(err)
	}
	go func() {
		w.err = w.cmd.Wait()
		_ = logf.Close()
		close(w.done)
	}()
	t.Cleanup(func() {
		_ = w.cmd.Process.Kill()
		<-w.done
		if t.Failed() {
			w.dumpLogs(t)
		}
	})
	testenv.Eventually(t, 30*time.Second, name+" ready", func() bool {
		select {
		case <-w.done:
			w.dumpLogs(t)
			t.Fatalf("%s exited at start: %v", name, w.err)
		default:
		}
		return w.status("/readyz") == http.StatusOK
	})
	return w
}

// status is the HTTP status of a GET on the worker's path, 0 if it did not
// answer.
func (w *worker) status(path string) int {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + w.addr + path)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// metric returns the worker's /metrics page.
func (w *worker) metrics() string {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + w.addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (w *worker) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := w.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, w.name, err)
	}
}

// wait waits up to d for the process to exit and returns its exit code.
func (w *worker) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v", w.name, d)
	}
	var exit *exec.ExitError
	if errors.As(w.err, &exit) {
		return exit.ExitCode()
	}
	if w.err != nil {
		t.Fatalf("%s: %v", w.name, w.err)
	}
	return 0
}

func (w *worker) running() bool {
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

func (w *worker) dumpLogs(t *testing.T) {
	b, _ := os.ReadFile(w.logs)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	t.Logf("%s log %s (tail):\n%s", w.name, w.logs, b)
}

// publish publishes n jobs with ids prefix-0..n-1 and records those
// JetStream acknowledged.
func (r *rig) publish(prefix string, n int) {
	t := r.t
	t.Helper()
	type pending struct {
		id  string
		ack jetstream.PubAckFuture
	}
	var futures []pending
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		msg := nats.NewMsg(job.SendSubject(job.WeChat))
		msg.Header.Set(job.HeaderMsgID, id)
		msg.Data = jobJSON(id)
		f, err := r.js.PublishMsgAsync(msg)
		if err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
		futures = append(futures, pending{id, f})
	}
	timeout := time.After(30 * time.Second)
	for _, p := range futures {
		select {
		case <-p.ack.Ok():
			r.published = append(r.published, p.id)
		case err := <-p.ack.Err():
			t.Fatalf("publish %s: %v", p.id, err)
		case <-timeout:
			t.Fatal("publish acks did not arrive within 30s")
		}
	}
}

func jobJSON(id string) []byte {
	j := job.Job{
		ID: id, Platform: job.WeChat, TemplateID: "tpl", ToUser: "user-" + id,
		Data: map[string]job.Value{"thing1": {Value: "hello"}},
	}
	b, _ := json.Marshal(j)
	return b
}

// accepted is how many sends the sandbox has accepted.
func (r *rig) accepted() int64 { return r.sandbox.Stats()["wechat"].Accepted }

// sendCalls is how many send calls reached the sandbox.
func (r *rig) sendCalls() int64 { return r.sandbox.Stats()["wechat"].SendCalls }

// queued is how many jobs NOTIFY_SEND still holds.
func (r *rig) queued() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, producer.DefaultTopology.SendStream)
	if err != nil {
		return 0, err
	}
	return s.CachedInfo().State.Msgs, nil
}

// awaitDrained waits until NOTIFY_SEND is empty.
func (r *rig) awaitDrained(d time.Duration) {
	r.t.Helper()
	testenv.Eventually(r.t, d, "NOTIFY_SEND empty", func() bool {
		n, err := r.queued()
		return err == nil && n == 0
	})
}

// report is what happened to the published jobs.
type report struct {
	Published int
	Delivered int            // ids with a receipt
	Dead      map[string]int // ids dead-lettered, by reason
	Lost      []string       // none of these, nor accepted by the platform
	// Unreceipted were accepted by the platform but have no receipt: a
	// worker killed between the sent marker and the receipt.
	Unreceipted []string
	Accepted    int // sends the platform accepted
	Duplicates  int // accepted sends beyond one per recipient
}

// outcomes counts, once NOTIFY_SEND is empty, every published job's end:
// a receipt in NOTIFY_EVENTS, a dead letter in NOTIFY_DEAD, or lost.
func (r *rig) outcomes() report {
	t := r.t
	t.Helper()
	receipts := map[string]bool{}
	for _, data := range r.readStream(producer.DefaultTopology.EventsStream) {
		var rc job.Receipt
		if err := json.Unmarshal(data, &rc); err != nil {
			t.Fatalf("receipt %s: %v", data, err)
		}
		receipts[rc.ID] = true
	}
	dead := map[string]string{}
	for _, data := range r.readStream(producer.DefaultTopology.DeadStream) {
		var dl job.DeadLetter
		if err := json.Unmarshal(data, &dl); err != nil {
			t.Fatalf("dead letter %s: %v", data, err)
		}
		dead[dl.ID] = dl.Reason
	}
	rep := report{Published: len(r.published), Dead: map[string]int{}}
	users := map[string]bool{}
	for _, m := range r.sandbox.Accepted() {
		users[m.ToUser] = true
		rep.Accepted++
	}
	rep.Duplicates = rep.Accepted - len(users)
	for _, id := range r.published {
		switch {
		case receipts[id]:
			rep.Delivered++
		case dead[id] != "":
			rep.Dead[dead[id]]++
		case users["user-"+id]:
			rep.Unreceipted = append(rep.Unreceipted, id)
		default:
			rep.Lost = append(rep.Lost, id)
		}
	}
	return rep
}

// readStream returns the data of every message in stream.
func (r *rig) readStream(stream string) [][]byte {
	t := r.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	want := s.CachedInfo().State.Msgs
	if want == 0 {
		return nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	var out [][]byte
	for uint64(len(out)) < want {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatalf("read %s: %v", stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			out = append(out, bytes.Clone(m.Data()))
			n++
		}
		if n == 0 && ctx.Err() != nil {
			t.Fatalf("read %d of %d messages from %s", len(out), want, stream)
		}
	}
	return out
}

// check asserts no job was lost, and at most maxUnreceipted were
// delivered without a receipt, and logs the figures.
func (rep report) check(t *testing.T, what string, maxUnreceipted int) {
	t.Helper()
	t.Logf("%s: published %d, delivered %d, dead-lettered %v, lost %d, accepted without a receipt %d, accepted %d, duplicates %d",
		what, rep.Published, rep.Delivered, rep.Dead, len(rep.Lost), len(rep.Unreceipted), rep.Accepted, rep.Duplicates)
	if len(rep.Lost) > 0 {
		t.Errorf("%d jobs lost (neither delivered nor dead-lettered), e.g. %v", len(rep.Lost), rep.Lost[:min(5, len(rep.Lost))])
	}
	if len(rep.Unreceipted) > maxUnreceipted {
		t.Errorf("%d jobs accepted by the platform without a receipt (at most %d allowed), e.g. %v",
			len(rep.Unreceipted), maxUnreceipted, rep.Unreceipted[:min(5, len(rep.Unreceipted))])
	}
}

var portMu sync.Mutex

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
