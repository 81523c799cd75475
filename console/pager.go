package console

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/dlq"
)

// position is where a start (a sequence or a time) falls in a stream for
// a set of subjects, as the server reports it for a consumer created
// there.
type position struct {
	Seq     uint64 // the first sequence at or after the start
	Pending uint64 // messages on the subjects from Seq on
}

// probe asks the server where start falls in s for subjects, without
// reading a message: it creates an ephemeral consumer starting at seq (or
// at the time at, when seq is 0), reads the sequence and the pending count
// from the answer, and deletes it.
func probe(ctx context.Context, s jetstream.Stream, subjects []string, seq uint64, at time.Time) (position, error) {
	cfg := jetstream.ConsumerConfig{
		FilterSubjects:    subjects,
		AckPolicy:         jetstream.AckNonePolicy,
		HeadersOnly:       true,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: 30 * time.Second, // gone by itself should the delete fail
	}
	switch {
	case seq > 0:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = seq
	case !at.IsZero():
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &at
	default:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	c, err := s.CreateConsumer(ctx, cfg)
	if err != nil {
		return position{}, fmt.Errorf("count %s: %w", s.CachedInfo().Config.Name, err)
	}
	info := c.CachedInfo()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	_ = s.DeleteConsumer(dctx, info.Name)
	cancel()
	return position{Seq: info.Delivered.Stream + 1, Pending: info.NumPending}, nil
}

// listing is one page of dead letters, newest first, with the cursors to
// the pages around it.
type listing struct {
	Entries []dlq.Entry
	// Total counts the matching dead letters in the time range; -1 when
	// the filter names an app, template or code, which only reading tells.
	Total int64
	// Newer counts the matches newer than this page; -1 when unknown.
	Newer int64
	// After and Before are the cursors of the newer and older pages; 0
	// when there is none.
	After, Before uint64
	// Read counts the dead letters read to make the page.
	Read uint64
	// Partial is set when the read bound ran out before the page was
	// full; Before then continues the search.
	Partial bool
	// Probes counts the questions asked of the server.
	Probes int
}

// maxPageRead bounds the dead letters read for one page of a filter that
// the subjects cannot narrow (app, template, code).
const maxPageRead = 20_000

// lister reads pages of dead letters of one stream.
type lister struct {
	js      jetstream.JetStream
	stream  string
	maxRead uint64
}

// errEmpty is returned inside page for a stream without dead letters.
var errEmpty = errors.New("empty")

// bounds are the stream sequences of a time range for a filter's
// subjects, with the pending counts at both ends.
type bounds struct {
	s        jetstream.Stream
	subjects []string
	lo, hi   uint64 // first and last sequence of the range
	pendLo   uint64 // matching messages from lo on
	pendHi   uint64 // matching messages after hi
	probes   int
	known    map[uint64]uint64 // pending counts already asked, by sequence
}

func (b *bounds) pending(ctx context.Context, seq uint64) (uint64, error) {
	switch {
	case seq == b.lo:
		return b.pendLo, nil
	case seq == b.hi+1:
		return b.pendHi, nil
	}
	if n, ok := b.known[seq]; ok {
		return n, nil
	}
	b.probes++
	pos, err := probe(ctx, b.s, b.subjects, seq, time.Time{})
	if err != nil {
		return 0, err
	}
	b.known[seq] = pos.Pending
	return pos.Pending, nil
}

// count is the matching messages in [from, to].
func (b *bounds) count(ctx context.Context, from, to uint64) (uint64, error) {
	if from > to {
		return 0, nil
	}
	a, err := b.pending(ctx, from)
	if err != nil {
		return 0, err
	}
	z, err := b.pending(ctx, to+1)
	if err != nil {
		return 0, err
	}
	return a - min(a, z), nil
}

// rangeOf finds the sequences of f's time range.
func (l *lister) rangeOf(ctx context.Context, f dlq.Filter) (*bounds, error) {
	s, err := l.js.Stream(ctx, l.stream)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", l.stream, err)
	}
	st := s.CachedInfo().State
	if st.Msgs == 0 {
		return nil, errEmpty
	}
	b := &bounds{s: s, subjects: f.Subjects(), lo: st.FirstSeq, hi: st.LastSeq, known: map[uint64]uint64{}}
	at := func(seq uint64, t time.Time) (position, error) {
		b.probes++
		return probe(ctx, s, b.subjects, seq, t)
	}
	var lo, hi position
	if f.Since.IsZero() {
		lo, err = at(st.FirstSeq, time.Time{})
	} else {
		lo, err = at(0, f.Since)
	}
	if err != nil {
		return nil, err
	}
	if f.Until.IsZero() {
		hi, err = at(st.LastSeq+1, time.Time{})
	} else {
		hi, err = at(0, f.Until.Add(time.Nanosecond))
	}
	if err != nil {
		return nil, err
	}
	b.lo, b.pendLo = max(lo.Seq, st.FirstSeq), lo.Pending
	b.hi, b.pendHi = min(hi.Seq-1, st.LastSeq), hi.Pending
	if hi.Seq-1 > st.LastSeq {
		// Until lies past the last letter the stream held when its state
		// was read: those stored since are not in this range.
		end, err := at(st.LastSeq+1, time.Time{})
		if err != nil {
			return nil, err
		}
		b.pendHi = end.Pending
	}
	if f.FromSeq > b.lo {
		pend, err := b.pending(ctx, f.FromSeq)
		if err != nil {
			return nil, err
		}
		b.lo, b.pendLo = f.FromSeq, pend
	}
	if f.ToSeq > 0 && f.ToSeq < b.hi {
		pend, err := b.pending(ctx, f.ToSeq+1)
		if err != nil {
			return nil, err
		}
		b.hi, b.pendHi = f.ToSeq, pend
	}
	return b, nil
}

// page returns up to size dead letters matching f, newest first: with
// forward, the oldest ones after the sequence after; else the newest ones
// below the sequence before (when not 0).
func (l *lister) page(ctx context.Context, f dlq.Filter, before, after uint64, forward bool, size int) (listing, error) {
	out := listing{Total: -1, Newer: -1}
	b, err := l.rangeOf(ctx, f)
	if errors.Is(err, errEmpty) {
		out.Total, out.Newer = 0, 0
		return out, nil
	}
	if err != nil {
		return out, err
	}
	exact := subjectOnly(f)
	if exact {
		n, err := b.count(ctx, b.lo, b.hi)
		if err != nil {
			return out, err
		}
		out.Total = int64(n)
	}

	var entries []dlq.Entry // oldest first
	end := b.hi
	if forward {
		entries, err = l.forward(ctx, f, b, max(after+1, b.lo), size, &out)
	} else {
		if before > 0 {
			end = min(end, before-1)
		}
		entries, err = l.backward(ctx, f, b, end, size, &out)
	}
	if err != nil {
		out.Probes = b.probes
		return out, err
	}
	switch {
	case len(entries) == 0 && before > 0:
		out.After = before - 1
	case len(entries) == 0 && forward:
		if after >= b.lo {
			out.Before = after + 1
		}
	case exact && !forward:
		// The window was read up to end: every newer match lies above it,
		// and the backward read saw whether older ones exist.
		n, err := b.count(ctx, end+1, b.hi)
		if err != nil {
			return out, err
		}
		out.Newer = int64(n)
		if n > 0 {
			out.After = entries[len(entries)-1].Seq
		}
	case exact:
		newest, oldest := entries[len(entries)-1].Seq, entries[0].Seq
		n, err := b.count(ctx, newest+1, b.hi)
		if err != nil {
			return out, err
		}
		out.Newer = int64(n)
		if n > 0 {
			out.After = newest
		}
		if older, err := b.count(ctx, b.lo, oldest-1); err != nil {
			return out, err
		} else if older > 0 {
			out.Before = oldest
		}
	default:
		// Without exact counts: newer ones exist when this page was
		// reached from them, or when the forward read saw one more.
		if before > 0 {
			out.After = entries[len(entries)-1].Seq
		}
		if forward && after >= b.lo {
			out.Before = entries[0].Seq
		}
	}
	out.Probes = b.probes
	slices.Reverse(entries)
	out.Entries = entries
	return out, nil
}

// forward reads the oldest size matches from seq from on.
func (l *lister) forward(ctx context.Context, f dlq.Filter, b *bounds, from uint64, size int, out *listing) ([]dlq.Entry, error) {
	if from > b.hi {
		return nil, nil
	}
	w := f
	w.FromSeq, w.ToSeq = from, b.hi
	var entries []dlq.Entry
	err := dlq.Scan(ctx, l.js, l.stream, w, func(e dlq.Entry) bool {
		if len(entries) == size {
			out.After = entries[len(entries)-1].Seq // one more exists
			return false
		}
		entries = append(entries, e)
		return true
	})
	if err != nil {
		return nil, err
	}
	if len(entries) > 0 {
		n, err := b.count(ctx, from, entries[len(entries)-1].Seq)
		if err != nil {
			return nil, err
		}
		out.Read = n
	}
	return entries, nil
}

// backward reads the newest size matches at or below seq end, in windows
// sized by the server's counts: each window is read forward, and the next
// one lies below it.
func (l *lister) backward(ctx context.Context, f dlq.Filter, b *bounds, end uint64, size int, out *listing) ([]dlq.Entry, error) {
	maxRead := l.maxRead
	if maxRead == 0 {
		maxRead = maxPageRead
	}
	want := uint64(size) + 1 // one more tells whether older ones exist
	var chunks [][]dlq.Entry // newest chunk first, each oldest first
	var found, read uint64
	selectivity := 1.0 // matches per message on the subjects, as seen so far
	for found < want && end >= b.lo && end > 0 {
		left, err := b.count(ctx, b.lo, end)
		if err != nil {
			return nil, err
		}
		if left == 0 {
			break
		}
		target := min(uint64(float64(want-found)/selectivity*1.25)+1, maxRead-min(read, maxRead-1))
		start, n, err := l.window(ctx, b, end, left, target)
		if err != nil {
			return nil, err
		}
		w := f
		w.FromSeq, w.ToSeq = start, end
		var chunk []dlq.Entry
		if err := dlq.Scan(ctx, l.js, l.stream, w, func(e dlq.Entry) bool {
			chunk = append(chunk, e)
			return true
		}); err != nil {
			return nil, err
		}
		chunks = append(chunks, chunk)
		found += uint64(len(chunk))
		read += n
		selectivity = max(float64(found)/float64(max(read, 1)), 1.0/float64(maxRead))
		end = start - 1
		if found < want && read >= maxRead && end >= b.lo {
			out.Partial = true
			break
		}
	}
	out.Read = read
	var entries []dlq.Entry
	for _, c := range slices.Backward(chunks) {
		entries = append(entries, c...)
	}
	if uint64(len(entries)) > uint64(size) {
		entries = entries[len(entries)-size:]
		out.Before = entries[0].Seq
	} else if out.Partial {
		out.Before = end + 1
	}
	return entries, nil
}

// window picks the start of a window ending at end that holds about
// target of the left messages on the subjects in [b.lo, end], assuming
// they are spread evenly and correcting with the server's counts; it
// returns the start and the messages the window holds.
func (l *lister) window(ctx context.Context, b *bounds, end, left, target uint64) (uint64, uint64, error) {
	if target >= left {
		return b.lo, left, nil
	}
	span := end - b.lo + 1
	start := end + 1 - max(1, uint64(float64(span)*float64(target)/float64(left)))
	for range 4 {
		n, err := b.count(ctx, start, end)
		if err != nil {
			return 0, 0, err
		}
		var width uint64
		switch {
		case n == 0:
			width = (end + 1 - start) * 4
		case n < target:
			width = uint64(float64(end+1-start) * float64(target) / float64(n) * 1.1)
		case n > 4*target:
			width = max(1, uint64(float64(end+1-start)*float64(target)/float64(n)))
		default:
			return start, n, nil
		}
		if width >= end+1-b.lo {
			return b.lo, left, nil
		}
		start = end + 1 - width
	}
	n, err := b.count(ctx, start, end)
	return start, n, err
}
