// Package testenv starts the real infrastructure tests run against: an
// embedded JetStream server and a redis-server process, each on a free
// loopback port and each stopped by t.Cleanup. It is imported by tests only.
package testenv

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// JetStream is an embedded single-node JetStream server.
type JetStream struct {
	Server *server.Server
	URL    string
	opts   server.Options
}

// StartJetStream starts an embedded JetStream server with file storage in a
// temporary directory.
func StartJetStream(t testing.TB) *JetStream {
	t.Helper()
	opts := server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}
	js := &JetStream{opts: opts}
	js.start(t)
	t.Cleanup(js.Shutdown)
	return js
}

func (js *JetStream) start(t testing.TB) {
	t.Helper()
	s, err := server.NewServer(&js.opts)
	if err != nil {
		t.Fatalf("new nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("nats server not ready within 10s")
	}
	js.Server = s
	js.URL = s.ClientURL()
	// Keep the port across restarts so clients reconnect to the same URL.
	js.opts.Port = s.Addr().(*net.TCPAddr).Port
}

// Connect returns a client connection to the server and its JetStream
// context; the connection is closed by t.Cleanup.
func (js *JetStream) Connect(t testing.TB, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(js.URL, opts...)
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	jsc, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, jsc
}

// Restart stops the server and starts it again on the same port and store.
func (js *JetStream) Restart(t testing.TB) {
	t.Helper()
	js.Shutdown()
	js.start(t)
}

// Shutdown stops the server and waits for it to exit.
func (js *JetStream) Shutdown() {
	if js.Server != nil {
		js.Server.Shutdown()
		js.Server.WaitForShutdown()
	}
}

// Redis is a redis-server child process.
type Redis struct {
	Addr string
	URL  string
	dir  string
	port int
	cmd  *exec.Cmd
}

// StartRedis starts redis-server on a free port, persisting nothing. It
// fails the test with a clear message when the binary is not installed.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not on PATH: install it (apt-get install -y redis-server); tests need a real Redis")
	}
	r := &Redis{dir: t.TempDir(), port: freePort(t)}
	r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
	r.URL = "redis://" + r.Addr + "/0"
	r.Start(t)
	t.Cleanup(r.Stop)
	return r
}

// Start launches the server (again, after Stop) on the same port.
func (r *Redis) Start(t testing.TB) {
	t.Helper()
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir,
		"--logfile", filepath.Join(r.dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	r.cmd = cmd
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			t.Fatalf("redis-server on %s not ready: %v\n%s", r.Addr, err, log)
		}
		time.Sleep(20 * time.Millisecond) // polling a child process for readiness; nothing to await
	}
}

// Stop kills the server and waits for it to exit.
func (r *Redis) Stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Client returns a client for the server, closed at cleanup.
func (r *Redis) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Calls returns how many times clients have called command (lower case, e.g.
// "evalsha") since the server started or its stats were reset. Commands run
// inside scripts are not counted.
func (r *Redis) Calls(t testing.TB, command string) int64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(r.info(t, "commandstats")))
	prefix := "cmdstat_" + command + ":calls="
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest+",", ',')], 10, 64)
			return n
		}
	}
	return 0
}

// CPU returns the CPU time the server has used, user and system, from
// INFO cpu: benchmarks report it per operation, since on a shared machine
// the server's work is part of what an operation costs.
func (r *Redis) CPU(t testing.TB) time.Duration {
	t.Helper()
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(r.info(t, "cpu")))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		if k == "used_cpu_user" || k == "used_cpu_sys" {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("redis info cpu %s: %v", k, err)
			}
			sum += f
		}
	}
	return time.Duration(sum * float64(time.Second))
}

// info returns one section of INFO.
func (r *Redis) info(t testing.TB, section string) string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer c.Close()
	info, err := c.Info(context.Background(), section).Result()
	if err != nil {
		t.Fatalf("redis info %s: %v", section, err)
	}
	return info
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Eventually polls cond every 20 ms until it holds, and fails the test if
// it does not within timeout. It is for state outside the test's own
// events (stream counts, readiness, another process's output).
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}
