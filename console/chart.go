package console

import (
	"fmt"
	"math"
	"time"

	"github.com/heraldhq/herald/producer/job"
)

// chart is a stacked bar chart, laid out in Go and drawn as inline SVG by
// templates/chart.html: every coordinate is a number, every label text
// that html/template escapes.
type chart struct {
	Title         string // the SVG's accessible name
	Width, Height float64
	Left, Top     float64 // the plot area's corner
	PlotW, PlotH  float64
	Bars          []bar
	YTicks        []tick
	XTicks        []tick
	Legend        []legendItem
	Total         int
}

type bar struct {
	X, W  float64
	Title string // the bucket's time and counts, shown on hover
	Segs  []seg
}

type seg struct {
	Y, H  float64
	Color string
}

type tick struct {
	X, Y  float64
	Label string
}

type legendItem struct {
	Color, Label string
	Count        int
}

// series is one stacked quantity of a chart.
type series struct {
	Name, Color string
	Values      []int // one per bucket
}

// Chart geometry, in SVG user units.
const (
	chartWidth  = 960
	chartHeight = 260
	chartLeft   = 48
	chartRight  = 12
	chartTop    = 12
	chartBottom = 28
)

// stackedChart lays out buckets starting at starts[i], each step long,
// with the series stacked in order. A series with no count is left out
// of the legend.
func stackedChart(title string, starts []time.Time, step time.Duration, list []series) chart {
	c := chart{
		Title: title, Width: chartWidth, Height: chartHeight, Left: chartLeft, Top: chartTop,
		PlotW: chartWidth - chartLeft - chartRight, PlotH: chartHeight - chartTop - chartBottom,
	}
	n := len(starts)
	totals := make([]int, n)
	for _, s := range list {
		sum := 0
		for i, v := range s.Values {
			totals[i] += v
			sum += v
		}
		c.Total += sum
		if sum > 0 {
			c.Legend = append(c.Legend, legendItem{Color: s.Color, Label: visible(s.Name), Count: sum})
		}
	}
	top := niceMax(maxOf(totals))
	for _, v := range []int{0, top / 2, top} {
		y := c.Top + c.PlotH - float64(v)/float64(top)*c.PlotH
		c.YTicks = append(c.YTicks, tick{X: c.Left - 6, Y: y, Label: formatInt(v)})
	}
	if n == 0 {
		return c
	}
	slot := c.PlotW / float64(n)
	gap := math.Min(2, slot*0.2)
	labelEvery := max(1, n/8)
	for i, start := range starts {
		b := bar{X: c.Left + float64(i)*slot + gap/2, W: slot - gap}
		y := c.Top + c.PlotH
		title := start.UTC().Format("2006-01-02 15:04Z")
		for _, s := range list {
			v := s.Values[i]
			if v == 0 {
				continue
			}
			h := float64(v) / float64(top) * c.PlotH
			y -= h
			b.Segs = append(b.Segs, seg{Y: y, H: h, Color: s.Color})
			title += fmt.Sprintf("\n%s: %s", visible(s.Name), formatInt(v))
		}
		if totals[i] == 0 {
			title += "\nnone"
		}
		b.Title = title
		c.Bars = append(c.Bars, b)
		if i%labelEvery == 0 {
			c.XTicks = append(c.XTicks, tick{X: b.X, Y: c.Top + c.PlotH + 18, Label: bucketLabel(start, step)})
		}
	}
	return c
}

func maxOf(v []int) int {
	m := 0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// niceMax rounds m up to 2, 4, 6, 8 or 10 times a power of ten, so that
// the middle tick is a whole number too.
func niceMax(m int) int {
	if m <= 2 {
		return 2
	}
	p := 1
	for p*10 < m {
		p *= 10
	}
	for _, f := range []int{2, 4, 6, 8, 10} {
		if f*p >= m {
			return f * p
		}
	}
	return 10 * p
}

func bucketLabel(t time.Time, step time.Duration) string {
	t = t.UTC()
	switch {
	case step >= 24*time.Hour:
		return t.Format("Jan 2")
	case t.Hour() == 0 && t.Minute() == 0:
		return t.Format("Jan 2")
	default:
		return t.Format("15:04")
	}
}

// bucketSteps are the bucket lengths a chart may use, shortest first.
var bucketSteps = []time.Duration{
	time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour, 24 * time.Hour,
}

// maxBuckets bounds the bars of a chart.
const maxBuckets = 72

// buckets divides [from, to] into at most maxBuckets buckets of the
// shortest step that allows, aligned to the step in UTC.
func buckets(from, to time.Time) ([]time.Time, time.Duration) {
	if !to.After(from) {
		to = from.Add(time.Minute)
	}
	step := bucketSteps[len(bucketSteps)-1]
	for _, s := range bucketSteps {
		if to.Sub(from.Truncate(s))/s < maxBuckets {
			step = s
			break
		}
	}
	var starts []time.Time
	for t := from.UTC().Truncate(step); !t.After(to) && len(starts) < 4*maxBuckets; t = t.Add(step) {
		starts = append(starts, t)
	}
	return starts, step
}

// bucketOf is the index of t's bucket, or -1 outside them.
func bucketOf(starts []time.Time, step time.Duration, t time.Time) int {
	if len(starts) == 0 || t.Before(starts[0]) {
		return -1
	}
	i := int(t.Sub(starts[0]) / step)
	if i >= len(starts) {
		return -1
	}
	return i
}

// reasonColors gives every reason a colour of its own, stable across
// pages; reasonColor falls back to grey for any other.
var reasonColors = func() map[string]string {
	palette := []string{
		"#d62728", "#ff7f0e", "#9467bd", "#1f77b4", "#8c564b", "#e377c2",
		"#7f7f7f", "#bcbd22", "#17becf", "#2ca02c", "#393b79",
	}
	m := map[string]string{}
	for i, r := range job.Reasons {
		m[r] = palette[i%len(palette)]
	}
	return m
}()

func reasonColor(reason string) string {
	if c, ok := reasonColors[reason]; ok {
		return c
	}
	return "#aaaaaa"
}

// Outcome colours of the overview.
const (
	colorDelivered = "#2ca02c"
	colorDead      = "#d62728"
)
