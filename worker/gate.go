package worker

import (
	"sync"
	"time"
)

// gate holds back the jobs of one (platform, app). It is closed (jobs flow)
// until the app is paused (credentials, permissions), throttled (quota) or
// its breaker trips on repeated transient failures. Once the hold expires
// one call at a time is let through as a probe; a probe's success closes
// the gate, its failure opens it again for longer. Only a call can be the
// probe: a job settled without one (a duplicate, a subscription skip) must
// not take the probe's place, or the gate would wait out probeEvery with
// no answer to close it.
type gate struct {
	threshold   int           // consecutive transient failures that trip the breaker
	cooldown    time.Duration // first breaker hold; doubles up to maxCooldown
	maxCooldown time.Duration
	probeEvery  time.Duration // how long one probe has before another may go

	mu       sync.Mutex
	open     bool
	until    time.Time // open: no job before this
	probeEnd time.Time // half-open: the current probe's time
	failures int
	hold     time.Duration // the breaker's current hold
	cause    string        // why it is open, for logs and metrics
}

func newGate(threshold int, cooldown, maxCooldown, probeEvery time.Duration) *gate {
	return &gate{threshold: threshold, cooldown: cooldown, maxCooldown: maxCooldown, probeEvery: probeEvery}
}

// holding reports whether the gate holds every job now (open, its hold not
// yet over), and for how long. It is checked before a job costs the store
// anything; allow, at the call, picks the probe.
func (g *gate) holding(now time.Time) (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open && now.Before(g.until) {
		return g.until.Sub(now), true
	}
	return 0, false
}

// allow reports whether a call may go now; if not, how long to hold its
// job. In the half-open state the call it allows is the probe.
func (g *gate) allow(now time.Time) (bool, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open {
		return true, 0
	}
	if now.Before(g.until) {
		return false, g.until.Sub(now)
	}
	if now.Before(g.probeEnd) {
		return false, g.probeEnd.Sub(now)
	}
	g.probeEnd = now.Add(g.probeEvery)
	return true, 0
}

// success closes the gate. It reports whether the gate was open.
func (g *gate) success() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	was := g.open
	g.open, g.failures, g.hold, g.cause = false, 0, 0, ""
	return was
}

// failure records a transient failure. It reports whether this opened the
// gate, and until when.
func (g *gate) failure(now time.Time) (bool, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failures++
	probeFailed := g.open && !now.Before(g.until)
	if !probeFailed && (g.open || g.failures < g.threshold) {
		return false, 0
	}
	if g.hold == 0 {
		g.hold = g.cooldown
	} else {
		g.hold = min(2*g.hold, g.maxCooldown)
	}
	g.openFor(now, g.hold, "breaker")
	return true, g.hold
}

// pause opens the gate for at least d (the platform's quota or pause time),
// or for the probe interval when d is 0.
func (g *gate) pause(now time.Time, d time.Duration, cause string) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	d = max(d, g.probeEvery)
	g.openFor(now, d, cause)
	return d
}

func (g *gate) openFor(now time.Time, d time.Duration, cause string) {
	g.open = true
	if until := now.Add(d); until.After(g.until) {
		g.until = until
	}
	g.probeEnd = time.Time{}
	g.cause = cause
}

// gates holds one gate per route.
type gates struct {
	mk func() *gate
	mu sync.Mutex
	m  map[Route]*gate
}

func (gs *gates) get(r Route) *gate {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g, ok := gs.m[r]
	if !ok {
		g = gs.mk()
		gs.m[r] = g
	}
	return g
}
