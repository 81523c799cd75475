package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// RateFigures judge herald's rate limit from the times the sandbox accepted
// the herald phase's sends. The design's target: over 10 s the sent rate
// stays within 5% of the limit across the replicas, and no second holds
// more than limit + burst sends.
type RateFigures struct {
	// LimitPerSec and Burst are the rate_limits rule the workers ran with.
	LimitPerSec float64 `json:"limit_per_sec"`
	Burst       int     `json:"burst"`
	// MinWindowSeconds is the shortest steady window the run accepts
	// (--window; the target's is 10).
	MinWindowSeconds float64 `json:"min_window_seconds"`
	// WindowSeconds is the steady window: from the first accepted send
	// + 1 s (leaving out the initial burst) to the last accepted send.
	WindowSeconds float64 `json:"window_seconds"`
	// SentInWindow are the sends accepted in [start, end) of that window,
	// and SentPerSec those over WindowSeconds.
	SentInWindow int     `json:"sent_in_window"`
	SentPerSec   float64 `json:"sent_per_sec"`
	// DeviationPct is (SentPerSec - LimitPerSec) / LimitPerSec in %.
	DeviationPct float64 `json:"deviation_pct"`
	// Max1s is the most sends accepted in any 1-second window of the whole
	// phase, initial burst included. The window slides: it is the largest
	// count in [t, t+1s) for t at every accepted send, so no 1-second
	// interval, aligned to anything or not, holds more.
	Max1s int `json:"max_1s_window"`
	// Max1sAtSeconds is when that window starts, in seconds after the
	// first accepted send.
	Max1sAtSeconds float64 `json:"max_1s_window_at_s"`
	// Max1sSteady is Max1s over the windows that start in the steady
	// window: it leaves out the start, when the replicas fill their slots
	// and the first sends go out late together.
	Max1sSteady int `json:"max_1s_window_steady"`
	// Max1sAligned is the most sends in one whole second of the clock
	// (as a platform counting per second would see them); never above
	// Max1s.
	Max1sAligned int `json:"max_1s_aligned"`
	// Max1sAllowed is LimitPerSec + Burst.
	Max1sAllowed float64 `json:"max_1s_allowed"`
	// WithinRate is |DeviationPct| <= 5; WithinBurst is Max1s <=
	// Max1sAllowed.
	WithinRate  bool `json:"within_5pct"`
	WithinBurst bool `json:"max_1s_within_limit_plus_burst"`
}

// steadyDelay is left out at the start of the steady window: the burst and
// the first moments of the workers filling their slots.
const steadyDelay = time.Second

// rateFigures computes the figures from the accept times (any order).
func rateFigures(at []time.Time, limit float64, burst int, minWindow time.Duration) (RateFigures, error) {
	f := RateFigures{LimitPerSec: limit, Burst: burst, MinWindowSeconds: minWindow.Seconds(),
		Max1sAllowed: limit + float64(burst)}
	if len(at) == 0 {
		return f, fmt.Errorf("no send accepted")
	}
	ts := make([]int64, len(at))
	for i, t := range at {
		ts[i] = t.UnixNano()
	}
	slices.Sort(ts)
	start, end := ts[0]+int64(steadyDelay), ts[len(ts)-1]
	f.WindowSeconds = float64(end-start) / 1e9
	if end-start < int64(minWindow) {
		return f, fmt.Errorf("the steady window (first send + %v to the last send) lasted %.1fs, shorter than %v: "+
			"run more jobs (about %d at %g/s)", steadyDelay, max(f.WindowSeconds, 0), minWindow,
			jobsForWindow(limit, burst, minWindow+time.Second), limit)
	}
	lo, _ := slices.BinarySearch(ts, start)
	hi, _ := slices.BinarySearch(ts, end)
	f.SentInWindow = hi - lo
	f.SentPerSec = float64(f.SentInWindow) / f.WindowSeconds
	f.DeviationPct = (f.SentPerSec - limit) / limit * 100
	for i, j := 0, 0; i < len(ts); i++ {
		for j < len(ts) && ts[j] < ts[i]+int64(time.Second) {
			j++
		}
		if j-i > f.Max1s {
			f.Max1s, f.Max1sAtSeconds = j-i, float64(ts[i]-ts[0])/1e9
		}
		if ts[i] >= start {
			f.Max1sSteady = max(f.Max1sSteady, j-i)
		}
	}
	perSecond := make(map[int64]int)
	for _, t := range ts {
		perSecond[t/int64(time.Second)]++
	}
	for _, n := range perSecond {
		f.Max1sAligned = max(f.Max1sAligned, n)
	}
	f.WithinRate = math.Abs(f.DeviationPct) <= 5
	f.WithinBurst = float64(f.Max1s) <= f.Max1sAllowed
	return f, nil
}

// jobsForWindow is how many jobs keep a limit of perSec with burst busy for
// the initial second plus a steady window of w: the burst goes at once,
// the rest at the limit.
func jobsForWindow(perSec float64, burst int, w time.Duration) int {
	return burst + int(math.Ceil(perSec*(steadyDelay+w).Seconds()))
}
