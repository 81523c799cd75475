package dlq

import "errors"

var (
	// ErrInvalidFilter is wrapped by the errors of [Filter.Validate].
	ErrInvalidFilter = errors.New("invalid dead-letter filter")

	// ErrNotFound is returned by [Get] for a sequence that holds no dead
	// letter: it never did, or it was replayed, purged or aged out.
	ErrNotFound = errors.New("dead letter not found")

	// ErrNotConfirmed is returned by [Replay] and [Purge] when their confirm
	// hook declined; nothing was changed.
	ErrNotConfirmed = errors.New("not confirmed")
)
