package receiver_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/providers/wechat/push"
	"github.com/heraldhq/herald/receiver"
)

// The openid and template of the pushes below; 2794188253209100289 is a
// message id beyond float64 precision.
const (
	openid   = "oPenid-Cw8Qp2xNZ"
	tpl1     = "uzFjHOOsXXgrXl0YHhyNV7jkOKy3Eotj3MhvnTkGA9o"
	tpl2     = "IHfdMu-oSryLsdvEQqEjB-tKMW8h6g0h2Joj0wTPNdY"
	bigMsgID = "2794188253209100289"
)

func popupMessage(created time.Time) push.Message {
	return push.Message{ToUserName: "gh_df0deeb82b8a", FromUserName: openid, CreateTime: created.Unix(), MsgType: push.MsgTypeEvent,
		Event: push.EventPopup, Items: []push.Item{
			{TemplateID: tpl1, SubscribeStatus: "accept", PopupScene: "0"},
			{TemplateID: tpl2, SubscribeStatus: "reject", PopupScene: "0"},
		}}
}

// TestPushesAreStored sends every mode, format and List shape to a real
// receiver and checks each stored event, field by field.
func TestPushesAreStored(t *testing.T) {
	t.Parallel()
	created := time.Now().Add(-time.Minute).Truncate(time.Second)
	ct := strconv.FormatInt(created.Unix(), 10)
	head := `"ToUserName":"gh_df0deeb82b8a","FromUserName":"` + openid + `","MsgType":"event",`
	ev := func(kind, tpl, status string) job.SubscriptionEvent {
		return job.SubscriptionEvent{Platform: job.WeChat, Event: kind, ToUser: openid, TemplateID: tpl, Status: status, CreatedAt: created.UTC()}
	}
	popup := func(tpl, status string) job.SubscriptionEvent {
		e := ev(job.EventPopup, tpl, status)
		e.PopupScene = "0"
		return e
	}
	sent := func(code, status string) job.SubscriptionEvent {
		e := ev(job.EventSent, tpl1, job.StatusSuccess)
		if code != "0" {
			e.Status = job.StatusFailed
		}
		e.MsgID, e.ErrorCode, e.ErrorStatus = bigMsgID, code, status
		return e
	}
	xmlSent := `<xml><ToUserName><![CDATA[gh_df0deeb82b8a]]></ToUserName><FromUserName><![CDATA[` + openid + `]]></FromUserName>
<CreateTime>` + ct + `</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe_msg_sent_event]]></Event>
<SubscribeMsgSentEvent><List><TemplateId><![CDATA[` + tpl1 + `]]></TemplateId><MsgID>` + bigMsgID + `</MsgID><ErrorCode>0</ErrorCode>
<ErrorStatus><![CDATA[success]]></ErrorStatus></List></SubscribeMsgSentEvent></xml>`
	tests := []struct {
		name   string
		app    string
		mode   push.Mode
		format push.Format
		key    string        // the key to seal with, when not the app's
		msg    *push.Message // sealed with Seal, or
		body   string        // sealed as it is with SealBody
		want   []job.SubscriptionEvent
	}{
		{name: "plaintext xml popup, two items", app: plainApp, mode: push.ModePlain, format: push.FormatXML,
			msg: ptr(popupMessage(created)), want: []job.SubscriptionEvent{popup(tpl1, "accept"), popup(tpl2, "reject")}},
		{name: "compatible xml popup", app: safeApp, mode: push.ModeCompatible, format: push.FormatXML,
			msg: ptr(popupMessage(created)), want: []job.SubscriptionEvent{popup(tpl1, "accept"), popup(tpl2, "reject")}},
		{name: "safe xml sent", app: safeApp, mode: push.ModeSafe, format: push.FormatXML,
			body: xmlSent, want: []job.SubscriptionEvent{sent("0", "success")}},
		{name: "safe xml change", app: safeApp, mode: push.ModeSafe, format: push.FormatXML,
			msg: &push.Message{ToUserName: "gh_1", FromUserName: openid, CreateTime: created.Unix(), MsgType: "event", Event: push.EventChange,
				Items: []push.Item{{TemplateID: tpl1, SubscribeStatus: "reject"}}},
			want: []job.SubscriptionEvent{ev(job.EventChange, tpl1, "reject")}},
		{name: "safe json List object", app: safeApp, mode: push.ModeSafe, format: push.FormatJSON,
			body: `{` + head + `"CreateTime":` + ct + `,"Event":"subscribe_msg_popup_event",
"List":{"TemplateId":"` + tpl1 + `","SubscribeStatusString":"accept","PopupScene":"0"}}`,
			want: []job.SubscriptionEvent{popup(tpl1, "accept")}},
		{name: "safe json List array", app: safeApp, mode: push.ModeSafe, format: push.FormatJSON,
			body: `{` + head + `"CreateTime":` + ct + `,"Event":"subscribe_msg_popup_event",
"List":[{"TemplateId":"` + tpl1 + `","SubscribeStatusString":"accept","PopupScene":0},{"TemplateId":"` + tpl2 + `","SubscribeStatusString":"reject","PopupScene":"0"}]}`,
			want: []job.SubscriptionEvent{popup(tpl1, "accept"), popup(tpl2, "reject")}},
		{name: "safe json nested wrapper", app: safeApp, mode: push.ModeSafe, format: push.FormatJSON,
			body: `{` + head + `"CreateTime":` + ct + `,"Event":"subscribe_msg_sent_event",
"SubscribeMsgSentEvent":{"List":{"TemplateId":"` + tpl1 + `","MsgID":` + bigMsgID + `,"ErrorCode":0,"ErrorStatus":"success"}}}`,
			want: []job.SubscriptionEvent{sent("0", "success")}},
		{name: "safe json wrapper array", app: safeApp, mode: push.ModeSafe, format: push.FormatJSON,
			body: `{` + head + `"CreateTime":` + ct + `,"Event":"subscribe_msg_popup_event",
"SubscribeMsgPopupEvent":[{"TemplateId":"` + tpl1 + `","SubscribeStatusString":"accept","PopupScene":"0"}]}`,
			want: []job.SubscriptionEvent{popup(tpl1, "accept")}},
		{name: "safe json string fields", app: safeApp, mode: push.ModeSafe, format: push.FormatJSON,
			body: `{` + head + `"CreateTime":"` + ct + `","Event":"subscribe_msg_sent_event",
"List":{"TemplateId":"` + tpl1 + `","MsgID":"` + bigMsgID + `","ErrorCode":"10005","ErrorStatus":"fail:user block"}}`,
			want: []job.SubscriptionEvent{sent("10005", "fail:user block")}},
		{name: "compatible json change", app: safeApp, mode: push.ModeCompatible, format: push.FormatJSON,
			body: `{` + head + `"CreateTime":` + ct + `,"Event":"subscribe_msg_change_event",
"List":{"TemplateId":"` + tpl2 + `","SubscribeStatusString":"reject"}}`,
			want: []job.SubscriptionEvent{ev(job.EventChange, tpl2, "reject")}},
		{name: "key rotation: the previous key still decrypts", app: safeApp, mode: push.ModeSafe, format: push.FormatJSON,
			key: oldKey, msg: ptr(popupMessage(created)), want: []job.SubscriptionEvent{popup(tpl1, "accept"), popup(tpl2, "reject")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, receiver.Config{})
			s := sealer(t, tt.app, tt.mode, tt.format)
			if tt.key != "" {
				s.Key = mustKey(t, tt.key)
			}
			var (
				q    url.Values
				body []byte
				err  error
			)
			if tt.msg != nil {
				q, body, err = s.Seal(*tt.msg, time.Now())
			} else {
				q, body, err = s.SealBody([]byte(tt.body), "gh_df0deeb82b8a", time.Now())
			}
			if err != nil {
				t.Fatal(err)
			}
			before := time.Now()
			if a := b.post(t, tt.app, q, body); a != (answer{200, "success"}) {
				t.Fatalf("answer %+v, want 200 success", a)
			}
			got := b.stored(t)
			if len(got) != len(tt.want) {
				t.Fatalf("stored %d events, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, g := range got {
				want := tt.want[i]
				want.App = tt.app
				if g.event.ReceivedAt.Before(before.Add(-time.Second)) || g.event.ReceivedAt.After(time.Now()) {
					t.Errorf("event %d received_at %v, want about now", i, g.event.ReceivedAt)
				}
				want.ReceivedAt = g.event.ReceivedAt
				if g.event != want {
					t.Errorf("event %d:\n got %+v\nwant %+v", i, g.event, want)
				}
				if wantSubject := job.SubscriptionSubject(job.WeChat, want.Event); g.subject != wantSubject {
					t.Errorf("event %d on %s, want %s", i, g.subject, wantSubject)
				}
				if g.msgID != want.DedupID() {
					t.Errorf("event %d Nats-Msg-Id %q, want %q", i, g.msgID, want.DedupID())
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestURLCheck(t *testing.T) {
	t.Parallel()
	b := setup(t, receiver.Config{})
	check := func(at time.Time, tok string) url.Values {
		ts := strconv.FormatInt(at.Unix(), 10)
		return url.Values{"signature": {push.Sign(tok, ts, "1514711492")}, "timestamp": {ts}, "nonce": {"1514711492"}, "echostr": {"4375120948345356249"}}
	}
	tests := []struct {
		name string
		app  string
		q    url.Values
		want answer
	}{
		{"valid", safeApp, check(time.Now(), token), answer{200, "4375120948345356249"}},
		{"plaintext app", plainApp, check(time.Now(), "plainToken"), answer{200, "4375120948345356249"}},
		{"another app's token", safeApp, check(time.Now(), "plainToken"), answer{401, "Unauthorized\n"}},
		{"stale", safeApp, check(time.Now().Add(-6*time.Minute), token), answer{401, "Unauthorized\n"}},
		{"unknown app", "nosuchapp", check(time.Now(), token), answer{404, "no push URL here\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := do(t, b.http.URL, http.MethodGet, tt.app, tt.q, nil); got != tt.want {
				t.Fatalf("GET = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestRefusedPushesStoreNothing sends forged, stale, garbage and oversized
// pushes: each gets the contract's answer, and the stream stays empty.
func TestRefusedPushesStoreNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, receiver.Config{})
	now := time.Now()
	safe := sealer(t, safeApp, push.ModeSafe, push.FormatXML)
	q, body, err := safe.Seal(popupMessage(now), now)
	if err != nil {
		t.Fatal(err)
	}
	with := func(k, v string) url.Values {
		c := url.Values{}
		for key, vals := range q {
			c[key] = vals
		}
		c.Set(k, v)
		return c
	}
	// Another app's appid inside a ciphertext made with this app's key.
	intruder := sealer(t, safeApp, push.ModeSafe, push.FormatXML)
	intruder.AppID = otherAppID
	iq, ibody, err := intruder.Seal(popupMessage(now), now)
	if err != nil {
		t.Fatal(err)
	}
	sq, sbody, err := safe.Seal(popupMessage(now), now.Add(-6*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	pq, pbody, err := sealer(t, plainApp, push.ModePlain, push.FormatXML).SealBody([]byte("garbage <xml"), "", now)
	if err != nil {
		t.Fatal(err)
	}
	big := append(bytes.Repeat([]byte(" "), receiver.DefaultMaxBody), pbody...)
	noItems := popupMessage(now)
	noItems.Items = nil
	nq, nbody, err := safe.Seal(noItems, now)
	if err != nil {
		t.Fatal(err)
	}
	badStatus := popupMessage(now)
	badStatus.Items[1].SubscribeStatus = "maybe"
	bq, bbody, err := safe.Seal(badStatus, now)
	if err != nil {
		t.Fatal(err)
	}
	plainToSafe, ptsBody, err := sealer(t, safeApp, push.ModePlain, push.FormatXML).Seal(popupMessage(now), now)
	if err != nil {
		t.Fatal(err)
	}
	encToPlain := sealer(t, plainApp, push.ModePlain, push.FormatXML)
	encToPlain.Mode, encToPlain.Key = push.ModeSafe, mustKey(t, aesKey)
	etpQ, etpBody, err := encToPlain.Seal(popupMessage(now), now)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		app    string
		q      url.Values
		body   []byte
		status int
		reason string
	}{
		{"forged signature", safeApp, with("signature", push.Sign("guess", q.Get("timestamp"), q.Get("nonce"))), body, 401, receiver.ReasonSignature},
		{"no signature", safeApp, with("signature", ""), body, 401, receiver.ReasonSignature},
		{"forged msg_signature", safeApp, with("msg_signature", push.Sign(token, "forged")), body, 401, receiver.ReasonMsgSignature},
		{"another app's appid inside", safeApp, iq, ibody, 401, receiver.ReasonAppID},
		{"stale timestamp", safeApp, sq, sbody, 401, receiver.ReasonStale},
		{"plaintext push to a safe-mode app", safeApp, plainToSafe, ptsBody, 401, receiver.ReasonMode},
		{"encrypted push to a plaintext app", plainApp, etpQ, etpBody, 401, receiver.ReasonMode},
		{"another app's push", plainApp, q, body, 401, receiver.ReasonSignature},
		{"garbage body", plainApp, pq, pbody, 400, receiver.ReasonMalformed},
		{"oversized body", plainApp, pq, big, 400, receiver.ReasonTooLarge},
		{"popup without items", safeApp, nq, nbody, 400, receiver.ReasonMalformed},
		{"status neither accept nor reject", safeApp, bq, bbody, 400, receiver.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.post(t, tt.app, tt.q, tt.body); got.status != tt.status {
				t.Fatalf("answer %+v, want %d", got, tt.status)
			}
			if n := b.metric(t, "herald_receiver_refused_total", "app", tt.app, "reason", tt.reason); n < 1 {
				t.Fatalf("refused{reason=%q} = %v, want counted", tt.reason, n)
			}
		})
	}
	if got := do(t, b.http.URL, http.MethodPut, safeApp, q, body); got.status != http.StatusMethodNotAllowed {
		t.Fatalf("PUT = %+v, want 405", got)
	}
	if got := b.post(t, "nosuchapp", q, body); got.status != http.StatusNotFound {
		t.Fatalf("push to an unknown app = %+v, want 404", got)
	}
	if n := b.count(t); n != 0 {
		t.Fatalf("the stream holds %d events after refused pushes, want 0", n)
	}
	// The same push, untouched, is taken.
	if got := b.post(t, safeApp, q, body); got != (answer{200, "success"}) {
		t.Fatalf("the genuine push = %+v", got)
	}
	if n := b.count(t); n != 2 {
		t.Fatalf("the stream holds %d events, want 2", n)
	}
}
