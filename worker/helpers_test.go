package worker_test

import (
	"time"

	"github.com/heraldhq/herald/retry"
)

func retryPolicy() retry.Policy {
	return retry.Policy{InitialInterval: 50 * time.Millisecond, MaxInterval: 200 * time.Millisecond, Multiplier: 2, Randomization: 0.2}
}
