// Package retry turns a failed send into a decision. Providers wrap their
// errors with the constructors here ([Permanent], [After], [Limited],
// [Throttled], [Paused]); the worker calls [Decide] and never inspects
// platform codes itself. A plain error means "transient: retry with backoff".
package retry

import (
	"errors"
	"time"
)

// Action is what the worker does with a job after a failed send.
type Action int

const (
	// Retry redelivers the job after a backoff and spends an attempt.
	Retry Action = iota
	// DeadLetter publishes the job to the dead-letter stream at once.
	DeadLetter
	// Throttle holds the job (and its app) for a while without spending an
	// attempt: the platform's quota is used up.
	Throttle
	// Pause holds the whole (platform, app) until a probe call succeeds:
	// the error concerns the app's credentials or permissions, not the job.
	Pause
)

func (a Action) String() string {
	switch a {
	case Retry:
		return "retry"
	case DeadLetter:
		return "dead_letter"
	case Throttle:
		return "throttle"
	case Pause:
		return "pause"
	}
	return "unknown"
}

// Detail is what a platform said about a failure, copied into dead letters.
type Detail struct {
	Code    string // the platform's error code (WeChat errcode, Alipay sub_code)
	Message string // the platform's message, unchanged
	Field   string // the offending template field, where the platform names one
}

// Detailer is implemented by errors that carry a platform's answer.
type Detailer interface {
	Detail() Detail
}

// Error is a failure with its decision attached.
type Error struct {
	Action Action
	// Delay is the least time to wait before the job is tried again (Retry),
	// or how long to hold the job or app (Throttle, Pause).
	Delay time.Duration
	// Reason is the dead-letter reason for DeadLetter, and for Retry errors
	// with a Limit, the reason used once the limit is reached.
	Reason string
	// Limit, for Retry, caps the attempts below worker.max_attempts.
	Limit int
	Err   error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Action.String()
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent marks err as final: the job is dead-lettered with reason.
func Permanent(reason string, err error) error {
	return &Error{Action: DeadLetter, Reason: reason, Err: err}
}

// After marks err as transient, to be retried no sooner than d.
func After(d time.Duration, err error) error {
	return &Error{Action: Retry, Delay: d, Err: err}
}

// Limited marks err as transient for at most n attempts, after which the
// job is dead-lettered with reason.
func Limited(n int, reason string, err error) error {
	return &Error{Action: Retry, Limit: n, Reason: reason, Err: err}
}

// Throttled holds the job and its app for d without spending an attempt.
func Throttled(d time.Duration, err error) error {
	return &Error{Action: Throttle, Delay: d, Err: err}
}

// Paused pauses the job's app for at least d, then probes it.
func Paused(d time.Duration, err error) error {
	return &Error{Action: Pause, Delay: d, Err: err}
}

// Alert marks err as one an operator should see at once: the worker logs
// it at error level whatever it decides. Use it for failures that point at
// a bug or a misconfiguration rather than at the job (a template that does
// not exist, an answer whose signature does not verify).
func Alert(err error) error { return &alertError{err} }

type alertError struct{ err error }

func (e *alertError) Error() string { return e.err.Error() }
func (e *alertError) Unwrap() error { return e.err }

// Decision is what [Decide] makes of an error.
type Decision struct {
	Action Action
	Delay  time.Duration
	Reason string
	Limit  int
	Detail Detail
	Alert  bool // log at error level; see [Alert]
}

// Decide classifies err. Errors made by this package's constructors carry
// their decision; any other error is transient.
func Decide(err error) Decision {
	var d Decision
	var e *Error
	if errors.As(err, &e) {
		d = Decision{Action: e.Action, Delay: e.Delay, Reason: e.Reason, Limit: e.Limit}
	}
	var dt Detailer
	if errors.As(err, &dt) {
		d.Detail = dt.Detail()
	}
	var a *alertError
	d.Alert = errors.As(err, &a)
	return d
}
