// Package redisstore keeps the state herald's replicas share in Redis: job
// dedup leases, "sent" markers and attempt counts, GCRA rate-limit cells, and
// the WeChat access tokens.
//
// Every job operation is one Lua script run with EVALSHA, so it is atomic and
// uses Redis's own clock (TIME) rather than the replicas'. Operations from
// concurrent jobs are pipelined: callers block while a small set of flushers
// send whatever has queued up as one pipeline. Under load a pipeline carries
// many jobs; when idle it carries one, so latency stays at one round trip.
//
// Keys (with the configured prefix, "herald:" by default):
//
//	<prefix>job:<platform>:<app>:<id>   hash: s (lease|idle|sent), o (owner),
//	                                    l (lease end, µs), a (attempts),
//	                                    f (first claim, µs)
//	<prefix>rate:<platform>:<app>:<template>   GCRA theoretical arrival time, µs
package redisstore
