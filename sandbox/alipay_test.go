package sandbox

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Generating RSA keys is slow under the race detector: the package's
// tests share one set.
var testAlipayKeys = sync.OnceValues(NewAlipayKeys)

const testAlipayApp = "2021000000000042"

func alipayKeys(t *testing.T) AlipayKeys {
	t.Helper()
	k, err := testAlipayKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func alipaySetup(t *testing.T) (*testBundle, AlipayKeys) {
	t.Helper()
	k := alipayKeys(t)
	opts := k.Options(testAlipayApp)
	opts.Record = true
	return setup(t, opts), k
}

// aliAnswer is one gateway answer, split as a client must split it.
type aliAnswer struct {
	Status int
	Member string          // the response member present
	Raw    json.RawMessage // its exact bytes
	Body   aliBody
	Sign   string
	Text   string // the whole body
}

// testSign signs params with the app's private key as Alipay's SDKs do,
// written independently of the gateway's own code.
func testSign(t *testing.T, privPEM string, params url.Values) string {
	t.Helper()
	key, err := parseAlipayPrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "sign" && params.Get(k) != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k + "=" + params.Get(k))
	}
	sum := sha256.Sum256([]byte(b.String()))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// aliParams is a signed send request for toUser at the sandbox's time.
func (b *testBundle) aliParams(t *testing.T, k AlipayKeys, toUser string, data map[string]string) url.Values {
	t.Helper()
	d := map[string]map[string]string{}
	for kw, v := range data {
		d[kw] = map[string]string{"value": v}
	}
	dataJSON, _ := json.Marshal(d)
	biz, _ := json.Marshal(map[string]string{
		"to_open_id": toUser, "user_template_id": "tpl-1", "page": "pages/index?id=1", "data": string(dataJSON),
	})
	p := url.Values{
		"app_id":      {testAlipayApp},
		"method":      {AlipaySendMethod},
		"format":      {"JSON"},
		"charset":     {"utf-8"},
		"sign_type":   {"RSA2"},
		"timestamp":   {b.clock.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01-02 15:04:05")},
		"version":     {"1.0"},
		"biz_content": {string(biz)},
	}
	p.Set("sign", testSign(t, k.AppPrivateKey, p))
	return p
}

func (b *testBundle) alipay(t *testing.T, p url.Values) aliAnswer {
	t.Helper()
	resp, err := http.PostForm(b.http.URL+AlipayGatewayPath, p)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := aliAnswer{Status: resp.StatusCode, Text: string(raw)}
	if resp.StatusCode != http.StatusOK {
		return a
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatalf("answer %s: %v", raw, err)
	}
	for _, m := range []string{aliResponseKey, aliQueryKey, aliErrorKey} {
		if v, ok := top[m]; ok {
			a.Member, a.Raw = m, v
		}
	}
	if err := json.Unmarshal(a.Raw, &a.Body); err != nil {
		t.Fatalf("answer %s: %v", raw, err)
	}
	if s, ok := top["sign"]; ok {
		if err := json.Unmarshal(s, &a.Sign); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// verified reports whether a's sign verifies with the gateway's public key.
func (a aliAnswer) verified(t *testing.T, k AlipayKeys) bool {
	t.Helper()
	pub, err := parseAlipayPublicKey(k.GatewayPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return a.Sign != "" && aliVerify(pub, a.Raw, a.Sign)
}

func TestAlipayCanonicalString(t *testing.T) {
	got := aliCanonical(map[string]string{
		"sign": "x", "version": "1.0", "app_id": "2021", "biz_content": `{"a":"b&c=d"}`,
		"app_auth_token": "", "charset": "utf-8", "method": AlipaySendMethod, "sign_type": "RSA2",
		"timestamp": "2026-03-01 20:00:00",
	})
	want := `app_id=2021&biz_content={"a":"b&c=d"}&charset=utf-8&method=alipay.open.app.mini.templatemessage.send` +
		`&sign_type=RSA2&timestamp=2026-03-01 20:00:00&version=1.0`
	if got != want {
		t.Fatalf("canonical\n got %s\nwant %s", got, want)
	}
}

func TestAlipayAcceptsSignedRequestAndSignsAnswer(t *testing.T) {
	b, k := alipaySetup(t)
	a := b.alipay(t, b.aliParams(t, k, "user-1", map[string]string{"keyword1": "你好 <world> & more", "keyword2": strings.Repeat("长", 50)}))
	if a.Member != aliResponseKey || a.Body.Code != "10000" || a.Body.Msg != "Success" {
		t.Fatalf("answer %s", a.Text)
	}
	if !a.verified(t, k) {
		t.Fatalf("answer signature does not verify: %s", a.Text)
	}
	msgs := b.srv.Accepted()
	if len(msgs) != 1 || msgs[0].Platform != "alipay" || msgs[0].AppID != testAlipayApp || msgs[0].ToUser != "user-1" ||
		msgs[0].TemplateID != "tpl-1" || msgs[0].Page != "pages/index?id=1" || msgs[0].Data["keyword1"] != "你好 <world> & more" {
		t.Fatalf("accepted = %+v", msgs)
	}
	if st := b.srv.Stats()["alipay"]; st.SendCalls != 1 || st.Accepted != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestAlipayRejects(t *testing.T) {
	b, k := alipaySetup(t)
	other, err := NewAlipayKeys()
	if err != nil {
		t.Fatal(err)
	}
	good := func() url.Values { return b.aliParams(t, k, "user-1", map[string]string{"keyword1": "v"}) }
	resign := func(p url.Values) url.Values {
		p.Del("sign")
		p.Set("sign", testSign(t, k.AppPrivateKey, p))
		return p
	}
	withBiz := func(biz string) url.Values {
		p := good()
		p.Set("biz_content", biz)
		return resign(p)
	}
	tests := []struct {
		name       string
		give       url.Values
		wantMember string
		wantCode   string
		wantSub    string
		wantSigned bool
	}{
		{"unknown app is unsigned", func() url.Values { p := good(); p.Set("app_id", "2021999"); return resign(p) }(),
			aliErrorKey, "40002", "isv.invalid-app-id", false},
		{"signed with another key", func() url.Values {
			p := good()
			p.Del("sign")
			p.Set("sign", testSign(t, other.AppPrivateKey, p))
			return p
		}(), aliErrorKey, "40002", "isv.invalid-signature", true},
		{"tampered after signing", func() url.Values { p := good(); p.Set("version", "1.1"); return p }(),
			aliErrorKey, "40002", "isv.invalid-signature", true},
		{"missing sign", func() url.Values { p := good(); p.Del("sign"); return p }(),
			aliErrorKey, "40001", "isv.missing-signature", true},
		{"stale timestamp", func() url.Values {
			p := good()
			p.Set("timestamp", b.clock.Now().Add(-time.Hour).In(time.FixedZone("CST", 8*3600)).Format("2006-01-02 15:04:05"))
			return resign(p)
		}(), aliErrorKey, "40002", "isv.invalid-timestamp", true},
		{"timestamp in UTC, not Shanghai", func() url.Values {
			p := good()
			p.Set("timestamp", b.clock.Now().UTC().Format("2006-01-02 15:04:05"))
			return resign(p)
		}(), aliErrorKey, "40002", "isv.invalid-timestamp", true},
		{"other method", func() url.Values { p := good(); p.Set("method", "alipay.trade.pay"); return resign(p) }(),
			aliErrorKey, "40002", "isv.invalid-method", true},
		{"value over 50 characters", b.aliParams(t, k, "user-1", map[string]string{"keyword1": strings.Repeat("长", 51)}),
			aliResponseKey, "40004", "USER_KEYWORD_LENGTH_ERROR", true},
		{"empty value", b.aliParams(t, k, "user-1", map[string]string{"keyword1": ""}),
			aliResponseKey, "40004", "USER_TEMPLATE_LACK_KEYWORD", true},
		{"no keywords", b.aliParams(t, k, "user-1", map[string]string{}),
			aliResponseKey, "40004", "USER_TEMPLATE_LACK_KEYWORD", true},
		{"data is an object, not a string",
			withBiz(`{"to_open_id":"u","user_template_id":"t","data":{"k":{"value":"v"}}}`),
			aliResponseKey, "40002", "isv.invalid-parameter", true},
		{"no recipient", withBiz(`{"user_template_id":"t","data":"{\"k\":{\"value\":\"v\"}}"}`),
			aliResponseKey, "40001", "isv.missing-to-user", true},
		{"no template", withBiz(`{"to_user_id":"2088","data":"{\"k\":{\"value\":\"v\"}}"}`),
			aliResponseKey, "40001", "isv.missing-user-template-id", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := b.alipay(t, tt.give)
			if a.Member != tt.wantMember || a.Body.Code != tt.wantCode || a.Body.SubCode != tt.wantSub {
				t.Fatalf("answer %s, want %s %s %s", a.Text, tt.wantMember, tt.wantCode, tt.wantSub)
			}
			if got := a.verified(t, k); got != tt.wantSigned {
				t.Fatalf("signed and verified = %v, want %v: %s", got, tt.wantSigned, a.Text)
			}
		})
	}
	if n := b.srv.Stats()["alipay"].Accepted; n != 0 {
		t.Fatalf("accepted %d, want 0", n)
	}
}

func TestAlipayInvalidSignatureEchoesTheSignedString(t *testing.T) {
	b, k := alipaySetup(t)
	p := b.aliParams(t, k, "user-1", map[string]string{"keyword1": "v"})
	p.Set("sign", "AAAA")
	a := b.alipay(t, p)
	if a.Body.SubCode != "isv.invalid-signature" {
		t.Fatalf("answer %s", a.Text)
	}
	p.Del("sign")
	if want := aliCanonical(map[string]string{
		"app_id": p.Get("app_id"), "method": p.Get("method"), "format": p.Get("format"), "charset": p.Get("charset"),
		"sign_type": p.Get("sign_type"), "timestamp": p.Get("timestamp"), "version": p.Get("version"),
		"biz_content": p.Get("biz_content"),
	}); !strings.HasSuffix(a.Body.SubMsg, want) {
		t.Fatalf("sub_msg %q does not end with the signed string %q", a.Body.SubMsg, want)
	}
}

func TestAlipayScriptedAnswers(t *testing.T) {
	b, k := alipaySetup(t)
	tests := []struct {
		give     string
		wantCode string
		wantSub  string
	}{
		{"illegal-1", "40004", "USER_TEMPLATE_ILLEGAL"},
		{"lackkw-1", "40004", "USER_TEMPLATE_LACK_KEYWORD"},
		{"toolong-1", "40004", "USER_KEYWORD_LENGTH_ERROR"},
		{"formid-1", "40004", "FORM_ID_OVER_TIME"},
		{"bizfail-1", "40004", "SANDBOX_BUSINESS_FAILED"},
		{"unavailable-1", "20000", "isp.unknow-error"},
		{"user-1", "10000", ""},
	}
	for _, tt := range tests {
		a := b.alipay(t, b.aliParams(t, k, tt.give, map[string]string{"keyword1": "v"}))
		if a.Member != aliResponseKey || a.Body.Code != tt.wantCode || a.Body.SubCode != tt.wantSub || !a.verified(t, k) {
			t.Errorf("%s: answer %s, want %s %s, signed", tt.give, a.Text, tt.wantCode, tt.wantSub)
		}
	}
	if n := b.srv.Stats()["alipay"].Accepted; n != 1 {
		t.Fatalf("accepted %d, want 1", n)
	}
	if len(AlipayScripts()) != len(tests) {
		t.Fatalf("%d scripts, %d tested", len(AlipayScripts()), len(tests))
	}
}

func TestAlipayBadSignAnswerDoesNotVerifyAndIsNotAccepted(t *testing.T) {
	b, k := alipaySetup(t)
	a := b.alipay(t, b.aliParams(t, k, "badsign-1", map[string]string{"keyword1": "v"}))
	if a.Body.Code != "10000" || a.Sign == "" {
		t.Fatalf("answer %s, want a signed-looking success", a.Text)
	}
	if a.verified(t, k) {
		t.Fatal("badsign answer verifies")
	}
	if st := b.srv.Stats()["alipay"]; st.SendCalls != 1 || st.Accepted != 0 || len(b.srv.Accepted()) != 0 {
		t.Fatalf("stats = %+v, accepted %v", st, b.srv.Accepted())
	}
}

func TestAlipayOutageAnswers503(t *testing.T) {
	b, k := alipaySetup(t)
	if !b.srv.SetOutage("alipay", time.Minute) {
		t.Fatal("SetOutage(alipay) = false")
	}
	if a := b.alipay(t, b.aliParams(t, k, "user-1", map[string]string{"keyword1": "v"})); a.Status != http.StatusServiceUnavailable {
		t.Fatalf("status %d during outage", a.Status)
	}
	b.clock.Add(time.Minute)
	if a := b.alipay(t, b.aliParams(t, k, "user-1", map[string]string{"keyword1": "v"})); a.Body.Code != "10000" {
		t.Fatalf("after outage: %s", a.Text)
	}
}

func TestAlipayWithoutGatewayKeyAnswers500ForKnownApps(t *testing.T) {
	k := alipayKeys(t)
	b := setup(t, Options{AlipayApps: map[string]string{testAlipayApp: k.AppPublicKey}})
	a := b.alipay(t, b.aliParams(t, k, "user-1", map[string]string{"keyword1": "v"}))
	if a.Status != http.StatusInternalServerError || !strings.Contains(a.Text, "AlipayGatewayKey") {
		t.Fatalf("answer %d %s", a.Status, a.Text)
	}
}

func TestLoadOrGenerateAlipayKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	k, created, err := LoadOrGenerateAlipayKeys(dir)
	if err != nil || !created {
		t.Fatalf("first call: created %v, %v", created, err)
	}
	if err := k.check(); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{
		AlipayAppPrivateKeyFile: 0o600, AlipayGatewayPrivateKeyFile: 0o600,
		AlipayAppPublicKeyFile: 0o644, AlipayGatewayPublicKeyFile: 0o644,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	again, created, err := LoadOrGenerateAlipayKeys(dir)
	if err != nil || created || again != k {
		t.Fatalf("second call: created %v, same keys %v, %v", created, again == k, err)
	}
	if err := os.Remove(filepath.Join(dir, AlipayGatewayPublicKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrGenerateAlipayKeys(dir); err == nil || !strings.Contains(err.Error(), "3 of the 4") {
		t.Fatalf("partial dir: %v", err)
	}
	if s := k.String() + k.GoString(); strings.Contains(s, "PRIVATE") || strings.Contains(s, k.AppPrivateKey[40:80]) {
		t.Fatalf("String leaks a private key: %s", s)
	}
	snippet := AlipayConfigSnippet(DevAlipayAppID, "http://127.0.0.1:9100/gateway.do", dir)
	for _, want := range []string{DevAlipayAppID, filepath.Join(dir, AlipayAppPrivateKeyFile), filepath.Join(dir, AlipayGatewayPublicKeyFile), "/gateway.do"} {
		if !strings.Contains(snippet, want) {
			t.Errorf("snippet lacks %q:\n%s", want, snippet)
		}
	}
}

func TestAlipayDocAndHelpListEveryScript(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	help := AlipayScriptsHelp()
	for _, sc := range alipayScripts() {
		if !strings.Contains(string(doc), "\t"+sc.prefix+"…") {
			t.Errorf("doc.go does not list Alipay script %q", sc.prefix)
		}
		if !strings.Contains(help, sc.prefix+"…") {
			t.Errorf("AlipayScriptsHelp does not list %q", sc.prefix)
		}
	}
}
