package wechat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/internal/httpclient"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/providers/wechat"
	"github.com/heraldhq/herald/retry"
	"github.com/heraldhq/herald/sandbox"
)

// The worker's view of a provider.
var _ interface {
	Validate(job.Job) error
	Send(context.Context, job.Job) (job.Result, error)
} = (*wechat.Client)(nil)

// testBundle is a real sandbox behind a real HTTP server. Requests are
// copied to requests on their way in, so tests can read what was sent.
type testBundle struct {
	sb  *sandbox.Server
	url string

	mu       sync.Mutex
	requests []capturedRequest
}

type capturedRequest struct {
	Path string
	Body []byte
}

func setup(t *testing.T, opts sandbox.Options) *testBundle {
	t.Helper()
	return setupWithHook(t, opts, nil)
}

// setupWithHook calls before(sandbox, request) ahead of every request the
// sandbox serves.
func setupWithHook(t *testing.T, opts sandbox.Options, before func(*sandbox.Server, *http.Request)) *testBundle {
	t.Helper()
	b := &testBundle{sb: sandbox.New(opts)}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if before != nil {
			before(b.sb, r)
		}
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.requests = append(b.requests, capturedRequest{Path: r.URL.Path, Body: body})
		b.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		b.sb.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	b.url = hs.URL
	return b
}

func (b *testBundle) config() wechat.Config {
	return wechat.Config{
		AppID: sandbox.DevWeChatAppID, AppSecret: sandbox.DevWeChatSecret,
		BaseURL: b.url, Timeout: 5 * time.Second,
	}
}

func (b *testBundle) client(t *testing.T, store wechat.TokenStore, opts ...wechat.Option) *wechat.Client {
	t.Helper()
	c, err := wechat.New(b.config(), store, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (b *testBundle) fetches() int64 {
	f := b.sb.Stats()["wechat"].TokenFetches
	return f[sandbox.WeChatStableTokenEndpoint] + f[sandbox.WeChatTokenEndpoint]
}

func (b *testBundle) lastSendBody(t *testing.T) map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.requests) - 1; i >= 0; i-- {
		if b.requests[i].Path == "/cgi-bin/message/subscribe/send" {
			var m map[string]any
			if err := json.Unmarshal(b.requests[i].Body, &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatal("no send request")
	return nil
}

func newJob(toUser string) job.Job {
	return job.Job{
		ID: "j1", Platform: job.WeChat, App: "default", TemplateID: "TPL", ToUser: toUser,
		Data: map[string]job.Value{"thing1": {Value: "订单已发货"}, "time2": {Value: "2026-03-01 12:00"}},
	}
}

func TestSendSuccessKeepsNineteenDigitMsgID(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{Record: true})
	c := b.client(t, nil)
	res, err := c.Send(context.Background(), newJob("o1"))
	if err != nil {
		t.Fatal(err)
	}
	acc := b.sb.Accepted()
	if len(acc) != 1 || res.MsgID != acc[0].MsgID || len(res.MsgID) != 19 {
		t.Fatalf("MsgID = %q, sandbox accepted %+v; want the same 19-digit id", res.MsgID, acc)
	}
	body := b.lastSendBody(t)
	if _, ok := body["page"]; ok {
		t.Errorf("empty page was sent: %v", body)
	}
	if body["miniprogram_state"] != "formal" || body["lang"] != "zh_CN" || body["touser"] != "o1" || body["template_id"] != "TPL" {
		t.Errorf("body = %v, want defaults formal / zh_CN", body)
	}
}

func TestSendPassesPageAndOptions(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	c := b.client(t, nil)
	j := newJob("o1")
	j.Page = "pages/order?id=1"
	j.WeChat = &job.WeChatOptions{MiniprogramState: "trial", Lang: "en_US"}
	if _, err := c.Send(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	body := b.lastSendBody(t)
	if body["page"] != j.Page || body["miniprogram_state"] != "trial" || body["lang"] != "en_US" {
		t.Fatalf("body = %v", body)
	}
}

// TestSendDecisions runs the scripted answers through the client and the
// retry package, end to end.
func TestSendDecisions(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	c := b.client(t, nil)
	tests := []struct {
		name string
		give func(j *job.Job)
		want retry.Decision // Delay and Detail.Message are checked apart
	}{
		{"refused", func(j *job.Job) { j.ToUser = "refuse-1" },
			retry.Decision{Action: retry.DeadLetter, Reason: job.ReasonUserRefused, Detail: retry.Detail{Code: "43101"}}},
		{"bad openid", func(j *job.Job) { j.ToUser = "badopenid-1" },
			retry.Decision{Action: retry.DeadLetter, Reason: job.ReasonInvalidRecipient, Detail: retry.Detail{Code: "40003"}}},
		{"sensitive", func(j *job.Job) { j.ToUser = "sensitive-1" },
			retry.Decision{Action: retry.DeadLetter, Reason: job.ReasonSensitiveContent, Detail: retry.Detail{Code: "45168"}}},
		{"bad template", func(j *job.Job) { j.TemplateID = "bad-tpl" },
			retry.Decision{Action: retry.DeadLetter, Reason: job.ReasonInvalidTemplate, Detail: retry.Detail{Code: "40037"}, Alert: true}},
		{"bad page", func(j *job.Job) { j.Page = "missing/page" },
			retry.Decision{Action: retry.DeadLetter, Reason: job.ReasonInvalidPage, Detail: retry.Detail{Code: "41030"}}},
		{"bad value", func(j *job.Job) { j.Data["thing1"] = job.Value{Value: strings.Repeat("字", 21)} },
			retry.Decision{Action: retry.DeadLetter, Reason: job.ReasonInvalidTemplateData,
				Detail: retry.Detail{Code: "47003", Field: "data.thing1.value"}}},
		{"busy", func(j *job.Job) { j.ToUser = "busy-1" },
			retry.Decision{Action: retry.Retry, Detail: retry.Detail{Code: "43108"}}},
		{"minute quota", func(j *job.Job) { j.ToUser = "quota-1" },
			retry.Decision{Action: retry.Throttle, Detail: retry.Detail{Code: "45011"}}},
		{"daily quota", func(j *job.Job) { j.ToUser = "dailyquota-1" },
			retry.Decision{Action: retry.Throttle, Detail: retry.Detail{Code: "45009"}}},
		{"unauthorized", func(j *job.Job) { j.ToUser = "unauthorized-1" },
			retry.Decision{Action: retry.Pause, Detail: retry.Detail{Code: "48001"}}},
		{"system error", func(j *job.Job) { j.ToUser = "fail-1" },
			retry.Decision{Action: retry.Retry, Detail: retry.Detail{Code: "-1"}}},
		{"http 500", func(j *job.Job) { j.ToUser = "http500-1" },
			retry.Decision{Action: retry.Retry}},
		{"unknown code", func(j *job.Job) { j.ToUser = "unknown-1" },
			retry.Decision{Action: retry.Retry, Limit: 3, Reason: job.ReasonPlatformRejected, Detail: retry.Detail{Code: "99999"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := newJob("o1")
			j.Data = map[string]job.Value{"thing1": {Value: "ok"}}
			tt.give(&j)
			_, err := c.Send(context.Background(), j)
			got := retry.Decide(err)
			got.Delay, got.Detail.Message = 0, ""
			if got != tt.want {
				t.Fatalf("Send error %v\n decision %+v\n want     %+v", err, got, tt.want)
			}
		})
	}
}

func TestInvalidValueKeepsErrmsgAndRid(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	c := b.client(t, nil)
	j := newJob("o1")
	j.Data = map[string]job.Value{"time15": {Value: "tomorrow at noon"}}
	_, err := c.Send(context.Background(), j)
	d := retry.Decide(err)
	want := regexp.MustCompile(`^argument invalid! data\.time15\.value invalid rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$`)
	if d.Detail.Field != "data.time15.value" || !want.MatchString(d.Detail.Message) {
		t.Fatalf("Detail = %+v", d.Detail)
	}
	var ae *wechat.APIError
	if !errors.As(err, &ae) || ae.Code != 47003 || ae.HTTPStatus != 200 || !errors.Is(err, &wechat.APIError{Code: 47003}) {
		t.Fatalf("error %v is not a 47003 *APIError", err)
	}
}

func TestSlowAndFlakyAnswersAreTransient(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	c := b.client(t, nil)
	_, err := c.Send(context.Background(), newJob("flaky-1"))
	if d := retry.Decide(err); d.Action != retry.Retry || d.Detail.Code != "-1" {
		t.Fatalf("first flaky send: %v (%+v)", err, d)
	}
	if _, err := c.Send(context.Background(), newJob("flaky-1")); err != nil {
		t.Fatalf("second flaky send: %v", err)
	}
	cfg := b.config()
	cfg.Timeout = 100 * time.Millisecond
	fast, err := wechat.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fast.Send(context.Background(), newJob("slow-1"))
	if d := retry.Decide(err); err == nil || d.Action != retry.Retry {
		t.Fatalf("send past the timeout: %v (%+v), want transient", err, d)
	}
}

func TestOutageIsTransient(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	c := b.client(t, nil)
	b.sb.SetOutage("wechat", time.Minute)
	_, err := c.Send(context.Background(), newJob("o1"))
	d := retry.Decide(err)
	if d.Action != retry.Retry || d.Limit != 0 || !strings.HasPrefix(d.Detail.Message, "HTTP 503") {
		t.Fatalf("send during outage: %v (%+v)", err, d)
	}
	if !errors.Is(err, &wechat.APIError{HTTPStatus: 503}) {
		t.Fatalf("error %v does not match HTTP 503", err)
	}
	b.sb.SetOutage("wechat", 0)
	if _, err := c.Send(context.Background(), newJob("o1")); err != nil {
		t.Fatalf("send after outage: %v", err)
	}
}

func TestTokenEndpointErrorsPauseTheApp(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	tests := []struct {
		name string
		give wechat.Config
		want retry.Decision
	}{
		{"wrong secret", wechat.Config{AppID: sandbox.DevWeChatAppID, AppSecret: "wrong"},
			retry.Decision{Action: retry.Pause, Detail: retry.Detail{Code: "40125"}}},
		{"unknown appid", wechat.Config{AppID: "wxunknown", AppSecret: "s"},
			retry.Decision{Action: retry.Pause, Detail: retry.Detail{Code: "40013"}}},
		{"wrong secret on /cgi-bin/token", wechat.Config{AppID: sandbox.DevWeChatAppID, AppSecret: "wrong", TokenEndpoint: wechat.EndpointToken},
			retry.Decision{Action: retry.Pause, Detail: retry.Detail{Code: "40125"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.give
			cfg.BaseURL = b.url
			c, err := wechat.New(cfg, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Send(context.Background(), newJob("o1"))
			got := retry.Decide(err)
			got.Detail.Message = ""
			if got != tt.want {
				t.Fatalf("Send error %v: decision %+v, want %+v", err, got, tt.want)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Fatalf("error %q contains the secret", err)
			}
		})
	}
}

func TestTokenEndpointIsConfigurable(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	cfg := b.config()
	cfg.TokenEndpoint = wechat.EndpointToken
	c, err := wechat.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Send(context.Background(), newJob("o1")); err != nil {
			t.Fatal(err)
		}
	}
	f := b.sb.Stats()["wechat"].TokenFetches
	if f[sandbox.WeChatTokenEndpoint] != 1 || f[sandbox.WeChatStableTokenEndpoint] != 0 {
		t.Fatalf("token fetches = %v, want one on /cgi-bin/token", f)
	}
}

// TestErrorsNeverContainSecrets forces transport failures on every call
// that carries a secret and checks the error text.
func TestErrorsNeverContainSecrets(t *testing.T) {
	t.Parallel()
	const token = "sbx_SECRET_TOKEN_VALUE_0123456789"
	const secret = "SUPER-SECRET-APP-SECRET"
	closed := closedURL(t)
	slow := setup(t, sandbox.Options{Latency: 5 * time.Second})
	seed := func(store wechat.TokenStore) wechat.TokenStore {
		now := time.Now()
		if err := store.Put(context.Background(), sandbox.DevWeChatAppID,
			wechat.Token{Value: token, RefreshAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		return store
	}
	tests := []struct {
		name  string
		give  wechat.Config
		store wechat.TokenStore
		to    string
	}{
		{"send connection refused", wechat.Config{BaseURL: closed}, seed(wechat.NewMemoryTokens()), "o1"},
		{"stable_token connection refused", wechat.Config{BaseURL: closed}, nil, "o1"},
		{"token connection refused", wechat.Config{BaseURL: closed, TokenEndpoint: wechat.EndpointToken}, nil, "o1"},
		{"send timeout", wechat.Config{BaseURL: slow.url, Timeout: 50 * time.Millisecond}, seed(wechat.NewMemoryTokens()), "o1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.give
			cfg.AppID, cfg.AppSecret = sandbox.DevWeChatAppID, secret
			c, err := wechat.New(cfg, tt.store, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Send(context.Background(), newJob(tt.to))
			if err == nil {
				t.Fatal("Send succeeded, want a transport error")
			}
			d := retry.Decide(err)
			t.Logf("error: %v", err)
			for _, text := range []string{err.Error(), d.Detail.Message, errors.Unwrap(err).Error()} {
				if strings.Contains(text, token) || strings.Contains(text, secret) || strings.Contains(text, "access_token=") {
					t.Fatalf("error text leaks a secret: %q", text)
				}
			}
			if d.Action != retry.Retry {
				t.Fatalf("decision %+v, want transient", d)
			}
		})
	}
	if s := (wechat.Config{AppSecret: secret}).String(); strings.Contains(s, secret) {
		t.Fatalf("Config.String() = %q leaks the secret", s)
	}
}

// closedURL is the URL of a port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		give wechat.Config
		want string // substring of the error; "" for valid
	}{
		{"valid", wechat.Config{AppID: "wx1", AppSecret: "s", BaseURL: "https://api.weixin.qq.com", TokenEndpoint: "token"}, ""},
		{"no app id", wechat.Config{AppSecret: "s", BaseURL: "http://x", TokenEndpoint: "token"}, "app_id"},
		{"no secret", wechat.Config{AppID: "wx1", BaseURL: "http://x", TokenEndpoint: "token"}, "app_secret"},
		{"bad url", wechat.Config{AppID: "wx1", AppSecret: "s", BaseURL: "ftp://x", TokenEndpoint: "token"}, "base_url"},
		{"bad endpoint", wechat.Config{AppID: "wx1", AppSecret: "s", BaseURL: "http://x", TokenEndpoint: "force"}, "token_endpoint"},
	}
	for _, tt := range tests {
		err := tt.give.Validate()
		if got := errString(err); !strings.Contains(got, tt.want) || (tt.want == "") != (err == nil) {
			t.Errorf("%s: Validate() = %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := wechat.New(wechat.Config{AppID: "wx1", AppSecret: "s"}, nil, nil); err != nil {
		t.Fatalf("New with defaults: %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestRegistererCountsTokenFetches(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	reg := prometheus.NewRegistry()
	c := b.client(t, nil, wechat.WithRegisterer(reg))
	// A second client on the same registry shares the counter.
	b.client(t, nil, wechat.WithRegisterer(reg))
	for range 3 {
		if _, err := c.Send(context.Background(), newJob("o1")); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "herald_token_refreshes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["platform"] == "wechat" && labels["app"] == sandbox.DevWeChatAppID {
				got[labels["result"]] = m.GetCounter().GetValue()
			}
		}
	}
	if got["ok"] != 1 || got["error"] != 0 || len(got) != 2 {
		t.Fatalf("herald_token_refreshes_total = %v, want ok=1 error=0", got)
	}
}

func TestWarmGetsTheTokenBeforeTheFirstSend(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	c := b.client(t, nil)
	if err := c.Warm(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := b.fetches(); n != 1 {
		t.Fatalf("token fetches after Warm = %d, want 1", n)
	}
	if _, err := c.Send(context.Background(), newJob("o1")); err != nil {
		t.Fatal(err)
	}
	if n := b.fetches(); n != 1 {
		t.Errorf("token fetches after the first send = %d, want still 1", n)
	}
}

func TestWarmReportsAnUnreachableTokenEndpoint(t *testing.T) {
	t.Parallel()
	cfg := wechat.Config{AppID: "wx1", AppSecret: "s3cret", BaseURL: "http://127.0.0.1:1", Timeout: time.Second}
	c, err := wechat.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Warm(context.Background())
	if err == nil {
		t.Fatal("Warm against a closed port succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error leaks the secret: %v", err)
	}
}

// A redirect from base_url is never followed, whatever client the provider
// is given: neither the stable_token request (appid and secret in its body)
// nor a send (the access token in its URL) reaches the Location's host,
// and the send fails as a transient error that names the redirect.
func TestRedirectsAreNeverFollowed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   int
		redirect string // the path answered with a redirect; "" for every path
		hc       *http.Client
	}{
		{"307 of stable_token", http.StatusTemporaryRedirect, "", nil},
		{"308 of stable_token", http.StatusPermanentRedirect, "", nil},
		{"308 of stable_token, a client that follows", http.StatusPermanentRedirect, "", http.DefaultClient},
		{"302 of stable_token", http.StatusFound, "", nil},
		{"307 of send", http.StatusTemporaryRedirect, "/cgi-bin/message/subscribe/send", nil},
		{"307 of send, a client that follows", http.StatusTemporaryRedirect, "/cgi-bin/message/subscribe/send", http.DefaultClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The Location host records every request it gets.
			away := setup(t, sandbox.Options{})
			home := sandbox.New(sandbox.Options{})
			origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.redirect == "" || r.URL.Path == tt.redirect {
					http.Redirect(w, r, away.url+r.URL.RequestURI(), tt.status)
					return
				}
				home.ServeHTTP(w, r)
			}))
			t.Cleanup(origin.Close)
			cfg := away.config()
			cfg.BaseURL = origin.URL
			c, err := wechat.New(cfg, nil, tt.hc)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Send(context.Background(), newJob("user-1"))
			if err == nil {
				t.Fatal("send through a redirect succeeded")
			}
			if d := retry.Decide(err); d.Action != retry.Retry {
				t.Errorf("decision %v, want a transient failure (retry)", d.Action)
			}
			if !errors.Is(err, httpclient.ErrRedirect) {
				t.Errorf("error %q is not ErrRedirect", err)
			}
			want := fmt.Sprintf("answered %d %s to %s", tt.status, http.StatusText(tt.status), away.url)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if strings.Contains(err.Error(), sandbox.DevWeChatSecret) {
				t.Errorf("error %q holds the secret", err)
			}
			away.mu.Lock()
			defer away.mu.Unlock()
			for _, r := range away.requests {
				t.Errorf("the Location host got %s %q", r.Path, r.Body)
			}
		})
	}
}
