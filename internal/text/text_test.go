package text

import "testing"

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		give string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven runes", 10, "eleven ru…"},
		{"订阅消息发送失败了", 5, "订阅消息…"}, // never half a character
	} {
		if got := Truncate(tc.give, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.give, tc.n, got, tc.want)
		}
	}
}

func TestBytes(t *testing.T) {
	for give, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3481: "3.4 KiB", 12 << 20: "12.0 MiB", 1 << 30: "1.0 GiB"} {
		if got := Bytes(give); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", give, got, want)
		}
	}
}

func TestDash(t *testing.T) {
	if Dash("") != "-" || Dash("x") != "x" {
		t.Errorf("Dash: %q, %q", Dash(""), Dash("x"))
	}
}
