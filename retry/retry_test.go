package retry

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

type detailErr struct{ d Detail }

func (e detailErr) Error() string  { return e.d.Message }
func (e detailErr) Detail() Detail { return e.d }

func TestDecide(t *testing.T) {
	api := detailErr{Detail{Code: "43101", Message: "user refuse to accept the msg"}}
	tests := []struct {
		name string
		give error
		want Decision
	}{
		{"plain error retries", errors.New("connection reset"), Decision{Action: Retry}},
		{"permanent keeps reason and detail", Permanent("user_refused", api),
			Decision{Action: DeadLetter, Reason: "user_refused", Detail: api.d}},
		{"wrapped permanent", fmt.Errorf("send: %w", Permanent("expired", errors.New("late"))),
			Decision{Action: DeadLetter, Reason: "expired"}},
		{"after", After(3*time.Second, errors.New("busy")), Decision{Action: Retry, Delay: 3 * time.Second}},
		{"limited", Limited(3, "platform_rejected", api),
			Decision{Action: Retry, Limit: 3, Reason: "platform_rejected", Detail: api.d}},
		{"throttled", Throttled(time.Minute, api), Decision{Action: Throttle, Delay: time.Minute, Detail: api.d}},
		{"paused", Paused(0, api), Decision{Action: Pause, Detail: api.d}},
		{"alert on a transient error", Alert(errors.New("bad signature")), Decision{Action: Retry, Alert: true}},
		{"alert around a permanent error", Alert(Permanent("invalid_template", api)),
			Decision{Action: DeadLetter, Reason: "invalid_template", Detail: api.d, Alert: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.give); got != tt.want {
				t.Errorf("Decide() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestErrorUnwraps(t *testing.T) {
	base := errors.New("base")
	if err := Permanent("x", base); !errors.Is(err, base) {
		t.Fatalf("errors.Is(%v, base) = false", err)
	}
}

func TestBackoffGrowsWithinJitterAndCap(t *testing.T) {
	p := Policy{InitialInterval: time.Second, MaxInterval: 10 * time.Second, Multiplier: 2, Randomization: 0.2}
	tests := []struct {
		give     int
		min, max time.Duration
	}{
		{1, 800 * time.Millisecond, 1200 * time.Millisecond},
		{2, 1600 * time.Millisecond, 2400 * time.Millisecond},
		{3, 3200 * time.Millisecond, 4800 * time.Millisecond},
		{10, 8 * time.Second, 12 * time.Second},
	}
	for _, tt := range tests {
		for range 50 {
			if got := p.Backoff(tt.give); got < tt.min || got > tt.max {
				t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", tt.give, got, tt.min, tt.max)
			}
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := DefaultPolicy.Validate(); err != nil {
		t.Fatalf("DefaultPolicy.Validate() = %v", err)
	}
	bad := Policy{InitialInterval: 0, MaxInterval: -1, Multiplier: 0.5, Randomization: 1}
	err := bad.Validate()
	for _, want := range []string{"initial_interval", "max_interval", "multiplier", "randomization"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
}
