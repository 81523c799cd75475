// Package bench measures herald's worker against a bare JetStream consumer
// doing the same HTTP call, in one run on one machine: the logic behind
// `herald bench`.
//
// Run starts a standalone nats-server (file storage, temporary store) and a
// redis-server as child processes, serves the sandbox platform API in this
// process, then runs two phases against them: the bare baseline (a plain
// nats.go pull consumer, [RunBaseline], run as a child process of the same
// binary) and herald's worker (`herald worker` with a generated config, also
// a child). Each phase publishes its jobs first, then starts its consumer;
// throughput is jobs over the time from the first send call the sandbox sees
// to the moment the stream is observed empty. The children's CPU time and
// peak resident set come from /proc. Every process and directory Run starts
// is removed when it returns, also when its context is cancelled.
//
// With Options.RateLimit the run checks herald's rate limiting instead: one
// rate_limits rule for the bench's template, the herald phase only (a bare
// consumer has no limit to compare with), and [RateFigures] from the
// sandbox's accept times.
package bench
