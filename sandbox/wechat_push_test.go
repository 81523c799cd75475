package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/providers/wechat/push"
)

// fakeReceiver opens the sandbox's pushes as herald receiver would and
// hands them to the test.
type fakeReceiver struct {
	http   *httptest.Server
	got    chan push.Message
	tries  atomic.Int64
	answer func(try int64) int // HTTP status of a try; nil: 200
}

func startReceiver(t *testing.T, cfg push.Config, now func() time.Time) *fakeReceiver {
	t.Helper()
	v, err := push.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeReceiver{got: make(chan push.Message, 16)}
	f.http = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		try := f.tries.Add(1)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read push: %v", err)
			return
		}
		m, err := v.Open(r.URL.Query(), body, now())
		if err != nil {
			t.Errorf("push does not open: %v\n%s", err, body)
			http.Error(rw, err.Error(), http.StatusUnauthorized)
			return
		}
		if f.answer != nil {
			if status := f.answer(try); status != http.StatusOK {
				http.Error(rw, "not now", status)
				return
			}
		}
		f.got <- m
		_, _ = io.WriteString(rw, "success")
	}))
	t.Cleanup(f.http.Close)
	return f
}

func (f *fakeReceiver) next(t *testing.T) push.Message {
	t.Helper()
	select {
	case m := <-f.got:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no push within 10s")
		return push.Message{}
	}
}

// pushSetup is a sandbox pushing the dev app's events to a fake receiver
// in mode and format.
func pushSetup(t *testing.T, mode push.Mode, format push.Format, grants bool) (*testBundle, *fakeReceiver) {
	t.Helper()
	var clock *fakeClock
	now := func() time.Time { return clock.Now() }
	cfg := push.Config{AppID: DevWeChatAppID, Token: DevPushToken}
	if mode != push.ModePlain {
		cfg.EncodingAESKey = DevEncodingAESKey
	}
	recv := startReceiver(t, cfg, now)
	b := setup(t, Options{Grants: grants, PushRetryWait: 10 * time.Millisecond, WeChatPush: map[string]PushTarget{
		DevWeChatAppID: {URL: recv.http.URL + "/wechat/default", Token: DevPushToken, EncodingAESKey: DevEncodingAESKey, Mode: mode, Format: format},
	}})
	clock = b.clock
	t.Cleanup(b.srv.Close)
	return b, recv
}

func (b *testBundle) control(t *testing.T, path string) subscribeAnswer {
	t.Helper()
	resp, err := b.http.Client().Post(b.http.URL+path, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a subscribeAnswer
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&a) != nil {
		t.Fatalf("POST %s: %s", path, resp.Status)
	}
	return a
}

// Every mode and format: a popup with two templates, a change, a sent
// event for an accepted send and the scripted asynchronous failure.
func TestPushesReachTheReceiver(t *testing.T) {
	for _, mode := range []push.Mode{push.ModePlain, push.ModeCompatible, push.ModeSafe} {
		for _, format := range []push.Format{push.FormatXML, push.FormatJSON} {
			t.Run(string(mode)+" "+string(format), func(t *testing.T) {
				t.Parallel()
				b, recv := pushSetup(t, mode, format, false)
				created := b.clock.Now().Unix()

				a := b.control(t, "/sandbox/wechat/subscribe?openid=o1&template=T1&template=T2")
				if !a.Pushed || a.Status != "accept" || len(a.Templates) != 2 {
					t.Fatalf("subscribe answer %+v", a)
				}
				want := push.Message{ToUserName: DevOriginalID, FromUserName: "o1", CreateTime: created, MsgType: "event",
					Event: push.EventPopup, Items: []push.Item{
						{TemplateID: "T1", SubscribeStatus: "accept", PopupScene: "0"},
						{TemplateID: "T2", SubscribeStatus: "accept", PopupScene: "0"},
					}}
				requireMessage(t, recv.next(t), want)

				b.control(t, "/sandbox/wechat/change?appid="+DevWeChatAppID+"&openid=o1&template=T2")
				requireMessage(t, recv.next(t), push.Message{ToUserName: DevOriginalID, FromUserName: "o1", CreateTime: created,
					MsgType: "event", Event: push.EventChange, Items: []push.Item{{TemplateID: "T2", SubscribeStatus: "reject"}}})

				token := b.stableToken(t)
				for _, user := range []string{"o1", "asyncfail-1"} {
					sent := b.send(t, token, message(user))
					if sent.ErrCode != 0 {
						t.Fatalf("send to %s: %+v", user, sent)
					}
					id, err := strconv.ParseInt(sent.MsgID.String(), 10, 64)
					if err != nil {
						t.Fatal(err)
					}
					it := push.Item{TemplateID: "TPL", MsgID: id, ErrorCode: "0", ErrorStatus: "success"}
					if user != "o1" {
						it.ErrorCode, it.ErrorStatus = "10005", "fail:user block"
					}
					requireMessage(t, recv.next(t), push.Message{ToUserName: DevOriginalID, FromUserName: user, CreateTime: created,
						MsgType: "event", Event: push.EventSent, Items: []push.Item{it}})
				}
				waitFor(t, "the fourth push's success to be counted", func() bool { return b.srv.Stats()["wechat"].Pushes == 4 })
				if st := b.srv.Stats()["wechat"]; st.PushFailures != 0 || st.PushRetries != 0 {
					t.Fatalf("stats %+v, want no failure", st)
				}
			})
		}
	}
}

// waitFor polls cond, which background pushes make true, for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // counters of background work: nothing to await
	}
}

func requireMessage(t *testing.T, got, want push.Message) {
	t.Helper()
	if got.ToUserName != want.ToUserName || got.FromUserName != want.FromUserName || got.CreateTime != want.CreateTime ||
		got.MsgType != want.MsgType || got.Event != want.Event || len(got.Items) != len(want.Items) {
		t.Fatalf("push:\n got %+v\nwant %+v", got, want)
	}
	for i := range got.Items {
		if got.Items[i] != want.Items[i] {
			t.Fatalf("push item %d:\n got %+v\nwant %+v", i, got.Items[i], want.Items[i])
		}
	}
}

// The grants loop, as on WeChat: nothing without an accept, one send per
// accept, accepts accumulate, a change takes them all.
func TestGrantsLoop(t *testing.T) {
	t.Parallel()
	b, recv := pushSetup(t, push.ModeSafe, push.FormatXML, true)
	token := b.stableToken(t)
	send := func(user string) int { return b.send(t, token, message(user)).ErrCode }

	if code := send("o1"); code != 43101 {
		t.Fatalf("send before any accept: errcode %d, want 43101", code)
	}
	if a := b.control(t, "/sandbox/wechat/subscribe?openid=o1&template=TPL"); a.Grants["TPL"] != 1 {
		t.Fatalf("grants after an accept: %+v", a)
	}
	recv.next(t)
	if code := send("o1"); code != 0 {
		t.Fatalf("send after an accept: errcode %d, want 0", code)
	}
	recv.next(t) // its sent event
	if code := send("o1"); code != 43101 {
		t.Fatalf("second send on one accept: errcode %d, want 43101", code)
	}
	if a := b.control(t, "/sandbox/wechat/subscribe?openid=o1&template=TPL&status=reject"); a.Grants["TPL"] != 0 {
		t.Fatalf("a reject adds no grant: %+v", a)
	}
	b.control(t, "/sandbox/wechat/subscribe?openid=o1&template=TPL")
	if a := b.control(t, "/sandbox/wechat/subscribe?openid=o1&template=TPL&template=OTHER"); a.Grants["TPL"] != 2 || a.Grants["OTHER"] != 1 {
		t.Fatalf("accepts accumulate: %+v", a)
	}
	for i := range 2 {
		if code := send("o1"); code != 0 {
			t.Fatalf("send %d of two accepts: errcode %d", i+1, code)
		}
	}
	if code := send("o1"); code != 43101 {
		t.Fatalf("third send on two accepts: errcode %d, want 43101", code)
	}
	// Another user's grants are their own; a change takes them all.
	b.control(t, "/sandbox/wechat/subscribe?openid=o2&template=TPL")
	b.control(t, "/sandbox/wechat/subscribe?openid=o2&template=TPL")
	b.control(t, "/sandbox/wechat/change?openid=o2&template=TPL")
	if code := send("o2"); code != 43101 {
		t.Fatalf("send after a change: errcode %d, want 43101", code)
	}
	// A scripted refusal stays one, grants or not.
	b.control(t, "/sandbox/wechat/subscribe?openid=refuse-1&template=TPL")
	if code := send("refuse-1"); code != 43101 {
		t.Fatalf("refuse… with a grant: errcode %d, want 43101", code)
	}
}

func TestPushIsTriedThreeTimes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		failures    int64 // tries answered 503 before success
		wantPushes  int64
		wantFailed  int64
		wantRetries int64
		wantTries   int64
	}{
		{"success on the third try", 2, 1, 0, 2, 3},
		{"no success in three tries", 3, 0, 1, 2, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, recv := pushSetup(t, push.ModePlain, push.FormatJSON, false)
			recv.answer = func(try int64) int {
				if try <= tt.failures {
					return http.StatusServiceUnavailable
				}
				return http.StatusOK
			}
			b.control(t, "/sandbox/wechat/subscribe?openid=o1&template=TPL")
			waitFor(t, "the push to settle", func() bool {
				st := b.srv.Stats()["wechat"]
				return st.Pushes+st.PushFailures == 1
			})
			if st := b.srv.Stats()["wechat"]; st.Pushes != tt.wantPushes || st.PushFailures != tt.wantFailed || st.PushRetries != tt.wantRetries {
				t.Fatalf("stats %+v", st)
			}
			if n := recv.tries.Load(); n != tt.wantTries {
				t.Fatalf("receiver saw %d tries, want %d", n, tt.wantTries)
			}
		})
	}
}

// Close stops a push in flight to a receiver that never answers.
func TestCloseStopsPushes(t *testing.T) {
	t.Parallel()
	block, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	stuck := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server watches the connection
		once.Do(func() { close(block) })
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(stuck.Close)
	t.Cleanup(func() { close(release) }) // runs first
	srv := New(Options{WeChatPush: map[string]PushTarget{DevWeChatAppID: {URL: stuck.URL, Token: DevPushToken}}})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	resp, err := http.Post(hs.URL+"/sandbox/wechat/subscribe?openid=o1&template=T", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	<-block
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not stop a push in flight")
	}
	if st := srv.Stats()["wechat"]; st.PushFailures != 1 {
		t.Fatalf("stats after Close %+v, want the push counted failed", st)
	}
}

func TestPushOptionsAreValidated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give PushTarget
		want string
	}{
		{PushTarget{Token: "t"}, "url and token are required"},
		{PushTarget{URL: "http://x", Token: "t", Mode: "secret"}, `mode "secret"`},
		{PushTarget{URL: "http://x", Token: "t", Format: "yaml"}, `format "yaml"`},
		{PushTarget{URL: "http://x", Token: "t", Mode: push.ModeSafe, EncodingAESKey: "short"}, "encoding aes key"},
	}
	for _, tt := range tests {
		err := Options{WeChatPush: map[string]PushTarget{"wx1": tt.give}}.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.give, err, tt.want)
		}
	}
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("Validate of no pushes = %v", err)
	}
}

func TestControlsCheckTheirParameters(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Grants: true})
	tests := []struct {
		path string
		want int
	}{
		{"/sandbox/wechat/subscribe?appid=wxnope&openid=o1&template=T", http.StatusNotFound},
		{"/sandbox/wechat/subscribe?template=T", http.StatusBadRequest},
		{"/sandbox/wechat/subscribe?openid=o1", http.StatusBadRequest},
		{"/sandbox/wechat/subscribe?openid=o1&template=T&status=maybe", http.StatusBadRequest},
		{"/sandbox/wechat/change?openid=o1&template=", http.StatusBadRequest},
		{"/sandbox/wechat/subscribe?openid=o1&template=T", http.StatusOK},
	}
	for _, tt := range tests {
		resp, err := b.http.Client().Post(b.http.URL+tt.path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("POST %s = %d, want %d", tt.path, resp.StatusCode, tt.want)
		}
	}
	resp, err := b.http.Client().Get(b.http.URL + "/sandbox/wechat/grants?openid=o1&template=T")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var g struct {
		Grants map[string]int `json:"grants"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&g); err != nil || g.Grants["T"] != 1 {
		t.Fatalf("grants = %+v, %v; want T: 1", g, err)
	}
}
