package wechat

import (
	"context"
	"fmt"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/retry"
	"github.com/heraldhq/herald/sandbox"
)

func FuzzParseSendResponse(f *testing.F) {
	f.Add([]byte(`{"errcode":0,"errmsg":"ok","msgid":3141592653589793238}`), int64(9223372036854775807))
	f.Add([]byte(`{"errcode":43101,"errmsg":"user refuse to accept the msg rid: 1-2-3"}`), int64(-1))
	f.Add([]byte(`{"errcode":0,"msgid":"123"}`), int64(0))
	f.Add([]byte(`{"errcode":0,"msgid":1e3}`), int64(1000))
	f.Add([]byte(`<html>`), int64(1))
	f.Fuzz(func(t *testing.T, body []byte, n int64) {
		// Any body: no panic, and an error or a result.
		if r, err := parseSendResponse(body); err == nil && r.ErrCode != 0 && r.MsgID != "" {
			t.Fatalf("error answer %q kept msgid %q", body, r.MsgID)
		}
		// A valid msgid round-trips exactly, beyond float64 precision.
		valid := fmt.Appendf(nil, `{"errcode":0,"errmsg":"ok","msgid":%d}`, n)
		r, err := parseSendResponse(valid)
		if err != nil || r.ErrCode != 0 || r.MsgID != strconv.FormatInt(n, 10) {
			t.Fatalf("parse %s = %+v, %v; want msgid %d", valid, r, err, n)
		}
	})
}

var validKey = regexp.MustCompile(`^[a-z_]+\d+$`)

func FuzzExtractField(f *testing.F) {
	f.Add("thing23", "61503140-1e570a3e-6387a6ea", "invalid")
	f.Add("date2", "", "is emtpy")
	f.Add("Thing", "x", "")
	f.Fuzz(func(t *testing.T, key, rid, what string) {
		msg := "argument invalid! data." + key + ".value " + what + " rid: " + rid
		got := extractField(msg) // no panic on anything
		if validKey.MatchString(key) && got != "data."+key+".value" {
			t.Fatalf("extractField(%q) = %q, want data.%s.value", msg, got, key)
		}
		if got != "" && !strings.Contains(msg, got) {
			t.Fatalf("extractField(%q) = %q, not part of the message", msg, got)
		}
	})
}

var fuzzTypes = []string{"thing", "number", "letter", "symbol", "character_string", "time", "date",
	"amount", "phone_number", "car_number", "name", "phrase", "enum"}

// FuzzValidate holds the local check to its promise: whatever it rejects,
// the sandbox (WeChat's rules taken literally) rejects with 47003 too, so
// herald never drops a message WeChat's documented rules would accept.
func FuzzValidate(f *testing.F) {
	for i, v := range []string{"订单已发货", "", "a\nb", "¥100.50元", "2026-03-01 12:00", "粤A12345", "张三", "%%", "12.5"} {
		f.Add(uint8(i), v)
	}
	hs := httptest.NewServer(sandbox.New(sandbox.Options{}))
	f.Cleanup(hs.Close)
	c, err := New(Config{AppID: sandbox.DevWeChatAppID, AppSecret: sandbox.DevWeChatSecret, BaseURL: hs.URL}, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, typ uint8, value string) {
		key := fuzzTypes[int(typ)%len(fuzzTypes)] + "1"
		j := job.Job{ID: "1", Platform: job.WeChat, TemplateID: "TPL", ToUser: "o1",
			Data: map[string]job.Value{key: {Value: value}}}
		verr := c.Validate(j)
		if verr == nil {
			return
		}
		if d := retry.Decide(verr); d.Detail.Field != "data."+key+".value" {
			t.Fatalf("Validate(%s=%q) detail %+v", key, value, d.Detail)
		}
		_, err := c.Send(context.Background(), j)
		if d := retry.Decide(err); d.Detail.Code != "47003" {
			t.Fatalf("Validate rejects %s=%q (%v) but the sandbox answers %v", key, value, verr, err)
		}
	})
}
