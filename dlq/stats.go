package dlq

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Counts is how many dead letters matched a filter, in all and by field.
// A dead letter without a code is counted under the code [NoCode].
type Counts struct {
	Total      int            `json:"total"`
	First      *time.Time     `json:"first,omitempty"` // oldest matching dead letter
	Last       *time.Time     `json:"last,omitempty"`  // newest matching dead letter
	ByReason   map[string]int `json:"by_reason"`
	ByPlatform map[string]int `json:"by_platform"`
	ByApp      map[string]int `json:"by_app"`
	ByTemplate map[string]int `json:"by_template"`
	ByCode     map[string]int `json:"by_code"`
	// Unreplayable counts the matches that hold no decodable job.
	Unreplayable int `json:"unreplayable"`
}

// NewCounts returns empty counts, for [Counts.Add].
func NewCounts() Counts {
	return Counts{
		ByReason: map[string]int{}, ByPlatform: map[string]int{}, ByApp: map[string]int{},
		ByTemplate: map[string]int{}, ByCode: map[string]int{},
	}
}

// Add counts e, as [Stats] does each match; c must come from [NewCounts].
func (c *Counts) Add(e Entry) {
	c.Total++
	if c.First == nil {
		t := e.Time
		c.First = &t
	}
	t := e.Time
	c.Last = &t
	l := e.Letter
	c.ByReason[l.Reason]++
	c.ByPlatform[l.Platform]++
	c.ByApp[l.App]++
	c.ByTemplate[l.TemplateID]++
	c.ByCode[codeKey(l.Code)]++
	if !e.Replayable() {
		c.Unreplayable++
	}
}

// Stats counts the dead letters in stream that match f; set f.Since and
// f.Until for a window. Like [List] it reads without consuming.
func Stats(ctx context.Context, js jetstream.JetStream, stream string, f Filter) (Counts, error) {
	c := NewCounts()
	err := scan(ctx, js, stream, f, func(e Entry) bool {
		c.Add(e)
		return true
	})
	return c, err
}

// Count is one key of a Counts map with its count.
type Count struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

// Sorted returns m's entries by count, highest first, then by key.
func Sorted(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, n := range m {
		out = append(out, Count{Key: k, Count: n})
	}
	slices.SortFunc(out, func(a, b Count) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return out
}
