package dlq

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// PurgeOption configures [Purge].
type PurgeOption func(*purgeHooks)

type purgeHooks struct {
	progress func(Progress)
	confirm  func(n int) bool
}

// PurgeProgress has Purge call fn after each dead letter it handles.
func PurgeProgress(fn func(Progress)) PurgeOption {
	return func(h *purgeHooks) { h.progress = fn }
}

// PurgeConfirm has Purge call fn with the number of dead letters about to
// be deleted, before any is; false stops it with [ErrNotConfirmed]. It is
// not called on a dry run or when nothing matches.
func PurgeConfirm(fn func(n int) bool) PurgeOption {
	return func(h *purgeHooks) { h.confirm = fn }
}

// PurgeResult says what [Purge] did, or on a dry run would do.
type PurgeResult struct {
	DryRun bool `json:"dry_run"`
	// Matched counts the dead letters that matched the filter.
	Matched int `json:"matched"`
	// Deleted counts the dead letters deleted.
	Deleted int `json:"deleted"`
	// Gone counts matches already removed when their turn came.
	Gone int `json:"gone"`
	// ByReason counts the matches by reason.
	ByReason map[string]int `json:"by_reason"`
}

// Purge deletes the dead letters in stream that match f; with dryRun it
// only counts them. Like [Replay] it collects the sequence numbers first,
// so an interrupted purge is finished by running it again.
func Purge(ctx context.Context, js jetstream.JetStream, stream string, f Filter, dryRun bool, opts ...PurgeOption) (PurgeResult, error) {
	var h purgeHooks
	for _, o := range opts {
		o(&h)
	}
	res := PurgeResult{DryRun: dryRun, ByReason: map[string]int{}}
	var seqs []uint64
	err := scan(ctx, js, stream, f, func(e Entry) bool {
		seqs = append(seqs, e.Seq)
		res.ByReason[e.Letter.Reason]++
		return true
	})
	res.Matched = len(seqs)
	if err != nil {
		return res, fmt.Errorf("collect dead letters: %w", err)
	}
	if dryRun || len(seqs) == 0 {
		return res, nil
	}
	if h.confirm != nil && !h.confirm(len(seqs)) {
		return res, ErrNotConfirmed
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return res, fmt.Errorf("dead-letter stream %s: %w", stream, err)
	}
	for i, seq := range seqs {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		gone, err := deleteSeq(ctx, s, seq)
		if err != nil {
			return res, fmt.Errorf("delete %s sequence %d: %w", stream, seq, err)
		}
		if gone {
			res.Gone++
		} else {
			res.Deleted++
		}
		if h.progress != nil {
			h.progress(Progress{Done: i + 1, Total: len(seqs)})
		}
	}
	return res, nil
}
