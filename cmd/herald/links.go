package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/heraldhq/herald/config"
)

// The links to NATS and Redis: how the configuration's credentials and TLS
// files become client options. The worker and the operator commands build
// theirs here, so that both connect the same way.

// natsAuthOptions are the authentication and TLS options n gives, beside
// the credentials its URL may carry.
func natsAuthOptions(n config.NATS) ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case n.CredsFile != "":
		opts = append(opts, nats.UserCredentials(n.CredsFile))
	case n.NKeySeedFile != "":
		// The option keeps the public key and reads the seed again each
		// time it signs, so the seed stays in memory no longer than that.
		opt, err := nats.NkeyOptionFromSeed(n.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats.nkey_seed_file: %w", err)
		}
		opts = append(opts, opt)
	case n.User != "":
		opts = append(opts, nats.UserInfo(n.User, n.Password.Reveal()))
	case n.Token != "":
		opts = append(opts, nats.Token(n.Token.Reveal()))
	}
	if !n.TLS.IsZero() {
		tc, err := tlsConfig("nats.tls", n.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// tlsConfig builds a client TLS configuration from t; key names t in
// errors ("nats.tls"). The CA file is read once; the client certificate
// is checked now and read again at each handshake that asks for it, so a
// renewed certificate (a Kubernetes Secret updated in place) is used from
// the next connection on, without a restart.
func tlsConfig(key string, t config.TLS) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		data, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", key, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("%s.ca_file: no PEM certificate in %s", key, t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		load := func() (*tls.Certificate, error) {
			pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("%s.cert_file and key_file: %w", key, err)
			}
			return &pair, nil
		}
		if _, err := load(); err != nil {
			return nil, err
		}
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return load() }
	}
	return c, nil
}

// newRedis builds the client r.URL names: one server, the master Sentinel
// names, or a Redis Cluster, with r's credentials and TLS. It connects
// lazily; its errors name the Redis, never its credentials.
func newRedis(r config.Redis) (redis.UniversalClient, config.RedisMode, error) {
	u, err := config.ParseRedisURL(r.URL)
	if err != nil {
		return nil, "", fmt.Errorf("redis.url: %w", err)
	}
	var tc *tls.Config
	if u.TLS {
		if tc, err = tlsConfig("redis.tls", r.TLS); err != nil {
			return nil, "", err
		}
	}
	user, pass := u.Username, u.Password.Reveal()
	if r.Username != "" || r.Password != "" {
		user, pass = r.Username, r.Password.Reveal()
	}
	const (
		timeout    = 2 * time.Second
		maxRetries = 1
		poolSize   = 32 // per server
	)
	var rdb redis.UniversalClient
	switch u.Mode {
	case config.RedisServer:
		opts, err := redis.ParseURL(r.URL)
		if err != nil {
			// ParseRedisURL has checked the URL itself: this is about
			// its query options, which hold no credentials.
			return nil, "", fmt.Errorf("redis.url: %w", err)
		}
		opts.Username, opts.Password = user, pass
		if tc != nil {
			if tc.ServerName == "" && opts.TLSConfig != nil {
				tc.ServerName = opts.TLSConfig.ServerName
			}
			opts.TLSConfig = tc
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = timeout, timeout, timeout
		opts.MaxRetries, opts.PoolSize = maxRetries, poolSize
		rdb = redis.NewClient(opts)
	case config.RedisSentinel:
		rdb = redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:       r.Sentinel.MasterName,
			SentinelAddrs:    u.Addrs,
			SentinelUsername: r.Sentinel.Username,
			SentinelPassword: r.Sentinel.Password.Reveal(),
			Username:         user,
			Password:         pass,
			DB:               u.DB,
			TLSConfig:        tc,
			DialTimeout:      timeout,
			ReadTimeout:      timeout,
			WriteTimeout:     timeout,
			MaxRetries:       maxRetries,
			PoolSize:         poolSize,
		})
	case config.RedisCluster:
		rdb = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:        u.Addrs,
			Username:     user,
			Password:     pass,
			TLSConfig:    tc,
			DialTimeout:  timeout,
			ReadTimeout:  timeout,
			WriteTimeout: timeout,
			MaxRetries:   maxRetries,
			PoolSize:     poolSize,
		})
	}
	rdb.AddHook(redisNamed{target: redisTarget(r, u.Mode)})
	return rdb, u.Mode, nil
}

// redisTarget names the Redis in errors and logs, without credentials.
func redisTarget(r config.Redis, mode config.RedisMode) string {
	t := redactURL(r.URL)
	if mode == config.RedisSentinel {
		t += " (master " + r.Sentinel.MasterName + ")"
	}
	return t
}

// redisNamed puts the Redis herald was told to use, and the server it
// dialled, into the errors that are not Redis's answer to a command: a
// connection refused or timed out, a failed TLS handshake, a refused
// password or command. Replies a caller acts on (READONLY, NOSCRIPT,
// redis.Nil) pass unchanged; the wrapped ones still match errors.Is and
// errors.As.
type redisNamed struct{ target string }

func (h redisNamed) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		var opErr *net.OpError
		// A net.OpError names the address already; a Sentinel client's
		// "address" is a placeholder, the master it looks up.
		if err != nil && !errors.As(err, &opErr) && strings.Contains(addr, ":") {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		return c, err
	}
}

func (h redisNamed) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		var named *redisError
		if err == nil || errors.Is(err, redis.Nil) || errors.As(err, &named) {
			// Named already: the connection's own handshake (HELLO, AUTH)
			// runs through the hooks too.
			return err
		}
		var reply redis.Error
		if errors.As(err, &reply) {
			msg := reply.Error()
			if !strings.HasPrefix(msg, "WRONGPASS") && !strings.HasPrefix(msg, "NOAUTH") && !strings.HasPrefix(msg, "NOPERM") {
				return err
			}
		}
		return &redisError{target: h.target, err: err}
	}
}

// redisError is an error of the Redis target names.
type redisError struct {
	target string
	err    error
}

func (e *redisError) Error() string { return "redis " + e.target + ": " + e.err.Error() }
func (e *redisError) Unwrap() error { return e.err }

func (h redisNamed) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
