package console

import (
	"context"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/heraldhq/herald/internal/httpserve"
)

// Serve serves h on addr until stop is called, with the bounds a console
// needs: request headers read within 5s and at most 64 KiB, whole
// requests within a minute, idle connections closed. It returns the
// address it listens on (addr may ask for port 0). stop shuts the server
// down, letting requests in flight finish for up to 5 seconds.
func Serve(ctx context.Context, addr string, h http.Handler, log *zap.Logger) (net.Addr, func(), error) {
	if log == nil {
		log = zap.NewNop()
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      requestTimeout + 15*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	return httpserve.Start(ctx, addr, srv, log.Named("console"))
}

// IsLoopback reports whether addr (host:port) listens on loopback only.
// An empty host, 0.0.0.0 or [::] listens everywhere; a name is looked up
// by nobody here, so only "localhost" counts.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
