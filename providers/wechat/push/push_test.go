package push_test

import (
	"bytes"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/providers/wechat/push"
)

const (
	appID    = "wx0123456789abcdef"
	token    = "pushToken2024"
	aesKey   = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	oldKey   = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
	otherKey = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
)

var now = time.Unix(1714036504, 0)

// The example the WeChat documentation gives for the URL check.
func TestSignOfficialVector(t *testing.T) {
	t.Parallel()
	const want = "f464b24fc39322e44b38aa78f5edd27bd1441696"
	if got := push.Sign("AAAAA", "1714036504", "1514711492"); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	// The order of the parts does not matter: they are sorted.
	if got := push.Sign("1514711492", "AAAAA", "1714036504"); got != want {
		t.Fatalf("Sign in another order = %s, want %s", got, want)
	}
	v, err := push.NewVerifier(push.Config{Token: "AAAAA"})
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"signature": {want}, "timestamp": {"1714036504"}, "nonce": {"1514711492"}, "echostr": {"4375120948345356249"}}
	echo, err := v.CheckURL(q, now.Add(time.Minute))
	if err != nil || echo != "4375120948345356249" {
		t.Fatalf("CheckURL = %q, %v; want the echostr", echo, err)
	}
	q.Set("signature", strings.ToUpper(want))
	if _, err := v.CheckURL(q, now); err != nil {
		t.Fatalf("CheckURL with an upper-case signature: %v", err)
	}
	q.Set("signature", "f464b24fc39322e44b38aa78f5edd27bd1441697")
	if _, err := v.CheckURL(q, now); !errors.Is(err, push.ErrSignature) {
		t.Fatalf("CheckURL with a forged signature = %v, want ErrSignature", err)
	}
}

func mustKey(t testing.TB, s string) *push.Key {
	t.Helper()
	k, err := push.ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	for _, give := range []string{"", aesKey[:42], aesKey + "A", aesKey[:42] + "=", aesKey[:42] + "+"} {
		if _, err := push.ParseKey(give); err == nil {
			t.Errorf("ParseKey(%q) succeeded", give)
		} else if give != "" && strings.Contains(err.Error(), give) {
			t.Errorf("ParseKey error quotes the key: %v", err)
		}
	}
}

func TestEncryptDecrypt(t *testing.T) {
	t.Parallel()
	k := mustKey(t, aesKey)
	// Every length around the 32-byte padding boundary, and a full block
	// of padding.
	for n := range 70 {
		msg := bytes.Repeat([]byte{'m'}, n)
		enc, err := k.Encrypt(msg, appID, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, gotApp, err := k.Decrypt(enc)
		if err != nil || !bytes.Equal(got, msg) || gotApp != appID {
			t.Fatalf("round trip of %d bytes = %q, %q, %v", n, got, gotApp, err)
		}
	}
	enc, err := k.Encrypt([]byte("<xml/>"), appID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := mustKey(t, otherKey).Decrypt(enc); !errors.Is(err, push.ErrDecrypt) {
		t.Errorf("Decrypt with another key = %v, want ErrDecrypt", err)
	}
	tests := []struct {
		name string
		give string
		want error
	}{
		{"not base64", "***", push.ErrMalformed},
		{"empty", "", push.ErrDecrypt},
		{"not whole blocks", "AAAA", push.ErrDecrypt},
		{"truncated", enc[:len(enc)/2-len(enc)/2%4], push.ErrDecrypt},
	}
	for _, tt := range tests {
		if _, _, err := k.Decrypt(tt.give); !errors.Is(err, tt.want) {
			t.Errorf("%s: Decrypt = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// A known ciphertext, made once with the WeChat framing and a fixed
// random prefix, keeps Encrypt and Decrypt honest against each other
// and against the protocol.
func TestDecryptKnownCiphertext(t *testing.T) {
	t.Parallel()
	k := mustKey(t, aesKey)
	enc, err := k.Encrypt([]byte("hello"), "wxabc", bytes.NewReader(make([]byte, 16)))
	if err != nil {
		t.Fatal(err)
	}
	// 16 + 4 + 5 + 5 = 30 bytes of framing pad to 32: two AES blocks.
	if len(enc) != 44 {
		t.Fatalf("ciphertext %q: %d base64 characters, want 44 (32 bytes)", enc, len(enc))
	}
	msg, app, err := k.Decrypt(enc)
	if err != nil || string(msg) != "hello" || app != "wxabc" {
		t.Fatalf("Decrypt = %q, %q, %v", msg, app, err)
	}
}

func TestParseShapes(t *testing.T) {
	t.Parallel()
	popup := func(items ...push.Item) push.Message {
		return push.Message{ToUserName: "gh_1", FromUserName: "oUser", CreateTime: 1714036504, MsgType: "event",
			Event: push.EventPopup, Items: items}
	}
	sent := func(items ...push.Item) push.Message {
		m := popup(items...)
		m.Event = push.EventSent
		return m
	}
	accept := push.Item{TemplateID: "T1", SubscribeStatus: "accept", PopupScene: "0"}
	reject := push.Item{TemplateID: "T2", SubscribeStatus: "reject", PopupScene: "0"}
	// 2794188253209100289 is not a float64: through a float it becomes
	// ...288 or ...300.
	ok := push.Item{TemplateID: "T1", MsgID: 2794188253209100289, ErrorCode: "0", ErrorStatus: "success"}
	head := `"ToUserName":"gh_1","FromUserName":"oUser","MsgType":"event",`
	tests := []struct {
		name string
		give string
		want push.Message
	}{
		{"xml popup, two items", `<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oUser]]></FromUserName>
<CreateTime>1714036504</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe_msg_popup_event]]></Event>
<SubscribeMsgPopupEvent><List><TemplateId><![CDATA[T1]]></TemplateId><SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString>
<PopupScene>0</PopupScene></List><List><TemplateId><![CDATA[T2]]></TemplateId><SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString>
<PopupScene>0</PopupScene></List></SubscribeMsgPopupEvent></xml>`, popup(accept, reject)},
		{"xml sent", `<xml><ToUserName>gh_1</ToUserName><FromUserName>oUser</FromUserName><CreateTime> 1714036504 </CreateTime>
<MsgType>event</MsgType><Event>subscribe_msg_sent_event</Event><SubscribeMsgSentEvent><List><TemplateId>T1</TemplateId>
<MsgID>2794188253209100289</MsgID><ErrorCode>0</ErrorCode><ErrorStatus><![CDATA[success]]></ErrorStatus></List></SubscribeMsgSentEvent></xml>`,
			sent(ok)},
		{"xml top-level List", `<xml><ToUserName>gh_1</ToUserName><FromUserName>oUser</FromUserName><CreateTime>1714036504</CreateTime>
<MsgType>event</MsgType><Event>subscribe_msg_popup_event</Event><List><TemplateId>T1</TemplateId>
<SubscribeStatusString>accept</SubscribeStatusString><PopupScene>0</PopupScene></List></xml>`, popup(accept)},
		{"json List object", `{` + head + `"CreateTime":1714036504,"Event":"subscribe_msg_popup_event",
"List":{"TemplateId":"T1","SubscribeStatusString":"accept","PopupScene":"0"}}`, popup(accept)},
		{"json List array", `{` + head + `"CreateTime":1714036504,"Event":"subscribe_msg_popup_event",
"List":[{"TemplateId":"T1","SubscribeStatusString":"accept","PopupScene":0},{"TemplateId":"T2","SubscribeStatusString":"reject","PopupScene":"0"}]}`,
			popup(accept, reject)},
		{"json wrapper array, as documented", `{` + head + `"CreateTime":"1714036504","Event":"subscribe_msg_popup_event",
"SubscribeMsgPopupEvent":[{"TemplateId":"T1","SubscribeStatusString":"accept","PopupScene":"0"}]}`, popup(accept)},
		{"json wrapper with a List object", `{` + head + `"CreateTime":1714036504,"Event":"subscribe_msg_sent_event",
"SubscribeMsgSentEvent":{"List":{"TemplateId":"T1","MsgID":"2794188253209100289","ErrorCode":"0","ErrorStatus":"success"}}}`, sent(ok)},
		{"json wrapper with a List array", `{` + head + `"CreateTime":1714036504,"Event":"subscribe_msg_sent_event",
"SubscribeMsgSentEvent":{"List":[{"TemplateId":"T1","MsgID":2794188253209100289,"ErrorCode":0,"ErrorStatus":"success"}]}}`, sent(ok)},
		{"json wrapper object without List", `{` + head + `"CreateTime":1714036504,"Event":"subscribe_msg_popup_event",
"SubscribeMsgPopupEvent":{"TemplateId":"T1","SubscribeStatusString":"accept","PopupScene":0}}`, popup(accept)},
		{"json numeric fields as strings with spaces", `{` + head + `"CreateTime":" 1714036504","Event":"subscribe_msg_sent_event",
"List":{"TemplateId":"T1","MsgID":" 2794188253209100289 ","ErrorCode":"00","ErrorStatus":"success"}}`, sent(ok)},
		{"json failed send keeps its code", `{` + head + `"CreateTime":1714036504,"Event":"subscribe_msg_sent_event",
"List":{"TemplateId":"T1","MsgID":1,"ErrorCode":10005,"ErrorStatus":"fail:user block"}}`,
			sent(push.Item{TemplateID: "T1", MsgID: 1, ErrorCode: "10005", ErrorStatus: "fail:user block"})},
		{"leading white space and BOM", "\ufeff \n" + `{` + head + `"CreateTime":1714036504,"Event":"other"}`,
			push.Message{ToUserName: "gh_1", FromUserName: "oUser", CreateTime: 1714036504, MsgType: "event", Event: "other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := push.Parse([]byte(tt.give))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	many := `{"CreateTime":1,"List":[` + strings.Repeat(`{"TemplateId":"T"},`, push.MaxItems) + `{"TemplateId":"T"}]}`
	manyXML := `<xml><CreateTime>1</CreateTime>` + strings.Repeat(`<List><TemplateId>T</TemplateId></List>`, push.MaxItems+1) + `</xml>`
	tests := []struct {
		name string
		give string
	}{
		{"empty", "  "},
		{"neither xml nor json", "hello"},
		{"json array", `[{"CreateTime":1}]`},
		{"broken xml", `<xml><CreateTime>1</xml>`},
		{"broken json", `{"CreateTime":1`},
		{"create time not a number", `{"CreateTime":"soon"}`},
		{"create time a float", `{"CreateTime":1.5e9}`},
		{"create time an object", `{"CreateTime":{}}`},
		{"msgid beyond int64", `{"CreateTime":1,"List":{"MsgID":92233720368547758070}}`},
		{"msgid a float", `{"CreateTime":1,"List":{"MsgID":2.7941882532091003e18}}`},
		{"List a string", `{"CreateTime":1,"List":"T1"}`},
		{"List nested too deep", `{"CreateTime":1,"List":{"List":{"List":{"List":{}}}}}`},
		{"too many items", many},
		{"too many xml items", manyXML},
		{"field too long", `{"CreateTime":1,"FromUserName":"` + strings.Repeat("o", push.MaxFieldLen+1) + `"}`},
		{"xml not UTF-8", "<xml><FromUserName>\xff</FromUserName></xml>"},
		{"xml entity", `<!DOCTYPE xml [<!ENTITY e "x">]><xml><FromUserName>&e;</FromUserName></xml>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if m, err := push.Parse([]byte(tt.give)); !errors.Is(err, push.ErrMalformed) {
				t.Fatalf("Parse = %+v, %v; want ErrMalformed", m, err)
			}
		})
	}
}

// sealer returns a Sealer for the test app in mode and format.
func sealer(t testing.TB, mode push.Mode, format push.Format, key string) *push.Sealer {
	t.Helper()
	s := &push.Sealer{AppID: appID, Token: token, Mode: mode, Format: format}
	if key != "" {
		s.Key = mustKey(t, key)
	}
	return s
}

func verifier(t testing.TB, key, previous string) *push.Verifier {
	t.Helper()
	v, err := push.NewVerifier(push.Config{AppID: appID, Token: token, EncodingAESKey: key, PreviousEncodingAESKey: previous})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sampleMessage() push.Message {
	return push.Message{ToUserName: "gh_1", FromUserName: "oPenid42", CreateTime: now.Unix(), MsgType: push.MsgTypeEvent,
		Event: push.EventSent, Items: []push.Item{{TemplateID: "T1", MsgID: 2794188253209100289, ErrorCode: "0", ErrorStatus: "success"}}}
}

// Every mode and format round-trips through Seal and Open.
func TestSealOpen(t *testing.T) {
	t.Parallel()
	msgs := []push.Message{sampleMessage(), {ToUserName: "gh_1", FromUserName: "oPenid42", CreateTime: now.Unix(),
		MsgType: push.MsgTypeEvent, Event: push.EventPopup, Items: []push.Item{
			{TemplateID: "T1", SubscribeStatus: "accept", PopupScene: "0"},
			{TemplateID: "T2", SubscribeStatus: "reject", PopupScene: "1"},
		}}}
	for _, mode := range []push.Mode{push.ModePlain, push.ModeCompatible, push.ModeSafe} {
		for _, format := range []push.Format{push.FormatXML, push.FormatJSON} {
			key := aesKey
			if mode == push.ModePlain {
				key = ""
			}
			s, v := sealer(t, mode, format, key), verifier(t, key, "")
			for _, m := range msgs {
				q, body, err := s.Seal(m, now)
				if err != nil {
					t.Fatal(err)
				}
				if mode == push.ModeSafe && bytes.Contains(body, []byte("oPenid42")) {
					t.Errorf("%s %s: safe-mode body shows the openid: %s", mode, format, body)
				}
				if mode == push.ModeCompatible && !bytes.Contains(body, []byte("oPenid42")) {
					t.Errorf("%s %s: compatible-mode body lacks the plaintext fields: %s", mode, format, body)
				}
				got, err := v.Open(q, body, now)
				if err != nil {
					t.Fatalf("%s %s: Open(%s): %v", mode, format, body, err)
				}
				if !reflect.DeepEqual(got, m) {
					t.Fatalf("%s %s:\n got %+v\nwant %+v", mode, format, got, m)
				}
			}
		}
	}
}

// Each forgery is refused with its own error.
func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	m := sampleMessage()
	safeQ, safeBody, err := sealer(t, push.ModeSafe, push.FormatXML, aesKey).Seal(m, now)
	if err != nil {
		t.Fatal(err)
	}
	plainQ, plainBody, err := sealer(t, push.ModePlain, push.FormatXML, "").Seal(m, now)
	if err != nil {
		t.Fatal(err)
	}
	otherApp := sealer(t, push.ModeSafe, push.FormatJSON, aesKey)
	otherApp.AppID = "wx9999999999999999"
	otherQ, otherBody, err := otherApp.Seal(m, now)
	if err != nil {
		t.Fatal(err)
	}
	otherKeyQ, otherKeyBody, err := sealer(t, push.ModeSafe, push.FormatJSON, otherKey).Seal(m, now)
	if err != nil {
		t.Fatal(err)
	}
	with := func(q url.Values, k, v string) url.Values {
		c := url.Values{}
		for key, vals := range q {
			c[key] = vals
		}
		c.Set(k, v)
		return c
	}
	safe := verifier(t, aesKey, "")
	plain := verifier(t, "", "")
	tests := []struct {
		name string
		v    *push.Verifier
		q    url.Values
		body []byte
		at   time.Time
		want error
	}{
		{"no signature", safe, with(safeQ, "signature", ""), safeBody, now, push.ErrSignature},
		{"forged signature", safe, with(safeQ, "signature", push.Sign("guess", "1", "2")), safeBody, now, push.ErrSignature},
		{"forged msg_signature", safe, with(safeQ, "msg_signature", push.Sign(token, "x")), safeBody, now, push.ErrMsgSignature},
		{"body swapped under a valid msg_signature", safe, safeQ, otherKeyBody, now, push.ErrMsgSignature},
		{"stale", safe, safeQ, safeBody, now.Add(5*time.Minute + time.Second), push.ErrStale},
		{"from the future", safe, safeQ, safeBody, now.Add(-5*time.Minute - time.Second), push.ErrStale},
		{"plaintext to an encrypted app", safe, plainQ, plainBody, now, push.ErrMode},
		{"encrypted to a plaintext app", plain, safeQ, safeBody, now, push.ErrMode},
		{"unknown encrypt_type", safe, with(safeQ, "encrypt_type", "des"), safeBody, now, push.ErrMode},
		{"another app's appid", safe, otherQ, otherBody, now, push.ErrAppID},
		{"another key", safe, otherKeyQ, otherKeyBody, now, push.ErrDecrypt},
		{"no Encrypt", safe, safeQ, []byte(`<xml><ToUserName>gh_1</ToUserName></xml>`), now, push.ErrMalformed},
		{"garbage", plain, plainQ, []byte("garbage"), now, push.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, err := tt.v.Open(tt.q, tt.body, tt.at); !errors.Is(err, tt.want) {
				t.Fatalf("Open = %+v, %v; want %v", got, err, tt.want)
			}
		})
	}
	// At the edge of the skew it still opens.
	if _, err := safe.Open(safeQ, safeBody, now.Add(5*time.Minute)); err != nil {
		t.Fatalf("Open 5 minutes later: %v", err)
	}
}

// While a new EncodingAESKey rolls out, pushes made with the old one
// still open through PreviousEncodingAESKey.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	m := sampleMessage()
	rotated := verifier(t, aesKey, oldKey)
	for _, key := range []string{aesKey, oldKey} {
		q, body, err := sealer(t, push.ModeSafe, push.FormatJSON, key).Seal(m, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rotated.Open(q, body, now); err != nil {
			t.Fatalf("push sealed with one of the two keys: %v", err)
		}
	}
	q, body, err := sealer(t, push.ModeSafe, push.FormatJSON, oldKey).Seal(m, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier(t, aesKey, "").Open(q, body, now); !errors.Is(err, push.ErrDecrypt) {
		t.Fatalf("old key without rotation = %v, want ErrDecrypt", err)
	}
}

func TestNewVerifierRefuses(t *testing.T) {
	t.Parallel()
	tests := []push.Config{
		{AppID: appID},
		{AppID: appID, Token: token, EncodingAESKey: "short"},
		{AppID: appID, Token: token, PreviousEncodingAESKey: oldKey},
		{Token: token, EncodingAESKey: aesKey},
	}
	for _, cfg := range tests {
		if _, err := push.NewVerifier(cfg); err == nil {
			t.Errorf("NewVerifier(%+v) succeeded", cfg)
		} else if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), oldKey) {
			t.Errorf("NewVerifier error quotes a secret: %v", err)
		}
	}
}
