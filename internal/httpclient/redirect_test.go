package httpclient

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// The client answers a redirect with the 3xx itself: the body (a secret,
// say) never reaches the Location's host, and Redirected names the redirect.
func TestNewFollowsNoRedirect(t *testing.T) {
	var hits atomic.Int64
	away := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer away.Close()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, away.URL+"/steal?x=1", http.StatusPermanentRedirect)
	}))
	defer origin.Close()
	for name, hc := range map[string]*http.Client{"New": New(), "NoRedirects(DefaultClient)": NoRedirects(http.DefaultClient)} {
		resp, err := hc.Post(origin.URL+"/cgi-bin/stable_token", "application/json", strings.NewReader(`{"secret":"s3cret"}`))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusPermanentRedirect {
			t.Errorf("%s: status %d, want the 308 itself", name, resp.StatusCode)
		}
		err = Redirected(resp)
		if !errors.Is(err, ErrRedirect) || !strings.Contains(err.Error(), "308 Permanent Redirect to "+away.URL) ||
			strings.Contains(err.Error(), "steal") {
			t.Errorf("%s: Redirected = %v", name, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the Location host got %d requests", n)
	}
	if NoRedirects(nil) != nil {
		t.Error("NoRedirects(nil) is not nil")
	}
	if http.DefaultClient.CheckRedirect != nil {
		t.Error("NoRedirects changed the client it was given")
	}
}

func TestInsecure(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"https://api.weixin.qq.com", false},
		{"http://api.weixin.qq.com", true},
		{"http://10.0.0.7:9100", true},
		{"http://127.0.0.1:9100", false},
		{"http://127.8.9.10", false},
		{"http://localhost:9100/gateway.do", false},
		{"http://LOCALHOST", false},
		{"http://[::1]:9100", false},
		{"http://localhost.example.com", true},
		{"http://0.0.0.0:9100", true},
	}
	for _, tt := range tests {
		if got := Insecure(tt.give); got != tt.want {
			t.Errorf("Insecure(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}
