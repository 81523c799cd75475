package console_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/console"
	"github.com/heraldhq/herald/dlq"
	"github.com/heraldhq/herald/producer/job"
)

// scaleLetters is how many dead letters the scale test stores.
const scaleLetters = 100_000

// countsWant is what the counts page says of n letters: under the race
// detector the count may stop at its time limit, and say so.
func countsWant(n string) string {
	if raceEnabled {
		return "dead letters match"
	}
	return "<b>" + n + "</b> dead letters match"
}

// TestPageTimesAt100k stores 100,000 dead letters and times each page over
// HTTP, rendering included, logging the figures. The list pages must stay
// well under a second however deep they go (the bound here is loose for
// -race on a busy machine) and read little more than a page; the counts
// page reads the whole range once, and the overview asks the server.
func TestPageTimesAt100k(t *testing.T) {
	b := setup(t)
	start := time.Now()
	b.storeMany(t, scaleLetters, mixed)
	for i := range 200 {
		b.storeReceipt(t, job.WeChat, job.DefaultApp, fmt.Sprintf("r%d", i))
	}
	t.Logf("stored %d dead letters in %v", scaleLetters, time.Since(start).Round(time.Millisecond))
	if n := b.msgs(t, b.topo.DeadStream); n != scaleLetters {
		t.Fatalf("stream holds %d dead letters, want %d", n, scaleLetters)
	}

	// A seq in the middle to page from.
	mid := strconv.Itoa(scaleLetters / 2)
	pages := []struct {
		name, path string
		bound      time.Duration
		want       string
	}{
		{"newest page, all", "/dead?since=", 2 * time.Second, "<b id=\"match-count\">100,000</b>"},
		{"page from the middle", "/dead?since=&before=" + mid, 2 * time.Second, "showing 50,002–50,051"},
		{"oldest page", "/dead?since=&after=0", 2 * time.Second, "showing 99,951–100,000"},
		{"one reason", "/dead?since=&reason=expired", 2 * time.Second, "<b id=\"match-count\">9,091</b>"},
		{"one reason, middle", "/dead?since=&reason=expired&before=" + mid, 2 * time.Second, "match reason expired"},
		{"platform and two reasons", "/dead?since=&platform=alipay&reason=expired,user_refused", 2 * time.Second, "match"},
		{"app (1 in 17, beyond the subject)", "/dead?since=&app=shop", 3 * time.Second, "Showing 50 matching"},
		{"app and template, middle", "/dead?since=&app=shop&template=T3&before=" + mid, 3 * time.Second, "Showing 50 matching"},
		{"last hour", "/dead?since=1h", 2 * time.Second, "<b id=\"match-count\">100,000</b>"},
		{"one letter", "/dead/" + mid, time.Second, "Dead letter " + mid},
		{"counts, whole range", "/dead/counts?since=", 30 * time.Second, countsWant("100,000")},
		{"counts, one reason", "/dead/counts?since=&reason=expired", 30 * time.Second, countsWant("9,091")},
		{"overview", "/", 10 * time.Second, "dead-hour\">100,000"},
		{"job lookup", "/jobs?platform=wechat&app=default&id=r7", 15 * time.Second, "Delivered:"},
		{"replay dry run, one reason", "/replay?since=&reason=expired&preview=1", 30 * time.Second, "<b id=\"preview-count\">9,091</b>"},
	}
	var report strings.Builder
	fmt.Fprintf(&report, "page times with %d dead letters (first visit, then again):\n", scaleLetters)
	for _, p := range pages {
		var took [2]time.Duration
		for i := range took {
			start := time.Now()
			body := b.get(t, p.path, 200)
			took[i] = time.Since(start)
			mustContain(t, body, p.want)
		}
		fmt.Fprintf(&report, "  %-36s %9v %9v  %s\n", p.name,
			took[0].Round(100*time.Microsecond), took[1].Round(100*time.Microsecond), p.path)
		bound := p.bound
		if raceEnabled {
			bound *= 5
		}
		if took[0] > bound {
			t.Errorf("%s took %v, want under %v", p.name, took[0], bound)
		}
	}
	t.Log(report.String())

	// What a list page reads, whatever its depth.
	for _, before := range []uint64{0, scaleLetters / 2, 100} {
		p, err := console.ListPage(t.Context(), b.js, b.topo.DeadStream, dlq.Filter{Reasons: []string{job.ReasonExpired}}, before, 0, false, 50, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Entries) == 0 || p.Read > 200 || p.Probes > 12 {
			t.Errorf("page before %d: %d entries, %d letters read, %d counts asked; want a page from at most 200 read and 12 asked",
				before, len(p.Entries), p.Read, p.Probes)
		}
	}
}
