package config_test

import (
	"testing"

	"github.com/heraldhq/herald/config"
)

func TestParseByteSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give     string
		want     config.ByteSize
		wantText string // String of the result
	}{
		{"0", 0, "0"},
		{"1048576", 1 << 20, "1MiB"},
		{"1000001", 1000001, "1000001"},
		{"512MiB", 512 << 20, "512MiB"},
		{"2GiB", 2 << 30, "2GiB"},
		{"1536 MiB", 1536 << 20, "1536MiB"},
		{"500MB", 500e6, "500MB"},
		{"1TB", 1e12, "1TB"},
		{"3KiB", 3 << 10, "3KiB"},
		{"7B", 7, "7"},
	}
	for _, tt := range tests {
		got, err := config.ParseByteSize(tt.give)
		if err != nil || got != tt.want || got.String() != tt.wantText {
			t.Errorf("ParseByteSize(%q) = %d (%s), %v; want %d (%s)", tt.give, got, got, err, tt.want, tt.wantText)
		}
	}
	for _, give := range []string{"", "-1", "+1", "1.5GiB", "GiB", "1gib", "2 GiBs", "9999999999TiB", "1 000"} {
		if got, err := config.ParseByteSize(give); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", give, got)
		}
	}
}
