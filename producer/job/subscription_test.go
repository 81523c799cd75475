package job

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"
)

func TestSubscriptionSubjects(t *testing.T) {
	tests := []struct{ give, want string }{
		{SubscriptionSubject(WeChat, EventPopup), "notify.subscription.wechat.popup"},
		{SubscriptionSubject(WeChat, EventSent), "notify.subscription.wechat.sent"},
		{StatusSubject(WeChat), "notify.status.wechat"},
	}
	for _, tt := range tests {
		if tt.give != tt.want {
			t.Errorf("got %q, want %q", tt.give, tt.want)
		}
	}
}

func TestSubscriptionMsgID(t *testing.T) {
	base := func() []any { return []any{"wechat", "default", "oUser", int64(1714036504), "popup", "TPL", ""} }
	id := func(f []any) string {
		return SubscriptionMsgID(f[0].(string), f[1].(string), f[2].(string), f[3].(int64), f[4].(string), f[5].(string), f[6].(string))
	}
	want := id(base())
	if !regexp.MustCompile(`^sub:[0-9a-f]{64}$`).MatchString(want) {
		t.Fatalf("id %q is not sub:<64 hex>", want)
	}
	if again := id(base()); again != want {
		t.Fatalf("same fields gave %q then %q", want, again)
	}
	// Each change must give another id, including those that keep the
	// concatenation of the fields the same.
	tests := []struct {
		name string
		give func(f []any)
	}{
		{"platform", func(f []any) { f[0] = "alipay" }},
		{"app", func(f []any) { f[1] = "shop" }},
		{"user", func(f []any) { f[2] = "oUser2" }},
		{"create time", func(f []any) { f[3] = int64(1714036505) }},
		{"event", func(f []any) { f[4] = "change" }},
		{"template", func(f []any) { f[5] = "TPL2" }},
		{"msgid", func(f []any) { f[6] = "1" }},
		{"boundary between app and user moved", func(f []any) { f[1], f[2] = "defaulto", "User" }},
		{"boundary between template and msgid moved", func(f []any) { f[5], f[6] = "TP", "L" }},
		{"trailing space", func(f []any) { f[2] = "oUser " }},
		{"line end", func(f []any) { f[5] = "TPL\r\n" }},
		{"NUL", func(f []any) { f[5] = "TPL\x00" }},
	}
	for _, tt := range tests {
		f := base()
		tt.give(f)
		if got := id(f); got == want {
			t.Errorf("%s: same id as the base event", tt.name)
		}
	}
}

func TestSubscriptionEventJSON(t *testing.T) {
	at := time.Date(2024, 4, 25, 9, 15, 4, 0, time.UTC)
	popup := SubscriptionEvent{Platform: WeChat, App: "default", Event: EventPopup, ToUser: "o1", TemplateID: "T",
		Status: StatusAccept, PopupScene: "0", CreatedAt: at, ReceivedAt: at}
	sent := SubscriptionEvent{Platform: WeChat, App: "default", Event: EventSent, ToUser: "o1", TemplateID: "T",
		Status: StatusSuccess, MsgID: "2794188253209100289", ErrorCode: "0", ErrorStatus: "success", CreatedAt: at, ReceivedAt: at}
	tests := []struct {
		name string
		give any
		want string
	}{
		{"popup", popup, `{"platform":"wechat","app":"default","event":"popup","to_user":"o1","template_id":"T","status":"accept",` +
			`"popup_scene":"0","created_at":"2024-04-25T09:15:04Z","received_at":"2024-04-25T09:15:04Z"}`},
		{"sent", sent, `{"platform":"wechat","app":"default","event":"sent","to_user":"o1","template_id":"T","status":"success",` +
			`"msgid":"2794188253209100289","error_code":"0","error_status":"success","created_at":"2024-04-25T09:15:04Z","received_at":"2024-04-25T09:15:04Z"}`},
		{"status without a job", StatusEvent{Platform: WeChat, MsgID: "1", Status: StatusFailed, ErrorCode: "10005", StatusAt: at},
			`{"id":"","app":"","template_id":"","to_user":"","platform":"wechat","msgid":"1","status":"failed","error_code":"10005","status_at":"2024-04-25T09:15:04Z"}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.give)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, b, tt.want)
		}
	}
	if popup.DedupID() != SubscriptionMsgID(WeChat, "default", "o1", at.Unix(), EventPopup, "T", "") {
		t.Errorf("DedupID does not hash the event's fields")
	}
}
