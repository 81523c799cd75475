package worker

import (
	"context"

	"github.com/heraldhq/herald/producer/job"
)

// Sender delivers jobs to one platform app. Providers (providers/wechat,
// providers/alipay) implement it and express their decisions about failures
// with package retry.
type Sender interface {
	// Validate checks the job against the platform's rules without a call.
	// A rejection is a retry.Permanent error.
	Validate(j job.Job) error
	// Send calls the platform once (token refreshes aside).
	Send(ctx context.Context, j job.Job) (job.Result, error)
}

// Warmer is a Sender that can get ready for its first call, e.g. by
// getting an access token. The worker warms its senders before it pulls:
// the first jobs after a start do not all wait on one token fetch, and a
// wrong secret or an unreachable token endpoint shows in the log at start.
type Warmer interface {
	Warm(ctx context.Context) error
}

// Route names one platform app.
type Route struct {
	Platform string
	App      string
}
