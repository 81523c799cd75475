// Package worker runs one herald worker replica: it pulls jobs from the
// shared durable consumer, and for each one decodes, validates, checks the
// deadline, claims it in the shared [Store] (dedup lease plus rate-limit
// reservation), calls the platform through a [Sender], classifies the answer
// with package retry, records the outcome and only then acks.
//
// Invariants:
//   - A message is acked only once its outcome is durable: the "sent"
//     marker is written (or could not be, after retries: see docs/design.md),
//     or the dead letter was stored with a publish ack. A failed dead-letter
//     publish naks the job; it is never dropped.
//   - At most Config.Concurrency provider calls are in flight; only the
//     call holds a call slot, not the claim, the rate-limit wait or
//     settling the outcome. A fixed pool of Concurrency + half PullBatch
//     (rounded up) handlers each pulls a message only when it is free; with what the
//     pull iterator buffers, at most Concurrency + 1.5 × PullBatch messages
//     are unacknowledged.
//   - Attempts are counted in the Store, per job, only for provider calls
//     that failed transiently. Rate-limit waits, quota holds, paused apps,
//     busy leases and redeliveries after a crash spend none.
//   - Nothing is sent without a claim: when the Store cannot be reached the
//     job is handed back and pulling stops until a ping succeeds.
package worker
