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
	// Subscription, when set, asks for the ledger's state of the job's
	// recipient and template with the admission.
	Subscription *SubscriptionKey
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
	// Subscription is the ledger's state, when the claim asked for it.
	Subscription Subscription
}

// Decision is a dead letter decided but not yet stored: what it says.
type Decision struct {
	Reason   string    `json:"reason"`
	Code     string    `json:"code"`
	Message  string    `json:"message"`
	Field    string    `json:"field,omitempty"`
	Attempts int       `json:"attempts"`       // provider calls made
	First    time.Time `json:"first,omitzero"` // the first attempt; zero when no call was made
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

	// Take, when set, takes one grant from the recipient's subscription
	// (a one-time template).
	Take *SubscriptionKey
	// Ref, when set, is remembered for RefTTL under the platform message
	// id, for the final result to be joined to the job (Ledger.Join).
	Ref    *MsgRef
	RefTTL time.Duration
}

// The subscription ledger (contract section 7) lives in the Store beside
// the jobs' state: reading a user's state joins the job's admission, and
// taking a grant joins its sent marker, in the same batches.

// SubscriptionKey names one user's subscription to one template of one
// app.
type SubscriptionKey struct {
	Platform, App, User, Template string
}

// SubscriptionState is what the ledger knows of a SubscriptionKey.
type SubscriptionState string

// The ledger's states.
const (
	// SubUnknown: nothing seen. A job for it always goes.
	SubUnknown SubscriptionState = "unknown"
	// SubGranted: the user accepted; Grants counts the one-time grants
	// known to be left.
	SubGranted SubscriptionState = "granted"
	// SubRejected: the user rejected the template.
	SubRejected SubscriptionState = "rejected"
	// SubExhausted: the platform answered 43101, no grant left.
	SubExhausted SubscriptionState = "exhausted"
)

// Subscription is the ledger's state of one template for one user.
type Subscription struct {
	Template string            `json:"template"`
	State    SubscriptionState `json:"state"`
	Grants   int               `json:"grants"`         // known one-time grants left, for SubGranted
	Since    time.Time         `json:"since,omitzero"` // when the state last changed; zero for SubUnknown
}

// LedgerEvent is a subscription event as the ledger applies it.
type LedgerEvent struct {
	// ID identifies the event (its Nats-Msg-Id): applying one twice
	// changes the ledger once.
	ID string
	// Accept is true for an accept, false for a reject.
	Accept bool
	// At is when the user acted (the push's CreateTime). An event older
	// than the state it would change is recorded but changes nothing: a
	// late accept does not undo a later reject or 43101, nor a late reject
	// a later accept.
	At time.Time
}

// HistoryEntry is one change of a user's ledger, newest first, as
// `herald subscriptions show` lists it.
type HistoryEntry struct {
	At       time.Time `json:"at"`
	Template string    `json:"template"`
	What     string    `json:"what"` // accept, reject, sent, 43101, stale accept, ...
}

// MsgRef is what a platform message id stands for: the delivered job it
// was sent for, and the platform's final result once it reported one.
type MsgRef struct {
	Platform, App          string
	ID, TemplateID, ToUser string
	SentAt                 time.Time
	// TraceParent is the delivered job's trace context, when traced: its
	// status event carries it on.
	TraceParent string
	// Status is "" until the final result is joined, then
	// job.StatusDelivered or job.StatusFailed.
	Status, ErrorCode, ErrorStatus string
	StatusAt                       time.Time
}

// JobState is what the store knows of one job, for `herald jobs show`.
type JobState struct {
	State    string // "" (unknown), "lease", "idle", "sent" or "dead"
	Owner    string // the delivery holding the lease
	Attempts int
	First    time.Time
	Sent     SentRecord // for "sent"
	Decision Decision   // for "dead"
}

// Ledger is the subscription ledger's side of a Store, and what herald's
// commands read of a job. Stores the worker runs with in observe or
// enforce mode implement it.
type Ledger interface {
	// Apply applies a popup or change event; it reports false for one
	// applied before.
	Apply(ctx context.Context, k SubscriptionKey, ev LedgerEvent) (bool, error)
	// Exhaust records a 43101 answer at at.
	Exhaust(ctx context.Context, k SubscriptionKey, at time.Time) error
	// Join looks up the job a platform message id was sent for and
	// records its final result; false when no delivered job matches.
	Join(ctx context.Context, platform, app, msgID string, result MsgRef) (MsgRef, bool, error)
	// Subscriptions lists a user's states for templates (all the ledger
	// holds when none is given), and the latest changes.
	Subscriptions(ctx context.Context, platform, app, user string, templates ...string) ([]Subscription, []HistoryEntry, error)
	// Job reads one job's state, and what its message id stands for.
	Job(ctx context.Context, key string) (JobState, MsgRef, error)
}
