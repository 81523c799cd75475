package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/config"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	tests := []struct {
		give string
		want time.Duration
	}{
		{give: "30s", want: 30 * time.Second},
		{give: "1h30m", want: 90 * time.Minute},
		{give: "0", want: 0},
		{give: "14d", want: 14 * day},
		{give: "0d", want: 0},
		{give: "1.5d", want: 36 * time.Hour},
		{give: "0.1d", want: 144 * time.Minute},
		{give: "1d12h", want: 36 * time.Hour},
		{give: "1d30m15s", want: day + 30*time.Minute + 15*time.Second},
		{give: "+2d", want: 2 * day},
		{give: "-1d", want: -day},
		{give: "-1d2h", want: -26 * time.Hour},
		{give: "106751d", want: 106751 * day},
		{give: "106751d23h", want: 106751*day + 23*time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Parallel()
			got, err := config.ParseDuration(tt.give)
			if err != nil || got != tt.want {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.give, got, err, tt.want)
			}
		})
	}
}

func TestParseDurationErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give string
	}{
		{give: ""},
		{give: "30"},
		{give: "soon"},
		{give: "d"},
		{give: "1dd"},
		{give: "d1h"},
		{give: "1h1d"},
		{give: "1d-1h"},
		{give: "1d+1h"},
		{give: "1e3d"},
		{give: "0x10d"},
		{give: "NaNd"},
		{give: "--1d"},
		{give: "1.2.3d"},
		{give: "106752d"},
		{give: "106751d24h"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Parallel()
			got, err := config.ParseDuration(tt.give)
			if err == nil || !strings.Contains(err.Error(), "want a duration such as 30s, 5m or 14d") {
				t.Errorf("ParseDuration(%q) = %v, %v; want an error", tt.give, got, err)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give time.Duration
		want string
	}{
		{give: 0, want: "0s"},
		{give: 30 * time.Second, want: "30s"},
		{give: 5 * time.Minute, want: "5m"},
		{give: 90 * time.Second, want: "1m30s"},
		{give: 2 * time.Hour, want: "2h"},
		{give: time.Hour + 30*time.Second, want: "1h0m30s"},
		{give: 24 * time.Hour, want: "24h"},
		{give: 36 * time.Hour, want: "36h"},
		{give: 48 * time.Hour, want: "2d"},
		{give: 14 * 24 * time.Hour, want: "14d"},
		{give: 1500 * time.Millisecond, want: "1.5s"},
		{give: -5 * time.Minute, want: "-5m"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			got := config.FormatDuration(tt.give)
			back, err := config.ParseDuration(got)
			if got != tt.want || err != nil || back != tt.give {
				t.Errorf("FormatDuration(%v) = %q, read back as %v, %v; want %q", tt.give, got, back, err, tt.want)
			}
		})
	}
}
