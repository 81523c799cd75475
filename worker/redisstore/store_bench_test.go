package redisstore

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/worker"
)

// BenchmarkAdmitMarkSent is the store's part of a delivered job (Admit,
// then MarkSent) from many concurrent jobs, as a worker at 512 in flight
// makes them: the flushers pipeline them. It reports the Redis commands
// clients issued per job and the server's CPU per job.
func BenchmarkAdmitMarkSent(b *testing.B) {
	r := testenv.StartRedis(b)
	benchAdmitMarkSent(b, r.Client(b), []*testenv.Redis{r})
}

// BenchmarkAdmitMarkSentOnRedisCluster is the same on a 3-master Redis
// Cluster, where a batch is one script call per hash slot: the commands
// and CPU are those of all masters.
func BenchmarkAdmitMarkSentOnRedisCluster(b *testing.B) {
	rc := testenv.StartRedisCluster(b, 3, 0)
	benchAdmitMarkSent(b, rc.Client(b), rc.Masters)
}

func benchAdmitMarkSent(b *testing.B, rdb redis.UniversalClient, servers []*testenv.Redis) {
	s := New(rdb, Config{})
	b.Cleanup(s.Close)
	ctx := context.Background()
	var seq atomic.Int64
	calls := func() (n int64) {
		for _, r := range servers {
			n += r.Calls(b, "evalsha")
		}
		return n
	}
	cpu := func() (d time.Duration) {
		for _, r := range servers {
			d += r.CPU(b)
		}
		return d
	}
	before, cpuBefore := calls(), cpu()
	b.SetParallelism(256)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := "wechat:default:" + strconv.FormatInt(seq.Add(1), 10)
			if _, err := s.Admit(ctx, claim(key, "bench:1:1")); err != nil {
				b.Error(err)
				return
			}
			if err := s.MarkSent(ctx, key, time.Hour, worker.SentRecord{Seq: 1, MsgID: "1", Attempts: 1, At: time.Now()}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(calls()-before)/float64(b.N), "evalsha/job")
	b.ReportMetric(float64((cpu()-cpuBefore).Microseconds())/float64(b.N), "redis-µs/job")
}
