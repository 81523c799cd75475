package httpclient

import (
	"context"
	"testing"
	"time"
)

func TestWithTimeoutKeepsASoonerDeadline(t *testing.T) {
	sooner, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ctx, stop := WithTimeout(sooner, time.Minute)
	defer stop()
	if ctx != sooner {
		t.Error("a context that ends within the timeout was wrapped again")
	}

	ctx, stop = WithTimeout(context.Background(), time.Second)
	defer stop()
	d, ok := ctx.Deadline()
	if !ok || time.Until(d) > time.Second {
		t.Errorf("no deadline within the timeout: %v, %v", d, ok)
	}

	later, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	ctx, stop = WithTimeout(later, time.Second)
	defer stop()
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > time.Second {
		t.Errorf("a later deadline was kept: %v, %v", d, ok)
	}
}
