package console_test

import (
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/heraldhq/herald/console"
)

// FuzzVisible checks that whatever a producer sends, what is shown is
// valid UTF-8 without control or reordering characters but line feeds
// and tabs, and that clean text is shown as it is.
func FuzzVisible(f *testing.F) {
	for _, s := range []string{
		"", "hello", "line\nbreak\ttab", "\x1b[31mred\x1b[0m", "a\u202eb", "\xff\xfe", "\x00", "\r\n",
		"user refuse to accept the msg rid: 6433-d3e2", "模板参数不正确", "\u2028\u2029\ufeff", "\u200f\u061c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := console.Visible(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Visible(%q) = %q, not UTF-8", s, out)
		}
		for _, r := range out {
			if r == '\n' || r == '\t' {
				continue
			}
			if unicode.IsControl(r) || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') {
				t.Fatalf("Visible(%q) = %q keeps %U", s, out, r)
			}
		}
		clean := utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
			return (unicode.IsControl(r) && r != '\n' && r != '\t') || !unicode.IsPrint(r) && r != '\n' && r != '\t' && r != ' '
		})
		if clean && out != s {
			t.Fatalf("Visible(%q) = %q, want printable text unchanged", s, out)
		}
	})
}

// FuzzParseFilter checks that any query either is refused or gives a
// filter the dlq package accepts.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"", "reason=user_refused", "reason=user_refused,expired&platform=wechat", "since=1h&until=30m",
		"since=2026-11-23T10:00:00Z", "since=1.5d", "code=none&app=shop&template=T1", "seq=42", "reason=a.b",
		"since=-1h", "since=99999999d", "platform=*", "app=%00%1b", "seq=0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		flt, err := console.ParseFilter(q)
		if err != nil {
			return
		}
		if err := flt.Validate(); err != nil {
			t.Fatalf("ParseFilter(%q) accepted a filter dlq refuses: %v", query, err)
		}
		for _, s := range flt.Subjects() {
			if strings.ContainsAny(s, " \t\r\n") || strings.Count(s, ">") > 1 {
				t.Fatalf("ParseFilter(%q) gives subject %q", query, s)
			}
		}
	})
}
