package retry

import (
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Policy is the backoff between attempts of one job.
type Policy struct {
	InitialInterval time.Duration
	MaxInterval     time.Duration
	Multiplier      float64
	Randomization   float64
}

// DefaultPolicy is used for zero fields: 1s doubling to 5m with 20% jitter.
var DefaultPolicy = Policy{
	InitialInterval: time.Second,
	MaxInterval:     5 * time.Minute,
	Multiplier:      2,
	Randomization:   0.2,
}

// Validate reports a policy that cannot produce sensible delays.
func (p Policy) Validate() error {
	var errs []error
	if p.InitialInterval <= 0 {
		errs = append(errs, errors.New("initial_interval must be positive"))
	}
	if p.MaxInterval < p.InitialInterval {
		errs = append(errs, errors.New("max_interval must not be below initial_interval"))
	}
	if p.Multiplier < 1 {
		errs = append(errs, errors.New("multiplier must be at least 1"))
	}
	if p.Randomization < 0 || p.Randomization >= 1 {
		errs = append(errs, errors.New("randomization must be in [0, 1)"))
	}
	return errors.Join(errs...)
}

// Backoff is the delay before the job's next attempt after its attempt-th
// failure (attempt counts from 1): exponential with jitter, capped at
// MaxInterval.
func (p Policy) Backoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.InitialInterval,
		RandomizationFactor: p.Randomization,
		Multiplier:          p.Multiplier,
		MaxInterval:         p.MaxInterval,
		MaxElapsedTime:      0,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	var d time.Duration
	for range attempt {
		d = b.NextBackOff()
	}
	return d
}
