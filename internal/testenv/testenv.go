// Package testenv starts the real infrastructure tests run against: an
// embedded JetStream server (with TLS and authentication where a test asks
// for them), redis-server processes (alone, with TLS and passwords, as a
// replica, watched by Sentinel, or as a Redis Cluster), and the certificate
// authority their TLS tests need; each on free loopback ports and each
// stopped by t.Cleanup. It is imported by tests only.
package testenv

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
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
// temporary directory. Each of configure may change the server's options
// first, to require TLS or authentication.
func StartJetStream(t testing.TB, configure ...func(*server.Options)) *JetStream {
	t.Helper()
	opts := server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}
	for _, c := range configure {
		c(&opts)
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
	// URL is redis://, or rediss:// when the server speaks TLS only.
	URL  string
	dir  string
	port int
	cmd  *exec.Cmd
	args []string // extra server arguments

	// What the tests' own admin connections use.
	tls      *tls.Config
	password string
}

// RedisOption changes how StartRedis starts the server.
type RedisOption func(*Redis)

// RedisArgs adds redis-server command-line arguments, such as
// "--maxmemory", "1mb".
func RedisArgs(args ...string) RedisOption {
	return func(r *Redis) { r.args = append(r.args, args...) }
}

// RedisTLS makes the server speak TLS only, with a certificate ca issues
// for 127.0.0.1; with authClients it requires clients to present a
// certificate ca issued (tls-auth-clients yes). The tests' own
// connections present one.
func RedisTLS(t testing.TB, ca *CA, authClients bool) RedisOption {
	t.Helper()
	srv := ca.Server(t, "redis-server")
	admin := ca.Client(t, "testenv-admin")
	auth := "no"
	if authClients {
		auth = "yes"
	}
	return func(r *Redis) {
		r.args = append(r.args, "--tls-cert-file", srv.CertFile, "--tls-key-file", srv.KeyFile,
			"--tls-ca-cert-file", ca.CertFile, "--tls-auth-clients", auth)
		r.tls = ca.ClientTLS(&admin)
	}
}

// RedisPassword sets the default user's password (requirepass); the
// tests' own connections use it.
func RedisPassword(password string) RedisOption {
	return func(r *Redis) {
		r.args = append(r.args, "--requirepass", password)
		r.password = password
	}
}

// StartRedis starts redis-server on a free port, persisting nothing. It
// fails the test with a clear message when the binary is not installed.
func StartRedis(t testing.TB, opts ...RedisOption) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not on PATH: install it (apt-get install -y redis-server); tests need a real Redis")
	}
	r := &Redis{dir: t.TempDir(), port: freePort(t)}
	for _, o := range opts {
		o(r)
	}
	r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
	r.URL = "redis://" + r.Addr + "/0"
	if r.tls != nil {
		r.URL = "rediss://" + r.Addr + "/0"
	}
	r.Start(t)
	t.Cleanup(r.Stop)
	return r
}

// Start launches the server (again, after Stop) on the same port.
func (r *Redis) Start(t testing.TB) {
	t.Helper()
	port := []string{"--port", strconv.Itoa(r.port)}
	if r.tls != nil {
		port = []string{"--port", "0", "--tls-port", strconv.Itoa(r.port)}
	}
	args := append(port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir,
		"--logfile", filepath.Join(r.dir, "redis.log"))
	cmd := exec.Command("redis-server", append(args, r.args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	r.cmd = cmd
	opts := r.Options()
	opts.MaxRetries = -1
	c := redis.NewClient(opts)
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
			t.Fatalf("redis-server on %s not ready: %v\n%s", r.Addr, err, r.Log())
		}
		time.Sleep(20 * time.Millisecond) // polling a child process for readiness; nothing to await
	}
}

// Log returns the server's log so far, for failure messages.
func (r *Redis) Log() string {
	data, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	return string(data)
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

// Options are the client options of the tests' own connections: the
// address, and the TLS configuration and password the server requires.
// Each call returns a new copy to change.
func (r *Redis) Options() *redis.Options {
	o := &redis.Options{Addr: r.Addr, Password: r.password}
	if r.tls != nil {
		o.TLSConfig = r.tls.Clone()
	}
	return o
}

// Client returns a client for the server, closed at cleanup.
func (r *Redis) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(r.Options())
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// ReplicaOf makes the server a replica of master (REPLICAOF), which makes
// it read-only at once; it does not wait for the first sync.
func (r *Redis) ReplicaOf(t testing.TB, master *Redis) {
	t.Helper()
	host, port, _ := net.SplitHostPort(master.Addr)
	r.do(t, "REPLICAOF", host, port)
}

// Promote makes a replica a master again (REPLICAOF NO ONE).
func (r *Redis) Promote(t testing.TB) {
	t.Helper()
	r.do(t, "REPLICAOF", "NO", "ONE")
}

// Role is the server's replication role: "master" or "slave".
func (r *Redis) Role(t testing.TB) string {
	t.Helper()
	return infoField(r.info(t, "replication"), "role")
}

// do runs one command on an admin connection.
func (r *Redis) do(t testing.TB, args ...any) any {
	t.Helper()
	c := redis.NewClient(r.Options())
	defer c.Close()
	res, err := c.Do(context.Background(), args...).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatalf("redis %s %v: %v", r.Addr, args, err)
	}
	return res
}

// infoField returns one field of an INFO section.
func infoField(info, name string) string {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Calls returns how many times clients have called command (lower case, e.g.
// "evalsha") since the server started or its stats were reset. Commands run
// inside scripts are not counted.
func (r *Redis) Calls(t testing.TB, command string) int64 {
	t.Helper()
	return r.commandStat(t, command, "calls")
}

// Rejected returns how many calls of command the server refused before
// running them (a write to a read-only replica, a command over maxmemory,
// one an ACL forbids) since it started or its stats were reset.
func (r *Redis) Rejected(t testing.TB, command string) int64 {
	t.Helper()
	return r.commandStat(t, command, "rejected_calls")
}

// commandStat reads one field of a command's line of INFO commandstats:
// cmdstat_set:calls=3,usec=12,usec_per_call=4.00,rejected_calls=1,failed_calls=0
func (r *Redis) commandStat(t testing.TB, command, field string) int64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(r.info(t, "commandstats")))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "cmdstat_"+command+":")
		if !ok {
			continue
		}
		for kv := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(kv, field+"="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
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
	c := redis.NewClient(r.Options())
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
