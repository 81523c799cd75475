package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/producer/job"
)

// DefaultStream is the dead-letter stream's default name.
const DefaultStream = "NOTIFY_DEAD"

// Entry is one dead letter as stored in the dead-letter stream.
type Entry struct {
	Seq     uint64         `json:"seq"`     // stream sequence
	Subject string         `json:"subject"` // notify.dead.<platform>.<reason>
	Time    time.Time      `json:"time"`    // when the stream stored it
	Letter  job.DeadLetter `json:"letter"`
	// Err is set when the message is not a dead letter herald can decode;
	// Letter then holds only what its subject and headers tell.
	Err string `json:"error,omitempty"`
}

// Replayable reports whether the entry holds a job that can be published
// again: a decoded job object for a known platform.
func (e Entry) Replayable() bool {
	return e.Err == "" && len(e.Letter.Job) > 0 && replayPlatform(e.Letter) != ""
}

// scanWait is how long a scan waits for the next message before it asks the
// server whether any are left; it only matters when dead letters vanish
// (replayed, purged or aged out) while they are being read.
const scanWait = 2 * time.Second

// List returns the dead letters in stream that match f, oldest first, at
// most limit of them (all when limit is 0 or less). It does not consume
// them: see the package documentation.
func List(ctx context.Context, js jetstream.JetStream, stream string, f Filter, limit int) ([]Entry, error) {
	var out []Entry
	err := scan(ctx, js, stream, f, func(e Entry) bool {
		out = append(out, e)
		return limit <= 0 || len(out) < limit
	})
	return out, err
}

// Get returns the dead letter at seq in stream, or an error wrapping
// [ErrNotFound].
func Get(ctx context.Context, js jetstream.JetStream, stream string, seq uint64) (Entry, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return Entry{}, fmt.Errorf("dead-letter stream %s: %w", stream, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Entry{}, fmt.Errorf("%s sequence %d: %w", stream, seq, ErrNotFound)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("get %s sequence %d: %w", stream, seq, err)
	}
	return entryOf(m.Subject, m.Sequence, m.Time, m.Header, m.Data), nil
}

// Scan calls visit with every dead letter in stream matching f, oldest
// first, until visit returns false. It reads through an ordered consumer
// narrowed by f's subjects and starting at f.FromSeq, else at f.Since, and
// stops at the last sequence the stream held when Scan began (or f.ToSeq),
// or at the first dead letter stored after f.Until. [List], [Stats],
// [Replay] and [Purge] read through it; it does not consume.
func Scan(ctx context.Context, js jetstream.JetStream, stream string, f Filter, visit func(Entry) bool) error {
	return scan(ctx, js, stream, f, visit)
}

func scan(ctx context.Context, js jetstream.JetStream, stream string, f Filter, visit func(Entry) bool) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("dead-letter stream %s: %w", stream, err)
	}
	state := s.CachedInfo().State
	if state.Msgs == 0 || (!f.Since.IsZero() && state.LastTime.Before(f.Since)) {
		return nil
	}
	last := state.LastSeq
	if f.ToSeq > 0 {
		last = min(last, f.ToSeq)
	}
	if f.FromSeq > last || last < state.FirstSeq {
		return nil
	}

	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    f.Subjects(),
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: time.Minute,
	}
	switch {
	case f.FromSeq > state.FirstSeq:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = f.FromSeq
	case !f.Since.IsZero():
		since := f.Since
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &since
	}
	c, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("browse %s: %w", stream, err)
	}
	it, err := c.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return fmt.Errorf("browse %s: %w", stream, err)
	}
	defer func() {
		it.Stop()
		// The cursor would expire by itself; deleting it keeps the stream's
		// consumer list clean for whoever looks next.
		if info := c.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = js.DeleteConsumer(dctx, stream, info.Name)
			cancel()
		}
	}()
	if info := c.CachedInfo(); info != nil && info.NumPending == 0 {
		return nil
	}

	for {
		wctx, cancel := context.WithTimeout(ctx, scanWait)
		msg, err := it.Next(jetstream.NextContext(wctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("browse %s: %w", stream, err)
			}
			info, err := c.Info(ctx)
			if err != nil {
				return fmt.Errorf("browse %s: %w", stream, err)
			}
			if info.NumPending == 0 {
				return nil
			}
			continue
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("browse %s: %w", stream, err)
		}
		seq := meta.Sequence.Stream
		if seq > last || (!f.Until.IsZero() && meta.Timestamp.After(f.Until)) {
			return nil
		}
		e := entryOf(msg.Subject(), seq, meta.Timestamp, msg.Headers(), msg.Data())
		if f.Match(e) && !visit(e) {
			return nil
		}
		if seq == last || meta.NumPending == 0 {
			return nil
		}
	}
}

// entryOf decodes a stored dead letter. A message that is not one keeps
// what its subject (notify.dead.<platform>.<reason>) and headers say, so it
// can still be listed, matched and purged.
func entryOf(subject string, seq uint64, t time.Time, h nats.Header, data []byte) Entry {
	e := Entry{Seq: seq, Subject: subject, Time: t.UTC()}
	if err := json.Unmarshal(data, &e.Letter); err != nil {
		e.Letter = job.DeadLetter{Code: h.Get(job.HeaderCode)}
		e.Err = "not a dead letter: " + err.Error()
	}
	if rest, ok := strings.CutPrefix(subject, job.DeadRoot+"."); ok {
		platform, reason, _ := strings.Cut(rest, ".")
		if e.Letter.Platform == "" {
			e.Letter.Platform = platform
		}
		if e.Letter.Reason == "" {
			e.Letter.Reason = reason
		}
	}
	return e
}
