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

// Store is the Redis implementation of [worker.Store].
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration // used by Fail when a job hash lost its expiry
	subTTL time.Duration // how long a user's ledger outlives its last change
	clock  clockOffset   // maps the batches' TIME onto the local clock
	health string        // this store's health key, which Ping writes

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
// It does not close rdb.
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

// JobKey is the Redis key of a job's state.
func (s *Store) JobKey(key string) string { return s.prefix + "job:" + key }

func (s *Store) rateKey(key string) string { return s.prefix + "rate:" + key }

// Admit implements [worker.Store].
func (s *Store) Admit(ctx context.Context, c worker.Claim) (worker.Admission, error) {
	job := s.JobKey(c.Key)
	keys := []string{job, job}
	interval, burst := int64(0), 0
	if c.Limit != nil && c.Limit.PerSecond > 0 {
		keys[1] = s.rateKey(c.Limit.Key)
		interval = int64(float64(time.Second/time.Microsecond) / c.Limit.PerSecond)
		burst = max(c.Limit.Burst, 1)
	}
	admit := newOp(keys, opAdmit,
		c.Owner, c.Lease.Microseconds(), c.TTL.Milliseconds(), interval, burst, c.MaxWait.Microseconds())
	ops := []*op{admit}
	if k := c.Subscription; k != nil {
		state, _, _ := s.userKeys(k.Platform, k.App, k.User)
		ops = append(ops, newOp([]string{state}, opSubGet, k.Template))
	}
	if err := s.doOps(ctx, ops...); err != nil {
		return worker.Admission{}, fmt.Errorf("admit %s: %w", c.Key, err)
	}
	res, ran := admit.res, admit.ran
	var sub worker.Subscription
	if c.Subscription != nil {
		v, _ := ops[1].res.(string)
		sub = parseSub(c.Subscription.Template, v)
	}
	v, err := ints(res, 4)
	if err != nil {
		return worker.Admission{}, fmt.Errorf("admit %s: %w", c.Key, err)
	}
	switch worker.AdmitStatus(v[0]) {
	case worker.AlreadySent:
		return alreadySent(v, res.([]any)), nil
	case worker.Decided:
		return decided(v, res.([]any)), nil
	}
	a := worker.Admission{
		Status: worker.AdmitStatus(v[0]),
		// The wait counts from when the batch ran, not from now.
		Wait:         max(time.Until(ran.Add(time.Duration(v[1])*time.Microsecond)), 0),
		Attempts:     int(v[2]),
		Subscription: sub,
	}
	if v[3] > 0 {
		a.FirstAttempt = time.UnixMicro(v[3])
	}
	return a, nil
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
func (s *Store) Ping(ctx context.Context) error {
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

// flush runs batch as one call of batchScript. The script is called by SHA;
// when Redis has lost it (a restart), the batch runs again once with EVAL,
// which sends the script and loads it. An operation's error reply is that
// operation's error; a failed call is every operation's.
func (s *Store) flush(batch []*op) {
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
	var ran time.Time
	if err == nil {
		var now int64
		ok := len(res) == len(batch)+1
		if ok {
			now, ok = res[len(batch)].(int64)
		}
		if !ok {
			err = fmt.Errorf("unexpected reply: %d elements for %d operations", len(res), len(batch))
		} else {
			ran = s.clock.ranAt(now, sent, time.Now())
		}
	}
	for i, o := range batch {
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
