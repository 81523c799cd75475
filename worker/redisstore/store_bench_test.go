package redisstore

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/worker"
)

// BenchmarkAdmitMarkSent is the store's part of a delivered job (Admit,
// then MarkSent) from many concurrent jobs, as a worker at 512 in flight
// makes them: the flushers pipeline them. It reports the Redis commands
// clients issued per job and the server's CPU per job.
func BenchmarkAdmitMarkSent(b *testing.B) {
	r := testenv.StartRedis(b)
	rdb := r.Client(b)
	s := New(rdb, Config{})
	b.Cleanup(s.Close)
	ctx := context.Background()
	var seq atomic.Int64
	before, cpuBefore := r.Calls(b, "evalsha"), r.CPU(b)
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
	b.ReportMetric(float64(r.Calls(b, "evalsha")-before)/float64(b.N), "evalsha/job")
	b.ReportMetric(float64((r.CPU(b)-cpuBefore).Microseconds())/float64(b.N), "redis-µs/job")
}
