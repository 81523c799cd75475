package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldhq/herald/worker"
)

// Store is the Redis implementation of [worker.Store], on one server
// (or the master Sentinel names) or on a Redis Cluster.
type Store struct {
	rdb redis.UniversalClient
	// cluster is rdb when it is a Redis Cluster client: batches are split
	// by hash slot, and Ping writes to every master.
	cluster *redis.ClusterClient
	prefix  string
	ttl     time.Duration // used by Fail when a job hash lost its expiry
	subTTL  time.Duration // how long a user's ledger outlives its last change
	clock   clockOffset   // maps the batches' TIME onto the local clock
	nodes   nodeClocks    // the same, per master of a Redis Cluster
	health  string        // this store's health key, which Ping writes

	// ops is buffered: a caller hands its operation over without waiting
	// for a flusher to be scheduled, which with thousands of busy
	// goroutines is what a handover costs; a flusher takes whatever has
	// queued when it runs.
	ops    chan *op
	stop   chan struct{}
	mu     sync.RWMutex // closed, against operations queued after Close
	closed bool
	wg     sync.WaitGroup
}

var _ worker.Store = (*Store)(nil)

// Config tunes a Store.
type Config struct {
	// Prefix is prepended to every key; default "herald:".
	Prefix string
	// Flushers is how many batches may be in flight at once; default 8.
	Flushers int
	// MaxBatch caps the operations in one batch; default 256.
	MaxBatch int
	// DedupTTL is the job state lifetime Fail restores if it was lost.
	DedupTTL time.Duration
	// LedgerTTL is how long a user's subscription ledger outlives its last
	// change; default 180 days. One-time grants never expire on WeChat,
	// but a user unseen for half a year is as good as unknown.
	LedgerTTL time.Duration
}

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = "herald:"
	}
	if c.Flushers <= 0 {
		c.Flushers = 8
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 256
	}
	if c.DedupTTL <= 0 {
		c.DedupTTL = 24 * time.Hour
	}
	if c.LedgerTTL <= 0 {
		c.LedgerTTL = 180 * 24 * time.Hour
	}
}

// New returns a Store on rdb and starts its flushers; Close stops them.
// It does not close rdb. A [redis.ClusterClient] makes it a store on a
// Redis Cluster; there the prefix must hold no "{", which would make it
// every key's hash tag and put all of them in one slot.
func New(rdb redis.UniversalClient, cfg Config) *Store {
	cfg.setDefaults()
	s := &Store{
		rdb:    rdb,
		prefix: cfg.Prefix,
		health: cfg.Prefix + "health:" + rand.Text(),
		ttl:    cfg.DedupTTL,
		subTTL: cfg.LedgerTTL,
		ops:    make(chan *op, 2*cfg.Flushers*cfg.MaxBatch),
		stop:   make(chan struct{}),
	}
	s.cluster, _ = rdb.(*redis.ClusterClient)
	for range cfg.Flushers {
		s.wg.Add(1)
		go s.flushLoop(cfg.MaxBatch)
	}
	return s
}

// Close stops the flushers. Operations still queued fail.
func (s *Store) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	for {
		select {
		case o := <-s.ops:
			o.err = errClosed
			close(o.done)
		default:
			return
		}
	}
}

// JobKey is the Redis key of a job's state: the job's key in braces, its
// hash tag, so that on a Redis Cluster every key of one job (the state
// hash, and any kept beside it under <JobKey>:...) lies in one slot, while
// jobs spread over all of them.
func (s *Store) JobKey(key string) string { return s.prefix + "{" + key + "}" }

func (s *Store) rateKey(key string) string { return s.prefix + "rate:" + key }

// legacyKey is where herald v1.0 kept a job's state.
func (s *Store) legacyKey(key string) string { return s.prefix + "job:" + key }

// Admit implements [worker.Store]. On one server it is one operation (and
// the read of the recipient's subscription, in the same batch). On a Redis
// Cluster the job and its rate cell lie in different slots, which one
// script cannot span, so a limited job takes two, one after the other:
// admit claims the job as if it had no limit (with a lease longer by the
// max wait, which covers any wait it is then given), then reserve takes a
// rate slot, for claimed jobs only; a slot beyond the max wait is not
// taken, and unclaim gives the lease back. See docs/design.md.
func (s *Store) Admit(ctx context.Context, c worker.Claim) (worker.Admission, error) {
	job := s.JobKey(c.Key)
	keys := []string{job, job}
	interval, burst := int64(0), 0
	lease, reserveAfter := c.Lease, false
	if c.Limit != nil && c.Limit.PerSecond > 0 {
		interval = int64(float64(time.Second/time.Microsecond) / c.Limit.PerSecond)
		burst = max(c.Limit.Burst, 1)
		if s.cluster != nil {
			lease, reserveAfter = c.Lease+c.MaxWait, true
		} else {
			keys[1] = s.rateKey(c.Limit.Key)
		}
	}
	admitInterval := interval
	if reserveAfter {
		admitInterval = 0
	}
	admit := newOp(keys, opAdmit,
		c.Owner, lease.Microseconds(), c.TTL.Milliseconds(), admitInterval, burst, c.MaxWait.Microseconds())
	ops := []*op{admit}
	var sub, old *op
	if k := c.Subscription; k != nil {
		state, _, _ := s.userKeys(k.Platform, k.App, k.User)
		sub = newOp([]string{state}, opSubGet, k.Template)
		ops = append(ops, sub)
	}
	if s.cluster == nil {
		// herald v1.0 kept jobs under another key on one server (it ran on
		// no cluster): for one dedup TTL after an upgrade, a job it sent,
		// or still holds, is read there too.
		old = newOp([]string{s.legacyKey(c.Key)}, opLegacy, c.Owner)
		ops = append(ops, old)
	}
	if err := s.doOps(ctx, ops...); err != nil {
		return worker.Admission{}, fmt.Errorf("admit %s: %w", c.Key, err)
	}
	if old != nil {
		if _, none := old.res.(int64); !none {
			a, _, err := admission(old.res, old.ran)
			if err != nil {
				return worker.Admission{}, fmt.Errorf("admit %s: %w", c.Key, err)
			}
			// The lease the admission took here expires by itself.
			return a, nil
		}
	}
	a, first, err := admission(admit.res, admit.ran)
	if err != nil {
		return worker.Admission{}, fmt.Errorf("admit %s: %w", c.Key, err)
	}
	if a.Status == worker.AlreadySent || a.Status == worker.Decided {
		return a, nil
	}
	if sub != nil {
		v, _ := sub.res.(string)
		a.Subscription = parseSub(c.Subscription.Template, v)
	}
	if reserveAfter && a.Status == worker.Claimed {
		return s.reserve(ctx, c, a, first, interval, burst)
	}
	return a, nil
}

// reserve takes the rate slot of a job admit claimed on a Redis Cluster
// (see Admit), or gives the claim back: first is admit's word on whether
// the claim was the job's first.
func (s *Store) reserve(ctx context.Context, c worker.Claim, a worker.Admission, first int64, interval int64, burst int) (worker.Admission, error) {
	res, ran, err := s.do(ctx, []string{s.rateKey(c.Limit.Key)}, opReserve, interval, burst, c.MaxWait.Microseconds())
	var v []int64
	if err == nil {
		v, err = ints(res, 2)
	}
	if err != nil || worker.AdmitStatus(v[0]) != worker.Claimed {
		// The lease goes back at once; should that fail too, it runs out
		// by itself, and until then the job's next delivery finds it Busy.
		_, _, _ = s.do(ctx, []string{s.JobKey(c.Key)}, opUnclaim, c.Owner, first)
		if err != nil {
			return worker.Admission{}, fmt.Errorf("admit %s: reserve %s: %w", c.Key, c.Limit.Key, err)
		}
		a.Status, a.FirstAttempt = worker.Throttled, time.Time{}
	}
	a.Wait = untilRan(ran, v[1])
	return a, nil
}

// untilRan is a wait of micros µs counted from ran, the local time a batch ran
// at, as it stands now.
func untilRan(ran time.Time, micros int64) time.Duration {
	return max(time.Until(ran.Add(time.Duration(micros)*time.Microsecond)), 0)
}

// admission reads batchScript's admit reply, and for a claim whether it was
// the job's first (1, else 0).
func admission(res any, ran time.Time) (worker.Admission, int64, error) {
	v, err := ints(res, 4)
	if err != nil {
		return worker.Admission{}, 0, err
	}
	switch worker.AdmitStatus(v[0]) {
	case worker.AlreadySent:
		return alreadySent(v, res.([]any)), 0, nil
	case worker.Decided:
		return decided(v, res.([]any)), 0, nil
	}
	a := worker.Admission{
		Status: worker.AdmitStatus(v[0]),
		// The wait counts from when the batch ran, not from now.
		Wait:     untilRan(ran, v[1]),
		Attempts: int(v[2]),
	}
	if v[3] > 0 {
		a.FirstAttempt = time.UnixMicro(v[3])
	}
	var first int64
	if list := res.([]any); a.Status == worker.Claimed && len(list) == 5 {
		first, _ = list[4].(int64)
	}
	return a, first, nil
}

// alreadySent reads the record batchScript's admit returns for a sent job.
func alreadySent(v []int64, res []any) worker.Admission {
	a := worker.Admission{Status: worker.AlreadySent, Attempts: int(v[2])}
	a.Sent.Attempts = int(v[2])
	if v[3] > 0 {
		a.Sent.At = time.UnixMicro(v[3])
	}
	if len(res) == 6 {
		q, _ := res[4].(string)
		a.Sent.Seq, _ = strconv.ParseUint(q, 10, 64)
		a.Sent.MsgID, _ = res[5].(string)
	}
	return a
}

// decided reads the decision batchScript's admit returns for a job whose
// dead letter is decided.
func decided(v []int64, res []any) worker.Admission {
	a := worker.Admission{Status: worker.Decided, Attempts: int(v[2])}
	a.Decision.Attempts = int(v[2])
	if v[3] > 0 {
		a.Decision.First = time.UnixMicro(v[3])
	}
	if len(res) == 8 {
		a.Decision.Reason, _ = res[4].(string)
		a.Decision.Code, _ = res[5].(string)
		a.Decision.Message, _ = res[6].(string)
		a.Decision.Field, _ = res[7].(string)
	}
	return a
}

// Decide implements [worker.Store].
func (s *Store) Decide(ctx context.Context, key, _ string, d worker.Decision) error {
	if _, _, err := s.do(ctx, []string{s.JobKey(key)}, opDecide, s.ttl.Milliseconds(),
		d.Reason, d.Code, d.Message, d.Field, d.Attempts); err != nil {
		return fmt.Errorf("decide %s: %w", key, err)
	}
	return nil
}

// MarkSent implements [worker.Store].
func (s *Store) MarkSent(ctx context.Context, key string, ttl time.Duration, d worker.SentRecord) error {
	ops, err := s.sentOps(key, d)
	if err != nil {
		return err
	}
	ops = append([]*op{newOp([]string{s.JobKey(key)}, opMarkSent, ttl.Milliseconds(),
		d.Seq, d.MsgID, d.Attempts, d.At.UnixMicro())}, ops...)
	if err := s.doOps(ctx, ops...); err != nil {
		return fmt.Errorf("mark sent %s: %w", key, err)
	}
	return nil
}

// Fail implements [worker.Store].
func (s *Store) Fail(ctx context.Context, key, owner string) (int, error) {
	res, _, err := s.do(ctx, []string{s.JobKey(key)}, opFail, owner, s.ttl.Milliseconds())
	if err != nil {
		return 0, fmt.Errorf("count failure %s: %w", key, err)
	}
	n, ok := res.(int64)
	if !ok {
		return 0, fmt.Errorf("count failure %s: unexpected reply %T", key, res)
	}
	return int(n), nil
}

// Release implements [worker.Store].
func (s *Store) Release(ctx context.Context, key, owner string) error {
	if _, _, err := s.do(ctx, []string{s.JobKey(key)}, opRelease, owner); err != nil {
		return fmt.Errorf("release %s: %w", key, err)
	}
	return nil
}

// Forget implements [worker.Store]. It is rare (dead letters only), so it
// does not go through the batches.
func (s *Store) Forget(ctx context.Context, key string) error {
	if err := s.rdb.Del(ctx, s.JobKey(key)).Err(); err != nil {
		return fmt.Errorf("forget %s: %w", key, err)
	}
	return nil
}

// healthTTL is how long a health key outlives the last Ping that wrote it.
const healthTTL = 30 * time.Second

// Ping implements [worker.Store]: nil only while Redis takes writes. It
// asks for Redis's TIME, whose round trip, quick while nothing else is
// queued, sharpens the clock estimate the rate-limit waits count from
// (where TIME is refused, as a proxy may, PING tells whether Redis
// answers); then it writes this store's health key, which expires after
// healthTTL. A Redis that answers but cannot record a claim, a replica
// after a failover (READONLY) or one out of memory (OOM), fails the write,
// and so Ping.
//
// On a Redis Cluster every master must take writes: Ping writes a health
// key on each (see pingCluster).
func (s *Store) Ping(ctx context.Context) error {
	if s.cluster != nil {
		return s.pingCluster(ctx)
	}
	sent := time.Now()
	now, err := s.rdb.Time(ctx).Result()
	if err == nil {
		s.clock.ranAt(now.UnixMicro(), sent, time.Now())
	} else if rerr := redis.Error(nil); errors.As(err, &rerr) {
		err = s.rdb.Ping(ctx).Err()
	}
	if err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	if err := s.rdb.Set(ctx, s.health, sent.UnixMilli(), healthTTL).Err(); err != nil {
		return fmt.Errorf("redis ping: write %s: %w", s.health, err)
	}
	return nil
}

// pingCluster writes this store's health key on every master of the
// Redis Cluster, each through the script that also reads the master's
// TIME (for its clock estimate), in one pipeline: one round trip per
// master. The masters are those CLUSTER SLOTS names; slots no master
// serves fail it too. A master's key is the health key with a hash tag
// that lies in that master's slots.
func (s *Store) pingCluster(ctx context.Context) error {
	// CLUSTER SLOTS, as the client itself asks for its slot map: servers
	// before Redis 7.0 have no CLUSTER SHARDS, and the ACL rules name one.
	//lint:ignore SA1019 CLUSTER SHARDS needs Redis 7.0; the client's slot map comes from CLUSTER SLOTS too
	ranges, err := s.cluster.ClusterSlots(ctx).Result()
	if err != nil {
		s.cluster.ReloadState(ctx)
		return fmt.Errorf("redis ping: cluster slots: %w", err)
	}
	served := 0
	slots := map[string][][2]int{} // master address → its slot ranges
	var masters []string
	for _, r := range ranges {
		if len(r.Nodes) == 0 {
			continue
		}
		addr := r.Nodes[0].Addr
		if slots[addr] == nil {
			masters = append(masters, addr)
		}
		slots[addr] = append(slots[addr], [2]int{r.Start, r.End})
		served += r.End - r.Start + 1
	}
	if served < clusterSlots {
		return fmt.Errorf("redis ping: %d of %d hash slots have no master", clusterSlots-served, clusterSlots)
	}
	sent := time.Now()
	cmds := make([]*redis.Cmd, len(masters))
	run := func(eval bool) {
		_, _ = s.cluster.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, m := range masters {
				if eval && !redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
					continue
				}
				keys := []string{s.health + "{" + tagIn(slots[m]) + "}"}
				if eval {
					cmds[i] = pingScript.Eval(ctx, p, keys, sent.UnixMilli(), healthTTL.Milliseconds())
				} else {
					cmds[i] = pingScript.EvalSha(ctx, p, keys, sent.UnixMilli(), healthTTL.Milliseconds())
				}
			}
			return nil
		})
	}
	run(false)
	for _, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			run(true) // a master that lost the script, or a new one
			break
		}
	}
	recv := time.Now()
	var errs []error
	for i, c := range cmds {
		now, err := c.Int64()
		if err != nil {
			errs = append(errs, fmt.Errorf("write %s on %s: %w", s.health, masters[i], err))
			continue
		}
		s.nodes.of(masters[i]).ranAt(now, sent, recv)
	}
	if err := errors.Join(errs...); err != nil {
		s.cluster.ReloadState(ctx) // as flushCluster does
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// tagIn is a hash tag whose slot lies in one of ranges: the first number,
// in decimal, that hashes there.
func tagIn(ranges [][2]int) string {
	for n := 0; ; n++ {
		tag := strconv.Itoa(n)
		slot := keySlot(tag)
		for _, r := range ranges {
			if slot >= r[0] && slot <= r[1] {
				return tag
			}
		}
	}
}

// op is one operation of batchScript waiting for a batch: its keys, and its
// name followed by its arguments.
type op struct {
	keys []string
	args []any
	done chan struct{}
	res  any
	ran  time.Time // when, on the local clock, the batch ran
	err  error
}

var errClosed = errors.New("redis store closed")

// newOp is one operation: its keys, and its name followed by its
// arguments.
func newOp(keys []string, args ...any) *op {
	return &op{keys: keys, args: args, done: make(chan struct{})}
}

// do hands one operation to the flushers and waits for its result and the
// local time its batch ran at: keys are the operation's keys, args its name
// followed by its arguments.
func (s *Store) do(ctx context.Context, keys []string, args ...any) (any, time.Time, error) {
	o := newOp(keys, args...)
	err := s.doOps(ctx, o)
	return o.res, o.ran, err
}

// doOps hands operations to the flushers together (they usually share a
// batch) and waits for every one; the error is the first one's that
// failed.
func (s *Store) doOps(ctx context.Context, ops ...*op) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return errClosed
	}
	for i, o := range ops {
		select {
		case s.ops <- o:
		case <-ctx.Done():
			s.mu.RUnlock()
			// The ones handed over complete by themselves.
			for _, sent := range ops[:i] {
				<-sent.done
			}
			return ctx.Err()
		}
	}
	s.mu.RUnlock()
	// Once handed over an op always completes: the flusher's command is
	// bounded by the client's timeouts. Waiting for it keeps the caller from
	// acting while its operation may still change state.
	var err error
	for _, o := range ops {
		<-o.done
		if err == nil {
			err = o.err
		}
	}
	return err
}

func (s *Store) flushLoop(maxBatch int) {
	defer s.wg.Done()
	batch := make([]*op, 0, maxBatch)
	for {
		// Once stopping, take nothing more: Close fails what is queued.
		select {
		case <-s.stop:
			return
		default:
		}
		select {
		case o := <-s.ops:
			batch = append(batch[:0], o)
		case <-s.stop:
			return
		}
	collect:
		for len(batch) < maxBatch {
			select {
			case o := <-s.ops:
				batch = append(batch, o)
			default:
				break collect
			}
		}
		s.flush(batch)
	}
}

// flush runs batch as one call of batchScript; on a Redis Cluster, as one
// call per hash slot (flushCluster). The script is called by SHA; when
// Redis has lost it (a restart), the batch runs again once with EVAL,
// which sends the script and loads it. An operation's error reply is that
// operation's error; a failed call is every operation's.
func (s *Store) flush(batch []*op) {
	if s.cluster != nil {
		s.flushCluster(batch)
		return
	}
	nkeys, nargs := 0, 0
	for _, o := range batch {
		nkeys += len(o.keys)
		nargs += len(o.args)
	}
	keys := make([]string, 0, nkeys)
	args := make([]any, 0, nargs)
	for _, o := range batch {
		keys = append(keys, o.keys...)
		args = append(args, o.args...)
	}
	sent := time.Now()
	res, err := batchScript.Run(context.Background(), s.rdb, keys, args...).Slice()
	settle(batch, res, err, &s.clock, sent, time.Now())
}

// settle hands each operation of one script call its result: res, the
// call's reply (one element per operation, then the TIME it ran at), or
// err. clock maps that TIME onto the local clock, between sent and recv.
func settle(ops []*op, res []any, err error, clock *clockOffset, sent, recv time.Time) {
	var ran time.Time
	if err == nil {
		var now int64
		ok := len(res) == len(ops)+1
		if ok {
			now, ok = res[len(ops)].(int64)
		}
		if !ok {
			err = fmt.Errorf("unexpected reply: %d elements for %d operations", len(res), len(ops))
		} else {
			ran = clock.ranAt(now, sent, recv)
		}
	}
	for i, o := range ops {
		if err != nil {
			o.err = err
		} else if e, ok := res[i].(error); ok {
			o.err = e
		} else {
			o.res, o.ran = res[i], ran
		}
		close(o.done)
	}
}

// errCrossSlot fails an operation whose keys lie in different hash slots
// of a Redis Cluster, which one script call cannot span.
var errCrossSlot = errors.New("operation keys lie in different hash slots")

// slotCall is the operations of a batch whose keys lie in one hash slot,
// sent as one script call.
type slotCall struct {
	ops  []*op
	keys []string
	args []any
	cmd  *redis.Cmd
}

// flushCluster runs batch on a Redis Cluster. A script's keys must lie in
// one hash slot, so the batch is split by slot, keeping the operations'
// order within each, into one call of batchScript per slot; all of them go
// in one pipeline, which the client sends to each master at once: a batch
// is still one round trip, to each master it touches. Grouping knows
// nothing of the operations but their keys, which each must keep in one
// slot; one that does not fails alone with errCrossSlot.
func (s *Store) flushCluster(batch []*op) {
	ctx := context.Background()
	var calls []*slotCall
	bySlot := make(map[int]*slotCall, len(batch))
	for _, o := range batch {
		slot := keySlot(o.keys[0])
		for _, k := range o.keys[1:] {
			if keySlot(k) != slot {
				slot = -1
			}
		}
		if slot < 0 {
			o.err = errCrossSlot
			close(o.done)
			continue
		}
		c := bySlot[slot]
		if c == nil {
			c = &slotCall{}
			bySlot[slot] = c
			calls = append(calls, c)
		}
		c.ops = append(c.ops, o)
		c.keys = append(c.keys, o.keys...)
		c.args = append(c.args, o.args...)
	}
	sent := time.Now()
	run := func(eval bool) {
		_, _ = s.cluster.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, c := range calls {
				switch {
				case !eval:
					c.cmd = batchScript.EvalSha(ctx, p, c.keys, c.args...)
				case redis.HasErrorPrefix(c.cmd.Err(), "NOSCRIPT"):
					c.cmd = batchScript.Eval(ctx, p, c.keys, c.args...)
				}
			}
			return nil
		})
	}
	run(false)
	for _, c := range calls {
		if redis.HasErrorPrefix(c.cmd.Err(), "NOSCRIPT") {
			// A master that lost the script (a restart), or a replica
			// promoted since: scripts are not replicated.
			run(true)
			break
		}
	}
	recv := time.Now()
	for _, c := range calls {
		if c.cmd.Err() != nil {
			// A master gone (killed, partitioned) fails its calls until
			// the client learns who serves its slots now, which it would
			// otherwise only ask every minute.
			s.cluster.ReloadState(ctx)
			break
		}
	}
	for _, c := range calls {
		res, err := c.cmd.Slice()
		clock := &s.clock
		if m, merr := s.cluster.MasterForKey(ctx, c.keys[0]); merr == nil {
			clock = s.nodes.of(m.Options().Addr)
		}
		settle(c.ops, res, err, clock, sent, recv)
	}
}

// nodeClocks keeps a clock estimate per master of a Redis Cluster, by
// address: each batch reads the TIME of the master it ran on, and
// masters' clocks differ by more than a round trip's bounds can mix.
type nodeClocks struct {
	mu sync.Mutex
	m  map[string]*clockOffset
}

func (n *nodeClocks) of(addr string) *clockOffset {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.m[addr]
	if c == nil {
		if n.m == nil {
			n.m = map[string]*clockOffset{}
		}
		c = &clockOffset{}
		n.m[addr] = c
	}
	return c
}

func ints(res any, n int) ([]int64, error) {
	list, ok := res.([]any)
	if !ok || len(list) < n {
		return nil, fmt.Errorf("unexpected reply %v", res)
	}
	out := make([]int64, n)
	for i, v := range list[:n] {
		x, ok := v.(int64)
		if !ok {
			return nil, fmt.Errorf("unexpected reply element %v", v)
		}
		out[i] = x
	}
	return out, nil
}
