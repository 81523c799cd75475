// Package redisstore keeps the state herald's replicas share in Redis: job
// dedup leases, "sent" markers and attempt counts, GCRA rate-limit cells, and
// the WeChat access tokens.
//
// Job operations (Admit, MarkSent, Fail, Release) are batched: callers block
// while a small set of flushers send whatever has queued up as one EVALSHA of
// a single Lua script, which runs the batch's operations in order and returns
// one result per operation. A script runs atomically and reads Redis's own
// clock (TIME) rather than the replicas', once per batch, and returns it: a
// rate-limit wait counts from when the batch ran, which the store maps onto
// the local clock (see clockOffset), not from when the reply arrived. An
// operation that fails returns its own error; the others in its batch still
// run. Under load a batch carries many jobs; when idle it carries one, so
// latency stays at one round trip.
//
// On a Redis Cluster (a [redis.ClusterClient]) a script's keys must lie in
// one hash slot, so a batch is split by slot into one script call per slot,
// all sent in one pipeline: still one round trip, to each master the batch
// touches. Each operation names its keys, which must share a slot; the
// split knows nothing else about it. A rate-limited admission, whose job
// and rate cell lie in different slots, is then two operations, one after
// the other (see [Store.Admit]).
//
// Keys (with the configured prefix, "herald:" by default):
//
//	<prefix>{<platform>:<app>:<id>}   hash, in flight: s (lease|idle|dead),
//	                                  o (owner), l (lease end, µs), f (first
//	                                  claim, µs), a (attempts), x (owner whose
//	                                  failure was counted last); a dead letter
//	                                  decided adds dr, dc, dm, df, dn. Once
//	                                  sent only q (stream sequence), m
//	                                  (msgid), n (attempts it took), t (sent
//	                                  at, µs): about 150 B in all
//	<prefix>rate:<platform>:<app>:<template>   GCRA theoretical arrival time, µs
//	<prefix>sub:{<hash>}, …:ev, …:h    a user's subscription ledger: state
//	                                   hash, applied events, history (the
//	                                   hash of platform, app and user is
//	                                   their hash tag)
//	<prefix>ref:{<hash>}               what a platform message id stands for
//	<prefix>health:<random>            written by Ping, one per Store (on a
//	                                   cluster one per master, with a hash
//	                                   tag in its slots); expires 30 s after
//	                                   the last Ping
//
// A job's key is its hash tag: every key kept for one job lies in one slot
// of a cluster, and jobs spread over all of them.
//
// A claim sets the job key's expiry to the dedup TTL after the lease ends;
// the sent marker leaves it as it is, so a delivered job is remembered for
// at least the TTL after its delivery.
//
// Ping writes rather than reads: a Redis that answers but cannot record
// (a replica after a failover answers READONLY, a full one OOM) is down
// for the worker, which then claims nothing until Ping succeeds again.
package redisstore
