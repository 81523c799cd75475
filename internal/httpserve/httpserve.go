// Package httpserve runs herald's HTTP servers: the worker's and the
// receiver's probes and metrics, the receiver's push URLs, the console.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// shutdownGrace is how long stop lets requests in flight finish.
const shutdownGrace = 5 * time.Second

// Start listens on addr (port 0 picks a free one) and serves srv there
// until stop is called. It returns the address it listens on. stop shuts
// the server down, letting requests in flight finish for up to 5 seconds
// even when ctx has ended, and returns once it has stopped.
func Start(ctx context.Context, addr string, srv *http.Server, log *zap.Logger) (net.Addr, func(), error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", zap.String("addr", l.Addr().String()), zap.Error(err))
		}
	}()
	stop := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}
	return l.Addr(), stop, nil
}
