// Package httpclient builds the HTTP client herald's providers call the
// platforms with. There is one way to build it so that every provider gets
// the same connection reuse, and none follows a redirect: a 307 or 308
// would send the request again, body and all (a token request carries the
// app's secret), to whatever host the answer names.
package httpclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrRedirect is the error of a call the platform answered with a redirect
// (any 3xx status): herald never follows one. It is a transport error: the
// outcome of the call is unknown, and a provider retries it.
var ErrRedirect = errors.New("redirect refused")

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
// instead of a panic. It follows no redirect (see [NoRedirects]).
func New() *http.Client {
	tr, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	tr = tr.Clone()
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = maxIdlePerHost
	// A send is a request of about 1 KiB and an answer of a few hundred
	// bytes: net/http's 4 KiB buffers each way cost 8 KiB a connection, and
	// a replica keeps one connection per call in flight. Larger messages
	// still go through, in more reads and writes.
	tr.WriteBufferSize = 2 << 10
	tr.ReadBufferSize = 1 << 10
	return &http.Client{Transport: tr, CheckRedirect: refuseRedirect}
}

// NoRedirects returns hc, or a copy of it that follows no redirect when hc
// would follow some: the 3xx answer itself is returned, for [Redirected] to
// turn into an error. nil stays nil. Providers pass every client they are
// given through it, so that no caller can hand them one that follows.
func NoRedirects(hc *http.Client) *http.Client {
	if hc == nil {
		return nil
	}
	c := *hc
	c.CheckRedirect = refuseRedirect
	return &c
}

func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Redirected returns an [ErrRedirect] error naming the status and the
// scheme and host of the Location when resp is a 3xx answer, and nil
// otherwise. The Location's path and query are left out: they are the
// other side's words.
func Redirected(resp *http.Response) error {
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return nil
	}
	to := "no Location"
	if u, err := resp.Location(); err == nil && u.Host != "" {
		to = u.Scheme + "://" + u.Host
		if len(to) > 100 {
			to = to[:100] + "..."
		}
	}
	return fmt.Errorf("%w: the platform answered %d %s to %s", ErrRedirect, resp.StatusCode, http.StatusText(resp.StatusCode), to)
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

// Insecure reports whether s, a URL [CheckURL] accepts, is plain http to a
// host other than loopback: calls to it cross a network unencrypted. The
// sandbox on 127.0.0.1 or localhost is not insecure.
func Insecure(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}
