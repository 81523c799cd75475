// Package dlq inspects, replays and purges herald's dead letters: the
// messages the worker publishes to notify.dead.<platform>.<reason> and the
// NOTIFY_DEAD stream keeps (contract section 3). The operator commands of
// cmd/herald (herald dlq ...) are thin wrappers around it.
//
// Invariants:
//   - Reading never consumes. [Scan], and through it [List], [Stats] and the
//     collecting phase of [Replay] and [Purge], browse the stream with an
//     ordered consumer (an ephemeral, unacknowledged cursor deleted when the
//     call returns), from [Filter.FromSeq] or else [Filter.Since], and stop
//     at the stream's last sequence as it was when the call began (or at
//     [Filter.ToSeq]): they never wait for new dead letters.
//   - A [Filter] narrows by subject where it can (one filter subject per
//     platform and reason pair) and matches every other field on the decoded
//     dead letter.
//   - [Replay] and [Purge] first collect the sequence numbers to act on, then
//     act on each one. A dead letter is deleted only after its job's replay
//     was acknowledged by JetStream, so an interrupted run loses nothing and
//     is finished by running it again.
//   - A replay is published with Nats-Msg-Id replay:<dead stream>:<dead seq>,
//     never the job's own id: a rerun within the job stream's duplicate
//     window is recognised as a duplicate, and a job whose id JetStream saw
//     recently is still replayed. Its Herald-Replays header is the dead
//     letter's replays plus one, which the worker copies into the next dead
//     letter should the job fail again.
//   - Dead letters whose job could not be decoded (raw bytes instead of a job
//     object) are never replayed; they are skipped and counted.
package dlq
