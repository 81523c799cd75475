package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
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

func TestScriptReloadsAfterRedisForgetsIt(t *testing.T) {
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

func TestConcurrentOperationsAreBatched(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	// Load the script first so the count below is only the jobs' commands.
	if _, err := s.Admit(ctx, claim("warm", "o")); err != nil {
		t.Fatal(err)
	}
	if err := b.rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// Hold Redis for a moment so the admissions queue up behind the first
	// batches, as they do under load.
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
	// Each of the 8 flushers takes the first op it sees and is held; the
	// rest queue and go in batches of up to 256, each batch one EVALSHA.
	if got := b.redis.Calls(t, "evalsha"); got > 12 {
		t.Errorf("%d admissions took %d EVALSHA, want them batched", jobs, got)
	}
}

// The sent marker does not touch the expiry admit set, so that expiry must
// already cover the dedup TTL after the lease; and a lease-holder's late
// Release or Fail must not undo the marker.
func TestSentMarkerOutlivesTheLeaseByTheTTL(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	c := claim("wechat:default:ttl", "holder")
	if a, err := s.Admit(ctx, c); err != nil || a.Status != worker.Claimed {
		t.Fatalf("Admit = %+v, %v", a, err)
	}
	if err := s.MarkSent(ctx, c.Key, c.TTL, worker.SentRecord{Seq: 7, MsgID: "42", Attempts: 1, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ttl, err := b.rdb.PTTL(ctx, s.JobKey(c.Key)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if min := c.TTL + c.Lease - time.Second; ttl < min || ttl > c.TTL+c.Lease {
		t.Errorf("sent job state expires in %v, want about the TTL plus the lease (%v)", ttl, c.TTL+c.Lease)
	}
	if err := s.Release(ctx, c.Key, "holder"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fail(ctx, c.Key, "holder"); err != nil {
		t.Fatal(err)
	}
	a, err := s.Admit(ctx, claim(c.Key, "other"))
	if err != nil || a.Status != worker.AlreadySent || a.Sent.Seq != 7 || a.Sent.MsgID != "42" {
		t.Fatalf("Admit after the holder's late Release and Fail = %+v, %v; want AlreadySent with seq 7, msgid 42", a, err)
	}

	// A marker for a job whose state vanished (a Redis that lost it) still
	// gets an expiry.
	if err := s.MarkSent(ctx, "wechat:default:gone", time.Hour, worker.SentRecord{Seq: 8, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if ttl, err := b.rdb.PTTL(ctx, s.JobKey("wechat:default:gone")).Result(); err != nil || ttl <= 0 || ttl > time.Hour {
		t.Errorf("marker without prior state expires in %v (%v), want within the hour", ttl, err)
	}
}

func TestFailingOperationLeavesTheRestOfItsBatch(t *testing.T) {
	t.Parallel()
	st, b := setup(t)
	ctx := context.Background()
	if err := b.rdb.Set(ctx, st.JobKey("wechat:default:bad"), "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// A store without flushers: the test takes the operations off its queue
	// and flushes them as one batch.
	s := &Store{rdb: b.rdb, prefix: st.prefix, ttl: time.Hour, ops: make(chan *op), stop: make(chan struct{})}
	sent := worker.SentRecord{Seq: 7, MsgID: "m7", Attempts: 1, At: time.UnixMicro(1_800_000_000_000_000)}
	var (
		wg                       sync.WaitGroup
		good, bad                worker.Admission
		attempts                 int
		errGood, errBad          error
		errSent, errFail, errRel error
	)
	wg.Go(func() { good, errGood = s.Admit(ctx, claim("wechat:default:good", "o")) })
	wg.Go(func() { bad, errBad = s.Admit(ctx, claim("wechat:default:bad", "o")) })
	wg.Go(func() { errSent = s.MarkSent(ctx, "wechat:default:sent", time.Hour, sent) })
	wg.Go(func() { attempts, errFail = s.Fail(ctx, "wechat:default:failed", "o") })
	wg.Go(func() { errRel = s.Release(ctx, "wechat:default:released", "o") })
	// Seven operations: on one server each Admit also reads the job's
	// herald v1.0 key.
	batch := make([]*op, 7)
	for i := range batch {
		batch[i] = <-s.ops
	}
	s.flush(batch)
	wg.Wait()

	if errBad == nil || !strings.Contains(errBad.Error(), "WRONGTYPE") {
		t.Errorf("Admit of a key holding a string = %+v, %v; want a WRONGTYPE error", bad, errBad)
	}
	if errGood != nil || good.Status != worker.Claimed {
		t.Errorf("Admit in the same batch = %+v, %v; want Claimed", good, errGood)
	}
	if errSent != nil {
		t.Errorf("MarkSent in the same batch: %v", errSent)
	}
	if errFail != nil || attempts != 1 {
		t.Errorf("Fail in the same batch = %d, %v; want 1", attempts, errFail)
	}
	if errRel != nil {
		t.Errorf("Release in the same batch: %v", errRel)
	}
	if a, err := st.Admit(ctx, claim("wechat:default:sent", "o2")); err != nil || a.Status != worker.AlreadySent || a.Sent != sent {
		t.Errorf("Admit after the batch's MarkSent = %+v, %v; want AlreadySent with %+v", a, err, sent)
	}
	if v, err := b.rdb.Get(ctx, st.JobKey("wechat:default:bad")).Result(); err != nil || v != "not a hash" {
		t.Errorf("the failing operation's key = %q, %v; want it untouched", v, err)
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

// Ping asks for TIME, for the clock estimate; where TIME is refused it
// still tells a Redis that answers from one that does not.
func TestPingWhereTIMEIsRefused(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	ctx := context.Background()
	if err := r.Client(t).Do(ctx, "ACL", "SETUSER", "notime", "on", ">pw", "~*", "+@all", "-time").Err(); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, Username: "notime", Password: "pw"})
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Time(ctx).Err(); err == nil {
		t.Fatal("TIME allowed for the user that may not run it")
	}
	s := New(rdb, Config{})
	t.Cleanup(s.Close)
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping where TIME is refused: %v, want nil", err)
	}
	r.Stop()
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping with Redis stopped succeeded")
	}
}

// A demoted Redis (a replica after a failover) still answers TIME and
// PING, but records nothing: Ping must say so, and recover by itself once
// the server is a master again.
func TestPingFailsWhileReadOnlyAndRecovers(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping on a master: %v", err)
	}
	master := testenv.StartRedis(t)
	b.redis.ReplicaOf(t, master)
	if err := b.rdb.Time(ctx).Err(); err != nil {
		t.Fatalf("TIME on the replica: %v; the test needs a replica that answers", err)
	}
	err := s.Ping(ctx)
	if err == nil || !strings.Contains(err.Error(), "READONLY") {
		t.Fatalf("Ping on a read-only replica = %v, want a READONLY error", err)
	}
	if _, err := s.Admit(ctx, claim("wechat:default:ro", "o")); err == nil {
		t.Fatal("Admit on a read-only replica succeeded")
	}

	b.redis.Promote(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after REPLICAOF NO ONE: %v", err)
	}
	if a, err := s.Admit(ctx, claim("wechat:default:ro", "o")); err != nil || a.Status != worker.Claimed {
		t.Fatalf("Admit after REPLICAOF NO ONE = %+v, %v; want Claimed", a, err)
	}
}

// A Redis out of memory with noeviction refuses writes: Ping fails until
// memory is freed (here: the limit raised).
func TestPingFailsOutOfMemoryAndRecovers(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	for _, kv := range [][2]string{{"maxmemory-policy", "noeviction"}, {"maxmemory", "1"}} {
		if err := b.rdb.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	err := s.Ping(ctx)
	if err == nil || !strings.Contains(err.Error(), "OOM") {
		t.Fatalf("Ping over maxmemory = %v, want an OOM error", err)
	}
	if err := b.rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping with memory again: %v", err)
	}
}

// Each store writes one health key, which expires: replicas that come and
// go leave nothing behind.
func TestPingKeepsOneExpiringHealthKey(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	for range 3 {
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := b.rdb.Keys(ctx, "herald:health:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("health keys = %q, %v; want one", keys, err)
	}
	if ttl, err := b.rdb.PTTL(ctx, keys[0]).Result(); err != nil || ttl <= 0 || ttl > 30*time.Second {
		t.Errorf("health key expires in %v (%v), want within (0, 30s]", ttl, err)
	}
}

// Close fails the operations still queued instead of leaving their callers
// waiting, lets the batch in flight finish, and refuses later operations.
func TestCloseFailsQueuedOperations(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	s := New(rdb, Config{Flushers: 1, MaxBatch: 1})
	ctx := context.Background()
	// Hold the one flusher in its batch: Redis answers no client for a while.
	if err := r.Client(t).Do(ctx, "CLIENT", "PAUSE", "1500", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	const n = 3 // one in the flusher, two queued: the queue holds 2 × Flushers × MaxBatch
	errs := make(chan error, n)
	for i := range n {
		go func() {
			// MarkSent is one operation (an Admit on one server is two).
			errs <- s.MarkSent(ctx, fmt.Sprintf("wechat:default:close%d", i), time.Hour, worker.SentRecord{Seq: uint64(i + 1)})
		}()
	}
	// One is taken by the flusher, the rest are queued.
	testenv.Eventually(t, 5*time.Second, "operations queued", func() bool { return len(s.ops) == n-1 })
	s.Close()
	var closed, done int
	for range n {
		switch err := <-errs; {
		case err == nil:
			done++
		case strings.Contains(err.Error(), errClosed.Error()):
			closed++
		default:
			t.Errorf("operation failed with %v, want success or %v", err, errClosed)
		}
	}
	if done != 1 || closed != n-1 {
		t.Errorf("%d operations completed and %d failed as closed, want 1 and %d", done, closed, n-1)
	}
	if _, err := s.Admit(ctx, claim("wechat:default:after", "o")); err == nil || !strings.Contains(err.Error(), errClosed.Error()) {
		t.Errorf("Admit after Close = %v, want %v", err, errClosed)
	}
}

// A rate-limit wait counts from when Redis ran the batch, not from when
// its reply arrived: a reply that comes back late (a busy worker, a slow
// network) shortens the wait by as much, so the send keeps its slot
// instead of landing on top of the sends that came after it.
func TestRateWaitCountsFromWhenTheBatchRan(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	var delay atomic.Int64
	rdb.AddHook(replyDelay{&delay})
	s := New(rdb, Config{})
	t.Cleanup(s.Close)
	ctx := context.Background()
	// A quick round trip for the clock estimate, as the worker makes at start.
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	limited := func(id string) worker.Claim {
		c := claim("wechat:default:"+id, "o")
		c.Limit = &worker.Limit{Key: "wechat:default:tpl", PerSecond: 2, Burst: 1}
		return c
	}
	if a, err := s.Admit(ctx, limited("first")); err != nil || a.Status != worker.Claimed || a.Wait != 0 {
		t.Fatalf("first Admit = %+v, %v; want Claimed at once", a, err)
	}
	const late = 200 * time.Millisecond
	delay.Store(int64(late))
	a, err := s.Admit(ctx, limited("second"))
	if err != nil || a.Status != worker.Claimed {
		t.Fatalf("second Admit = %+v, %v; want Claimed", a, err)
	}
	// Redis reserved the slot 500 ms after the batch ran; the reply came
	// 200 ms after that.
	if max := 500*time.Millisecond - late/2; a.Wait > max {
		t.Errorf("wait %v after a reply %v late, want at most %v", a.Wait, late, max)
	}
}

// replyDelay holds every script reply back by the delay it holds.
type replyDelay struct{ d *atomic.Int64 }

func (replyDelay) DialHook(next redis.DialHook) redis.DialHook { return next }

func (replyDelay) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h replyDelay) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if strings.HasPrefix(cmd.Name(), "eval") {
			time.Sleep(time.Duration(h.d.Load()))
		}
		return err
	}
}

// A delivered job keeps only what a later delivery of it needs (stream
// sequence, msgid, attempts, sent at) in a hash small enough for Redis to
// pack (listpack), under a key of the job's key and a few bytes: at
// realistic sizes (a UUID id, the default app, a 19-digit msgid, an owner
// named after a Kubernetes pod) MEMORY USAGE says 152 B, where the lease
// fields and a longer key took 280 B. With its expiry entry and its share
// of the key space's hash tables, used_memory grows by about 215 B a job.
// See docs/operations.md, "Sizing Redis".
func TestSentJobKeepsFewBytes(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	const (
		id    = "3f2b8c1e-9a4d-4e7b-8c2f-1d5e6a7b8c9d"
		owner = "herald-worker-7d9f8b6c5-x2x4q:1234567890:"
		msgid = "2317554938710732141"
	)
	claim := func(key, owner string) worker.Claim {
		return worker.Claim{Key: key, Owner: owner, Lease: 25 * time.Second, TTL: 24 * time.Hour, MaxWait: 5 * time.Second}
	}
	// One job sent at once, one after a failed call.
	direct, retried := "wechat:default:"+id, "wechat:default:"+strings.Replace(id, "3f", "4f", 1)
	for _, key := range []string{direct, retried} {
		if a, err := s.Admit(ctx, claim(key, owner+"1")); err != nil || a.Status != worker.Claimed {
			t.Fatalf("Admit %s = %+v, %v", key, a, err)
		}
	}
	if _, err := s.Fail(ctx, retried, owner+"1"); err != nil {
		t.Fatal(err)
	}
	if a, err := s.Admit(ctx, claim(retried, owner+"2")); err != nil || a.Status != worker.Claimed || a.Attempts != 1 {
		t.Fatalf("Admit after a failure = %+v, %v", a, err)
	}
	for i, key := range []string{direct, retried} {
		sent := worker.SentRecord{Seq: 1234567890, MsgID: msgid, Attempts: i + 1, At: time.UnixMicro(1_800_000_000_123_456)}
		if err := s.MarkSent(ctx, key, 24*time.Hour, sent); err != nil {
			t.Fatal(err)
		}
		jk := s.JobKey(key)
		fields, err := b.rdb.HKeys(ctx, jk).Result()
		slices.Sort(fields)
		if err != nil || !slices.Equal(fields, []string{"m", "n", "q", "t"}) {
			t.Errorf("fields of a sent job = %q, %v; want m, n, q, t", fields, err)
		}
		if enc, err := b.rdb.ObjectEncoding(ctx, jk).Result(); err != nil || enc != "listpack" {
			t.Errorf("encoding of a sent job = %q, %v; want listpack", enc, err)
		}
		n, err := b.rdb.MemoryUsage(ctx, jk, 0).Result()
		if err != nil || n > 152 {
			t.Errorf("MEMORY USAGE of a sent job (%d attempts) = %d B, %v; want at most 152", i+1, n, err)
		}
		if ttl, err := b.rdb.PTTL(ctx, jk).Result(); err != nil || ttl < 24*time.Hour {
			t.Errorf("a sent job expires in %v, %v; want at least the dedup TTL", ttl, err)
		}
		if a, err := s.Admit(ctx, claim(key, "other")); err != nil || a.Status != worker.AlreadySent || a.Sent != sent {
			t.Errorf("Admit of the sent job = %+v, %v; want AlreadySent with %+v", a, err, sent)
		}
	}

	// The whole cost, in used_memory, of many sent jobs; after as many
	// connections as they use are open and have worked.
	fill := func(from, to int) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, 256)
		for w := range 256 {
			wg.Go(func() {
				for i := from + w; i < to; i += 256 {
					key := fmt.Sprintf("wechat:default:%08x-9a4d-4e7b-8c2f-%012x", i, i*7919)
					if _, err := s.Admit(ctx, claim(key, owner+"1")); err != nil {
						errs <- err
						return
					}
					if err := s.MarkSent(ctx, key, 24*time.Hour, worker.SentRecord{Seq: uint64(1234560000 + i), MsgID: msgid,
						Attempts: 1, At: time.Now()}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	const warm, jobs = 2560, 20000
	fill(0, warm)
	before := usedMemory(t, b.rdb)
	fill(warm, warm+jobs)
	perJob := float64(usedMemory(t, b.rdb)-before) / jobs
	t.Logf("used_memory per sent job: %.1f B", perJob)
	if perJob > 240 {
		t.Errorf("used_memory grew by %.1f B per sent job, want at most 240", perJob)
	}
}

// usedMemory is INFO memory's used_memory.
func usedMemory(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no used_memory in INFO memory")
	return 0
}

// A job herald v1.0 sent, or still holds, under its old key is not sent
// again after an upgrade: for one dedup TTL the old key is read too.
func TestJobsOfTheOldKeyLayoutAreHonoured(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	if err := b.rdb.HSet(ctx, "herald:job:wechat:default:old-sent", "s", "sent", "q", "7", "m", "2317554938710732141",
		"n", "2", "t", "1800000000000000").Err(); err != nil {
		t.Fatal(err)
	}
	lease := time.Now().Add(time.Minute).UnixMicro()
	if err := b.rdb.HSet(ctx, "herald:job:wechat:default:old-held", "s", "lease", "o", "v1-replica:3:1",
		"l", strconv.FormatInt(lease, 10), "f", "1800000000000000").Err(); err != nil {
		t.Fatal(err)
	}
	a, err := s.Admit(ctx, claim("wechat:default:old-sent", "new:1:1"))
	if err != nil || a.Status != worker.AlreadySent || a.Sent.Seq != 7 || a.Sent.MsgID != "2317554938710732141" || a.Sent.Attempts != 2 {
		t.Fatalf("Admit of a job v1.0 sent = %+v, %v; want AlreadySent with its record", a, err)
	}
	if a, err := s.Admit(ctx, claim("wechat:default:old-held", "new:2:1")); err != nil || a.Status != worker.Busy || a.Wait <= 0 {
		t.Fatalf("Admit of a job v1.0 holds = %+v, %v; want Busy", a, err)
	}
	if a, err := s.Admit(ctx, claim("wechat:default:new", "new:3:1")); err != nil || a.Status != worker.Claimed {
		t.Fatalf("Admit of a job v1.0 never saw = %+v, %v; want Claimed", a, err)
	}
}
