package redisstore

import (
	"testing"
	"time"
)

func TestClockOffset(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	µs := func(t time.Time, skew time.Duration) int64 { return t.Add(skew).UnixMicro() }

	// Redis's clock runs 3 s ahead. A quick round trip pins the offset;
	// a slow one after it, whose reply took 200 ms, maps to its start.
	var c clockOffset
	skew := 3 * time.Second
	if got := c.ranAt(µs(at(1), skew), at(0), at(2)); got.Before(at(0)) || got.After(at(2)) {
		t.Errorf("quick round trip: ran at %v, want within it", got.Sub(base))
	}
	if got := c.ranAt(µs(at(100), skew), at(100), at(300)); got.Sub(at(100)).Abs() > time.Millisecond {
		t.Errorf("slow round trip: ran at %v, want about 100ms", got.Sub(base))
	}

	// Bounds aged out of the window no longer pin it: the slow round
	// trip alone gives its middle.
	later := at(int(offsetSeconds+1) * 1000)
	if got := c.ranAt(µs(later, skew), later, later.Add(200*time.Millisecond)); got.Sub(later) != 100*time.Millisecond {
		t.Errorf("after the window: ran at %v after the send, want 100ms", got.Sub(later))
	}

	// A stepped clock: bounds that no longer intersect start the estimate
	// again, and the answer stays within the round trip.
	stepped := later.Add(time.Second)
	got := c.ranAt(µs(stepped, skew+time.Minute), stepped, stepped.Add(10*time.Millisecond))
	if got.Before(stepped) || got.After(stepped.Add(10*time.Millisecond)) {
		t.Errorf("after a clock step: ran at %v after the send, want within the 10ms round trip", got.Sub(stepped))
	}
	if got := c.ranAt(µs(stepped.Add(500*time.Millisecond), skew+time.Minute), stepped.Add(500*time.Millisecond), stepped.Add(700*time.Millisecond)); got.Sub(stepped.Add(500*time.Millisecond)).Abs() > 10*time.Millisecond {
		t.Errorf("after a clock step: the next slow round trip ran at %v after its send, want about 0", got.Sub(stepped.Add(500*time.Millisecond)))
	}
}
