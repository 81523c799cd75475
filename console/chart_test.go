package console

import (
	"testing"
	"time"
)

func TestNiceMax(t *testing.T) {
	for give, want := range map[int]int{0: 2, 1: 2, 2: 2, 3: 4, 5: 6, 9: 10, 10: 10, 11: 20, 33: 40, 250: 400, 100_000: 100_000, 100_001: 200_000} {
		if got := niceMax(give); got != want {
			t.Errorf("niceMax(%d) = %d, want %d", give, got, want)
		}
	}
}

func TestBuckets(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 7, 30, 0, time.UTC)
	tests := []struct {
		span time.Duration
		step time.Duration
	}{
		{15 * time.Minute, time.Minute},
		{time.Hour, time.Minute},
		{6 * time.Hour, 15 * time.Minute},
		{24 * time.Hour, time.Hour},
		{7 * 24 * time.Hour, 3 * time.Hour},
		{14 * 24 * time.Hour, 6 * time.Hour},
		{60 * 24 * time.Hour, 24 * time.Hour},
	}
	for _, tt := range tests {
		starts, step := buckets(at.Add(-tt.span), at)
		if step != tt.step {
			t.Errorf("%v: step %v, want %v", tt.span, step, tt.step)
		}
		if len(starts) == 0 || len(starts) > maxBuckets || starts[0].After(at.Add(-tt.span)) || !starts[0].Equal(starts[0].Truncate(step)) {
			t.Errorf("%v: %d buckets from %v", tt.span, len(starts), starts[0])
		}
		if i := bucketOf(starts, step, at); i != len(starts)-1 {
			t.Errorf("%v: the end falls in bucket %d of %d", tt.span, i, len(starts))
		}
		if i := bucketOf(starts, step, at.Add(-tt.span-step)); i != -1 {
			t.Errorf("%v: a time before the range falls in bucket %d", tt.span, i)
		}
	}
}

func TestStackedChart(t *testing.T) {
	starts, step := buckets(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 10, 2, 0, 0, time.UTC))
	c := stackedChart("t", starts, step, []series{
		{Name: "a", Color: "#000", Values: []int{1, 0, 3}},
		{Name: "b", Color: "#fff", Values: []int{0, 0, 3}},
		{Name: "never", Color: "#f00", Values: []int{0, 0, 0}},
	})
	if c.Total != 7 || len(c.Bars) != 3 || len(c.Legend) != 2 {
		t.Fatalf("total %d, %d bars, %d legend entries; want 7, 3, 2", c.Total, len(c.Bars), len(c.Legend))
	}
	// The tallest bar (6) fills the plot up to the top tick (6).
	last := c.Bars[2]
	h := last.Segs[0].H + last.Segs[1].H
	if d := h - c.PlotH; d > 0.01 || d < -0.01 {
		t.Fatalf("tallest bar %.2f high, plot %.2f", h, c.PlotH)
	}
	if len(c.Bars[1].Segs) != 0 {
		t.Fatalf("an empty bucket has segments: %+v", c.Bars[1])
	}
}
