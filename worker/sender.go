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

// Route names one platform app.
type Route struct {
	Platform string
	App      string
}
