package wechat

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// sourceBundle is a tokenSource on a MemoryTokens store whose fetches hand
// out T1, T2, ... and are counted.
type sourceBundle struct {
	src     *tokenSource
	store   *MemoryTokens
	fetched atomic.Int64
}

func setupSource(t *testing.T) *sourceBundle {
	t.Helper()
	b := &sourceBundle{store: NewMemoryTokens()}
	b.src = &tokenSource{
		appID: "wx1", store: b.store, now: time.Now, lockTTL: time.Minute,
		fetch: func(context.Context) (Token, error) {
			n := b.fetched.Add(1)
			return newToken("T"+string(rune('0'+n)), 2*time.Hour, time.Now()), nil
		},
	}
	return b
}

func (b *sourceBundle) put(t *testing.T, value string, refreshIn, expiresIn time.Duration) {
	t.Helper()
	now := time.Now()
	if err := b.store.Put(context.Background(), "wx1", Token{Value: value, RefreshAt: now.Add(refreshIn), ExpiresAt: now.Add(expiresIn)}); err != nil {
		t.Fatal(err)
	}
}

func TestRejectedTokenIsNotTakenBackFromTheStore(t *testing.T) {
	t.Parallel()
	b := setupSource(t)
	ctx := context.Background()
	b.put(t, "T0", time.Hour, 2*time.Hour)
	if got, err := b.src.get(ctx); err != nil || got != "T0" {
		t.Fatalf("get = %q, %v; want T0 from the store", got, err)
	}
	if err := b.src.invalidate(ctx, "T0"); err != nil {
		t.Fatal(err)
	}
	// A read that raced the invalidation put T0 back.
	b.put(t, "T0", time.Hour, 2*time.Hour)
	if got, err := b.src.get(ctx); err != nil || got != "T1" || b.fetched.Load() != 1 {
		t.Fatalf("get = %q, %v after %d fetches; want T1 from one fetch", got, err, b.fetched.Load())
	}
}

func TestLockLoserBorrowsAValidToken(t *testing.T) {
	t.Parallel()
	b := setupSource(t)
	ctx := context.Background()
	b.put(t, "T0", -time.Minute, 4*time.Minute) // due, still valid
	unlock, ok, _ := b.store.Lock(ctx, "wx1", time.Minute)
	if !ok {
		t.Fatal("could not take the lock")
	}
	defer unlock()
	if got, err := b.src.get(ctx); err != nil || got != "T0" || b.fetched.Load() != 0 {
		t.Fatalf("get = %q, %v after %d fetches; want T0 at once, no fetch", got, err, b.fetched.Load())
	}
}

func TestLockLoserWaitsForTheHolder(t *testing.T) {
	t.Parallel()
	b := setupSource(t)
	ctx := context.Background()
	unlock, ok, _ := b.store.Lock(ctx, "wx1", time.Minute) // another replica is fetching
	if !ok {
		t.Fatal("could not take the lock")
	}
	defer unlock()
	got := make(chan string, 1)
	go func() {
		tok, err := b.src.get(ctx)
		if err != nil {
			tok = err.Error()
		}
		got <- tok
	}()
	b.put(t, "T9", time.Hour, 2*time.Hour) // the holder stores its token
	if tok := <-got; tok != "T9" || b.fetched.Load() != 0 {
		t.Fatalf("get = %q after %d fetches; want T9 and no fetch", tok, b.fetched.Load())
	}

	// Without a holder that delivers, the wait ends with the context.
	b2 := setupSource(t)
	unlock2, _, _ := b2.store.Lock(ctx, "wx1", time.Minute)
	defer unlock2()
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := b2.src.get(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get = %v, want the context's deadline", err)
	}
}

func TestNewTokenRefreshesAheadOfExpiry(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		give time.Duration
		want time.Duration // refresh after
	}{
		{7200 * time.Second, 6900 * time.Second},
		{301 * time.Second, 150500 * time.Millisecond},
		{60 * time.Second, 30 * time.Second},
	}
	for _, tt := range tests {
		got := newToken("T", tt.give, now)
		if got.RefreshAt.Sub(now) != tt.want || got.ExpiresAt.Sub(now) != tt.give {
			t.Errorf("newToken(%v): refresh after %v, expire after %v; want %v, %v",
				tt.give, got.RefreshAt.Sub(now), got.ExpiresAt.Sub(now), tt.want, tt.give)
		}
	}
}
