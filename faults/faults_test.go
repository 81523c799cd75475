package faults

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer"
)

// A worker SIGKILLed with jobs in flight loses none of them: the next
// replica delivers what the dead one had pulled once its leases expire.
// Only a job the platform accepted before the kill and whose sent marker
// was not yet written can go out twice, so duplicates stay within the
// jobs a replica's handlers hold (its call slots and half a pull batch:
// a job whose call has returned frees its slot before its marker is
// written).
func TestWorkerKilledMidFlightLosesNothing(t *testing.T) {
	t.Parallel()
	js := testenv.StartJetStream(t)
	r := newRig(t, js.URL, 1, 40*time.Millisecond)
	w1 := r.startWorker("w1")
	r.publish("kill", 1200)
	testenv.Eventually(t, 30*time.Second, "300 deliveries", func() bool { return r.accepted() >= 300 })

	atKill := r.accepted()
	inFlight := r.sendCalls() - atKill
	w1.signal(t, syscall.SIGKILL)
	killed := time.Now()
	w1.wait(t, 10*time.Second)

	r.startWorker("w2")
	testenv.Eventually(t, 30*time.Second, "deliveries after the restart", func() bool { return r.accepted() > atKill })
	resumed := time.Since(killed)
	r.awaitDrained(90 * time.Second)
	recovered := time.Since(killed)

	rep := r.outcomes()
	// A kill between the sent marker and the receipt is mended by the
	// replica that gets the message back: it publishes the receipt.
	rep.check(t, "SIGKILL mid-flight", 0)
	t.Logf("killed after %d accepted with %d calls in flight; sends resumed %v after the kill, queue drained after %v",
		atKill, inFlight, resumed.Round(time.Millisecond), recovered.Round(time.Millisecond))
	if held := heldPerReplica(); rep.Duplicates > held {
		t.Errorf("%d duplicate sends, more than the %d jobs a replica holds", rep.Duplicates, held)
	}
	if n := len(rep.Dead); n != 0 {
		t.Errorf("dead letters %v: a crash must not spend a job's attempts", rep.Dead)
	}
}

// SIGTERM under load: the worker finishes what it has in flight, hands back
// the rest, exits 0 within shutdown_grace; the next one delivers the rest,
// each job once.
func TestWorkerSIGTERMUnderLoad(t *testing.T) {
	t.Parallel()
	js := testenv.StartJetStream(t)
	r := newRig(t, js.URL, 1, 50*time.Millisecond)
	w1 := r.startWorker("w1")
	r.publish("term", 1000)
	testenv.Eventually(t, 30*time.Second, "200 deliveries", func() bool { return r.accepted() >= 200 })

	w1.signal(t, syscall.SIGTERM)
	start := time.Now()
	code := w1.wait(t, shutdownGrace+10*time.Second)
	took := time.Since(start)
	atStop := r.accepted()
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if took > shutdownGrace {
		t.Errorf("stopped in %v, shutdown_grace is %v", took, shutdownGrace)
	}
	if int(atStop) >= 1000 {
		t.Fatal("every job was delivered before the stop; the test proves nothing")
	}

	r.startWorker("w2")
	r.awaitDrained(60 * time.Second)
	rep := r.outcomes()
	rep.check(t, "SIGTERM under load", 0)
	t.Logf("exit code %d in %v with %d delivered; the next replica delivered the rest", code, took.Round(time.Millisecond), atStop)
	if rep.Duplicates != 0 {
		t.Errorf("%d duplicate sends after a graceful stop, want 0", rep.Duplicates)
	}
	if rep.Delivered != rep.Published {
		t.Errorf("%d of %d delivered", rep.Delivered, rep.Published)
	}
}

// A JetStream server restarted (same store) under load: workers reconnect
// and no job is lost.
func TestJetStreamRestartUnderLoad(t *testing.T) {
	t.Parallel()
	js := testenv.StartJetStream(t)
	r := newRig(t, js.URL, 1, 30*time.Millisecond)
	w := r.startWorker("w1")
	r.publish("jsr", 1200)
	testenv.Eventually(t, 30*time.Second, "300 deliveries", func() bool { return r.accepted() >= 300 })

	atRestart := r.accepted()
	start := time.Now()
	js.Restart(t)
	down := time.Since(start)
	testenv.Eventually(t, 30*time.Second, "deliveries after the restart", func() bool { return r.accepted() > atRestart+int64(concurrency) })
	resumed := time.Since(start)
	r.awaitDrained(90 * time.Second)
	recovered := time.Since(start)
	if !w.running() {
		t.Fatal("the worker exited across the JetStream restart")
	}
	rep := r.outcomes()
	rep.check(t, "JetStream restart", 0)
	t.Logf("restarted after %d accepted, down %v; sends resumed after %v, queue drained after %v",
		atRestart, down.Round(time.Millisecond), resumed.Round(time.Millisecond), recovered.Round(time.Millisecond))
	if held := heldPerReplica(); rep.Duplicates > held {
		t.Errorf("%d duplicate sends, more than the %d jobs a replica holds", rep.Duplicates, held)
	}
}

// A 3-node JetStream cluster (streams with 3 replicas) loses its stream
// leader under load: the others elect a new one, workers reconnect to them,
// and no job is lost.
func TestJetStreamClusterLosesStreamLeader(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	r := newRig(t, c.urls(), 3, 30*time.Millisecond)
	w := r.startWorker("w1")
	r.publish("cl", 1200)
	testenv.Eventually(t, 30*time.Second, "300 deliveries", func() bool { return r.accepted() >= 300 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, producer.DefaultTopology.SendStream)
	if err != nil {
		t.Fatal(err)
	}
	info := s.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream cluster info %+v, want a leader and 2 replicas", info.Cluster)
	}
	leader := info.Cluster.Leader
	atLoss := r.accepted()
	start := time.Now()
	c.shutdown(leader)
	testenv.Eventually(t, 60*time.Second, "deliveries after the leader loss", func() bool { return r.accepted() > atLoss+int64(concurrency) })
	resumed := time.Since(start)
	r.awaitDrained(90 * time.Second)
	recovered := time.Since(start)
	if !w.running() {
		t.Fatal("the worker exited when the stream leader went away")
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err = r.js.Stream(ctx, producer.DefaultTopology.SendStream)
	if err != nil {
		t.Fatal(err)
	}
	rep := r.outcomes()
	rep.check(t, "stream leader lost", 0)
	t.Logf("shut down stream leader %s after %d accepted; new leader %s; sends resumed after %v, queue drained after %v",
		leader, atLoss, s.CachedInfo().Cluster.Leader, resumed.Round(time.Millisecond), recovered.Round(time.Millisecond))
	if held := heldPerReplica(); rep.Duplicates > held {
		t.Errorf("%d duplicate sends, more than the %d jobs a replica holds", rep.Duplicates, held)
	}
}

// Redis gone for 10 seconds under load: nothing is sent without a claim,
// /readyz answers 503 meanwhile and 200 after, and the same process
// delivers everything once Redis is back.
func TestRedisOutageUnderLoad(t *testing.T) {
	t.Parallel()
	const outage = 10 * time.Second
	js := testenv.StartJetStream(t)
	r := newRig(t, js.URL, 1, 30*time.Millisecond)
	w := r.startWorker("w1")
	r.publish("redis", 1500)
	testenv.Eventually(t, 30*time.Second, "200 deliveries", func() bool { return r.accepted() >= 200 })

	r.redis.Stop()
	stopped := time.Now()
	atStop := r.sendCalls()
	testenv.Eventually(t, 10*time.Second, "/readyz 503", func() bool { return w.status("/readyz") == 503 })
	notReady := time.Since(stopped)
	atNotReady := r.sendCalls()
	// For the rest of the outage: still not ready, and no send starts. A job
	// admitted before Redis went away has a claim and may finish its call;
	// that takes at most the sandbox's latency, long over by the time the
	// settle period ends.
	const settle = 2 * time.Second
	var afterSettle int64 = -1
	outageEnd := stopped.Add(outage)
	tick := time.NewTicker(100 * time.Millisecond)
	for now := range tick.C {
		if now.After(outageEnd) {
			break
		}
		if afterSettle < 0 && now.Sub(stopped) > settle {
			afterSettle = r.sendCalls()
		}
		if s := w.status("/readyz"); s != 503 {
			t.Errorf("/readyz answered %d %v into the Redis outage, want 503", s, now.Sub(stopped).Round(time.Millisecond))
		}
	}
	tick.Stop()
	atEnd := r.sendCalls()

	r.redis.Start(t)
	started := time.Now()
	testenv.Eventually(t, 20*time.Second, "/readyz 200", func() bool { return w.status("/readyz") == 200 })
	ready := time.Since(started)
	r.awaitDrained(90 * time.Second)
	recovered := time.Since(started)
	if !w.running() {
		t.Fatal("the worker exited during the Redis outage")
	}

	rep := r.outcomes()
	rep.check(t, "Redis outage", 0)
	t.Logf("send calls during the outage: %d in all (%d before /readyz said 503 after %v, %d after the first %v); ready %v after Redis returned, drained after %v",
		atEnd-atStop, atNotReady-atStop, notReady.Round(time.Millisecond), atEnd-afterSettle, settle,
		ready.Round(time.Millisecond), recovered.Round(time.Millisecond))
	if atEnd-atStop > concurrency {
		t.Errorf("%d send calls during the outage, more than the %d in flight when it began", atEnd-atStop, concurrency)
	}
	if atEnd != afterSettle {
		t.Errorf("%d send calls started more than %v into the Redis outage: sent without a claim", atEnd-afterSettle, settle)
	}
	if rep.Delivered != rep.Published {
		t.Errorf("%d of %d delivered", rep.Delivered, rep.Published)
	}
	if held := heldPerReplica(); rep.Duplicates > held {
		t.Errorf("%d duplicate sends, more than the %d jobs a replica holds", rep.Duplicates, held)
	}
}

// The platform failing every call: the breaker opens after a few calls
// instead of spending every job's attempts, no job is dead-lettered as
// retries_exhausted, and jobs flow again once the platform recovers.
func TestPlatformOutageTripsTheBreaker(t *testing.T) {
	t.Parallel()
	const outage = 8 * time.Second
	const jobs = 400
	js := testenv.StartJetStream(t)
	r := newRig(t, js.URL, 1, 20*time.Millisecond)
	w := r.startWorker("w1")
	r.publish("warm", 20)
	testenv.Eventually(t, 10*time.Second, "warm-up deliveries", func() bool { return r.accepted() == 20 })

	r.sandbox.SetOutage("wechat", outage)
	began := time.Now()
	atOutage := r.sendCalls()
	r.publish("brk", jobs)
	testenv.Eventually(t, outage, "herald_app_paused 1", func() bool {
		return strings.Contains(w.metrics(), `herald_app_paused{app="default",platform="wechat"} 1`)
	})
	paused := time.Since(began)
	testenv.Eventually(t, outage+time.Second, "the outage over", func() bool { return time.Since(began) > outage })
	during := r.sendCalls() - atOutage
	testenv.Eventually(t, 90*time.Second, "deliveries after the outage", func() bool { return r.accepted() > 20 })
	resumed := time.Since(began.Add(outage))
	r.awaitDrained(90 * time.Second)
	recovered := time.Since(began.Add(outage))

	rep := r.outcomes()
	rep.check(t, "platform outage", 0)
	t.Logf("send calls during the %v outage: %d for %d jobs (budget %d); breaker open after %v; sends resumed %v after the outage, drained after %v",
		outage, during, jobs, jobs*maxAttempts, paused.Round(time.Millisecond), resumed.Round(time.Millisecond), recovered.Round(time.Millisecond))
	if during > 3*concurrency {
		t.Errorf("%d send calls during the outage: the breaker did not hold the jobs", during)
	}
	if n := rep.Dead["retries_exhausted"]; n > 0 {
		t.Errorf("%d jobs dead-lettered as retries_exhausted: the outage burnt their attempts", n)
	}
	if rep.Delivered != rep.Published {
		t.Errorf("%d of %d delivered", rep.Delivered, rep.Published)
	}
}
