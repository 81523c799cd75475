package alipay

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/httpclient"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/retry"
	"github.com/heraldhq/herald/sandbox"
)

func TestSendDeliversThroughTheSandbox(t *testing.T) {
	b := setup(t, nil)
	j := testJob("user-1")
	j.Data["keyword3"] = job.Value{Value: `<b>&"quoted"</b> 你好`}
	res, err := b.client.Send(t.Context(), j)
	if err != nil {
		t.Fatal(err)
	}
	if res.MsgID != "" {
		t.Fatalf("msgid %q: Alipay gives none", res.MsgID)
	}
	msgs := b.sb.Accepted()
	if len(msgs) != 1 {
		t.Fatalf("accepted %d", len(msgs))
	}
	m := msgs[0]
	if m.Platform != job.Alipay || m.AppID != testAppID || m.ToUser != "user-1" || m.TemplateID != "tpl-1" ||
		m.Page != j.Page || len(m.Data) != 3 || m.Data["keyword3"] != j.Data["keyword3"].Value || m.Data["keyword1"] != "订单已发货" {
		t.Fatalf("accepted %+v", m)
	}
}

func TestSendScriptedAnswers(t *testing.T) {
	b := setup(t, nil)
	tests := []struct {
		give     string
		want     decision
		wantCode string
	}{
		{"illegal-1", dead(job.ReasonInvalidTemplate), "USER_TEMPLATE_ILLEGAL"},
		{"lackkw-1", dead(job.ReasonInvalidTemplateData), "USER_TEMPLATE_LACK_KEYWORD"},
		{"toolong-1", dead(job.ReasonInvalidTemplateData), "USER_KEYWORD_LENGTH_ERROR"},
		{"formid-1", dead(job.ReasonPlatformRejected), "FORM_ID_OVER_TIME"},
		{"bizfail-1", dead(job.ReasonPlatformRejected), "SANDBOX_BUSINESS_FAILED"},
		{"unavailable-1", wantRetry, "isp.unknow-error"},
		{"badsign-1", wantRetry, ""},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			_, err := b.client.Send(t.Context(), testJob(tt.give))
			if got := decide(err); got != tt.want || retry.Decide(err).Detail.Code != tt.wantCode {
				t.Fatalf("Send = %v: %+v, want %+v code %q", err, retry.Decide(err), tt.want, tt.wantCode)
			}
			if !strings.HasPrefix(err.Error(), "alipay send tpl-1: ") {
				t.Fatalf("error %q is not wrapped", err)
			}
		})
	}
	if n := b.sb.Stats()["alipay"].Accepted; n != 0 {
		t.Fatalf("sandbox accepted %d", n)
	}
}

func TestSendBadSignatureIsTransientAndSaysWhy(t *testing.T) {
	b := setup(t, nil)
	_, err := b.client.Send(t.Context(), testJob("badsign-1"))
	if !errors.Is(err, ErrBadSignature) || decide(err) != wantRetry || !retry.Decide(err).Alert {
		t.Fatalf("Send = %v, want transient ErrBadSignature flagged for an error-level log", err)
	}
	for _, want := range []string{"signature does not verify", "outcome unknown", "10000"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestSendAppLevelAnswersPause(t *testing.T) {
	other := otherKeys(t)
	tests := []struct {
		name    string
		cfg     func(*Config)
		opts    []Option
		wantSub string
	}{
		{"unknown app_id (unsigned answer)", func(c *Config) { c.AppID = "2021999" }, nil, "isv.invalid-app-id"},
		{"wrong app private key", func(c *Config) { c.PrivateKey = other.AppPrivateKey }, nil, "isv.invalid-signature"},
		{"clock an hour slow", nil, []Option{WithClock(func() time.Time { return time.Now().Add(-time.Hour) })}, "isv.invalid-timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t, tt.cfg, tt.opts...)
			_, err := b.client.Send(t.Context(), testJob("user-1"))
			d := retry.Decide(err)
			if d.Action != retry.Pause || d.Detail.Code != tt.wantSub {
				t.Fatalf("Send = %v: %+v, want pause with %s", err, d, tt.wantSub)
			}
		})
	}
}

func TestSendRecipientField(t *testing.T) {
	tests := []struct {
		give      string
		wantField string
		wantOther string
	}{
		{RecipientOpenID, "to_open_id", "to_user_id"},
		{RecipientUserID, "to_user_id", "to_open_id"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			b := setup(t, func(c *Config) { c.Recipient = tt.give })
			form, err := b.client.request(testJob("2088000000000001"))
			if err != nil {
				t.Fatal(err)
			}
			var biz map[string]any
			if err := json.Unmarshal([]byte(form.Get("biz_content")), &biz); err != nil {
				t.Fatal(err)
			}
			if biz[tt.wantField] != "2088000000000001" || biz[tt.wantOther] != nil {
				t.Fatalf("biz_content %s", form.Get("biz_content"))
			}
			if _, err := b.client.Send(t.Context(), testJob("2088000000000001")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRequestParameters(t *testing.T) {
	// 2026-11-23 10:04:05 UTC is 18:04:05 in Asia/Shanghai.
	now := time.Date(2026, 11, 23, 10, 4, 5, 0, time.UTC)
	c := clientFor(t, "http://unused/gateway.do", nil, WithClock(func() time.Time { return now }))
	j := testJob("o-1")
	j.Data = map[string]job.Value{"keyword2": {Value: "a&b<c>"}, "keyword1": {Value: "你好"}}
	form, err := c.request(j)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"app_id":      testAppID,
		"method":      "alipay.open.app.mini.templatemessage.send",
		"format":      "JSON",
		"charset":     "utf-8",
		"sign_type":   "RSA2",
		"timestamp":   "2026-11-23 18:04:05",
		"version":     "1.0",
		"biz_content": `{"data":"{\"keyword1\":{\"value\":\"你好\"},\"keyword2\":{\"value\":\"a&b<c>\"}}","page":"pages/order/index?id=42","to_open_id":"o-1","user_template_id":"tpl-1"}`,
	}
	for k, v := range want {
		if got := form.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if len(form) != len(want)+1 {
		t.Errorf("form has %d parameters, want %d", len(form), len(want)+1)
	}
	// The sign is over the canonical string of exactly these parameters.
	pub, err := ParsePublicKeys(keys(t).AppPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !verify(pub, []byte(canonical(want)), form.Get("sign")) {
		t.Fatal("sign does not verify over the canonical string")
	}
	// data is a JSON string holding the keywords.
	var biz struct{ Data string }
	if err := json.Unmarshal([]byte(form.Get("biz_content")), &biz); err != nil {
		t.Fatal(err)
	}
	var data map[string]job.Value
	if err := json.Unmarshal([]byte(biz.Data), &data); err != nil || data["keyword2"].Value != "a&b<c>" {
		t.Fatalf("data %q: %v", biz.Data, err)
	}
}

func TestRequestIsFormEncodedPost(t *testing.T) {
	var got *http.Request
	done := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got = r
		done <- struct{}{}
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	c := clientFor(t, srv.URL+"/gateway.do", nil)
	_, _ = c.Send(t.Context(), testJob("o-1"))
	<-done
	if got.Method != http.MethodPost || !strings.HasPrefix(got.Header.Get("Content-Type"), "application/x-www-form-urlencoded") ||
		got.URL.Path != "/gateway.do" || got.URL.RawQuery != "" || got.PostForm.Get("sign") == "" {
		t.Fatalf("request %s %s %q, form %v", got.Method, got.URL, got.Header.Get("Content-Type"), got.PostForm)
	}
}

// signedAnswer is {"<member>":<raw>,"sign":"…"} signed with key.
func signedAnswer(t testing.TB, privPEM, member, raw string) string {
	t.Helper()
	key, err := ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(raw))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return `{"` + member + `":` + raw + `,"sign":"` + base64.StdEncoding.EncodeToString(sig) + `"}`
}

// TestForgedAndTamperedAnswersAreNotBelieved: an answer is believed only
// when its sign verifies over the exact response bytes with a configured
// key; otherwise the outcome is unknown and the job is retried.
func TestForgedAndTamperedAnswersAreNotBelieved(t *testing.T) {
	k, other := keys(t), otherKeys(t)
	success := `{"code":"10000","msg":"Success"}`
	illegal := `{"code":"40004","msg":"Business Failed","sub_code":"USER_TEMPLATE_ILLEGAL","sub_msg":"模板不合法"}`
	genuine := signedAnswer(t, k.GatewayPrivateKey, responseKey, illegal)
	srv, _ := fakeGateway(t, http.StatusOK, signedAnswer(t, k.GatewayPrivateKey, responseKey, success))
	if _, err := clientFor(t, srv.URL, nil).Send(t.Context(), testJob("o-1")); err != nil {
		t.Fatalf("genuine success: %v", err)
	}
	tests := []struct {
		name    string
		give    string
		want    decision
		wantErr error // nil: any
	}{
		{"genuine failure", genuine, dead(job.ReasonInvalidTemplate), nil},
		{"success signed with another key", signedAnswer(t, other.GatewayPrivateKey, responseKey, success), wantRetry, ErrBadSignature},
		{"failure turned into success", strings.Replace(genuine, illegal, success, 1), wantRetry, ErrBadSignature},
		{"one byte of the sub_code changed", strings.Replace(genuine, "ILLEGAL", "ILLEGAM", 1), wantRetry, ErrBadSignature},
		{"white space added inside the value", strings.Replace(genuine, `"code":"40004"`, `"code": "40004"`, 1), wantRetry, ErrBadSignature},
		{"sign not base64", `{"` + responseKey + `":` + success + `,"sign":"!!!"}`, wantRetry, ErrBadSignature},
		{"empty sign on success", `{"` + responseKey + `":` + success + `,"sign":""}`, wantRetry, ErrUnsigned},
		{"unsigned success", `{"` + responseKey + `":` + success + `}`, wantRetry, ErrUnsigned},
		{"unsigned business failure", `{"` + responseKey + `":` + illegal + `}`, wantRetry, ErrUnsigned},
		{"unsigned 40001", `{"error_response":{"code":"40001","msg":"Missing Required Arguments","sub_code":"isv.missing-method"}}`, wantRetry, ErrUnsigned},
		{"unsigned invalid-app-id", `{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id","sub_msg":"无效的AppID参数"}}`, wantPause, nil},
		{"unsigned 20000", `{"error_response":{"code":"20000","msg":"Service Currently Unavailable"}}`, wantRetry, nil},
		{"signed success in error_response", signedAnswer(t, k.GatewayPrivateKey, errorKey, success), wantRetry, nil},
		{"genuine answer, later duplicate member claims success",
			strings.Replace(genuine, `,"sign"`, `,"`+responseKey+`":`+success+`,"sign"`, 1), dead(job.ReasonInvalidTemplate), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeGateway(t, http.StatusOK, tt.give)
			c := clientFor(t, srv.URL, nil)
			_, err := c.Send(t.Context(), testJob("o-1"))
			if err == nil {
				t.Fatal("Send delivered on an answer it should not believe")
			}
			if got := decide(err); got != tt.want {
				t.Fatalf("Send = %v: %+v, want %+v", err, got, tt.want)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Send = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestUnsignedBusinessFailureKeepsAlipaysWords(t *testing.T) {
	srv, _ := fakeGateway(t, http.StatusOK, `{"`+responseKey+`":{"code":"40004","msg":"Business Failed","sub_code":"USER_TEMPLATE_ILLEGAL","sub_msg":"x"}}`)
	_, err := clientFor(t, srv.URL, nil).Send(t.Context(), testJob("o-1"))
	if d := retry.Decide(err); d.Action != retry.Retry || d.Detail.Code != "USER_TEMPLATE_ILLEGAL" || d.Detail.Message != "x" {
		t.Fatalf("Send = %v: %+v", err, d)
	}
}

// TestKeyRotation: with the old and the new Alipay key configured, answers
// signed with either verify; with only one, the other's are refused.
func TestKeyRotation(t *testing.T) {
	k, other := keys(t), otherKeys(t)
	success := `{"code":"10000","msg":"Success"}`
	both := k.GatewayPublicKey + other.GatewayPublicKey
	tests := []struct {
		name     string
		signer   string
		verifier string
		wantOK   bool
	}{
		{"old key, both configured", k.GatewayPrivateKey, both, true},
		{"new key, both configured", other.GatewayPrivateKey, both, true},
		{"new key, old configured", other.GatewayPrivateKey, k.GatewayPublicKey, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeGateway(t, http.StatusOK, signedAnswer(t, tt.signer, responseKey, success))
			c := clientFor(t, srv.URL, func(c *Config) { c.AlipayPublicKey = tt.verifier })
			_, err := c.Send(t.Context(), testJob("o-1"))
			if (err == nil) != tt.wantOK {
				t.Fatalf("Send = %v, want ok %v", err, tt.wantOK)
			}
		})
	}
}

// TestSendTransientFailures covers C.1's "timeout / 5xx / connection
// error" row and answers that cannot be parsed: the outcome is unknown.
func TestSendTransientFailures(t *testing.T) {
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		return "http://" + addr + "/gateway.do"
	}()
	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(block)
	status := func(code int, body string) string {
		srv, _ := fakeGateway(t, code, body)
		return srv.URL
	}
	tests := []struct {
		name    string
		url     string
		timeout time.Duration
		want    string
	}{
		{"connection refused", closed, 0, "connect"},
		{"timeout", slow.URL, 100 * time.Millisecond, "deadline exceeded"},
		{"HTTP 502", status(http.StatusBadGateway, "<html>bad gateway</html>"), 0, "http 502"},
		{"HTTP 503", status(http.StatusServiceUnavailable, ""), 0, "http 503"},
		{"HTTP 404", status(http.StatusNotFound, "not found"), 0, "http 404"},
		{"not JSON", status(http.StatusOK, "<html>maintenance</html>"), 0, "unparsable answer"},
		{"truncated JSON", status(http.StatusOK, `{"`+responseKey+`":{"code":"100`), 0, "unparsable answer"},
		{"no response member", status(http.StatusOK, `{"sign":"x"}`), 0, "unparsable answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clientFor(t, tt.url, func(c *Config) {
				if tt.timeout > 0 {
					c.Timeout = tt.timeout
				}
			})
			_, err := c.Send(t.Context(), testJob("o-1"))
			if err == nil || decide(err) != wantRetry {
				t.Fatalf("Send = %v, want transient", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

func TestSendHonoursContextCancellation(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := clientFor(t, srv.URL, nil).Send(ctx, testJob("o-1"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Send = %v, want context.Canceled", err)
	}
}

func TestSecretsStayOutOfErrorsAndStrings(t *testing.T) {
	k := keys(t)
	body := bareBase64(t, k.AppPrivateKey)
	cfg := Config{AppID: testAppID, PrivateKey: k.AppPrivateKey, AlipayPublicKey: k.GatewayPublicKey}
	for _, s := range []string{cfg.String(), cfg.GoString(), fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg)} {
		if strings.Contains(s, body[30:60]) || strings.Contains(s, "PRIVATE") {
			t.Fatalf("config text leaks the private key: %s", s)
		}
	}
	bad := cfg
	bad.PrivateKey = body[:300] + "@" + body[300:]
	if _, err := New(bad, nil); err == nil || strings.Contains(err.Error(), body[30:60]) {
		t.Fatalf("New = %v", err)
	}
	// A failed call's error never carries the request (and so no sign).
	srv, _ := fakeGateway(t, http.StatusInternalServerError, "oops")
	c := clientFor(t, srv.URL, nil)
	form, err := c.request(testJob("o-1"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(t.Context(), testJob("o-1"))
	if err == nil || strings.Contains(err.Error(), form.Get("sign")[:20]) || strings.Contains(err.Error(), body[30:60]) {
		t.Fatalf("Send = %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	k := keys(t)
	good := Config{AppID: testAppID, PrivateKey: k.AppPrivateKey, AlipayPublicKey: k.GatewayPublicKey}
	tests := []struct {
		name string
		give func(*Config)
		want string
	}{
		{"no app_id", func(c *Config) { c.AppID = "" }, "app_id is required"},
		{"no private key", func(c *Config) { c.PrivateKey = "" }, "private_key is required"},
		{"no alipay key", func(c *Config) { c.AlipayPublicKey = "" }, "alipay_public_key is required"},
		{"bad gateway", func(c *Config) { c.Gateway = "ftp://x" }, "gateway"},
		{"bad recipient", func(c *Config) { c.Recipient = "phone" }, "recipient"},
		{"private key is a public key", func(c *Config) { c.PrivateKey = k.AppPublicKey }, "private key"},
		{"alipay key is junk", func(c *Config) { c.AlipayPublicKey = "junk" }, "alipay_public_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.give(&cfg)
			if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want %q", err, tt.want)
			}
		})
	}
	c, err := New(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.AppID() != testAppID || c.cfg.Gateway != DefaultGateway || c.cfg.Recipient != RecipientOpenID || c.cfg.Timeout != 10*time.Second {
		t.Fatalf("defaults: %v", c.cfg)
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestNewWithReplacedDefaultTransport: a process may swap
// http.DefaultTransport for another RoundTripper; New must not panic.
// Not parallel: it changes a net/http global.
func TestNewWithReplacedDefaultTransport(t *testing.T) {
	orig := http.DefaultTransport
	t.Cleanup(func() { http.DefaultTransport = orig })
	http.DefaultTransport = roundTripperFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("not used")
	})
	b := setup(t, nil)
	c := clientFor(t, b.srv.URL+sandbox.AlipayGatewayPath, nil)
	if _, err := c.Send(t.Context(), testJob("user-1")); err != nil {
		t.Fatal(err)
	}
}

// A redirect from the gateway is never followed, even by a client that
// would: the signed request never reaches the Location's host, and the
// send fails as a transient error naming the redirect.
func TestRedirectsAreNeverFollowed(t *testing.T) {
	var hits atomic.Int64
	away := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(away.Close)
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, away.URL+r.URL.RequestURI(), status)
		}))
		t.Cleanup(origin.Close)
		for _, hc := range []*http.Client{nil, http.DefaultClient} {
			b := setup(t, func(c *Config) { c.Gateway = origin.URL + sandbox.AlipayGatewayPath })
			c, err := New(b.client.cfg, hc)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Send(t.Context(), testJob("user-1"))
			if d := retry.Decide(err); err == nil || d.Action != retry.Retry {
				t.Fatalf("%d: send = %v (%v), want a transient failure", status, err, d.Action)
			}
			if want := fmt.Sprintf("answered %d %s to %s", status, http.StatusText(status), away.URL); !errors.Is(err, httpclient.ErrRedirect) ||
				!strings.Contains(err.Error(), want) {
				t.Errorf("%d: error %q, want ErrRedirect saying %q", status, err, want)
			}
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the Location host got %d requests", n)
	}
}
