package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/producer/job"
)

// Progress reports how far a [Replay] or [Purge] has come.
type Progress struct {
	Done  int // dead letters handled so far
	Total int // dead letters collected to handle
}

// DefaultSamples is how many entries a dry run returns by default.
const DefaultSamples = 10

// ReplayOptions configure [Replay].
type ReplayOptions struct {
	// Stream is the dead-letter stream; default [DefaultStream].
	Stream string
	// SendStream, when set, is the stream replays must be stored in (the
	// job stream, NOTIFY_SEND): a publish that lands elsewhere fails.
	SendStream string
	// Filter selects the dead letters to replay.
	Filter Filter
	// Limit replays at most this many dead letters, oldest first; 0 or
	// less: all that match.
	Limit int
	// Rate is the most jobs published per second; 0 or less: as fast as
	// JetStream acknowledges them.
	Rate float64
	// DryRun only counts and samples what would be replayed; it changes
	// nothing.
	DryRun bool
	// Keep leaves replayed dead letters in the stream. A rerun within the
	// job stream's duplicate window then publishes nothing new.
	Keep bool
	// Samples is how many entries a dry run returns; default
	// [DefaultSamples].
	Samples int
	// Confirm, when set, is called with the number of dead letters about
	// to be replayed before any is; returning false stops the replay with
	// [ErrNotConfirmed]. It is not called on a dry run or when nothing
	// matches.
	Confirm func(n int) bool
	// Progress, when set, is called after each dead letter is handled.
	Progress func(Progress)
}

// ReplayResult says what [Replay] did, or on a dry run would do.
type ReplayResult struct {
	DryRun bool `json:"dry_run"`
	// Matched counts the dead letters that matched the filter and were
	// collected: Replayable plus Skipped.
	Matched int `json:"matched"`
	// Replayable counts the collected dead letters holding a job.
	Replayable int `json:"replayable"`
	// Skipped counts matching dead letters that cannot be replayed: their
	// job could not be decoded (raw) or names no known platform.
	Skipped int `json:"skipped"`
	// Replayed counts jobs published and acknowledged as new.
	Replayed int `json:"replayed"`
	// Duplicates counts jobs JetStream acknowledged as duplicates: this
	// dead letter was already replayed within the duplicate window (a rerun
	// after an interruption, or after a replay with Keep).
	Duplicates int `json:"duplicates"`
	// Deleted counts dead letters removed after their replay.
	Deleted int `json:"deleted"`
	// Gone counts collected dead letters that were already removed when
	// their turn came (by another replay or purge, or by age).
	Gone int `json:"gone"`
	// ByReason counts the replayable dead letters by reason.
	ByReason map[string]int `json:"by_reason"`
	// Samples are the first replayable entries, on a dry run.
	Samples []Entry `json:"samples,omitempty"`
}

// Replay republishes the jobs of the dead letters matching opts.Filter to
// notify.send.<platform>, oldest first. Each replay carries the header
// Herald-Replays (the dead letter's replays plus one) and the Nats-Msg-Id
// replay:<dead stream>:<dead seq>; the dead letter is deleted only once
// JetStream acknowledged the replay, unless opts.Keep. Dead letters without
// a decodable job are skipped and counted.
//
// Replay first collects the sequence numbers to replay, then replays them
// one by one; on an error or a cancelled ctx it returns what it did so far
// with the error, and running it again finishes the work.
func Replay(ctx context.Context, js jetstream.JetStream, opts ReplayOptions) (ReplayResult, error) {
	if opts.Stream == "" {
		opts.Stream = DefaultStream
	}
	if opts.Samples <= 0 {
		opts.Samples = DefaultSamples
	}
	res := ReplayResult{DryRun: opts.DryRun, ByReason: map[string]int{}}
	var seqs []uint64
	err := scan(ctx, js, opts.Stream, opts.Filter, func(e Entry) bool {
		res.Matched++
		if !e.Replayable() {
			res.Skipped++
			return true
		}
		seqs = append(seqs, e.Seq)
		res.ByReason[e.Letter.Reason]++
		if opts.DryRun && len(res.Samples) < opts.Samples {
			res.Samples = append(res.Samples, e)
		}
		return opts.Limit <= 0 || len(seqs) < opts.Limit
	})
	res.Replayable = len(seqs)
	if err != nil {
		return res, fmt.Errorf("collect dead letters: %w", err)
	}
	if opts.DryRun || len(seqs) == 0 {
		return res, nil
	}
	if opts.Confirm != nil && !opts.Confirm(len(seqs)) {
		return res, ErrNotConfirmed
	}

	s, err := js.Stream(ctx, opts.Stream)
	if err != nil {
		return res, fmt.Errorf("dead-letter stream %s: %w", opts.Stream, err)
	}
	var pubOpts []jetstream.PublishOpt
	if opts.SendStream != "" {
		pubOpts = append(pubOpts, jetstream.WithExpectStream(opts.SendStream))
	}
	var tick <-chan time.Time
	if opts.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / opts.Rate))
		defer t.Stop()
		tick = t.C
	}
	for i, seq := range seqs {
		if tick != nil && i > 0 {
			select {
			case <-tick:
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if err := replayOne(ctx, js, s, seq, opts, pubOpts, &res); err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			return res, err
		}
		if opts.Progress != nil {
			opts.Progress(Progress{Done: i + 1, Total: len(seqs)})
		}
	}
	return res, nil
}

// replayOne replays the dead letter at seq and, unless opts.Keep, deletes
// it once the replay is acknowledged.
func replayOne(ctx context.Context, js jetstream.JetStream, s jetstream.Stream, seq uint64, opts ReplayOptions, pubOpts []jetstream.PublishOpt, res *ReplayResult) error {
	m, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		res.Gone++
		return nil
	}
	if err != nil {
		return fmt.Errorf("get %s sequence %d: %w", opts.Stream, seq, err)
	}
	e := entryOf(m.Subject, m.Sequence, m.Time, m.Header, m.Data)
	if !e.Replayable() {
		res.Skipped++
		return nil
	}
	msg := nats.NewMsg(job.SendSubject(replayPlatform(e.Letter)))
	msg.Data = e.Letter.Job
	msg.Header.Set(job.HeaderMsgID, ReplayMsgID(opts.Stream, seq))
	msg.Header.Set(job.HeaderReplays, strconv.Itoa(e.Letter.Replays+1))
	ack, err := js.PublishMsg(ctx, msg, pubOpts...)
	if err != nil {
		return fmt.Errorf("replay %s sequence %d (job %s): %w", opts.Stream, seq, e.Letter.ID, err)
	}
	if ack.Duplicate {
		res.Duplicates++
	} else {
		res.Replayed++
	}
	if opts.Keep {
		return nil
	}
	// The replay is stored: delete its dead letter even if ctx was
	// cancelled meanwhile, so an interruption does not split the pair.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
	defer cancel()
	gone, err := deleteSeq(dctx, s, seq)
	if err != nil {
		return fmt.Errorf("delete replayed %s sequence %d: %w", opts.Stream, seq, err)
	}
	if !gone {
		res.Deleted++
	}
	return nil
}

// deleteTimeout bounds the delete that follows an acknowledged replay.
const deleteTimeout = 10 * time.Second

// ReplayMsgID is the Nats-Msg-Id of the replay of the dead letter at seq in
// stream.
func ReplayMsgID(stream string, seq uint64) string {
	return "replay:" + stream + ":" + strconv.FormatUint(seq, 10)
}

// replayPlatform is the platform a dead letter's job is replayed to: its
// own, else its original subject's; "" when neither is known.
func replayPlatform(l job.DeadLetter) string {
	for _, p := range []string{l.Platform, job.PlatformOf(l.Source.Subject)} {
		if p == job.WeChat || p == job.Alipay {
			return p
		}
	}
	return ""
}

// deleteSeq deletes the message at seq, reporting gone when it had already
// been removed.
func deleteSeq(ctx context.Context, s jetstream.Stream, seq uint64) (gone bool, err error) {
	err = s.DeleteMsg(ctx, seq)
	if err == nil {
		return false, nil
	}
	if _, gerr := s.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
		return true, nil
	}
	return false, err
}
