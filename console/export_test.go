package console

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/dlq"
)

// Listing is a page of dead letters, for the tests of the pager.
type Listing = listing

// ListPage reads one page as the dead-letter list does, reading at most
// maxRead letters for a filter the subjects cannot narrow (0: the
// default).
func ListPage(ctx context.Context, js jetstream.JetStream, stream string, f dlq.Filter, before, after uint64, forward bool, size int, maxRead uint64) (Listing, error) {
	l := &lister{js: js, stream: stream, maxRead: maxRead}
	return l.page(ctx, f, before, after, forward, size)
}

// Visible is the escaping of producer text for display.
var Visible = visible

// ParseFilter reads a filter from a query as the pages do.
func ParseFilter(q map[string][]string) (dlq.Filter, error) {
	f, err := parseFilterForm(q)
	if err != nil {
		return dlq.Filter{}, err
	}
	return f.filter(nowForTests)
}

// nowForTests is the time relative filters count back from in ParseFilter.
var nowForTests = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
