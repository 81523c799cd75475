package bench

import (
	"testing"
	"time"
)

func TestGapsCountOnlyPausesLongerThanAStall(t *testing.T) {
	t0 := time.Unix(1000, 0)
	t1 := t0.Add(100 * time.Millisecond)
	t2 := t1.Add(StallGap)                             // exactly StallGap after t1: not a stall
	at := []time.Time{t2.Add(time.Second), t0, t2, t1} // out of order, as sends are recorded
	stalled, longest := gaps(at)
	if stalled != time.Second {
		t.Errorf("stalled %v, want 1s (the one pause above %v)", stalled, StallGap)
	}
	if longest != time.Second {
		t.Errorf("longest gap %v, want 1s", longest)
	}
	if stalled, longest := gaps(nil); stalled != 0 || longest != 0 {
		t.Errorf("no sends: stalled %v, longest %v, want 0, 0", stalled, longest)
	}
}
