package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinel is a redis-server process in sentinel mode watching one master.
type Sentinel struct {
	Addr       string
	MasterName string
	dir        string
	password   string
	cmd        *exec.Cmd
}

// StartSentinel starts a sentinel on a free port that monitors master under
// masterName with a quorum of one, so that it alone may fail over. With a
// password, the sentinel requires it of its clients (requirepass).
func StartSentinel(t testing.TB, master *Redis, masterName, password string) *Sentinel {
	t.Helper()
	host, port, _ := net.SplitHostPort(master.Addr)
	s := &Sentinel{MasterName: masterName, dir: t.TempDir(), password: password}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	_, sport, _ := net.SplitHostPort(s.Addr)
	conf := []string{
		"port " + sport,
		"bind 127.0.0.1",
		"dir " + s.dir,
		"logfile " + filepath.Join(s.dir, "sentinel.log"),
		fmt.Sprintf("sentinel monitor %s %s %s 1", masterName, host, port),
		// Short enough for a test to see a failover, long enough for a
		// busy machine not to start one by itself.
		fmt.Sprintf("sentinel down-after-milliseconds %s 5000", masterName),
		fmt.Sprintf("sentinel failover-timeout %s 20000", masterName),
	}
	if master.password != "" {
		conf = append(conf, fmt.Sprintf("sentinel auth-pass %s %s", masterName, master.password))
	}
	if password != "" {
		conf = append(conf, "requirepass "+password)
	}
	// Sentinel rewrites its config file: it must be writable and its own.
	file := filepath.Join(s.dir, "sentinel.conf")
	if err := os.WriteFile(file, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command("redis-server", file, "--sentinel")
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start redis sentinel: %v", err)
	}
	t.Cleanup(s.Stop)
	c := s.Client(t)
	Eventually(t, 10*time.Second, "the sentinel to answer", func() bool {
		return c.Ping(context.Background()).Err() == nil
	})
	return s
}

// Stop kills the sentinel and waits for it to exit.
func (s *Sentinel) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Client returns a client for the sentinel, closed at cleanup.
func (s *Sentinel) Client(t testing.TB) *redis.SentinelClient {
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, Password: s.password, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// MasterAddr is the master's address as the sentinel knows it.
func (s *Sentinel) MasterAddr(t testing.TB) string {
	t.Helper()
	hp, err := s.Client(t).GetMasterAddrByName(context.Background(), s.MasterName).Result()
	if err != nil || len(hp) != 2 {
		t.Fatalf("sentinel get-master-addr-by-name %s: %v, %v", s.MasterName, hp, err)
	}
	return net.JoinHostPort(hp[0], hp[1])
}

// WaitForReplica waits until the sentinel knows replica as a replica of
// its master, with a healthy link to it: what a failover needs.
func (s *Sentinel) WaitForReplica(t testing.TB, replica *Redis) {
	t.Helper()
	c := s.Client(t)
	Eventually(t, 30*time.Second, "the sentinel to know a healthy replica "+replica.Addr, func() bool {
		reps, err := c.Replicas(context.Background(), s.MasterName).Result()
		if err != nil {
			return false
		}
		for _, r := range reps {
			if net.JoinHostPort(r["ip"], r["port"]) == replica.Addr &&
				r["master-link-status"] == "ok" && !strings.Contains(r["flags"], "down") {
				return true
			}
		}
		return false
	})
}

// Failover makes the sentinel fail the master over to replica (SENTINEL
// FAILOVER) and waits until replica is the master, by the sentinel's
// account and its own.
func (s *Sentinel) Failover(t testing.TB, replica *Redis) {
	t.Helper()
	s.WaitForReplica(t, replica)
	c := s.Client(t)
	if err := c.Failover(context.Background(), s.MasterName).Err(); err != nil {
		t.Fatalf("sentinel failover %s: %v", s.MasterName, err)
	}
	Eventually(t, 30*time.Second, "the sentinel to name "+replica.Addr+" master", func() bool {
		hp, err := c.GetMasterAddrByName(context.Background(), s.MasterName).Result()
		return err == nil && len(hp) == 2 && net.JoinHostPort(hp[0], hp[1]) == replica.Addr
	})
	Eventually(t, 30*time.Second, replica.Addr+" to act as master", func() bool {
		return replica.Role(t) == "master"
	})
}
