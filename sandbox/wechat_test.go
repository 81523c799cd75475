package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// testBundle is a sandbox behind a real HTTP server, with a clock the test
// moves.
type testBundle struct {
	srv   *Server
	http  *httptest.Server
	clock *fakeClock
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func setup(t *testing.T, opts Options) *testBundle {
	t.Helper()
	srv := New(opts)
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	srv.now = clock.Now
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &testBundle{srv: srv, http: hs, clock: clock}
}

// answer is any JSON answer of the fake WeChat API.
type answer struct {
	Status      int
	ErrCode     int         `json:"errcode"`
	ErrMsg      string      `json:"errmsg"`
	MsgID       json.Number `json:"msgid"`
	AccessToken string      `json:"access_token"`
	ExpiresIn   int         `json:"expires_in"`
}

func (b *testBundle) do(t *testing.T, method, path string, body any) answer {
	t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.http.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := b.http.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{Status: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&a); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return a
}

func (b *testBundle) stableToken(t *testing.T) string {
	t.Helper()
	a := b.do(t, http.MethodPost, "/cgi-bin/stable_token", map[string]any{
		"grant_type": "client_credential", "appid": DevWeChatAppID, "secret": DevWeChatSecret,
	})
	if a.AccessToken == "" {
		t.Fatalf("stable_token: %+v", a)
	}
	return a.AccessToken
}

func (b *testBundle) plainToken(t *testing.T) string {
	t.Helper()
	q := url.Values{"grant_type": {"client_credential"}, "appid": {DevWeChatAppID}, "secret": {DevWeChatSecret}}
	a := b.do(t, http.MethodGet, "/cgi-bin/token?"+q.Encode(), nil)
	if a.AccessToken == "" {
		t.Fatalf("token: %+v", a)
	}
	return a.AccessToken
}

func (b *testBundle) send(t *testing.T, token string, body any) answer {
	t.Helper()
	return b.do(t, http.MethodPost, "/cgi-bin/message/subscribe/send?access_token="+url.QueryEscape(token), body)
}

func message(toUser string) map[string]any {
	return map[string]any{
		"touser": toUser, "template_id": "TPL", "page": "pages/index?x=1",
		"data":              map[string]any{"thing1": map[string]string{"value": "订单已发货"}, "time2": map[string]string{"value": "2026-03-01 12:00"}},
		"miniprogram_state": "formal", "lang": "zh_CN",
	}
}

var ridRE = regexp.MustCompile(` rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$`)

func TestStableTokenNormalModeKeepsTokenUntilRotation(t *testing.T) {
	b := setup(t, Options{})
	first := b.stableToken(t)
	if again := b.stableToken(t); again != first {
		t.Fatalf("second normal-mode fetch = %q, want the same token %q", again, first)
	}
	// 5 minutes before expiry the platform rotates; the old token still works.
	b.clock.Add(DefaultTokenTTL - 4*time.Minute)
	next := b.stableToken(t)
	if next == first {
		t.Fatalf("fetch within 5 minutes of expiry returned the old token")
	}
	if a := b.send(t, first, message("o1")); a.ErrCode != 0 {
		t.Fatalf("old token during the overlap: %+v", a)
	}
	b.clock.Add(5 * time.Minute)
	if a := b.send(t, first, message("o1")); a.ErrCode != 42001 {
		t.Fatalf("old token after expiry: errcode %d, want 42001", a.ErrCode)
	}
	if got := b.srv.Stats()["wechat"].TokenFetches[WeChatStableTokenEndpoint]; got != 3 {
		t.Fatalf("stable_token fetches = %d, want 3", got)
	}
}

func TestTokenEndpointRotatesWithFiveMinuteGrace(t *testing.T) {
	b := setup(t, Options{})
	first := b.plainToken(t)
	second := b.plainToken(t)
	if first == second {
		t.Fatal("/cgi-bin/token returned the same token twice")
	}
	if a := b.send(t, first, message("o1")); a.ErrCode != 0 {
		t.Fatalf("previous token within the grace: %+v", a)
	}
	b.clock.Add(5 * time.Minute)
	if a := b.send(t, first, message("o1")); a.ErrCode != 40001 {
		t.Fatalf("previous token after the grace: errcode %d, want 40001", a.ErrCode)
	}
	if a := b.send(t, second, message("o1")); a.ErrCode != 0 {
		t.Fatalf("current token: %+v", a)
	}
}

func TestTokenEndpointsCheckCredentials(t *testing.T) {
	b := setup(t, Options{WeChatApps: map[string]string{"wxA": "sA"}})
	tests := []struct {
		name string
		give map[string]any
		want int
	}{
		{"ok", map[string]any{"grant_type": "client_credential", "appid": "wxA", "secret": "sA"}, 0},
		{"bad grant type", map[string]any{"grant_type": "x", "appid": "wxA", "secret": "sA"}, 40002},
		{"unknown appid", map[string]any{"grant_type": "client_credential", "appid": "wxB", "secret": "sA"}, 40013},
		{"wrong secret", map[string]any{"grant_type": "client_credential", "appid": "wxA", "secret": "nope"}, 40125},
		{"missing appid", map[string]any{"grant_type": "client_credential", "secret": "sA"}, 41002},
		{"missing secret", map[string]any{"grant_type": "client_credential", "appid": "wxA"}, 41004},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stable := b.do(t, http.MethodPost, "/cgi-bin/stable_token", tt.give)
			q := url.Values{}
			for k, v := range tt.give {
				q.Set(k, v.(string))
			}
			plain := b.do(t, http.MethodGet, "/cgi-bin/token?"+q.Encode(), nil)
			for _, a := range []answer{stable, plain} {
				if a.ErrCode != tt.want {
					t.Errorf("errcode = %d (%s), want %d", a.ErrCode, a.ErrMsg, tt.want)
				}
				if tt.want == 0 && (a.AccessToken == "" || a.ExpiresIn != 7200) {
					t.Errorf("answer = %+v, want a token with expires_in 7200", a)
				}
				if tt.want != 0 && !ridRE.MatchString(a.ErrMsg) {
					t.Errorf("errmsg %q has no rid", a.ErrMsg)
				}
			}
		})
	}
}

func TestSendChecksTokenBodyAndValues(t *testing.T) {
	b := setup(t, Options{})
	token := b.stableToken(t)
	withData := func(key, value string) map[string]any {
		m := message("o1")
		m["data"] = map[string]any{key: map[string]string{"value": value}}
		return m
	}
	withField := func(k, v string) map[string]any {
		m := message("o1")
		m[k] = v
		return m
	}
	tests := []struct {
		name    string
		token   string
		give    any
		want    int
		wantMsg string // regexp the errmsg must match
	}{
		{"success", token, message("o1"), 0, "^ok$"},
		{"missing token", "", message("o1"), 41001, "^access_token missing"},
		{"unknown token", "nope", message("o1"), 40001, "^invalid credential"},
		{"unparsable body", token, "{not json", 47001, ""},
		{"empty touser", token, withField("touser", ""), 40003, ""},
		{"bad template", token, withField("template_id", "bad-tpl"), 40037, ""},
		{"missing page", token, withField("page", "missing/x"), 41030, ""},
		{"value too long", token, withData("thing3", strings.Repeat("字", 21)), 47003,
			`^argument invalid! data\.thing3\.value invalid rid: [0-9a-f]+-[0-9a-f]+-[0-9a-f]+$`},
		{"empty value", token, withData("thing3", ""), 47003,
			`^argument invalid! data\.thing3\.value is emtpy rid: `},
		{"control character", token, withData("thing3", "a\nb"), 47003, `data\.thing3\.value invalid`},
		{"enum is not checked", token, withData("enum1", "anything goes"), 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := b.send(t, tt.token, tt.give)
			if a.ErrCode != tt.want {
				t.Fatalf("errcode = %d (%s), want %d", a.ErrCode, a.ErrMsg, tt.want)
			}
			if tt.wantMsg != "" && !regexp.MustCompile(tt.wantMsg).MatchString(a.ErrMsg) {
				t.Fatalf("errmsg = %q, want it to match %s", a.ErrMsg, tt.wantMsg)
			}
		})
	}
}

func TestScriptedAnswers(t *testing.T) {
	b := setup(t, Options{})
	token := b.stableToken(t)
	tests := []struct {
		give       string
		wantStatus int
		wantCode   int
	}{
		{"refuse-1", 200, 43101},
		{"badopenid-1", 200, 40003},
		{"sensitive-1", 200, 45168},
		{"busy-1", 200, 43108},
		{"quota-1", 200, 45011},
		{"dailyquota-1", 200, 45009},
		{"unauthorized-1", 200, 48001},
		{"fail-1", 200, -1},
		{"http500-1", 500, 0},
		{"unknown-1", 200, 99999},
		{"o-normal", 200, 0},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			a := b.send(t, token, message(tt.give))
			if a.Status != tt.wantStatus || a.ErrCode != tt.wantCode {
				t.Fatalf("answer = HTTP %d errcode %d (%s), want HTTP %d errcode %d",
					a.Status, a.ErrCode, a.ErrMsg, tt.wantStatus, tt.wantCode)
			}
		})
	}
}

func TestFlakyFailsOnceThenSucceeds(t *testing.T) {
	b := setup(t, Options{})
	token := b.stableToken(t)
	for i, want := range []int{-1, 0, 0} {
		if a := b.send(t, token, message("flaky-a")); a.ErrCode != want {
			t.Fatalf("call %d: errcode %d, want %d", i+1, a.ErrCode, want)
		}
	}
	if a := b.send(t, token, message("flaky-b")); a.ErrCode != -1 {
		t.Fatalf("another flaky recipient's first call: errcode %d, want -1", a.ErrCode)
	}
}

func TestSuccessHasNineteenDigitMsgIDAndIsRecorded(t *testing.T) {
	b := setup(t, Options{Record: true})
	token := b.stableToken(t)
	a := b.send(t, token, message("o-rec"))
	if a.ErrCode != 0 || len(a.MsgID.String()) != 19 {
		t.Fatalf("answer = %+v, want success with a 19-digit msgid", a)
	}
	got := b.srv.Accepted()
	if len(got) != 1 {
		t.Fatalf("Accepted() has %d messages, want 1", len(got))
	}
	m := got[0]
	if m.ToUser != "o-rec" || m.TemplateID != "TPL" || m.AppID != DevWeChatAppID ||
		m.Data["thing1"] != "订单已发货" || m.MsgID != a.MsgID.String() {
		t.Fatalf("recorded %+v", m)
	}
	resp, err := http.Get(b.http.URL + "/sandbox/messages")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var served []Message
	if err := json.NewDecoder(resp.Body).Decode(&served); err != nil || len(served) != 1 || served[0].MsgID != m.MsgID {
		t.Fatalf("GET /sandbox/messages = %+v, %v", served, err)
	}
}

func TestTakeAcceptedForgetsWhatItReturns(t *testing.T) {
	b := setup(t, Options{Record: true})
	token := b.stableToken(t)
	b.send(t, token, message("o-first"))
	if got := b.srv.TakeAccepted(); len(got) != 1 || got[0].ToUser != "o-first" {
		t.Fatalf("TakeAccepted() = %+v, want the one send", got)
	}
	if got := b.srv.Accepted(); len(got) != 0 {
		t.Fatalf("Accepted() after TakeAccepted() = %+v, want none", got)
	}
	b.send(t, token, message("o-second"))
	if got := b.srv.TakeAccepted(); len(got) != 1 || got[0].ToUser != "o-second" {
		t.Fatalf("second TakeAccepted() = %+v, want only the later send", got)
	}
	if st := b.srv.Stats()["wechat"]; st.Accepted != 2 {
		t.Fatalf("stats accepted = %d, want 2: counters are not records", st.Accepted)
	}
}

func TestStatsAreServedAsJSON(t *testing.T) {
	b := setup(t, Options{})
	token := b.stableToken(t)
	b.send(t, token, message("o1"))
	b.send(t, token, message("refuse-1"))
	resp, err := http.Get(b.http.URL + "/sandbox/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	want := PlatformStats{
		TokenFetches: map[string]int64{WeChatTokenEndpoint: 0, WeChatStableTokenEndpoint: 1},
		SendCalls:    2, Accepted: 1,
	}
	got := st["wechat"]
	if got.SendCalls != want.SendCalls || got.Accepted != want.Accepted ||
		got.TokenFetches[WeChatStableTokenEndpoint] != 1 || got.TokenFetches[WeChatTokenEndpoint] != 0 {
		t.Fatalf("stats = %+v, want %+v", got, want)
	}
}

func TestRotateAndExpireControls(t *testing.T) {
	b := setup(t, Options{})
	token := b.stableToken(t)
	b.do(t, http.MethodPost, "/sandbox/wechat/rotate?appid="+DevWeChatAppID, nil)
	if a := b.send(t, token, message("o1")); a.ErrCode != 40001 {
		t.Fatalf("after rotate: errcode %d, want 40001", a.ErrCode)
	}
	next := b.stableToken(t)
	if next == token {
		t.Fatal("stable_token returned the rotated token")
	}
	b.do(t, http.MethodPost, "/sandbox/wechat/expire", nil)
	if a := b.send(t, next, message("o1")); a.ErrCode != 42001 {
		t.Fatalf("after expire: errcode %d, want 42001", a.ErrCode)
	}
	if again := b.stableToken(t); again == next {
		t.Fatal("stable_token returned the expired token")
	}
}

func TestOutageAnswers503UntilItEnds(t *testing.T) {
	b := setup(t, Options{})
	token := b.stableToken(t)
	b.do(t, http.MethodPost, "/sandbox/wechat/outage?seconds=30", nil)
	if a := b.send(t, token, message("o1")); a.Status != http.StatusServiceUnavailable {
		t.Fatalf("during outage: HTTP %d, want 503", a.Status)
	}
	b.clock.Add(31 * time.Second)
	if a := b.send(t, token, message("o1")); a.Status != 200 || a.ErrCode != 0 {
		t.Fatalf("after the outage: %+v", a)
	}
	b.do(t, http.MethodPost, "/sandbox/wechat/outage?seconds=60", nil)
	b.do(t, http.MethodPost, "/sandbox/wechat/outage?seconds=0", nil)
	if a := b.send(t, token, message("o1")); a.Status != 200 {
		t.Fatalf("after seconds=0: HTTP %d, want 200", a.Status)
	}
	if a := b.do(t, http.MethodPost, "/sandbox/nowhere/outage?seconds=1", nil); a.Status != http.StatusNotFound {
		t.Fatalf("unknown platform: HTTP %d, want 404", a.Status)
	}
}

func TestLatencyDelaysSends(t *testing.T) {
	const latency = 50 * time.Millisecond
	b := setup(t, Options{Latency: latency})
	token := b.stableToken(t)
	start := time.Now()
	b.send(t, token, message("o1"))
	if took := time.Since(start); took < latency {
		t.Fatalf("send took %v, want at least %v", took, latency)
	}
}

func TestDocAndHelpListEveryScript(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	help := ScriptsHelp()
	for _, s := range WeChatScripts() {
		fields := strings.Fields(s.Match) // "touser refuse…"
		key := fields[len(fields)-1]
		if !strings.Contains(string(doc), key) {
			t.Errorf("doc.go does not document %q", s.Match)
		}
		if !strings.Contains(help, s.Match) || !strings.Contains(help, s.Answer) {
			t.Errorf("ScriptsHelp() lacks %q -> %q", s.Match, s.Answer)
		}
	}
}

func TestValueRules(t *testing.T) {
	rs := newWXRules()
	tests := []struct {
		typ, give string
		want      bool
	}{
		{"thing", strings.Repeat("字", 20), true},
		{"thing", strings.Repeat("字", 21), false},
		{"thing", "tab\there", false},
		{"number", "3.14", true},
		{"number", "1a", false},
		{"number", strings.Repeat("9", 33), false},
		{"letter", "abcXYZ", true},
		{"letter", "abc1", false},
		{"symbol", "%+-", true},
		{"symbol", "%a", false},
		{"character_string", "AB-12_x", true},
		{"character_string", "AB中", false},
		{"time", "15:01", true},
		{"time", "2019年10月1日 15:01", true},
		{"time", "2019-10-01 15:01 ~ 2019-10-01 16:00", true},
		{"time", "下午三点", false},
		{"date", "2019年10月1日", true},
		{"date", "2018-01-01 12:00:00", true},
		{"date", "01-01 ~ 01-05", true},
		{"date", "tomorrow", false},
		{"amount", "¥100.50", true},
		{"amount", "100元", true},
		{"amount", "12345678901", false},
		{"phone_number", "+86-0766-66888866", true},
		{"phone_number", "call me", false},
		{"car_number", "粤A12345", true},
		{"car_number", "粤A1中345", false},
		{"name", "张三", true},
		{"name", "Zhang San", true},
		{"name", strings.Repeat("张", 11), false},
		{"phrase", "已发货", true},
		{"phrase", "OK", false},
		{"enum", "whatever", true},
	}
	for _, tt := range tests {
		if got := rs.valid(tt.typ, tt.give); got != tt.want {
			t.Errorf("valid(%q, %q) = %v, want %v", tt.typ, tt.give, got, tt.want)
		}
	}
}
