package receiver

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/heraldhq/herald/producer/job"
)

// Platform verifies and decodes one platform's pushes.
type Platform interface {
	// Name is the platform: the <platform> token of the events' subjects
	// and the platform label of the metrics ("wechat").
	Name() string
	// Prefix is the path the apps' URLs hang under, starting and ending
	// with "/": app "default" is served at Prefix()+"default".
	Prefix() string
	// Apps lists the apps served, by name.
	Apps() []string
	// Reasons lists every Reason Open's refusals give, for the metrics.
	Reasons() []string
	// Open verifies and decodes one GET or POST request to app's URL, at
	// now. It checks what it can of the request before it reads the body
	// (with [ReadBody]). It returns a *[Refusal] for a request it refuses.
	Open(r *http.Request, app string, now time.Time) (Push, error)
}

// Kinds of push herald does not handle, the kind label of
// herald_receiver_ignored_total.
const (
	// IgnoredMessage is a message type other than an event.
	IgnoredMessage = "message"
	// IgnoredEvent is an event other than the subscription events.
	IgnoredEvent = "event"
)

// Push is what a platform made of one request.
type Push struct {
	// Events are to be stored before the answer. Open fills every field
	// but Platform, App and ReceivedAt, which the server sets.
	Events []job.SubscriptionEvent
	// Ignored is IgnoredMessage or IgnoredEvent for a push herald does not
	// handle (no Events), else "".
	Ignored string
	// Answer is the body of the 200 answer.
	Answer string
}

// Reasons every platform shares.
const (
	// ReasonTooLarge: the body is over Config.MaxBody.
	ReasonTooLarge = "too_large"
	// ReasonUnreadable: the body could not be read (the client went away
	// or was too slow).
	ReasonUnreadable = "unreadable"
)

// Refusal is a request a platform refuses.
type Refusal struct {
	// Status is the answer: http.StatusUnauthorized or
	// http.StatusBadRequest.
	Status int
	// Reason is a short label from the platform's Reasons (or this
	// package's): "signature", "malformed".
	Reason string
	Err    error
}

func (r *Refusal) Error() string { return fmt.Sprintf("%s (%d): %v", r.Reason, r.Status, r.Err) }

func (r *Refusal) Unwrap() error { return r.Err }

// ReadBody reads a request's body, which the server has bounded. A body
// over the limit is a [Refusal] with ReasonTooLarge, one that cannot be
// read one with ReasonUnreadable, both answered 400.
func ReadBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, &Refusal{Status: http.StatusBadRequest, Reason: ReasonTooLarge,
			Err: fmt.Errorf("body over %d bytes", tooLarge.Limit)}
	case err != nil:
		return nil, &Refusal{Status: http.StatusBadRequest, Reason: ReasonUnreadable, Err: fmt.Errorf("read body: %w", err)}
	}
	return body, nil
}
