package redisstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/providers/wechat"
	"github.com/heraldhq/herald/worker"
	"github.com/heraldhq/herald/worker/storetest"
)

// aclClient is a client of r logged in as a user with ACLRules.
func aclClient(t *testing.T, r *testenv.Redis) *redis.Client {
	t.Helper()
	args := []any{"ACL", "SETUSER", "herald", "on", ">herald-pw"}
	for _, rule := range strings.Fields(ACLRules) {
		args = append(args, rule)
	}
	if err := r.Client(t).Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("ACL SETUSER herald %s: %v", ACLRules, err)
	}
	opts := r.Options()
	opts.Username, opts.Password = "herald", "herald-pw"
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// The store, the tokens and Ping run with no more than ACLRules allow,
// the rules docs/operations.md gives operators; and those rules allow no
// more than herald's keys.
func TestStoreAndTokensRunUnderTheDocumentedACL(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) worker.Store {
		s := New(aclClient(t, testenv.StartRedis(t)), Config{})
		t.Cleanup(s.Close)
		return s
	})

	r := testenv.StartRedis(t)
	rdb := aclClient(t, r)
	ctx := context.Background()
	s := New(rdb, Config{})
	t.Cleanup(s.Close)
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := r.Client(t).ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if a, err := s.Admit(ctx, claim("wechat:default:acl", "o")); err != nil || a.Status != worker.Claimed {
		t.Errorf("Admit after SCRIPT FLUSH (EVAL) = %+v, %v", a, err)
	}

	tokens := NewTokens(rdb, "")
	now := time.Now()
	if err := tokens.Put(ctx, "wxA", wechat.Token{Value: "T1", RefreshAt: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Errorf("tokens Put: %v", err)
	}
	if got, err := tokens.Get(ctx, "wxA"); err != nil || got.Value != "T1" {
		t.Errorf("tokens Get = %+v, %v", got, err)
	}
	unlock, ok, err := tokens.Lock(ctx, "wxA", time.Minute)
	if err != nil || !ok {
		t.Fatalf("tokens Lock = %v, %v", ok, err)
	}
	unlock()
	if unlock, ok, err := tokens.Lock(ctx, "wxA", time.Minute); err != nil || !ok {
		t.Errorf("tokens Lock after unlock = %v, %v; want acquired (the unlock script ran)", ok, err)
	} else {
		unlock()
	}
	if err := tokens.Invalidate(ctx, "wxA", "T1"); err != nil {
		t.Errorf("tokens Invalidate: %v", err)
	}
	if _, err := tokens.Get(ctx, "wxA"); !errors.Is(err, wechat.ErrNoToken) {
		t.Errorf("tokens Get after Invalidate: %v, want ErrNoToken", err)
	}

	for _, cmd := range [][]any{{"SET", "other:key", "v"}, {"FLUSHALL"}, {"KEYS", "*"}, {"CONFIG", "GET", "maxmemory"}} {
		if err := rdb.Do(ctx, cmd...).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Errorf("%v as the herald user: %v, want NOPERM", cmd, err)
		}
	}
}
