package sandbox

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// Alipay gateway constants.
const (
	// AlipayGatewayPath is where the sandbox serves Alipay's OpenAPI v2
	// gateway.
	AlipayGatewayPath = "/gateway.do"
	// AlipaySendMethod sends a subscription message.
	AlipaySendMethod = "alipay.open.app.mini.templatemessage.send"
	// AlipayQueryMethod answers a user's subscriptions to up to 3
	// templates, from the relations set with [Server.SetAlipayRelation].
	AlipayQueryMethod = "alipay.open.app.messagetemplate.subscribe.query"
	// DevAlipayAppID is the Alipay app herald dev and the config snippet
	// of herald sandbox --alipay-keys use.
	DevAlipayAppID = "2021000000000001"
	// AlipayClockSkew is how far a request's timestamp may be from the
	// sandbox's clock before it answers isv.invalid-timestamp (Alipay's
	// own tolerance is not documented).
	AlipayClockSkew = 10 * time.Minute
)

// Alipay answer keys and limits (platform-apis B.2, B.3).
const (
	aliResponseKey  = "alipay_open_app_mini_templatemessage_send_response"
	aliQueryKey     = "alipay_open_app_messagetemplate_subscribe_query_response"
	aliErrorKey     = "error_response"
	aliMaxValue     = 50
	aliMaxData      = 2048
	aliMaxPage      = 128
	aliTimeLayout   = "2006-01-02 15:04:05"
	aliSignatureMsg = "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为："
)

// aliScript is a scripted answer keyed on the recipient prefix.
type aliScript struct {
	prefix  string
	answer  string // for the documentation
	body    aliBody
	badSign bool // answer success with a signature that does not verify
}

// alipayScripts are checked in order; the first matching prefix wins.
func alipayScripts() []aliScript {
	biz := func(sub, msg string) aliBody {
		return aliBody{Code: "40004", Msg: "Business Failed", SubCode: sub, SubMsg: msg}
	}
	return []aliScript{
		{prefix: "illegal", answer: "40004 USER_TEMPLATE_ILLEGAL (bad or deleted template)",
			body: biz("USER_TEMPLATE_ILLEGAL", "模板不合法")},
		{prefix: "lackkw", answer: "40004 USER_TEMPLATE_LACK_KEYWORD (a keyword is missing)",
			body: biz("USER_TEMPLATE_LACK_KEYWORD", "模板缺少关键词")},
		{prefix: "toolong", answer: "40004 USER_KEYWORD_LENGTH_ERROR (a value is over 50 characters)",
			body: biz("USER_KEYWORD_LENGTH_ERROR", "关键词长度超出限制")},
		{prefix: "formid", answer: "40004 FORM_ID_OVER_TIME (form id older than 7 days)",
			body: biz("FORM_ID_OVER_TIME", "formId已过期")},
		{prefix: "bizfail", answer: "40004 SANDBOX_BUSINESS_FAILED (a sub_code herald does not know)",
			body: biz("SANDBOX_BUSINESS_FAILED", "sandbox: a business failure herald does not know")},
		{prefix: "unavailable", answer: "20000 isp.unknow-error (service currently unavailable)",
			body: aliBody{Code: "20000", Msg: "Service Currently Unavailable", SubCode: "isp.unknow-error", SubMsg: "系统繁忙"}},
		{prefix: "badsign", answer: "success whose sign does not verify (a forged answer; not counted as accepted)",
			badSign: true},
	}
}

// AlipayScripts lists the Alipay scripted answers. The recipient rules
// apply to a call that passes every other check (app, signature,
// parameters, keyword values).
func AlipayScripts() []Script {
	out := make([]Script, 0, 8)
	for _, sc := range alipayScripts() {
		out = append(out, Script{Match: "to_open_id/to_user_id " + sc.prefix + "…", Answer: sc.answer})
	}
	return out
}

// AlipayScriptsHelp describes the Alipay gateway's answers, for herald
// sandbox --help.
func AlipayScriptsHelp() string {
	var b strings.Builder
	b.WriteString("Alipay scripted answers (POST " + AlipayGatewayPath + ", " + AlipaySendMethod + "\nand " + AlipayQueryMethod + "):\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, s := range AlipayScripts() {
		fmt.Fprintf(tw, "  %s\t%s\n", s.Match, s.Answer)
	}
	fmt.Fprintf(tw, "  %s\t%s\n", "any other recipient", `success {"code":"10000","msg":"Success"}, signed`)
	_ = tw.Flush()
	b.WriteString(`Unknown app_id -> 40002 isv.invalid-app-id (unsigned); a request signature that does not
verify with the app's public key -> 40002 isv.invalid-signature; timestamp more than 10 min
off -> 40002 isv.invalid-timestamp; a value over 50 characters -> USER_KEYWORD_LENGTH_ERROR,
an empty one or empty data -> USER_TEMPLATE_LACK_KEYWORD. Answers are signed with the
gateway's key: herald sandbox --alipay-keys DIR writes a matching key set.
The query answers the relations set with
  POST /sandbox/alipay/subscribe?app_id=&user=&template=T1&state=1[&subscribe_type=onetime][&keep_state=0][&show=true]
(state is the subscribe_state to report, "1" by default; templates never set are
omitted, as Alipay omits them). The recipient rules above apply to its open_id or
user_id too. With --grants, setting state 1 on a onetime template adds a grant, an
accepted send takes one, and the relation is gone with the last.
`)
	return b.String()
}

// aliBody is a response value. Field order is Alipay's.
type aliBody struct {
	Code    string `json:"code"`
	Msg     string `json:"msg"`
	SubCode string `json:"sub_code,omitempty"`
	SubMsg  string `json:"sub_msg,omitempty"`
}

// alipayAPI fakes Alipay's OpenAPI v2 gateway for the send and the
// subscription query.
type alipayAPI struct {
	*platform
	s          *Server
	scripts    []aliScript
	subs       *aliSubs                  // the relations the query reports
	queryCalls atomic.Int64              // subscribe.query calls, whatever the answer
	apps       map[string]*rsa.PublicKey // never changes after New
	key        *rsa.PrivateKey           // signs answers
	// keyErr is a key in Options that does not parse, or a missing
	// gateway key while apps are configured: every call from a known app
	// then answers HTTP 500 saying so.
	keyErr error
}

func newAlipay(s *Server, opts Options) *alipayAPI {
	a := &alipayAPI{
		platform: newPlatform("alipay"),
		s:        s,
		scripts:  alipayScripts(),
		subs:     newAliSubs(opts.Grants),
		apps:     make(map[string]*rsa.PublicKey, len(opts.AlipayApps)),
	}
	for id, pub := range opts.AlipayApps {
		k, err := parseAlipayPublicKey(pub)
		if err != nil {
			a.keyErr = errors.Join(a.keyErr, fmt.Errorf("Options.AlipayApps[%s]: %w", id, err))
			continue
		}
		a.apps[id] = k
	}
	switch {
	case opts.AlipayGatewayKey != "":
		k, err := parseAlipayPrivateKey(opts.AlipayGatewayKey)
		if err != nil {
			a.keyErr = errors.Join(a.keyErr, fmt.Errorf("Options.AlipayGatewayKey: %w", err))
		}
		a.key = k
	case len(opts.AlipayApps) > 0:
		a.keyErr = errors.Join(a.keyErr, errors.New("Options.AlipayGatewayKey is not set"))
	}
	return a
}

func (a *alipayAPI) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+AlipayGatewayPath, a.handleGateway)
	mux.HandleFunc("POST /sandbox/alipay/subscribe", a.handleSubscribe)
}

// aliRequest is the part of biz_content the sandbox reads. Data is raw so
// that a data that is not a JSON string can be told apart.
type aliRequest struct {
	ToOpenID       string          `json:"to_open_id"`
	ToUserID       string          `json:"to_user_id"`
	UserTemplateID string          `json:"user_template_id"`
	Page           string          `json:"page"`
	Data           json.RawMessage `json:"data"`
}

func (a *alipayAPI) handleGateway(rw http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(rw, r.Body, maxRequest)
	if err := r.ParseForm(); err != nil {
		a.sendCalls.Add(1)
		http.Error(rw, "bad form: "+err.Error(), http.StatusBadRequest)
		return
	}
	// Queries are counted apart, so that SendCalls still counts sends.
	if r.Form.Get("method") == AlipayQueryMethod {
		a.queryCalls.Add(1)
	} else {
		a.sendCalls.Add(1)
	}
	now := a.s.now()
	if a.inOutage(now) {
		http.Error(rw, "503 Service Temporarily Unavailable", http.StatusServiceUnavailable)
		return
	}
	delay(r.Context(), a.s.latency)
	params := make(map[string]string, len(r.Form))
	for k, v := range r.Form {
		if len(v) > 0 {
			params[k] = v[0]
		}
	}
	// The app first: without it the gateway knows no key, so this answer
	// alone is unsigned.
	appKey, ok := a.apps[params["app_id"]]
	if !ok {
		a.write(rw, nil, aliErrorKey, aliBody{Code: "40002", Msg: "Invalid Arguments",
			SubCode: "isv.invalid-app-id", SubMsg: "无效的AppID参数"}, false)
		return
	}
	if a.keyErr != nil {
		http.Error(rw, "sandbox misconfigured: "+a.keyErr.Error(), http.StatusInternalServerError)
		return
	}
	key := a.key
	gw := func(code, sub, msg string) {
		text := "Invalid Arguments"
		if code == "40001" {
			text = "Missing Required Arguments"
		}
		a.write(rw, key, aliErrorKey, aliBody{Code: code, Msg: text, SubCode: sub, SubMsg: msg}, false)
	}
	switch {
	case params["sign"] == "":
		gw("40001", "isv.missing-signature", "缺少签名参数")
		return
	case params["sign_type"] != "RSA2":
		gw("40002", "isv.invalid-signature-type", "无效的签名类型")
		return
	case params["timestamp"] == "":
		gw("40001", "isv.missing-timestamp", "缺少时间戳参数")
		return
	}
	ts, err := time.ParseInLocation(aliTimeLayout, params["timestamp"], time.FixedZone("CST", 8*60*60))
	if err != nil || ts.Sub(now).Abs() > AlipayClockSkew {
		gw("40002", "isv.invalid-timestamp", "非法的时间戳参数")
		return
	}
	content := aliCanonical(params)
	if !aliVerify(appKey, []byte(content), params["sign"]) {
		gw("40002", "isv.invalid-signature", aliSignatureMsg+content)
		return
	}
	switch {
	case params["method"] != AlipaySendMethod && params["method"] != AlipayQueryMethod:
		gw("40002", "isv.invalid-method", "不存在的方法名")
		return
	case params["format"] != "" && !strings.EqualFold(params["format"], "JSON"):
		gw("40002", "isv.invalid-format", "无效的数据格式")
		return
	case params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8"):
		gw("40002", "isv.invalid-charset", "字符集错误")
		return
	case params["version"] != "1.0":
		gw("40002", "isv.invalid-version", "无效的版本号")
		return
	}
	if params["method"] == AlipayQueryMethod {
		a.query(rw, key, params)
		return
	}
	a.send(rw, key, params)
}

// script is the scripted answer for recipient to, if any.
func (a *alipayAPI) script(to string) (aliScript, bool) {
	for _, sc := range a.scripts {
		if strings.HasPrefix(to, sc.prefix) {
			return sc, true
		}
	}
	return aliScript{}, false
}

// failer answers a method's business error under its response key.
func (a *alipayAPI) failer(rw http.ResponseWriter, key *rsa.PrivateKey, responseKey string) func(code, sub, msg string) {
	return func(code, sub, msg string) {
		text := map[string]string{"40001": "Missing Required Arguments", "40002": "Invalid Arguments", "40004": "Business Failed"}[code]
		a.write(rw, key, responseKey, aliBody{Code: code, Msg: text, SubCode: sub, SubMsg: msg}, false)
	}
}

// bizContent decodes a method's biz_content into v, or fails as the
// gateway does and reports false.
func bizContent(params map[string]string, v any, fail func(code, sub, msg string)) bool {
	if params["biz_content"] == "" {
		fail("40001", "isv.missing-biz-content", "缺少biz_content参数")
		return false
	}
	if err := json.Unmarshal([]byte(params["biz_content"]), v); err != nil {
		fail("40002", "isv.invalid-parameter", "biz_content不是合法的JSON")
		return false
	}
	return true
}

// send checks biz_content and answers under the method's response key.
func (a *alipayAPI) send(rw http.ResponseWriter, key *rsa.PrivateKey, params map[string]string) {
	fail := a.failer(rw, key, aliResponseKey)
	var req aliRequest
	if !bizContent(params, &req, fail) {
		return
	}
	to := req.ToOpenID
	switch {
	case req.ToOpenID != "" && req.ToUserID != "":
		fail("40002", "isv.invalid-parameter", "to_open_id与to_user_id不能同时传入")
		return
	case req.ToOpenID == "" && req.ToUserID == "":
		fail("40001", "isv.missing-to-user", "缺少to_open_id或to_user_id")
		return
	case req.ToOpenID == "":
		to = req.ToUserID
	}
	if req.UserTemplateID == "" {
		fail("40001", "isv.missing-user-template-id", "缺少user_template_id")
		return
	}
	if utf8.RuneCountInString(req.Page) > aliMaxPage {
		fail("40002", "isv.invalid-parameter", "page超过128个字符")
		return
	}
	var dataStr string
	if len(req.Data) == 0 || json.Unmarshal(req.Data, &dataStr) != nil {
		fail("40002", "isv.invalid-parameter", "data必须是JSON字符串")
		return
	}
	if len(dataStr) > aliMaxData {
		fail("40002", "isv.invalid-parameter", "data超过2048个字符")
		return
	}
	var data map[string]struct {
		Value *string `json:"value"`
	}
	if err := json.Unmarshal([]byte(dataStr), &data); err != nil {
		fail("40002", "isv.invalid-parameter", "data不是合法的JSON")
		return
	}
	values := make(map[string]string, len(data))
	for k, v := range data {
		if v.Value == nil || *v.Value == "" {
			fail("40004", "USER_TEMPLATE_LACK_KEYWORD", "模板缺少关键词: "+k)
			return
		}
		if utf8.RuneCountInString(*v.Value) > aliMaxValue {
			fail("40004", "USER_KEYWORD_LENGTH_ERROR", "关键词长度超出限制: "+k)
			return
		}
		values[k] = *v.Value
	}
	if len(values) == 0 {
		fail("40004", "USER_TEMPLATE_LACK_KEYWORD", "模板缺少关键词")
		return
	}
	if sc, ok := a.script(to); ok {
		if sc.badSign {
			a.write(rw, key, aliResponseKey, aliBody{Code: "10000", Msg: "Success"}, true)
			return
		}
		a.write(rw, key, aliResponseKey, sc.body, false)
		return
	}
	a.accepted.Add(1)
	a.subs.use(aliSubKey{params["app_id"], to, req.UserTemplateID})
	if a.s.record {
		a.s.accept(Message{Platform: "alipay", AppID: params["app_id"], ToUser: to,
			TemplateID: req.UserTemplateID, Page: req.Page, Data: values})
	}
	a.write(rw, key, aliResponseKey, aliBody{Code: "10000", Msg: "Success"}, false)
}

// write answers {"<member>":<body>,"sign":"…"}, signing the body's exact
// bytes with key (no sign when key is nil). badSign corrupts the signature.
func (a *alipayAPI) write(rw http.ResponseWriter, key *rsa.PrivateKey, member string, body any, badSign bool) {
	inner, err := json.Marshal(body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	var b strings.Builder
	b.Grow(len(inner) + 400)
	b.WriteString(`{"` + member + `":`)
	b.Write(inner)
	if key != nil {
		sig, err := aliSign(key, inner)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		if badSign {
			sig[len(sig)/2] ^= 0x5a
		}
		b.WriteString(`,"sign":"` + base64.StdEncoding.EncodeToString(sig) + `"`)
	}
	b.WriteString("}")
	rw.Header().Set("Content-Type", "text/html;charset=utf-8") // as Alipay labels it
	_, _ = rw.Write([]byte(b.String()))
}

// aliCanonical is the string Alipay checks a request signature over:
// every parameter but sign and empty ones, sorted by key, k=v joined by &
// with raw values.
func aliCanonical(params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k, v := range params {
		if k != "sign" && v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + params[k]
	}
	return strings.Join(parts, "&")
}

func aliSign(key *rsa.PrivateKey, msg []byte) ([]byte, error) {
	sum := sha256.Sum256(msg)
	return rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
}

func aliVerify(key *rsa.PublicKey, msg []byte, sig string) bool {
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	sum := sha256.Sum256(msg)
	return rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], raw) == nil
}

// keyDER returns a key's DER from PEM or bare base64.
func keyDER(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "-----BEGIN") {
		b, _ := pem.Decode([]byte(s))
		if b == nil {
			return nil, errors.New("malformed PEM")
		}
		return b.Bytes, nil
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil || len(der) == 0 {
		return nil, errors.New("neither PEM nor base64")
	}
	return der, nil
}

func parseAlipayPublicKey(s string) (*rsa.PublicKey, error) {
	der, err := keyDER(s)
	if err != nil {
		return nil, err
	}
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		if rk, ok := k.(*rsa.PublicKey); ok {
			return rk, nil
		}
		return nil, errors.New("not an RSA public key")
	}
	if k, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("not an RSA public key")
}

func parseAlipayPrivateKey(s string) (*rsa.PrivateKey, error) {
	der, err := keyDER(s)
	if err != nil {
		return nil, err
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		if rk, ok := k.(*rsa.PrivateKey); ok {
			return rk, nil
		}
	}
	return nil, errors.New("not an RSA private key (PKCS#1 or PKCS#8)")
}

func publicPEM(k *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

func privatePEM(k *rsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// AlipayKeys is a matching set of keys for an Alipay app talking to the
// sandbox gateway, PEM encoded. herald's alipay config takes AppPrivateKey
// (private_key) and GatewayPublicKey (alipay_public_key); the sandbox
// takes AppPublicKey (in Options.AlipayApps) and GatewayPrivateKey
// (Options.AlipayGatewayKey). They are for development only.
type AlipayKeys struct {
	AppPrivateKey     string // PKCS#8 PEM
	AppPublicKey      string // X.509 SubjectPublicKeyInfo PEM
	GatewayPrivateKey string // PKCS#8 PEM
	GatewayPublicKey  string // X.509 SubjectPublicKeyInfo PEM
}

// String hides the private keys.
func (k AlipayKeys) String() string {
	return "{AppPrivateKey:<secret> AppPublicKey:<set> GatewayPrivateKey:<secret> GatewayPublicKey:<set>}"
}

// GoString hides the private keys from %#v too.
func (k AlipayKeys) GoString() string { return "sandbox.AlipayKeys" + k.String() }

// Options returns sandbox options that know appID with these keys.
func (k AlipayKeys) Options(appID string) Options {
	return Options{AlipayApps: map[string]string{appID: k.AppPublicKey}, AlipayGatewayKey: k.GatewayPrivateKey}
}

// NewAlipayKeys generates two RSA-2048 key pairs in memory: the app's and
// the gateway's.
func NewAlipayKeys() (AlipayKeys, error) {
	var k AlipayKeys
	for _, dst := range []struct{ priv, pub *string }{
		{&k.AppPrivateKey, &k.AppPublicKey},
		{&k.GatewayPrivateKey, &k.GatewayPublicKey},
	} {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return AlipayKeys{}, fmt.Errorf("generate alipay key: %w", err)
		}
		if *dst.priv, err = privatePEM(key); err != nil {
			return AlipayKeys{}, err
		}
		if *dst.pub, err = publicPEM(&key.PublicKey); err != nil {
			return AlipayKeys{}, err
		}
	}
	return k, nil
}

// Files LoadOrGenerateAlipayKeys keeps in its directory. The private keys
// are written with mode 0600.
const (
	AlipayAppPrivateKeyFile     = "app_private_key.pem"
	AlipayAppPublicKeyFile      = "app_public_key.pem"
	AlipayGatewayPrivateKeyFile = "sandbox_gateway_private_key.pem"
	AlipayGatewayPublicKeyFile  = "alipay_public_key.pem"
)

// LoadOrGenerateAlipayKeys returns the key set kept in dir, generating and
// writing it when dir holds none of its files (created reports that), so
// a sandbox restarted on the same dir keeps matching herald's config. A
// dir holding only some of the files, or keys that do not pair up, is an
// error: nothing is overwritten.
func LoadOrGenerateAlipayKeys(dir string) (k AlipayKeys, created bool, err error) {
	files := []struct {
		name string
		dst  *string
		mode fs.FileMode
	}{
		{AlipayAppPrivateKeyFile, &k.AppPrivateKey, 0o600},
		{AlipayAppPublicKeyFile, &k.AppPublicKey, 0o644},
		{AlipayGatewayPrivateKeyFile, &k.GatewayPrivateKey, 0o600},
		{AlipayGatewayPublicKeyFile, &k.GatewayPublicKey, 0o644},
	}
	present := 0
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		switch {
		case err == nil:
			*f.dst = string(b)
			present++
		case !errors.Is(err, fs.ErrNotExist):
			return AlipayKeys{}, false, fmt.Errorf("alipay keys: %w", err)
		}
	}
	switch present {
	case len(files):
		if err := k.check(); err != nil {
			return AlipayKeys{}, false, fmt.Errorf("alipay keys in %s: %w", dir, err)
		}
		return k, false, nil
	case 0:
	default:
		return AlipayKeys{}, false, fmt.Errorf("alipay keys: %s holds %d of the 4 key files; remove them or restore the rest", dir, present)
	}
	if k, err = NewAlipayKeys(); err != nil {
		return AlipayKeys{}, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return AlipayKeys{}, false, fmt.Errorf("alipay keys: %w", err)
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, []byte(*f.dst), f.mode); err != nil {
			return AlipayKeys{}, false, fmt.Errorf("alipay keys: %w", err)
		}
	}
	return k, true, nil
}

// check reports keys that do not parse or do not pair up.
func (k AlipayKeys) check() error {
	pairs := []struct {
		what      string
		priv, pub string
	}{
		{"app", k.AppPrivateKey, k.AppPublicKey},
		{"gateway", k.GatewayPrivateKey, k.GatewayPublicKey},
	}
	for _, p := range pairs {
		priv, err := parseAlipayPrivateKey(p.priv)
		if err != nil {
			return fmt.Errorf("%s private key: %w", p.what, err)
		}
		pub, err := parseAlipayPublicKey(p.pub)
		if err != nil {
			return fmt.Errorf("%s public key: %w", p.what, err)
		}
		if !priv.PublicKey.Equal(pub) {
			return fmt.Errorf("%s public key does not match its private key", p.what)
		}
	}
	return nil
}

// AlipayConfigSnippet is the apps section of a herald config that sends
// as appID through the sandbox gateway at gatewayURL (ending in
// /gateway.do) with the key files LoadOrGenerateAlipayKeys keeps in dir.
// The paths are made absolute: herald reads relative *_file paths from the
// config file's directory, not from where the sandbox was started.
func AlipayConfigSnippet(appID, gatewayURL, dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return fmt.Sprintf(`apps:
  default:
    alipay:
      app_id: %q
      private_key_file: %s
      alipay_public_key_file: %s
      gateway: %s
      recipient: open_id
`, appID, filepath.Join(dir, AlipayAppPrivateKeyFile), filepath.Join(dir, AlipayGatewayPublicKeyFile), gatewayURL)
}
