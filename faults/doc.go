// Package faults proves herald's guarantees against real failures: worker
// processes killed or stopped mid-flight, a JetStream server restarted, a
// JetStream cluster losing its stream leader, Redis going away and the
// platform failing every call. Each test runs `herald worker` as a child
// process (built once in TestMain) against a JetStream server, a
// redis-server and an in-test sandbox, all on loopback, and counts what
// happened to every job it published: delivered (a receipt in
// NOTIFY_EVENTS), dead-lettered (NOTIFY_DEAD), or lost.
//
// The package holds tests only; they run with the rest of the suite.
package faults
