//go:build !unix

package receiver_test

import "time"

// processCPU is unknown here: the benchmark reports no CPU per push.
func processCPU() time.Duration { return 0 }
