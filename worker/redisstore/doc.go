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
// Keys (with the configured prefix, "herald:" by default):
//
//	<prefix>job:<platform>:<app>:<id>   hash: s (lease|idle|sent), o (owner),
//	                                    l (lease end, µs), a (attempts),
//	                                    f (first claim, µs), x (owner whose
//	                                    failure was counted last); once sent also
//	                                    q (stream sequence), m (msgid),
//	                                    n (attempts it took), t (sent at, µs)
//	                                    (o and l stay: state s is read first)
//	<prefix>rate:<platform>:<app>:<template>   GCRA theoretical arrival time, µs
//	<prefix>health:<random>             written by Ping, one per Store; expires
//	                                    30 s after the last Ping
//
// A claim sets the job key's expiry to the dedup TTL after the lease ends;
// the sent marker leaves it as it is, so a delivered job is remembered for
// at least the TTL after its delivery.
//
// Ping writes rather than reads: a Redis that answers but cannot record
// (a replica after a failover answers READONLY, a full one OOM) is down
// for the worker, which then claims nothing until Ping succeeds again.
package redisstore
