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
	"github.com/heraldhq/herald/worker/storetest"
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

func TestStoreContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) worker.Store {
		s, _ := setup(t)
		return s
	})
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
