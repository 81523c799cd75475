package redisstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/worker"
)

type testBundle struct {
	redis *testenv.Redis
	rdb   *redis.Client
}

func setup(t *testing.T) (*Store, *testBundle) {
	t.Helper()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	s := New(rdb, Config{})
	t.Cleanup(s.Close)
	return s, &testBundle{redis: r, rdb: rdb}
}

func claim(key, owner string) worker.Claim {
	return worker.Claim{Key: key, Owner: owner, Lease: 10 * time.Second, TTL: time.Hour, MaxWait: time.Second}
}

func TestAdmitLifecycle(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()

	a, err := s.Admit(ctx, claim("wechat:default:1", "w1:1:1"))
	if err != nil || a.Status != worker.Claimed || a.Attempts != 0 || a.FirstAttempt.IsZero() {
		t.Fatalf("first Admit = %+v, %v; want Claimed with no attempts and a first-attempt time", a, err)
	}
	if a, _ := s.Admit(ctx, claim("wechat:default:1", "w2:1:2")); a.Status != worker.Busy || a.Wait <= 0 {
		t.Fatalf("Admit by another owner = %+v, want Busy with a wait", a)
	}
	n, err := s.Fail(ctx, "wechat:default:1", "w1:1:1")
	if err != nil || n != 1 {
		t.Fatalf("Fail = %d, %v; want 1", n, err)
	}
	a, _ = s.Admit(ctx, claim("wechat:default:1", "w2:1:2"))
	if a.Status != worker.Claimed || a.Attempts != 1 {
		t.Fatalf("Admit after a failure = %+v, want Claimed with 1 attempt", a)
	}
	if err := s.MarkSent(ctx, "wechat:default:1", time.Hour); err != nil {
		t.Fatalf("MarkSent: %v", err)
	}
	if a, _ := s.Admit(ctx, claim("wechat:default:1", "w3:1:3")); a.Status != worker.AlreadySent {
		t.Fatalf("Admit after MarkSent = %+v, want AlreadySent", a)
	}
	if err := s.Forget(ctx, "wechat:default:1"); err != nil {
		t.Fatalf("Forget: %v", err)
	}
	if a, _ := s.Admit(ctx, claim("wechat:default:1", "w3:1:3")); a.Status != worker.Claimed || a.Attempts != 0 {
		t.Fatalf("Admit after Forget = %+v, want a fresh claim", a)
	}
}

func TestReleaseKeepsAttemptsAndOnlyOwnerReleases(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	key := "wechat:default:r"
	if _, err := s.Admit(ctx, claim(key, "a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, key, "someone-else"); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Admit(ctx, claim(key, "b")); a.Status != worker.Busy {
		t.Fatalf("Admit after a stranger's Release = %+v, want Busy", a)
	}
	if err := s.Release(ctx, key, "a"); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Admit(ctx, claim(key, "b")); a.Status != worker.Claimed {
		t.Fatalf("Admit after the owner's Release = %+v, want Claimed", a)
	}
}

func TestExpiredLeaseCanBeTakenOver(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	c := claim("wechat:default:lease", "crashed")
	c.Lease = time.Millisecond
	if _, err := s.Admit(ctx, c); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		a, err := s.Admit(ctx, claim("wechat:default:lease", "next"))
		if err != nil {
			t.Fatal(err)
		}
		if a.Status == worker.Claimed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease of 1ms still held after 5s: %+v", a)
		}
	}
}

func TestRateLimitReservesSlotsWithinBurst(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	limit := &worker.Limit{Key: "wechat:default:tpl", PerSecond: 10, Burst: 3}
	var waits []time.Duration
	for i := range 6 {
		c := claim(fmt.Sprintf("wechat:default:%d", i), "o")
		c.Limit = limit
		a, err := s.Admit(ctx, c)
		if err != nil || a.Status != worker.Claimed {
			t.Fatalf("Admit %d = %+v, %v", i, a, err)
		}
		waits = append(waits, a.Wait)
	}
	// Three go at once (the burst); each later one waits one more interval
	// of 100ms, less the little time the calls themselves took.
	for i, w := range waits[:3] {
		if w != 0 {
			t.Errorf("wait[%d] = %v, want 0 within the burst", i, w)
		}
	}
	for i, w := range waits[3:] {
		want := time.Duration(i+1) * 100 * time.Millisecond
		if w > want || w < want-50*time.Millisecond {
			t.Errorf("wait[%d] = %v, want about %v", i+3, w, want)
		}
	}
	c := claim("wechat:default:late", "o")
	c.Limit, c.MaxWait = limit, 50*time.Millisecond
	a, err := s.Admit(ctx, c)
	if err != nil || a.Status != worker.Throttled || a.Wait <= 50*time.Millisecond {
		t.Fatalf("Admit beyond MaxWait = %+v, %v; want Throttled with the wait", a, err)
	}
	if a, _ := s.Admit(ctx, claim("wechat:default:late", "o2")); a.Status != worker.Claimed {
		t.Fatalf("a throttled Admit must not take the lease: %+v", a)
	}
}

func TestScriptsReloadAfterRedisForgetsThem(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	if _, err := s.Admit(ctx, claim("wechat:default:a", "o")); err != nil {
		t.Fatal(err)
	}
	if err := b.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if a, err := s.Admit(ctx, claim("wechat:default:b", "o")); err != nil || a.Status != worker.Claimed {
		t.Fatalf("Admit after SCRIPT FLUSH = %+v, %v; want Claimed", a, err)
	}
}

func TestConcurrentOperationsArePipelined(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	// Load the scripts first so the count below is only the jobs' commands.
	if _, err := s.Admit(ctx, claim("warm", "o")); err != nil {
		t.Fatal(err)
	}
	var pipelines atomic.Int64
	b.rdb.AddHook(pipelineCounter{&pipelines})
	if err := b.rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// Hold Redis for a moment so the admissions queue up behind the first
	// pipelines, as they do under load.
	if err := b.rdb.ClientPause(ctx, 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	const jobs = 400
	var wg sync.WaitGroup
	errs := make(chan error, jobs)
	for i := range jobs {
		wg.Go(func() {
			_, err := s.Admit(ctx, claim(fmt.Sprintf("wechat:default:p%d", i), "o"))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := b.redis.Calls(t, "evalsha"); got != jobs {
		t.Errorf("Redis ran %d EVALSHA for %d admissions, want one each", got, jobs)
	}
	// 4 flushers each take one op, then the rest in batches of up to 128.
	if got := pipelines.Load(); got > 4+2*(jobs/128+1) {
		t.Errorf("%d admissions took %d pipelines, want them batched", jobs, got)
	}
}

type pipelineCounter struct{ n *atomic.Int64 }

func (pipelineCounter) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (pipelineCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h pipelineCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

func TestRedisDownIsAnErrorAndRecovers(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	b.redis.Stop()
	if _, err := s.Admit(ctx, claim("wechat:default:down", "o")); err == nil {
		t.Fatal("Admit with Redis stopped succeeded, want an error")
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping with Redis stopped succeeded")
	}
	b.redis.Start(t)
	if a, err := s.Admit(ctx, claim("wechat:default:down", "o")); err != nil || a.Status != worker.Claimed {
		t.Fatalf("Admit after restart = %+v, %v", a, err)
	}
}
