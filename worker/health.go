package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// ErrStoreDown is reported by Ready while the shared store cannot be reached.
var ErrStoreDown = errors.New("shared store unreachable")

// health tracks whether the store answers. While it does not, the worker
// pulls nothing, and a prober pings it until it does.
type health struct {
	store Store
	m     *metrics
	log   *zap.Logger

	mu   sync.Mutex
	err  error         // last store error while down
	up   chan struct{} // closed while the store is up
	kick chan struct{} // wakes the prober when a failure is reported
}

func newHealth(store Store, m *metrics, log *zap.Logger) *health {
	up := make(chan struct{})
	close(up)
	m.storeUp.Set(1)
	return &health{store: store, m: m, log: log, up: up, kick: make(chan struct{}, 1)}
}

func (h *health) ready() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return fmt.Errorf("%w: %v", ErrStoreDown, h.err)
	}
	return nil
}

// failed marks the store down after an operation failed on it.
func (h *health) failed(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	h.mu.Lock()
	if h.err == nil {
		h.up = make(chan struct{})
		h.m.storeUp.Set(0)
		h.log.Error("shared store unreachable: pulling stops until it answers", zap.Error(err))
	}
	h.err = err
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

func (h *health) recovered() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		h.err = nil
		close(h.up)
		h.m.storeUp.Set(1)
		h.log.Info("shared store answers again: pulling resumes")
	}
}

// waitUp blocks while the store is down.
func (h *health) waitUp(ctx context.Context) error {
	h.mu.Lock()
	up := h.up
	h.mu.Unlock()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run pings the store every second while it is down and every 5 seconds
// while it is up, so readiness follows the store even when no job flows.
func (h *health) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.kick:
		case <-t.C:
		}
		down := h.ready() != nil
		if !down && time.Since(last) < 5*time.Second {
			continue
		}
		last = time.Now()
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := h.store.Ping(pctx)
		cancel()
		switch {
		case err == nil:
			h.recovered()
		case ctx.Err() == nil:
			h.failed(err)
		}
	}
}

// NATSReady reports whether nc is connected, for readiness checks.
func NATSReady(nc *nats.Conn) error {
	if s := nc.Status(); s != nats.CONNECTED {
		return fmt.Errorf("nats %s", s)
	}
	return nil
}

func encodeMsg(subject string, v any) (*nats.Msg, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", subject, err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	return msg, nil
}

func isJSONObject(data []byte) bool {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return json.Valid(data)
		}
		return false
	}
	return false
}
