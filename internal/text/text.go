// Package text holds the small formatting rules herald's commands, console
// and error messages share, so that a value reads the same everywhere.
package text

import (
	"fmt"
	"unicode/utf8"
)

// Dash is s, or "-" for an empty s: a column that is never blank.
func Dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Truncate shortens s to at most n runes (n ≥ 1), marking a cut with an
// ellipsis; it never splits a character.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// Bytes writes n in binary units: 512 B, 3.4 KiB, 12.0 MiB.
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
