package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// startDevRedis runs a redis-server child for herald dev on a free
// loopback port, keeping nothing on disk, with its working directory in
// dir. It returns its URL and a stop function; without redis-server on
// PATH, an empty URL, a no-op stop and the reason.
func startDevRedis(ctx context.Context, dir string) (string, func(), error) {
	none := func() {}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", none, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", none, fmt.Errorf("redis dir: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", none, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", dir, "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		return "", none, fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	url := "redis://127.0.0.1:" + strconv.Itoa(port) + "/0"
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})
	defer rdb.Close()
	// Ready once it answers; a server that exits (the port taken meanwhile)
	// says so at once.
	deadline := time.Now().Add(10 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := rdb.Ping(pctx).Err()
		cancel()
		if err == nil {
			return url, stop, nil
		}
		select {
		case werr := <-exited:
			return "", none, fmt.Errorf("redis-server exited: %v", werr)
		case <-ctx.Done():
			stop()
			return "", none, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", none, errors.New("redis-server did not answer within 10s")
		}
	}
}
