package main

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// What the operator commands print for people comes partly from producers
// and platforms: job ids, recipients, template ids, platform messages. A
// terminal acts on some bytes instead of showing them (ESC starts a
// sequence that can set the window title, clear the screen or rewrite
// what is shown; CR returns to the start of the line; C1 controls are
// escapes of their own), so every such string is passed through termSafe
// before it reaches a table or a plain line. --json output is left exact.

// termSafe returns s with every rune a terminal would act on written out
// as an escape, in Go's notation: C0 controls, DEL and invalid UTF-8 bytes
// as \x1b, tab, newline and carriage return as \t, \n and \r, C1 controls
// and other invisible or layout-changing runes (bidirectional overrides,
// line and paragraph separators) as \u009b. Printable text, Chinese
// included, is kept as it is.
func termSafe(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x80 && unsafeRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r) && r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// termSafeLines is termSafe keeping the newlines of a text meant to have
// several lines, such as an error listing problems.
func termSafeLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = termSafe(l)
	}
	return strings.Join(lines, "\n")
}

// unsafeRune reports a rune a terminal may act on or that hides or
// reorders text: anything but graphic characters and the space (zero-width
// joiners stay: emoji sequences need them).
func unsafeRune(r rune) bool {
	return !unicode.IsGraphic(r) && r != 0x200c && r != 0x200d
}

// termSafeJSON rewrites, inside the JSON text data, every rune a terminal
// would act on as a \u escape: the result is JSON of the same value, safe
// to show. encoding/json already escapes C0 controls and invalid UTF-8,
// but writes DEL, C1 controls and bidirectional overrides as they are.
// Outside strings JSON holds only printable ASCII and its white space,
// which is kept.
func termSafeJSON(data []byte) []byte {
	if !bytes.ContainsFunc(data, func(r rune) bool { return unsafeRune(r) && r != '\n' && r != '\t' && r != '\r' }) {
		return data
	}
	var b bytes.Buffer
	b.Grow(len(data) + 16)
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == '\n' || r == '\t' || r == '\r' || !unsafeRune(r):
			b.Write(data[i : i+size])
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\ufffd`)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += size
	}
	return b.Bytes()
}
