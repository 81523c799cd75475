package worker

import (
	"testing"
	"time"
)

func TestGateBreakerOpensProbesAndCloses(t *testing.T) {
	g := newGate(3, 10*time.Second, 40*time.Second, 5*time.Second)
	now := time.Unix(1_700_000_000, 0)

	for i := range 2 {
		if opened, _ := g.failure(now); opened {
			t.Fatalf("failure %d opened the gate, threshold is 3", i+1)
		}
	}
	opened, hold := g.failure(now)
	if !opened || hold != 10*time.Second {
		t.Fatalf("third failure: opened %v hold %v, want open for 10s", opened, hold)
	}
	if ok, wait := g.allow(now.Add(time.Second)); ok || wait != 9*time.Second {
		t.Fatalf("allow during hold = %v, %v; want held for 9s", ok, wait)
	}
	// A failure from a call made before the gate opened does not extend it.
	if opened, _ := g.failure(now.Add(2 * time.Second)); opened {
		t.Fatal("an in-flight failure reopened the gate")
	}
	probeAt := now.Add(10 * time.Second)
	if ok, _ := g.allow(probeAt); !ok {
		t.Fatal("no probe let through after the hold")
	}
	if ok, wait := g.allow(probeAt); ok || wait != 5*time.Second {
		t.Fatalf("second job during the probe = %v, %v; want held while the probe runs", ok, wait)
	}
	// The probe fails: the hold doubles.
	if opened, hold := g.failure(probeAt.Add(time.Second)); !opened || hold != 20*time.Second {
		t.Fatalf("failed probe: opened %v hold %v, want reopened for 20s", opened, hold)
	}
	// The next probe succeeds: the gate closes and the hold resets.
	next := probeAt.Add(21 * time.Second)
	if ok, _ := g.allow(next); !ok {
		t.Fatal("no probe after the doubled hold")
	}
	if !g.success() {
		t.Fatal("success did not report the gate was open")
	}
	if ok, _ := g.allow(next); !ok {
		t.Fatal("closed gate holds jobs")
	}
	for range 2 {
		g.failure(next)
	}
	if _, hold := g.failure(next); hold != 10*time.Second {
		t.Fatalf("hold after a close = %v, want it reset to 10s", hold)
	}
}

func TestGatePauseHoldsForAtLeastTheGivenTime(t *testing.T) {
	tests := []struct {
		name string
		give time.Duration
		want time.Duration
	}{
		{"quota until midnight", 3 * time.Hour, 3 * time.Hour},
		{"per-minute quota", time.Minute, time.Minute},
		{"pause without a time probes after the probe interval", 0, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGate(3, 10*time.Second, 40*time.Second, 5*time.Second)
			now := time.Unix(1_700_000_000, 0)
			if got := g.pause(now, tt.give, "quota"); got != tt.want {
				t.Fatalf("pause(%v) = %v, want %v", tt.give, got, tt.want)
			}
			if ok, wait := g.allow(now.Add(tt.want - time.Millisecond)); ok || wait != time.Millisecond {
				t.Fatalf("allow just before the end = %v, %v", ok, wait)
			}
			if ok, _ := g.allow(now.Add(tt.want)); !ok {
				t.Fatal("no probe at the end of the pause")
			}
		})
	}
}

func TestGatePauseNeverShortensAHold(t *testing.T) {
	g := newGate(3, 10*time.Second, 40*time.Second, 5*time.Second)
	now := time.Unix(1_700_000_000, 0)
	g.pause(now, time.Hour, "quota")
	g.pause(now, time.Minute, "quota")
	if ok, _ := g.allow(now.Add(30 * time.Minute)); ok {
		t.Fatal("a shorter pause cut a longer hold short")
	}
}
