package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs owns every child process a run starts, and stops them all.
type procs struct {
	mu   sync.Mutex
	list []*child
}

type child struct {
	name string
	cmd  *exec.Cmd
	log  string // file with its stdout and stderr
	done chan struct{}
	err  error // set before done closes
}

// start runs name with args, output to dir/<label>.log. The child is killed
// if this process dies (Pdeathsig on Linux).
func (p *procs) start(dir, label string, env []string, name string, args ...string) (*child, error) {
	logPath := filepath.Join(dir, label+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = env
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", label, err)
	}
	c := &child{name: label, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	p.mu.Lock()
	p.list = append(p.list, c)
	p.mu.Unlock()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// tail returns the last lines of the child's output, for error messages.
func (c *child) tail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// stop sends SIGTERM, waits up to grace, then kills.
func (c *child) stop(grace time.Duration) error {
	if c.exited() {
		return c.err
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
		return c.err
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not stop within %v: killed", c.name, grace)
	}
}

// stopAll stops every child still running, newest first.
func (p *procs) stopAll() {
	p.mu.Lock()
	list := p.list
	p.list = nil
	p.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		_ = list[i].stop(5 * time.Second)
	}
}

// usage is a process's resources as /proc tells them.
type usage struct {
	rssKiB, peakKiB int64   // VmRSS, VmHWM
	cpu             float64 // user + system seconds
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

func readUsage(pid int) (usage, error) {
	var u usage
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			u.rssKiB = n
		case "VmHWM":
			u.peakKiB = n
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	rest := stat[bytes.LastIndexByte(stat, ')')+2:]
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return u, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	u.cpu = float64(ut+st) / clockTicks
	return u, nil
}

// freePort returns a loopback TCP port nobody listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitTCP polls addr until it accepts a connection or the deadline passes.
func waitTCP(ctx context.Context, c *child, addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		if c.exited() {
			return fmt.Errorf("%s exited: %v\n%s", c.name, c.err, c.tail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %s within %v\n%s", c.name, addr, within, c.tail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond): // polling another process
		}
	}
}

// natsServerBinary returns the nats-server to run: path when set, else
// the one on PATH when it is v2.10 or later, else one built from the module
// cache into dir. Figures from servers older than v2.10 are not comparable
// with the ones in docs/performance.md.
func natsServerBinary(ctx context.Context, dir, path string) (string, error) {
	if path != "" {
		return path, nil
	}
	if p, err := exec.LookPath("nats-server"); err == nil && atLeast210(version(p, "--version")) {
		return p, nil
	}
	// The version herald is built with, from the module cache (or the
	// module proxy), wherever this runs from.
	v := "latest"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == natsServerModule {
				v = d.Version
			}
		}
	}
	cmd := exec.CommandContext(ctx, "go", "install", natsServerModule+"@"+v)
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("no nats-server v2.10+ on PATH and building %s@%s failed (pass --nats-server): %v\n%s", natsServerModule, v, err, b)
	}
	return filepath.Join(dir, "nats-server"), nil
}

const natsServerModule = "github.com/nats-io/nats-server/v2"

// atLeast210 reports whether a nats-server --version answer is v2.10 or
// later.
func atLeast210(v string) bool {
	_, v, _ = strings.Cut(v, "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return err1 == nil && err2 == nil && (major > 2 || major == 2 && minor >= 10)
}

func version(bin string, args ...string) string {
	b, err := exec.Command(bin, args...).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
