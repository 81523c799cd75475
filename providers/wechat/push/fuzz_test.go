package push

import (
	"bytes"
	"errors"
	"net/url"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// FuzzParse: any body parses into a message within the bounds, or fails
// with ErrMalformed; never a panic. A message parsed from a body encodes
// back, in the same format, to a body that parses into the same message.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName><CreateTime>1</CreateTime>` +
			`<MsgType>event</MsgType><Event>subscribe_msg_popup_event</Event><SubscribeMsgPopupEvent><List><TemplateId>T</TemplateId>` +
			`<SubscribeStatusString>accept</SubscribeStatusString><PopupScene>0</PopupScene></List></SubscribeMsgPopupEvent></xml>`,
		`<xml><CreateTime>1</CreateTime><Event>x</Event><List><MsgID>2794188253209100289</MsgID></List></xml>`,
		`{"FromUserName":"o1","CreateTime":1714036504,"Event":"subscribe_msg_popup_event","List":{"TemplateId":"T","PopupScene":0}}`,
		`{"CreateTime":"1","Event":"subscribe_msg_sent_event","SubscribeMsgSentEvent":{"List":[{"MsgID":"2794188253209100289","ErrorCode":0}]}}`,
		`{"CreateTime":1,"Event":"subscribe_msg_popup_event","SubscribeMsgPopupEvent":[{"TemplateId":"T"},{"List":{"TemplateId":"U"}}]}`,
		`{"CreateTime":1,"List":{"List":{"List":{}}}}`,
		`{"List":[[[]]]}`,
		"\ufeff<xml/>",
		`<!DOCTYPE x [<!ENTITY a "b">]><xml>&a;</xml>`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if err := m.check(); err != nil {
			t.Fatalf("parsed message breaks the bounds: %v", err)
		}
		format := FormatJSON
		if bytes.TrimLeft(data, " \t\r\n\ufeff")[0] == '<' {
			format = FormatXML
		}
		again, err := m.Marshal(format)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", m, err)
		}
		back, err := Parse(again)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", again, err)
		}
		if !reflect.DeepEqual(normal(back), normal(m)) {
			t.Fatalf("round trip through %s:\n got %+v\nwant %+v", again, back, m)
		}
	})
}

// normal makes a message without items comparable to one with an empty
// list.
func normal(m Message) Message {
	if len(m.Items) == 0 {
		m.Items = nil
	}
	return m
}

// FuzzDecrypt: any Encrypt fails with ErrMalformed or ErrDecrypt or
// opens; any message and appid survive Encrypt then Decrypt.
func FuzzDecrypt(f *testing.F) {
	k, err := ParseKey("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
	if err != nil {
		f.Fatal(err)
	}
	enc, err := k.Encrypt([]byte("<xml/>"), "wx1", nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc, []byte("<xml/>"), "wx1")
	f.Add("", []byte{}, "")
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==", []byte{0, 0, 0, 255}, "wx0123456789abcdef")
	f.Add(" "+enc[:44]+"\n", bytes.Repeat([]byte{32}, 32), "wx")
	f.Fuzz(func(t *testing.T, encrypted string, msg []byte, appID string) {
		if _, _, err := k.Decrypt(encrypted); err != nil && !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("Decrypt error %v wraps neither ErrDecrypt nor ErrMalformed", err)
		}
		enc, err := k.Encrypt(msg, appID, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, gotApp, err := k.Decrypt(enc)
		if err != nil || !bytes.Equal(got, msg) || gotApp != appID {
			t.Fatalf("round trip of %q, %q = %q, %q, %v", msg, appID, got, gotApp, err)
		}
	})
}

// FuzzOpen: a safe-mode push whose query signatures hold (so the fuzzer
// reaches the decryption and the parser) opens or fails with one of the
// package's errors; never a panic.
func FuzzOpen(f *testing.F) {
	const token = "fuzzToken"
	v, err := NewVerifier(Config{AppID: "wx1", Token: token, EncodingAESKey: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"})
	if err != nil {
		f.Fatal(err)
	}
	s := &Sealer{AppID: "wx1", Token: token, Key: v.keys[0], Mode: ModeSafe, Format: FormatXML}
	now := time.Unix(1714036504, 0)
	for _, format := range []Format{FormatXML, FormatJSON} {
		s.Format = format
		_, body, err := s.Seal(Message{FromUserName: "o1", CreateTime: 1, MsgType: "event", Event: EventPopup,
			Items: []Item{{TemplateID: "T", SubscribeStatus: "accept"}}}, now)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"Encrypt":"***"}`))
	f.Add([]byte(`<xml><Encrypt>AAAAAAAAAAAAAAAAAAAAAA==</Encrypt></xml>`))
	known := []error{ErrSignature, ErrMsgSignature, ErrStale, ErrMode, ErrDecrypt, ErrAppID, ErrMalformed}
	f.Fuzz(func(t *testing.T, body []byte) {
		ts := strconv.FormatInt(now.Unix(), 10)
		q := url.Values{"signature": {Sign(token, ts, "1")}, "timestamp": {ts}, "nonce": {"1"}, "encrypt_type": {"aes"}}
		if enc, err := envelope(body); err == nil {
			q.Set("msg_signature", Sign(token, ts, "1", enc))
		}
		_, err := v.Open(q, body, now)
		if err == nil {
			return
		}
		for _, k := range known {
			if errors.Is(err, k) {
				return
			}
		}
		t.Fatalf("Open error %v wraps none of the package's errors", err)
	})
}
