// Package memstore is an in-process [worker.Store] for a single replica:
// herald dev and deployments that run one worker without Redis. Its dedup
// markers and rate limits are not shared and do not survive a restart.
package memstore

import (
	"context"
	"sync"
	"time"

	"github.com/heraldhq/herald/worker"
)

// Store is an in-process [worker.Store]. The zero value is not usable; call New.
type Store struct {
	now func() time.Time

	mu        sync.Mutex
	lastSweep time.Time
	jobs      map[string]*state
	tats      map[string]time.Time // GCRA theoretical arrival times
	ledger    ledger
}

var (
	_ worker.Store  = (*Store)(nil)
	_ worker.Ledger = (*Store)(nil)
)

type state struct {
	sent     bool
	owner    string
	leaseEnd time.Time
	attempts int
	failedBy string // the owner whose failure was counted last
	first    time.Time
	expires  time.Time
	sentAs   worker.SentRecord
	decided  *worker.Decision
}

// New returns an empty Store. now may be nil for the wall clock.
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, jobs: map[string]*state{}, tats: map[string]time.Time{}, ledger: newLedger()}
}

func (s *Store) get(key string, now time.Time) *state {
	st, ok := s.jobs[key]
	if ok && now.After(st.expires) {
		delete(s.jobs, key)
		ok = false
	}
	if !ok {
		return nil
	}
	return st
}

// Admit implements [worker.Store] with the same rules as the Redis store.
func (s *Store) Admit(_ context.Context, c worker.Claim) (worker.Admission, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweep(now)
	st := s.get(c.Key, now)
	var sub worker.Subscription
	if c.Subscription != nil {
		sub = s.ledger.get(*c.Subscription)
	}
	if st != nil && st.sent {
		return worker.Admission{Status: worker.AlreadySent, Attempts: st.sentAs.Attempts, Sent: st.sentAs}, nil
	}
	if st != nil && st.decided != nil {
		return worker.Admission{Status: worker.Decided, Attempts: st.decided.Attempts, Decision: *st.decided}, nil
	}
	if st != nil && st.owner != "" && st.owner != c.Owner && st.leaseEnd.After(now) {
		return worker.Admission{Status: worker.Busy, Wait: st.leaseEnd.Sub(now), Attempts: st.attempts}, nil
	}
	var wait time.Duration
	if l := c.Limit; l != nil && l.PerSecond > 0 {
		interval := time.Duration(float64(time.Second) / l.PerSecond)
		tat := s.tats[l.Key]
		if tat.Before(now) {
			tat = now
		}
		newTat := tat.Add(interval)
		wait = newTat.Add(-interval * time.Duration(max(l.Burst, 1))).Sub(now)
		if wait > c.MaxWait {
			return worker.Admission{Status: worker.Throttled, Wait: wait}, nil
		}
		wait = max(wait, 0)
		s.tats[l.Key] = newTat
	}
	if st == nil {
		st = &state{first: now}
		s.jobs[c.Key] = st
	}
	st.owner = c.Owner
	st.leaseEnd = now.Add(wait + c.Lease)
	st.expires = now.Add(c.TTL)
	return worker.Admission{Status: worker.Claimed, Wait: wait, Attempts: st.attempts, FirstAttempt: st.first, Subscription: sub}, nil
}

// MarkSent implements [worker.Store].
func (s *Store) MarkSent(_ context.Context, key string, ttl time.Duration, d worker.SentRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	st := s.get(key, now)
	if st == nil {
		st = &state{first: now}
		s.jobs[key] = st
	}
	if d.Take != nil {
		s.ledger.take(*d.Take, d.At)
	}
	if d.Ref != nil && d.MsgID != "" && d.RefTTL > 0 {
		r := *d.Ref
		r.SentAt = d.At
		s.ledger.remember(d.MsgID, r, now.Add(d.RefTTL))
	}
	d.Take, d.Ref, d.RefTTL = nil, nil, 0
	st.sent, st.owner, st.expires, st.sentAs = true, "", now.Add(ttl), d
	return nil
}

// Decide implements [worker.Store].
func (s *Store) Decide(_ context.Context, key, owner string, d worker.Decision) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	st := s.get(key, now)
	if st == nil {
		st = &state{first: now, expires: now.Add(24 * time.Hour)}
		s.jobs[key] = st
	}
	st.decided = &d
	if st.owner == owner {
		st.owner = ""
	}
	return nil
}

// Fail implements [worker.Store].
func (s *Store) Fail(_ context.Context, key, owner string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	st := s.get(key, now)
	if st == nil {
		st = &state{first: now, expires: now.Add(24 * time.Hour)}
		s.jobs[key] = st
	}
	if st.failedBy == owner {
		return st.attempts, nil
	}
	st.attempts++
	st.failedBy = owner
	if st.owner == owner {
		st.owner = ""
	}
	return st.attempts, nil
}

// Release implements [worker.Store].
func (s *Store) Release(_ context.Context, key, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.get(key, s.now()); st != nil && st.owner == owner {
		st.owner = ""
	}
	return nil
}

// Forget implements [worker.Store].
func (s *Store) Forget(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.jobs, key)
	return nil
}

// Ping implements [worker.Store]; an in-process store is always reachable.
func (s *Store) Ping(context.Context) error { return nil }

// sweep drops expired entries once a minute so memory stays bounded by the
// dedup TTL's worth of jobs.
func (s *Store) sweep(now time.Time) {
	if now.Sub(s.lastSweep) < time.Minute {
		return
	}
	s.lastSweep = now
	for k, st := range s.jobs {
		if now.After(st.expires) {
			delete(s.jobs, k)
		}
	}
	for k, tat := range s.tats {
		if tat.Before(now) {
			delete(s.tats, k)
		}
	}
	// Events are redelivered at most while the stream keeps them.
	for id, at := range s.ledger.applied {
		if now.Sub(at) > 31*24*time.Hour {
			delete(s.ledger.applied, id)
		}
	}
	for k, r := range s.ledger.refs {
		if now.After(r.expires) {
			delete(s.ledger.refs, k)
		}
	}
}
