// Package httpclient builds the HTTP client herald's providers call the
// platforms with. There is one way to build it so that every provider gets
// the same connection reuse.
package httpclient

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// New returns a client for the platforms. It sets no timeout of its own:
// every provider call carries a context with its deadline, which also
// bounds reading the answer, and a second deadline per call would cost a
// timer per call for nothing. Its transport is
// net/http's default with an idle pool that keeps every connection to a
// host: the default keeps two, so most concurrent calls would dial. The
// connections that exist are bounded by the calls in flight (the worker's
// concurrency), so the pool needs no bound of its own; a bound below the
// concurrency closes the excess after every call and dials again. A
// process that replaced http.DefaultTransport gets a plain transport
// instead of a panic.
func New() *http.Client {
	tr, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	tr = tr.Clone()
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = maxIdlePerHost
	return &http.Client{Transport: tr}
}

// maxIdlePerHost is above any sensible worker concurrency.
const maxIdlePerHost = 1 << 16

// WithTimeout bounds a call's context by timeout, unless it already ends
// sooner: under the worker, whose own request timeout is usually the same
// figure, a call then costs no second context and timer.
func WithTimeout(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, timeout)
}

// CheckURL reports why s is not an http(s) URL with a host, or nil. The
// config and the providers judge platform endpoints by this one rule.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a valid URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("scheme must be https or http")
	case u.Host == "":
		return errors.New("host required")
	}
	return nil
}
