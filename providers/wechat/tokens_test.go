package wechat_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/providers/wechat"
	"github.com/heraldhq/herald/retry"
	"github.com/heraldhq/herald/sandbox"
	"github.com/heraldhq/herald/worker/redisstore"
)

// sendAll sends n jobs at once from each client and fails on any error.
func sendAll(t *testing.T, n int, clients ...*wechat.Client) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n*len(clients))
	for _, c := range clients {
		for range n {
			wg.Go(func() {
				if _, err := c.Send(context.Background(), newJob("o1")); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("send: %v", err)
	}
}

func redisTokens(t *testing.T) (*redisstore.Tokens, *testenv.Redis) {
	t.Helper()
	r := testenv.StartRedis(t)
	return redisstore.NewTokens(r.Client(t), "test:"), r
}

// TestReplicasShareOneRefreshAfterRotation: two replicas share a token in
// Redis; the platform invalidates it (a force refresh elsewhere); both send.
// One fetch reaches the platform in total and both sends succeed.
func TestReplicasShareOneRefreshAfterRotation(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	store, _ := redisTokens(t)
	a, bb := b.client(t, store), b.client(t, store)
	sendAll(t, 1, a, bb) // warm both local copies
	if got := b.fetches(); got != 1 {
		t.Fatalf("warm-up fetches = %d, want 1", got)
	}

	b.sb.RotateWeChat("")
	for _, c := range []*wechat.Client{a, bb} {
		if _, err := c.Send(context.Background(), newJob("o1")); err != nil {
			t.Fatalf("send after rotation: %v", err)
		}
	}
	if got := b.fetches(); got != 2 {
		t.Fatalf("token fetches after rotation = %d, want exactly one more (2)", got)
	}
}

func TestConcurrentReplicasRefreshOnceAfterRotation(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	store, _ := redisTokens(t)
	a, bb := b.client(t, store), b.client(t, store)
	sendAll(t, 1, a, bb)
	b.sb.RotateWeChat(sandbox.DevWeChatAppID)
	sendAll(t, 25, a, bb)
	if got := b.fetches(); got != 2 {
		t.Fatalf("token fetches = %d, want 2 (warm-up and one refresh)", got)
	}
}

func TestColdCacheConcurrentSendsFetchOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		store func(t *testing.T) wechat.TokenStore
	}{
		{"memory", func(*testing.T) wechat.TokenStore { return wechat.NewMemoryTokens() }},
		{"redis, three replicas", func(t *testing.T) wechat.TokenStore { s, _ := redisTokens(t); return s }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, sandbox.Options{})
			store := tt.store(t)
			sendAll(t, 40, b.client(t, store), b.client(t, store), b.client(t, store))
			if got := b.fetches(); got != 1 {
				t.Fatalf("token fetches = %d, want 1", got)
			}
		})
	}
}

func TestHotPathDoesNotTouchTheStore(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	store, r := redisTokens(t)
	c := b.client(t, store)
	storeCalls := func() int64 {
		var n int64
		for _, cmd := range []string{"hmget", "evalsha", "eval", "set", "del"} {
			n += r.Calls(t, cmd)
		}
		return n
	}
	sendAll(t, 1, c)
	before := storeCalls()
	if before == 0 {
		t.Fatal("the first send did not use the store")
	}
	sendAll(t, 50, c)
	if got := storeCalls() - before; got != 0 {
		t.Fatalf("token store commands during 50 sends = %d, want none", got)
	}
}

func TestExpiredTokenIsReplacedOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	c := b.client(t, nil)
	sendAll(t, 1, c)
	b.sb.ExpireWeChat("")
	if _, err := c.Send(context.Background(), newJob("o1")); err != nil {
		t.Fatalf("send with an expired token: %v", err)
	}
	if got := b.fetches(); got != 2 {
		t.Fatalf("token fetches = %d, want 2", got)
	}
}

// TestSecondTokenRejectionIsTransient: the token is rejected, refreshed,
// and rejected again; the client calls only twice and leaves the rest to
// the retry policy.
func TestSecondTokenRejectionIsTransient(t *testing.T) {
	t.Parallel()
	var sends atomic.Int64
	b := setupWithHook(t, sandbox.Options{}, func(sb *sandbox.Server, r *http.Request) {
		if r.URL.Path == "/cgi-bin/message/subscribe/send" {
			sends.Add(1)
			sb.ExpireWeChat("")
		}
	})
	c := b.client(t, nil)
	_, err := c.Send(context.Background(), newJob("o1"))
	d := retry.Decide(err)
	if d.Action != retry.Retry || d.Limit != 0 || d.Detail.Code != "42001" {
		t.Fatalf("Send error %v: decision %+v, want transient 42001", err, d)
	}
	if sends.Load() != 2 || b.fetches() != 2 {
		t.Fatalf("send calls %d, fetches %d; want 2 and 2", sends.Load(), b.fetches())
	}
}

// clock is a test clock shared by replicas.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestRefreshAheadFetchesOnceAcrossReplicas: once the shared token is
// within 5 minutes of expiry, one replica fetches the next while the others
// keep sending with the current one.
func TestRefreshAheadFetchesOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	store, _ := redisTokens(t)
	clk := &clock{t: time.Now()}
	replicas := []*wechat.Client{
		b.client(t, store, wechat.WithClock(clk.Now)),
		b.client(t, store, wechat.WithClock(clk.Now)),
		b.client(t, store, wechat.WithClock(clk.Now)),
	}
	sendAll(t, 1, replicas...)
	clk.Add(sandbox.DefaultTokenTTL - 4*time.Minute) // inside the refresh window
	sendAll(t, 20, replicas...)
	if got := b.fetches(); got != 2 {
		t.Fatalf("token fetches = %d, want 2 (first and one refresh ahead)", got)
	}
	// The new token is good for another lifetime: no more fetches.
	clk.Add(time.Hour)
	sendAll(t, 5, replicas...)
	if got := b.fetches(); got != 2 {
		t.Fatalf("token fetches after the refresh = %d, want still 2", got)
	}
}

func TestShortLivedTokensDoNotMakeEveryCallARefresh(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{TokenTTL: time.Minute})
	clk := &clock{t: time.Now()}
	c := b.client(t, nil, wechat.WithClock(clk.Now))
	sendAll(t, 10, c)
	if got := b.fetches(); got != 1 {
		t.Fatalf("token fetches = %d, want 1", got)
	}
}

// TestStoreDownKeepsSendingWithAValidToken: with Redis gone, a replica
// keeps using its local token until it expires, then fails transiently.
func TestStoreDownKeepsSendingWithAValidToken(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	store, r := redisTokens(t)
	clk := &clock{t: time.Now()}
	c := b.client(t, store, wechat.WithClock(clk.Now))
	sendAll(t, 1, c)
	r.Stop()
	clk.Add(sandbox.DefaultTokenTTL - 4*time.Minute) // due for refresh, still valid
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Send(ctx, newJob("o1")); err != nil {
		t.Fatalf("send with Redis down and a valid local token: %v", err)
	}
	clk.Add(5 * time.Minute) // expired
	_, err := c.Send(ctx, newJob("o1"))
	if d := retry.Decide(err); err == nil || d.Action != retry.Retry {
		t.Fatalf("send with Redis down and no valid token: %v (%+v), want transient", err, d)
	}
	if got := b.fetches(); got != 1 {
		t.Fatalf("token fetches = %d, want 1: no fetch without the shared store", got)
	}
}
