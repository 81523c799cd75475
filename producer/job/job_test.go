package job

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name     string
		give     string
		platform string
		wantErr  string // substring; empty: valid
	}{
		{"minimal", `{"id":"1","platform":"wechat","template_id":"t","to_user":"u","data":{"k1":{"value":"v"}}}`, "wechat", ""},
		{"unknown fields ignored", `{"id":"1","platform":"alipay","template_id":"t","to_user":"u","data":{"k":{"value":"v"}},"extra":[1,2]}`, "alipay", ""},
		{"not json", `not json`, "wechat", "not a JSON object"},
		{"array", `[1]`, "wechat", "not a JSON object"},
		{"bad utf8", "{\"id\":\"\xff\"}", "wechat", "UTF-8"},
		{"missing everything", `{}`, "wechat", "id is required; platform is required; template_id is required; to_user is required; data is required"},
		{"platform mismatch", `{"id":"1","platform":"alipay","template_id":"t","to_user":"u","data":{"k":{"value":"v"}}}`, "wechat", `does not match subject platform "wechat"`},
		{"unknown platform", `{"id":"1","platform":"line","template_id":"t","to_user":"u","data":{"k":{"value":"v"}}}`, "", `platform "line" is not wechat or alipay`},
		{"id too long", `{"id":"` + strings.Repeat("x", 129) + `","platform":"wechat","template_id":"t","to_user":"u","data":{"k":{"value":"v"}}}`, "wechat", "id has 129 characters"},
		{"value not a string", `{"id":"1","platform":"wechat","template_id":"t","to_user":"u","data":{"k":{"value":5}}}`, "wechat", "cannot unmarshal"},
		{"bad state", `{"id":"1","platform":"wechat","template_id":"t","to_user":"u","data":{"k":{"value":"v"}},"wechat":{"miniprogram_state":"prod"}}`, "wechat", "miniprogram_state"},
		{"bad deadline", `{"id":"1","platform":"wechat","template_id":"t","to_user":"u","data":{"k":{"value":"v"}},"not_after":"tomorrow"}`, "wechat", "cannot parse"},
		{"too big", `{"id":"1","pad":"` + strings.Repeat("x", MaxSize) + `"}`, "wechat", "limit 65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.give), tt.platform)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Decode() = %v, want no error", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode() = %v, want ErrMalformed containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecodeDefaultsAppAndKeepsFields(t *testing.T) {
	j, err := Decode([]byte(`{"id":"a b","platform":"wechat","template_id":"t","to_user":"u","page":"p?x=1",
		"data":{"thing1":{"value":"hi"}},"wechat":{"lang":"en_US"},"not_after":"2026-01-02T03:04:05Z"}`), "wechat")
	if err != nil {
		t.Fatal(err)
	}
	if j.App != DefaultApp || j.Page != "p?x=1" || j.Data["thing1"].Value != "hi" || j.WeChat.Lang != "en_US" {
		t.Fatalf("Decode() = %+v", j)
	}
	if j.Key() != "wechat:default:a b" {
		t.Fatalf("Key() = %q", j.Key())
	}
	deadline := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if !j.Expired(deadline.Add(time.Second)) || j.Expired(deadline) {
		t.Fatalf("Expired around %v is wrong", deadline)
	}
}

func TestSubjects(t *testing.T) {
	tests := []struct{ give, want string }{
		{SendSubject(WeChat), "notify.send.wechat"},
		{DeadSubject(Alipay, ReasonUserRefused), "notify.dead.alipay.user_refused"},
		{DeadSubject("", ReasonMalformedJob), "notify.dead.unknown.malformed_job"},
		{SentSubject(WeChat), "notify.sent.wechat"},
		{PlatformOf("notify.send.alipay"), "alipay"},
		{PlatformOf("nodots"), ""},
	}
	for _, tt := range tests {
		if tt.give != tt.want {
			t.Errorf("got %q, want %q", tt.give, tt.want)
		}
	}
}

// FuzzDecode: any input either decodes into a job that passes Validate, or
// fails with ErrMalformed; it never panics.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"1","platform":"wechat","template_id":"t","to_user":"u","data":{"k1":{"value":"v"}}}`), "wechat")
	f.Add([]byte(`{"id":"","data":{"":{}}}`), "alipay")
	f.Add([]byte(`{"not_after":"2026-01-02T03:04:05Z","wechat":{"lang":"xx"}}`), "")
	f.Add([]byte("\xef\xbb\xbf{}"), "wechat")
	f.Fuzz(func(t *testing.T, data []byte, platform string) {
		j, err := Decode(data, platform)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if verr := j.Validate(platform); verr != nil {
			t.Fatalf("decoded job fails Validate: %v", verr)
		}
		if j.App == "" || (platform != "" && j.Platform != platform) {
			t.Fatalf("decoded job %+v breaks the contract", j)
		}
	})
}
