package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/providers/wechat"
	"github.com/heraldhq/herald/worker"
	"github.com/heraldhq/herald/worker/storetest"
)

// The token store on a real 3-master Redis Cluster: each of its commands
// and scripts touches one key, so every call lies in one slot, whichever
// master serves it; and a token outlives a failover of its master.
func TestTokensOnRedisCluster(t *testing.T) {
	t.Parallel()
	rc := testenv.StartRedisCluster(t, 3, 1)
	s := NewTokens(rc.Client(t), "")
	ctx := context.Background()

	// One app whose token lies on each master.
	apps := make([]string, len(rc.Masters))
	for i, found := 0, 0; found < len(apps); i++ {
		id := fmt.Sprintf("wx%016d", i)
		if m := rc.MasterFor(t, s.key(id)); apps[m] == "" {
			apps[m], found = id, found+1
		}
	}
	now := time.Now().Truncate(time.Millisecond)
	for _, app := range apps {
		tok := wechat.Token{Value: "T-" + app, RefreshAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour)}
		if err := s.Put(ctx, app, tok); err != nil {
			t.Fatalf("Put %s: %v", app, err)
		}
		if got, err := s.Get(ctx, app); err != nil || got != tok {
			t.Fatalf("Get %s = %+v, %v; want %+v", app, got, err, tok)
		}
		unlock, ok, err := s.Lock(ctx, app, time.Minute)
		if err != nil || !ok {
			t.Fatalf("Lock %s = %v, %v", app, ok, err)
		}
		if _, ok, _ := s.Lock(ctx, app, time.Minute); ok {
			t.Fatalf("second Lock %s acquired", app)
		}
		unlock()
		if _, ok, err := s.Lock(ctx, app, time.Minute); err != nil || !ok {
			t.Fatalf("Lock %s after unlock = %v, %v", app, ok, err)
		}
	}

	rc.Failover(t, 0)
	app := apps[0]
	testenv.Eventually(t, 10*time.Second, "the token of "+app+" from the promoted replica", func() bool {
		got, err := s.Get(ctx, app)
		return err == nil && got.Value == "T-"+app
	})
	if err := s.Invalidate(ctx, app, "T-"+app); err != nil {
		t.Fatalf("Invalidate after the failover: %v", err)
	}
	if _, err := s.Get(ctx, app); !errors.Is(err, wechat.ErrNoToken) {
		t.Fatalf("Get after Invalidate: %v, want ErrNoToken", err)
	}
}

// The job store on a Redis Cluster, through the same redis.UniversalClient
// seam as one server: the whole contract, rate limits included (their
// cells lie in other slots than the jobs).
func TestStoreContractOnRedisCluster(t *testing.T) {
	t.Parallel()
	rc := testenv.StartRedisCluster(t, 3, 0)
	storetest.Run(t, func(t *testing.T) worker.Store {
		c := rc.Client(t)
		if err := c.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
			return m.FlushAll(ctx).Err()
		}); err != nil {
			t.Fatal(err)
		}
		s := New(c, Config{})
		t.Cleanup(s.Close)
		return s
	})
}

// keySlot agrees with Redis's CLUSTER KEYSLOT, hash tags included: the
// store splits batches by it.
func TestKeySlotMatchesRedis(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t, testenv.RedisArgs("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"))
	rdb := r.Client(t)
	ctx := context.Background()
	keys := []string{"", "a", "foo", "123456789", "herald:{wechat:default:3f2b8c1e-9a4d-4e7b-8c2f-1d5e6a7b8c9d}",
		"{}", "{}x", "x{}y", "{", "}", "}{", "a{b", "a{b}c{d}", "{{a}}", "a{b}}", "é{ü}", "\x00\xff{\x80}",
		"herald:rate:wechat:default:tpl", "herald:health:X{42}"}
	for i := range 200 {
		keys = append(keys, fmt.Sprintf("herald:{wechat:app%d:%d}", i%7, i*7919))
	}
	for _, k := range keys {
		want, err := rdb.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := keySlot(k); got != int(want) {
			t.Errorf("keySlot(%q) = %d, CLUSTER KEYSLOT says %d", k, got, want)
		}
	}
}

// nodeHooks counts, per master address, the pipelines and commands the
// cluster client sends there.
type nodeHooks struct {
	mu        sync.Mutex
	pipelines map[string]int
}

func (h *nodeHooks) attach(c *redis.ClusterClient) {
	h.pipelines = map[string]int{}
	c.OnNewNode(func(n *redis.Client) { n.AddHook(nodeHook{h: h, addr: n.Options().Addr}) })
}

func (h *nodeHooks) reset() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.pipelines
	h.pipelines = map[string]int{}
	return out
}

type nodeHook struct {
	h    *nodeHooks
	addr string
}

func (nodeHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (nodeHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (n nodeHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		n.h.mu.Lock()
		n.h.pipelines[n.addr]++
		n.h.mu.Unlock()
		return next(ctx, cmds)
	}
}

// On a Redis Cluster one batch becomes one script call per hash slot, all
// in one pipeline: one round trip to each master. Operations on one job
// share its slot and run in order in one call; an operation whose keys
// span slots fails alone.
func TestClusterBatchIsOneCallPerSlotAndOneRoundTripPerMaster(t *testing.T) {
	t.Parallel()
	rc := testenv.StartRedisCluster(t, 3, 0)
	c := rc.Client(t)
	var hooks nodeHooks
	hooks.attach(c)
	s := New(c, Config{})
	t.Cleanup(s.Close)
	ctx := context.Background()
	// Load the script on every master, and let the client learn them all.
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if _, err := s.Admit(ctx, claim(fmt.Sprintf("wechat:default:warm%d", i), "o")); err != nil {
			t.Fatal(err)
		}
	}

	var batch, admits, sents []*op
	slots := map[int]bool{}
	for i := range 300 {
		job := s.JobKey(fmt.Sprintf("wechat:default:b%d", i))
		o := newOp([]string{job, job}, opAdmit, "o", time.Minute.Microseconds(), time.Hour.Milliseconds(), 0, 0, 0)
		batch, admits = append(batch, o), append(admits, o)
		slots[keySlot(job)] = true
		if i%60 == 0 {
			// Marked sent in the same batch, after its claim.
			o := newOp([]string{job}, opMarkSent, time.Hour.Milliseconds(), 100+i, "m", 1, 1_800_000_000_000_000)
			batch, sents = append(batch, o), append(sents, o)
		}
	}
	a, b := s.JobKey("wechat:default:b0"), s.JobKey("wechat:default:b1")
	if keySlot(a) == keySlot(b) {
		t.Fatal("the test needs two jobs in different slots")
	}
	cross := newOp([]string{a, b}, opAdmit, "o", time.Minute.Microseconds(), time.Hour.Milliseconds(), 0, 0, 0)
	batch = append(batch, cross)

	for _, m := range rc.Masters {
		if err := m.Client(t).ConfigResetStat(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	hooks.reset()
	s.flush(batch)
	pipelines := hooks.reset()
	var calls int64
	for _, m := range rc.Masters {
		calls += m.Calls(t, "evalsha")
		if got := pipelines[m.Addr]; got != 1 {
			t.Errorf("master %s got %d pipelines for one batch, want 1", m.Addr, got)
		}
	}
	if calls != int64(len(slots)) {
		t.Errorf("one batch over %d slots made %d EVALSHA, want one per slot", len(slots), calls)
	}

	if !errors.Is(cross.err, errCrossSlot) {
		t.Errorf("operation over two slots: %v, want %v", cross.err, errCrossSlot)
	}
	for i, o := range admits {
		v, err := ints(o.res, 4)
		if o.err != nil || err != nil || worker.AdmitStatus(v[0]) != worker.Claimed {
			t.Fatalf("admit %d in the batch = %v, %v; want claimed", i, o.res, o.err)
		}
	}
	for i, o := range sents {
		if o.err != nil {
			t.Fatalf("sent %d in the batch: %v", i, o.err)
		}
		key := fmt.Sprintf("wechat:default:b%d", i*60)
		if a, err := s.Admit(ctx, claim(key, "other")); err != nil || a.Status != worker.AlreadySent || a.Sent.Seq != uint64(100+i*60) {
			t.Errorf("Admit of %s after its claim and marker in one batch = %+v, %v; want AlreadySent", key, a, err)
		}
	}

	// A master that lost the script gets it again with EVAL.
	for _, m := range rc.Masters {
		if err := m.Client(t).ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		if a, err := s.Admit(ctx, claim(fmt.Sprintf("wechat:default:flushed%d", i), "o")); err != nil || a.Status != worker.Claimed {
			t.Fatalf("Admit after SCRIPT FLUSH = %+v, %v; want Claimed", a, err)
		}
	}
}

// Ping on a Redis Cluster writes a health key on every master: one that
// cannot record (here out of memory) fails it, whichever it is.
func TestPingOnRedisClusterWritesEveryMaster(t *testing.T) {
	t.Parallel()
	rc := testenv.StartRedisCluster(t, 3, 0)
	s := New(rc.Client(t), Config{})
	t.Cleanup(s.Close)
	ctx := context.Background()
	for range 2 {
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range rc.Masters {
		keys, err := m.Client(t).Keys(ctx, "herald:health:*").Result()
		if err != nil || len(keys) != 1 {
			t.Fatalf("health keys on master %s = %q, %v; want one", m.Addr, keys, err)
		}
	}
	for i, m := range rc.Masters {
		mc := m.Client(t)
		for _, kv := range [][2]string{{"maxmemory-policy", "noeviction"}, {"maxmemory", "1"}} {
			if err := mc.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
				t.Fatal(err)
			}
		}
		err := s.Ping(ctx)
		if err == nil || !strings.Contains(err.Error(), "OOM") || !strings.Contains(err.Error(), m.Addr) {
			t.Errorf("Ping with master %d (%s) out of memory = %v, want an OOM error naming it", i, m.Addr, err)
		}
		if err := mc.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping with memory again: %v", err)
		}
	}
}

// clusterDeliveries delivers jobs the way a worker does, through a store
// on a Redis Cluster whose masters come and go: Admit, a send when
// claimed (counted), MarkSent; an error is a new delivery (a new owner)
// later. A job is done once marked sent or found already sent.
type clusterDeliveries struct {
	s     *Store
	mu    sync.Mutex
	sends map[string]int
	tries map[string]int
}

func (d *clusterDeliveries) key(i int) string { return fmt.Sprintf("wechat:default:fo-%04d", i) }

// deliver makes one delivery of job i; nil once it is done.
func (d *clusterDeliveries) deliver(ctx context.Context, i int) error {
	key := d.key(i)
	d.mu.Lock()
	d.tries[key]++
	owner := fmt.Sprintf("w:%d:%d", i, d.tries[key])
	d.mu.Unlock()
	c := worker.Claim{Key: key, Owner: owner, Lease: 2 * time.Second, TTL: time.Hour, MaxWait: time.Second,
		Limit: &worker.Limit{Key: "wechat:default:tpl", PerSecond: 1e6, Burst: 1000}}
	a, err := d.s.Admit(ctx, c)
	switch {
	case err != nil:
		return err
	case a.Status == worker.AlreadySent:
		return nil
	case a.Status != worker.Claimed:
		return fmt.Errorf("admit %s: status %d", key, a.Status)
	}
	d.mu.Lock()
	d.sends[key]++
	d.mu.Unlock()
	// The platform took it: the marker must be written, however long
	// that takes.
	for {
		err := d.s.MarkSent(ctx, key, time.Hour, worker.SentRecord{Seq: uint64(i), MsgID: "m", Attempts: 1, At: time.Now()})
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
	}
}

// run delivers jobs [from, to), each until done, within a minute.
func (d *clusterDeliveries) run(ctx context.Context, from, to int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	retry := time.NewTicker(20 * time.Millisecond) // between deliveries of a job, as a nak's delay
	defer retry.Stop()
	for i := from; i < to; i++ {
		for {
			err := d.deliver(ctx, i)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("job %d: %w", i, err)
			case <-retry.C:
			}
		}
	}
	return nil
}

// Jobs keep being admitted and marked sent while a master fails over to
// its replica (CLUSTER FAILOVER, under traffic) and after another master
// is killed and replaced by its replica; no job is sent twice, and every
// job sent before either is still known as sent after them.
func TestStoreOnRedisClusterThroughFailovers(t *testing.T) {
	t.Parallel()
	rc := testenv.StartRedisCluster(t, 3, 1)
	s := New(rc.Client(t), Config{})
	t.Cleanup(s.Close)
	ctx := context.Background()
	d := &clusterDeliveries{s: s, sends: map[string]int{}, tries: map[string]int{}}
	if err := d.run(ctx, 0, 100); err != nil {
		t.Fatal(err)
	}

	// A graceful failover of master 0 while jobs flow.
	done := make(chan error, 1)
	go func() { done <- d.run(ctx, 100, 300) }()
	rc.Failover(t, 0)
	if err := <-done; err != nil {
		t.Fatalf("delivering through the failover: %v", err)
	}
	if err := d.run(ctx, 300, 400); err != nil {
		t.Fatalf("delivering after the failover: %v", err)
	}

	// Master 1 killed: replication is asynchronous, so first let its
	// replica have every marker, as a steady cluster's would.
	for _, m := range rc.Masters {
		if n, err := m.Client(t).Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
			t.Fatalf("WAIT on %s = %d, %v", m.Addr, n, err)
		}
	}
	rc.StopMaster(t, 1)
	if err := d.run(ctx, 400, 500); err != nil {
		t.Fatalf("delivering after master 1 was killed: %v", err)
	}
	rc.WaitOK(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after the failovers: %v", err)
	}

	for i := range 500 {
		key := d.key(i)
		if n := d.sends[key]; n != 1 {
			t.Errorf("%s sent %d times, want once", key, n)
		}
		a, err := s.Admit(ctx, claim(key, "late"))
		if err != nil || a.Status != worker.AlreadySent || a.Sent.Seq != uint64(i) {
			t.Errorf("Admit of %s after the failovers = %+v, %v; want AlreadySent, seq %d", key, a, err, i)
		}
	}
	t.Logf("deliveries made for 500 jobs: %d", func() (n int) {
		for _, v := range d.tries {
			n += v
		}
		return n
	}())
}

// The job store, its rate limits and Ping run on a Redis Cluster as a user
// with ACLRules on every node, which CLUSTER SLOTS is all a cluster adds.
func TestStoreRunsUnderTheDocumentedACLOnRedisCluster(t *testing.T) {
	t.Parallel()
	rc := testenv.StartRedisCluster(t, 3, 0)
	ctx := context.Background()
	args := []any{"ACL", "SETUSER", "herald", "on", ">herald-pw"}
	for _, rule := range strings.Fields(ACLRules) {
		args = append(args, rule)
	}
	for _, m := range rc.Masters {
		if err := m.Client(t).Do(ctx, args...).Err(); err != nil {
			t.Fatalf("ACL SETUSER on %s: %v", m.Addr, err)
		}
	}
	storetest.Run(t, func(t *testing.T) worker.Store {
		for _, m := range rc.Masters {
			if err := m.Client(t).FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs(), Username: "herald", Password: "herald-pw"})
		t.Cleanup(func() { _ = c.Close() })
		s := New(c, Config{})
		t.Cleanup(s.Close)
		return s
	})
}
