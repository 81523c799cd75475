package bench

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// evenly returns a burst of accepts at t0, then one every interval, n in
// all after the burst, shuffled: the figures must not depend on order.
func evenly(t0 time.Time, burst, n int, interval time.Duration) []time.Time {
	var at []time.Time
	for range burst {
		at = append(at, t0)
	}
	for k := 1; k <= n; k++ {
		at = append(at, t0.Add(time.Duration(k)*interval))
	}
	rand.Shuffle(len(at), func(i, j int) { at[i], at[j] = at[j], at[i] })
	return at
}

func TestRateFiguresOnAnExactLimit(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	// 100/s with a burst of 5 for 12 s.
	f, err := rateFigures(evenly(t0, 5, 1200, 10*time.Millisecond), 100, 5, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// The steady window is [1 s, 12 s): accepts 100 to 1199.
	if f.WindowSeconds != 11 || f.SentInWindow != 1100 || f.SentPerSec != 100 || f.DeviationPct != 0 {
		t.Errorf("steady window %vs, %d sent, %v/s, %v%%: want 11s, 1100, 100/s, 0%%",
			f.WindowSeconds, f.SentInWindow, f.SentPerSec, f.DeviationPct)
	}
	// [0, 1 s) holds the burst and accepts 1 to 99.
	if f.Max1s != 104 || f.Max1sAtSeconds != 0 || f.Max1sAllowed != 105 || !f.WithinBurst || !f.WithinRate {
		t.Errorf("max 1s %d at %vs, allowed %v, within %v/%v: want 104 at 0s, 105, true/true",
			f.Max1s, f.Max1sAtSeconds, f.Max1sAllowed, f.WithinBurst, f.WithinRate)
	}
	// From 1 s on no window holds the burst: 100 accepts each.
	if f.Max1sSteady != 100 {
		t.Errorf("max 1s from 1s on %d, want 100", f.Max1sSteady)
	}
	// t0 is a whole second: the clock's first second is [0, 1 s) too.
	if f.Max1sAligned != 104 {
		t.Errorf("max in a clock second %d, want 104", f.Max1sAligned)
	}
}

func TestRateFiguresCatchALateBunchAndADrift(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := evenly(t0, 1, 1200, 10*time.Millisecond)
	// 30 sends that came late all at once, mid-run.
	for range 30 {
		at = append(at, t0.Add(5*time.Second+500*time.Microsecond))
	}
	f, err := rateFigures(at, 100, 1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if f.Max1s != 130 || f.Max1sSteady != 130 || f.WithinBurst {
		t.Errorf("max 1s %d (%d from 1s on), within %v: want 130 (130), false", f.Max1s, f.Max1sSteady, f.WithinBurst)
	}
	if got := f.Max1sAtSeconds; got < 4 || got > 5.01 {
		t.Errorf("max 1s window starts at %vs, want between 4s and 5s", got)
	}
	// The clock second [5 s, 6 s) holds the bunch and accepts 500 to 599.
	if f.Max1sAligned != 130 {
		t.Errorf("max in a clock second %d, want 130", f.Max1sAligned)
	}
	// 1130 sends in 11 s is 2.7% above the limit: within 5%.
	if !f.WithinRate || f.DeviationPct < 2.5 || f.DeviationPct > 3 {
		t.Errorf("deviation %v%%, within %v: want about +2.7%%, true", f.DeviationPct, f.WithinRate)
	}

	// 100/s against a limit of 90 is 11% over.
	f, err = rateFigures(evenly(t0, 1, 1200, 10*time.Millisecond), 90, 1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if f.WithinRate || f.DeviationPct < 11 || f.DeviationPct > 11.2 {
		t.Errorf("deviation %v%%, within %v: want about +11.1%%, false", f.DeviationPct, f.WithinRate)
	}
}

func TestRateFiguresRefuseAShortRun(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	// 8 s of sends leaves a 7 s steady window.
	_, err := rateFigures(evenly(t0, 1, 800, 10*time.Millisecond), 100, 1, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "7.0s, shorter than 10s") || !strings.Contains(err.Error(), "about 1201") {
		t.Fatalf("err = %v, want the window's length and a job count", err)
	}
	if _, err := rateFigures(nil, 100, 1, time.Second); err == nil {
		t.Fatal("no accepts: want an error")
	}
}

func TestOptionsSizeARateLimitRun(t *testing.T) {
	cmd := func(string) []string { return []string{"herald"} }
	o := Options{RateLimit: 500, WorkerCommand: cmd, BaselineCommand: func(BaselineOptions) []string { return nil }}
	o.setDefaults()
	if o.RateBurst != 1 || o.Window != 10*time.Second || o.Jobs != 1+500*13 {
		t.Fatalf("defaults: burst %d, window %v, jobs %d: want 1, 10s, 6501", o.RateBurst, o.Window, o.Jobs)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	o.Jobs = 5000
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "at least 5501") {
		t.Fatalf("5000 jobs at 500/s: err = %v, want at least 5501", err)
	}
	o.Jobs, o.DeadLetterRatio = 7000, 0.1
	if err := o.Validate(); err == nil {
		t.Fatal("rate limit with dead letters: want an error")
	}
}
