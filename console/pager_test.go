package console_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/heraldhq/herald/console"
	"github.com/heraldhq/herald/dlq"
	"github.com/heraldhq/herald/producer/job"
)

// mixed is the i-th of a varied set of dead letters: every reason and
// both platforms in turn, app shop for one in 17, template T0 to T6, no
// code for one in 5.
func mixed(i int) spec {
	s := spec{
		id: fmt.Sprintf("j%d", i), platform: []string{job.WeChat, job.Alipay}[i%2],
		reason: job.Reasons[i%len(job.Reasons)], app: job.DefaultApp, tpl: fmt.Sprintf("T%d", i%7), code: "43101",
	}
	if i%17 == 0 {
		s.app = "shop"
	}
	if i%5 == 0 {
		s.code = ""
	}
	return s
}

func seqsOf(entries []dlq.Entry) []uint64 {
	out := make([]uint64, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Seq)
	}
	return out
}

// TestPagesWalkEveryMatch walks the list from the newest page to the
// oldest and back with the pages' own cursors, for filters on the subject
// and beyond it, and checks that together the pages hold exactly what
// dlq.List returns, in order, with exact totals where the server counts.
func TestPagesWalkEveryMatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.storeMany(t, 600, mixed)
	mid := time.Now()
	b.storeMany(t, 600, func(i int) spec { return mixed(600 + i) })
	stream := b.topo.DeadStream

	tests := []struct {
		name    string
		filter  dlq.Filter
		maxRead uint64
	}{
		{name: "everything", filter: dlq.Filter{}},
		{name: "one reason", filter: dlq.Filter{Reasons: []string{job.ReasonExpired}}},
		{name: "two reasons and a platform", filter: dlq.Filter{Reasons: []string{job.ReasonExpired, job.ReasonUserRefused}, Platforms: []string{job.Alipay}}},
		{name: "since", filter: dlq.Filter{Since: mid}},
		{name: "until", filter: dlq.Filter{Until: mid, Platforms: []string{job.WeChat}}},
		{name: "until in the future", filter: dlq.Filter{Until: time.Now().Add(time.Hour), Reasons: []string{job.ReasonExpired}}},
		{name: "sequence window", filter: dlq.Filter{FromSeq: 100, ToSeq: 900}},
		{name: "app, beyond the subject", filter: dlq.Filter{Apps: []string{"shop"}}},
		{name: "code none and reason", filter: dlq.Filter{Codes: []string{dlq.NoCode}, Reasons: []string{job.ReasonUserRefused}}},
		{name: "template with a small read bound", filter: dlq.Filter{Templates: []string{"T3"}, Apps: []string{"shop"}}, maxRead: 150},
		{name: "nothing", filter: dlq.Filter{Reasons: []string{job.ReasonInvalidPage}, Apps: []string{"none"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all, err := dlq.List(t.Context(), b.js, stream, tt.filter, 0)
			if err != nil {
				t.Fatal(err)
			}
			want := seqsOf(all)
			const size = 37
			exact := len(tt.filter.Apps)+len(tt.filter.Templates)+len(tt.filter.Codes) == 0

			// Newest to oldest.
			var got []uint64
			var before uint64
			for pages := 0; ; pages++ {
				if pages > len(want)+5 {
					t.Fatal("paging does not end")
				}
				p, err := console.ListPage(t.Context(), b.js, stream, tt.filter, before, 0, false, size, tt.maxRead)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Entries) > size {
					t.Fatalf("page of %d, want at most %d", len(p.Entries), size)
				}
				if exact {
					if p.Total != int64(len(want)) {
						t.Fatalf("Total = %d, want %d", p.Total, len(want))
					}
					if p.Newer != int64(len(got)) && len(p.Entries) > 0 {
						t.Fatalf("Newer = %d, want the %d already seen", p.Newer, len(got))
					}
				} else if p.Total != -1 {
					t.Fatalf("Total = %d for a filter beyond the subject, want -1 (unknown)", p.Total)
				}
				if !p.Partial && len(p.Entries) < size && p.Before != 0 {
					t.Fatalf("a short page that is not partial offers older ones (before %d)", p.Before)
				}
				page := seqsOf(p.Entries)
				if !slices.IsSortedFunc(page, func(a, b uint64) int { return int(b) - int(a) }) {
					t.Fatalf("page not newest first: %v", page)
				}
				got = append(got, page...)
				if p.Before == 0 {
					break
				}
				before = p.Before
			}
			slices.Reverse(got)
			if !slices.Equal(got, want) {
				t.Fatalf("newest to oldest: got %d letters %v\nwant %d %v", len(got), got, len(want), want)
			}

			// Oldest to newest, from after=0.
			got = got[:0]
			var after uint64
			for pages := 0; ; pages++ {
				if pages > len(want)+5 {
					t.Fatal("paging does not end")
				}
				p, err := console.ListPage(t.Context(), b.js, stream, tt.filter, 0, after, true, size, tt.maxRead)
				if err != nil {
					t.Fatal(err)
				}
				page := seqsOf(p.Entries)
				slices.Reverse(page)
				got = append(got, page...)
				if p.After == 0 {
					break
				}
				after = p.After
			}
			if !slices.Equal(got, want) {
				t.Fatalf("oldest to newest: got %d letters %v\nwant %d %v", len(got), got, len(want), want)
			}
		})
	}
}

// TestPageReadsAreBounded checks what one page costs: a filter on the
// subject reads little more than the page, and one beyond it stops at its
// bound and says so.
func TestPageReadsAreBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.storeMany(t, 3000, mixed)
	stream := b.topo.DeadStream

	p, err := console.ListPage(t.Context(), b.js, stream, dlq.Filter{Reasons: []string{job.ReasonExpired}}, 0, 0, false, 20, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != 20 || p.Read > 60 {
		t.Fatalf("subject filter: %d entries, %d read; want 20 entries from at most 60 read", len(p.Entries), p.Read)
	}
	// App "nowhere" matches nothing: the page searches 500 letters, then
	// stops and offers to search on.
	p, err = console.ListPage(t.Context(), b.js, stream, dlq.Filter{Apps: []string{"nowhere"}}, 0, 0, false, 20, 500)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != 0 || !p.Partial || p.Before == 0 || p.Read < 500 || p.Read > 1500 {
		t.Fatalf("bounded search: %d entries, partial %v, before %d, read %d; want none, partial, a cursor, about 500 read",
			len(p.Entries), p.Partial, p.Before, p.Read)
	}
}
