package worker

import (
	"context"
	"time"
)

// Store holds the state replicas share: per-job dedup leases, "sent"
// markers and attempt counts, and the rate-limit cells. Redis in production
// (package redisstore), in-process for a single replica (package memstore).
//
// Admission is one call, not a Deduper and a Limiter, so that the happy path
// costs two store operations per job (Admit, MarkSent) and implementations
// can batch them across concurrent jobs. See docs/design.md.
type Store interface {
	// Admit checks the job's dedup state and, when it is free, reserves a
	// rate-limit slot and takes the lease, all at once.
	Admit(ctx context.Context, c Claim) (Admission, error)
	// MarkSent records that the platform accepted the job, and how; the
	// marker lives for the dedup TTL.
	MarkSent(ctx context.Context, key string, ttl time.Duration, r SentRecord) error
	// Decide records that the job is to be dead-lettered, and why, when its
	// dead letter could not be stored: every later delivery of the job is
	// admitted as Decided and publishes that dead letter, never calling the
	// platform again. It releases owner's lease. Forget clears it.
	Decide(ctx context.Context, key, owner string, d Decision) error
	// Fail records a failed provider call: it counts an attempt, releases
	// the lease if owner still holds it, and returns the attempts so far.
	// An owner is one delivery, which makes one call: Fail again from the
	// same owner counts nothing, so a retried request cannot count twice.
	Fail(ctx context.Context, key, owner string) (attempts int, err error)
	// Release gives the lease back without counting an attempt.
	Release(ctx context.Context, key, owner string) error
	// Forget deletes the job's state once it is dead-lettered, so a replay
	// starts afresh.
	Forget(ctx context.Context, key string) error
	// Ping reports whether the store can be reached.
	Ping(ctx context.Context) error
}

// Claim asks to admit one job.
type Claim struct {
	Key   string        // the job's idempotency key, platform:app:id
	Owner string        // who takes the lease: instance, stream sequence, delivery
	Lease time.Duration // how long the lease protects the call
	TTL   time.Duration // how long the job's state is kept (dedup.ttl)
	// Limit is the rate limit the job falls under; nil for none.
	Limit *Limit
	// MaxWait is the longest rate-limit wait worth holding the job for.
	// Beyond it nothing is reserved and the job is handed back.
	MaxWait time.Duration
}

// Limit is a GCRA rate limit: PerSecond on average, Burst at once.
type Limit struct {
	Key       string
	PerSecond float64
	Burst     int
}

// AdmitStatus says what Admit decided.
type AdmitStatus int

const (
	// Claimed: the lease is ours; call the platform after Wait.
	Claimed AdmitStatus = iota
	// AlreadySent: the job was delivered before; ack it without a call.
	AlreadySent
	// Busy: another delivery holds the lease; try again after Wait.
	Busy
	// Throttled: the rate limit's wait exceeds MaxWait; try again after Wait.
	Throttled
	// Decided: the job's outcome is decided (Admission.Decision); publish
	// its dead letter without a call.
	Decided
)

// Admission is Admit's answer.
type Admission struct {
	Status AdmitStatus
	// Wait counts from when Admit returns. For Claimed it ends at the
	// reserved rate-limit slot, however long the answer took to come back.
	Wait         time.Duration
	Attempts     int       // provider calls made for the job so far
	FirstAttempt time.Time // when the job was first claimed
	// Sent is what MarkSent recorded, for AlreadySent.
	Sent SentRecord
	// Decision is what Decide recorded, for Decided.
	Decision Decision
}

// Decision is a dead letter decided but not yet stored: what it says.
type Decision struct {
	Reason   string
	Code     string
	Message  string
	Field    string
	Attempts int       // provider calls made
	First    time.Time // the first attempt; zero when no call was made
}

// SentRecord is what the store keeps about a delivered job. When the
// message that was delivered comes back (its holder died before acking),
// the worker publishes the receipt from it: the holder may have died before
// it did.
type SentRecord struct {
	Seq      uint64    // stream sequence of the message that was delivered
	MsgID    string    // the platform's message id
	Attempts int       // provider calls it took
	At       time.Time // when the platform accepted it
}
