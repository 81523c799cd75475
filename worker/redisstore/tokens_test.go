package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/providers/wechat"
)

func newTestTokens(t *testing.T) (*Tokens, *testenv.Redis) {
	t.Helper()
	r := testenv.StartRedis(t)
	return NewTokens(r.Client(t), "test:"), r
}

func TestTokensPutGetInvalidate(t *testing.T) {
	t.Parallel()
	s, _ := newTestTokens(t)
	ctx := context.Background()
	if _, err := s.Get(ctx, "wxA"); !errors.Is(err, wechat.ErrNoToken) {
		t.Fatalf("Get on empty store: %v, want ErrNoToken", err)
	}
	now := time.Now().Truncate(time.Millisecond)
	want := wechat.Token{Value: "T1", RefreshAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour)}
	if err := s.Put(ctx, "wxA", want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "wxA")
	if err != nil || got.Value != want.Value || !got.RefreshAt.Equal(want.RefreshAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, want)
	}
	if _, err := s.Get(ctx, "wxB"); !errors.Is(err, wechat.ErrNoToken) {
		t.Fatalf("Get of another app: %v, want ErrNoToken", err)
	}

	// A replica holding an older token must not delete the current one.
	if err := s.Invalidate(ctx, "wxA", "T0"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "wxA"); err != nil || got.Value != "T1" {
		t.Fatalf("after Invalidate(T0): %+v, %v; want T1 kept", got, err)
	}
	if err := s.Invalidate(ctx, "wxA", "T1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "wxA"); !errors.Is(err, wechat.ErrNoToken) {
		t.Fatalf("after Invalidate(T1): %v, want ErrNoToken", err)
	}
}

func TestTokensExpireWithTheToken(t *testing.T) {
	t.Parallel()
	s, r := newTestTokens(t)
	ctx := context.Background()
	now := time.Now()
	if err := s.Put(ctx, "wxA", wechat.Token{Value: "T1", RefreshAt: now.Add(time.Minute), ExpiresAt: now.Add(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	ttl, err := r.Client(t).PTTL(ctx, "test:wxtoken:wxA").Result()
	if err != nil || ttl <= time.Minute || ttl > 2*time.Minute {
		t.Fatalf("PTTL = %v, %v; want within (1m, 2m]", ttl, err)
	}
	if err := s.Put(ctx, "wxA", wechat.Token{Value: "T2", RefreshAt: now.Add(-2 * time.Second), ExpiresAt: now.Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "wxA"); !errors.Is(err, wechat.ErrNoToken) {
		t.Fatalf("Get after putting an expired token: %v, want ErrNoToken", err)
	}
}

func TestTokensLockIsExclusiveAndOnlyTheOwnerUnlocks(t *testing.T) {
	t.Parallel()
	s, r := newTestTokens(t)
	ctx := context.Background()
	unlockA, ok, err := s.Lock(ctx, "wxA", time.Minute)
	if err != nil || !ok {
		t.Fatalf("first Lock = %v, %v; want acquired", ok, err)
	}
	if _, ok, err := s.Lock(ctx, "wxA", time.Minute); err != nil || ok {
		t.Fatalf("second Lock = %v, %v; want not acquired", ok, err)
	}
	if unlockB, ok, err := s.Lock(ctx, "wxB", time.Minute); err != nil || !ok {
		t.Fatalf("Lock of another app = %v, %v; want acquired", ok, err)
	} else {
		unlockB()
	}

	// A's lock lapses (as its TTL would) and B takes it: A's late unlock
	// must leave B's lock alone.
	if err := r.Client(t).Del(ctx, "test:wxtoken:wxA:lock").Err(); err != nil {
		t.Fatal(err)
	}
	unlockB, ok, err := s.Lock(ctx, "wxA", time.Minute)
	if err != nil || !ok {
		t.Fatalf("Lock after lapse = %v, %v; want acquired", ok, err)
	}
	unlockA()
	if _, ok, _ := s.Lock(ctx, "wxA", time.Minute); ok {
		t.Fatal("a stale owner's unlock released the current owner's lock")
	}
	unlockB()
	if unlock, ok, err := s.Lock(ctx, "wxA", time.Minute); err != nil || !ok {
		t.Fatalf("Lock after the owner unlocked = %v, %v; want acquired", ok, err)
	} else {
		unlock()
	}

	// The lock expires after its TTL even if nobody unlocks it.
	if _, ok, err := s.Lock(ctx, "wxC", 50*time.Millisecond); err != nil || !ok {
		t.Fatalf("Lock wxC = %v, %v", ok, err)
	}
	ttl, err := r.Client(t).PTTL(ctx, "test:wxtoken:wxC:lock").Result()
	if err != nil || ttl <= 0 || ttl > 50*time.Millisecond {
		t.Fatalf("lock PTTL = %v, %v; want within (0, 50ms]", ttl, err)
	}
}

func TestTokensRedisDownIsAnError(t *testing.T) {
	t.Parallel()
	s, r := newTestTokens(t)
	r.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := s.Get(ctx, "wxA"); err == nil || errors.Is(err, wechat.ErrNoToken) {
		t.Fatalf("Get with Redis down: %v, want a store error", err)
	}
	if _, _, err := s.Lock(ctx, "wxA", time.Second); err == nil {
		t.Fatal("Lock with Redis down: nil error")
	}
}
