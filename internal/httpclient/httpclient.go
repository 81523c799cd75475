// Package httpclient builds the HTTP client herald's providers call the
// platforms with. There is one way to build it so that every provider gets
// the same connection reuse.
package httpclient

import (
	"net/http"
	"time"
)

// New returns a client whose calls end after timeout. Its transport is
// net/http's default with an idle pool large enough for hundreds of
// concurrent calls to one host (the default keeps two idle connections per
// host, so most calls would dial). A process that replaced
// http.DefaultTransport gets a plain transport instead of a panic.
func New(timeout time.Duration) *http.Client {
	tr, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	tr = tr.Clone()
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = 1024
	return &http.Client{Timeout: timeout, Transport: tr}
}
