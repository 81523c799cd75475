package console_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/heraldhq/herald/console"
	"github.com/heraldhq/herald/producer/job"
)

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, path := range []string{"/", "/dead", "/nowhere", "/static/console.css"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.url+path, nil)
		resp, _ := b.do(t, req)
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP %q allows inline script or style", path, csp)
		}
		for k, want := range map[string]string{
			"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", path, k, got, want)
			}
		}
	}
	body := b.get(t, "/", http.StatusOK)
	mustNotContain(t, body, "<script>", "style=", "http://", "https://")
	b.get(t, "/static/", http.StatusNotFound) // no listing
	b.get(t, "/static/console.js", http.StatusOK)
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *console.Config) { c.BasicAuthUser, c.BasicAuthPassword = "ops", "s3cret-pw" })
	tests := []struct {
		name       string
		user, pass string
		set        bool
		want       int
	}{
		{name: "no credentials", want: http.StatusUnauthorized},
		{name: "wrong password", user: "ops", pass: "s3cret-px", set: true, want: http.StatusUnauthorized},
		{name: "wrong user", user: "opz", pass: "s3cret-pw", set: true, want: http.StatusUnauthorized},
		{name: "password as user", user: "s3cret-pw", pass: "ops", set: true, want: http.StatusUnauthorized},
		{name: "empty", user: "", pass: "", set: true, want: http.StatusUnauthorized},
		{name: "right", user: "ops", pass: "s3cret-pw", set: true, want: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.url+"/dead", nil)
			if tt.set {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			resp, body := b.do(t, req)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusUnauthorized {
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic ") {
					t.Errorf("WWW-Authenticate = %q, want a Basic challenge", got)
				}
				mustNotContain(t, body, "Dead letters")
			} else {
				mustContain(t, body, `<span class="user">ops</span>`)
			}
		})
	}
	// Probes need no credentials.
	if body := b.get(t, "/healthz", http.StatusOK); body != "ok\n" {
		t.Errorf("/healthz = %q", body)
	}
	// Nor do changes get through without them.
	resp, _ := b.post(t, "/purge", url.Values{"reason": {"expired"}, "expected": {"0"}, "confirm": {"yes"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST without credentials: status %d, want 401", resp.StatusCode)
	}
}

func TestTrustedUserHeader(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *console.Config) { c.TrustedUserHeader = "X-Forwarded-User" })
	b.get(t, "/", http.StatusForbidden)
	b.get(t, "/dead/counts", http.StatusForbidden)

	for user, shown := range map[string]string{
		"alice@example.com":     "alice@example.com",
		"<b>mallory</b>\u202e!": "&lt;b&gt;mallory&lt;/b&gt;!",
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.url+"/dead", nil)
		req.Header.Set("X-Forwarded-User", user)
		resp, body := b.do(t, req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("with the header: status %d", resp.StatusCode)
		}
		mustContain(t, body, `<span class="user">`+shown+`</span>`)
		mustNotContain(t, body, "<b>mallory", "\x1b", "\u202e")
	}
	// A header of white space only is no user.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.url+"/dead", nil)
	req.Header.Set("X-Forwarded-User", "  ")
	if resp, _ := b.do(t, req); resp.StatusCode != http.StatusForbidden {
		t.Errorf("blank header: status %d, want 403", resp.StatusCode)
	}
}

// confirmedPurge is the form the confirmation step posts to purge every
// expired dead letter, n of them.
func confirmedPurge(n string) url.Values {
	return url.Values{"reason": {job.ReasonExpired}, "since": {""}, "expected": {n}, "confirm": {"yes"}}
}

func TestCrossOriginChangesRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.storeDead(t, spec{id: "e1", platform: job.WeChat, reason: job.ReasonExpired, app: "default", tpl: "T1"})
	tests := []struct {
		name    string
		headers map[string]string
	}{
		{name: "cross-site fetch", headers: map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{name: "same-site but another origin", headers: map[string]string{"Sec-Fetch-Site": "same-site"}},
		{name: "foreign Origin, no fetch metadata", headers: map[string]string{"Origin": "http://evil.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, b.url+"/purge",
				strings.NewReader(confirmedPurge("1").Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, body := b.do(t, req)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403:\n%s", resp.StatusCode, body)
			}
			mustContain(t, body, "cross-origin")
			if n := b.msgs(t, b.topo.DeadStream); n != 1 {
				t.Fatalf("dead letters = %d after a refused purge, want 1", n)
			}
		})
	}
	// The console's own page posts same-origin, and that goes through.
	resp, body := b.post(t, "/purge", confirmedPurge("1"))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("same-origin purge: status %d, want 303:\n%s", resp.StatusCode, body)
	}
}

func TestReadOnlyRefusesChanges(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *console.Config) { c.ReadOnly = true })
	seqs := b.storeDead(t, spec{id: "e1", platform: job.WeChat, reason: job.ReasonExpired, app: "default", tpl: "T1"})

	for _, path := range []string{"/purge", "/replay"} {
		resp, body := b.post(t, path, confirmedPurge("1"))
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("POST %s read-only: status %d, want 403", path, resp.StatusCode)
		}
		mustContain(t, body, "read-only")
	}
	if n := b.msgs(t, b.topo.DeadStream); n != 1 {
		t.Fatalf("dead letters = %d after refused changes, want 1", n)
	}
	if n := b.msgs(t, b.topo.SendStream); n != 0 {
		t.Fatalf("jobs = %d after a refused replay, want 0", n)
	}
	// The buttons are gone; a dry run still works and offers nothing to
	// confirm.
	list := b.get(t, "/dead", http.StatusOK)
	mustContain(t, list, "read-only")
	mustNotContain(t, list, "Replay…", "Purge…")
	letter := b.get(t, "/dead/"+itoa(seqs[0]), http.StatusOK)
	mustNotContain(t, letter, "Replay…", "Purge…")
	preview := b.get(t, "/replay?reason=expired&preview=1", http.StatusOK)
	mustContain(t, preview, `<b id="preview-count">1</b>`, "read-only: it previews but changes nothing")
	mustNotContain(t, preview, `method="post"`)
}

func TestBodyAndHeadersBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	big := url.Values{"reason": {strings.Repeat("x", 100<<10)}}
	resp, _ := b.post(t, "/purge", big)
	if resp.StatusCode != http.StatusRequestEntityTooLarge && resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("100 KiB form: status %d, want 413 or 400", resp.StatusCode)
	}
	// A filter value past its bound is refused, not used.
	body := b.get(t, "/dead?app="+strings.Repeat("a", 300), http.StatusBadRequest)
	mustContain(t, body, "longer than 256 bytes")
}

// TestHostileDeadLetterEscaped stores a dead letter whose every field a
// producer or platform could control is hostile, and checks every page
// that shows it: no markup, no terminal escapes, no reordering characters
// get through as they are.
func TestHostileDeadLetterEscaped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	hostile := spec{
		id:       `<script>alert("id")</script>`,
		platform: job.WeChat, reason: job.ReasonPlatformRejected,
		app:     `shop"><svg onload=alert(1)>`,
		tpl:     `T'"><img src=x onerror=alert(2)>`,
		code:    "47001</td><script>alert(3)</script>",
		toUser:  "o\u202eresu\u202c\x00x",
		message: "bad \x1b[2J\x1b]0;pwned\x07 \"quoted\" 'single' <iframe src=//evil>",
		field:   "data.<b>thing1</b>.value",
	}
	raw := spec{id: "raw", platform: job.UnknownPlatform, reason: job.ReasonMalformedJob,
		raw: []byte("{\"id\":\"<script>alert(4)</script>\x1b[31m")}
	binary := spec{id: "bin", platform: job.UnknownPlatform, reason: job.ReasonMalformedJob,
		raw: []byte{0x00, 0xff, '<', 's', 'c', 'r', 'i', 'p', 't', '>', 0x1b}}
	seqs := b.storeDead(t, hostile, raw, binary)

	pages := map[string]string{
		"list":    b.get(t, "/dead", http.StatusOK),
		"letter":  b.get(t, "/dead/"+itoa(seqs[0]), http.StatusOK),
		"raw":     b.get(t, "/dead/"+itoa(seqs[1]), http.StatusOK),
		"binary":  b.get(t, "/dead/"+itoa(seqs[2]), http.StatusOK),
		"counts":  b.get(t, "/dead/counts", http.StatusOK),
		"preview": b.get(t, "/replay?reason=platform_rejected&preview=1", http.StatusOK),
		"job": b.get(t, "/jobs?"+url.Values{"platform": {"wechat"}, "app": {hostile.app},
			"id": {hostile.id}}.Encode(), http.StatusOK),
	}
	for name, body := range pages {
		t.Run(name, func(t *testing.T) {
			mustNotContain(t, body,
				"<script>alert", "<svg onload", "<img src=x", "<iframe", "<b>thing1", "</td><script>",
				"\x1b", "\x07", "\x00", "\u202e", "\u202c")
		})
	}
	mustContain(t, pages["letter"],
		"&lt;script&gt;alert(&#34;id&#34;)&lt;/script&gt;",
		`bad \x1b[2J\x1b]0;pwned\x07 &#34;quoted&#34; &#39;single&#39; &lt;iframe src=//evil&gt;`,
		`o\u202eresu\u202c\x00x`,
		"data.&lt;b&gt;thing1&lt;/b&gt;.value",
	)
	mustContain(t, pages["raw"], `&lt;script&gt;alert(4)&lt;/script&gt;\x1b[31m`)
	mustContain(t, pages["binary"], "00000000  00 ff 3c 73 63 72 69 70  74 3e 1b")
	mustContain(t, pages["job"], "&lt;script&gt;alert(&#34;id&#34;)&lt;/script&gt;", "Dead-lettered 1 time")
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:8090": true, "localhost:8090": true, "[::1]:8090": true, "127.0.0.2:1": true,
		":8090": false, "0.0.0.0:8090": false, "[::]:8090": false, "10.0.0.7:8090": false, "console:8090": false, "bad": false,
	} {
		if got := console.IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
