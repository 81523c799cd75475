package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes. The file and the environment write it as a
// whole number with an optional unit: B, KB, MB, GB, TB (powers of 1000)
// or KiB, MiB, GiB, TiB (powers of 1024), such as 1GiB, 512MiB or 500MB.
type ByteSize int64

// Byte size units, by their suffix.
var byteUnits = []struct {
	suffix string
	size   int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1},
}

// ParseByteSize reads a [ByteSize]: digits, then an optional unit.
func ParseByteSize(s string) (ByteSize, error) {
	num, unit := s, int64(1)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, unit = strings.TrimSpace(n), u.size
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || num == "" || num[0] == '+' || n > math.MaxInt64/unit {
		return 0, fmt.Errorf("want a size such as 512MiB, 2GiB or 1000000, not %s", quote(s))
	}
	return ByteSize(n * unit), nil
}

// String writes b as ParseByteSize reads it, in the unit that gives the
// smallest whole number: 2GiB, 500MB, 1000001.
func (b ByteSize) String() string {
	n, suffix := int64(b), ""
	for _, u := range byteUnits {
		if u.size > 1 && b != 0 && int64(b)%u.size == 0 && int64(b)/u.size < n {
			n, suffix = int64(b)/u.size, u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + suffix
}
