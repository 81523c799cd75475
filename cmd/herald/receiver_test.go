package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/providers/wechat/push"
	"github.com/heraldhq/herald/sandbox"
)

// herald receiver, configured through HERALD_* variables only (the push
// settings nested under the app among them), creates its stream, answers
// /readyz, stores a safe-mode push's events, counts them in /metrics and
// stops on cancellation.
func TestReceiverCommandStoresPushes(t *testing.T) {
	t.Parallel()
	js := testenv.StartJetStream(t)
	_, check := js.Connect(t)
	ctx := t.Context()
	base, logs := startReceiverCmd(t, js.URL)
	if strings.Contains(logs.String(), sandbox.DevPushToken) || strings.Contains(logs.String(), sandbox.DevEncodingAESKey) {
		t.Fatalf("the log shows a push secret:\n%s", logs)
	}

	if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d", code)
	}
	k, err := push.ParseKey(sandbox.DevEncodingAESKey)
	if err != nil {
		t.Fatal(err)
	}
	s := &push.Sealer{AppID: sandbox.DevWeChatAppID, Token: sandbox.DevPushToken, Key: k, Mode: push.ModeSafe, Format: push.FormatJSON}
	q, body, err := s.Seal(push.Message{ToUserName: sandbox.DevOriginalID, FromUserName: "o1", CreateTime: time.Now().Unix(),
		MsgType: push.MsgTypeEvent, Event: push.EventPopup, Items: []push.Item{
			{TemplateID: "T1", SubscribeStatus: "accept", PopupScene: "0"}, {TemplateID: "T2", SubscribeStatus: "accept", PopupScene: "0"},
		}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/wechat/default?"+q.Encode(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(answer) != "success" {
		t.Fatalf("push answered %d %q", resp.StatusCode, answer)
	}
	st, err := check.Stream(ctx, producer.DefaultTopology.SubscriptionsStream)
	if err != nil {
		t.Fatalf("the receiver did not create its stream: %v", err)
	}
	if n := st.CachedInfo().State.Msgs; n != 2 {
		t.Fatalf("stream holds %d events, want 2", n)
	}
	if _, err := check.Stream(ctx, producer.DefaultTopology.SendStream); err == nil {
		t.Fatal("the receiver created the job stream, which is the worker's")
	}
	_, metrics := get(t, base+"/metrics")
	want := `herald_receiver_events_total{app="default",event="popup",platform="wechat",result="stored"} 2`
	if !strings.Contains(metrics, want) {
		t.Fatalf("/metrics lacks %s", want)
	}
	if code, _ := get(t, base+"/wechat/unknown"); code != http.StatusNotFound {
		t.Fatalf("an unknown app's URL = %d, want 404", code)
	}
}

// startReceiverCmd runs herald receiver for the dev app in safe mode,
// configured through the environment only, and returns its base URL.
func startReceiverCmd(t *testing.T, natsURL string) (string, *syncBuffer) {
	t.Helper()
	environ := []string{
		"HERALD_NATS_URL=" + natsURL,
		"HERALD_RECEIVER_HTTP_ADDR=127.0.0.1:0",
		"HERALD_APPS_DEFAULT_WECHAT_APP_ID=" + sandbox.DevWeChatAppID,
		"HERALD_APPS_DEFAULT_WECHAT_APP_SECRET=" + sandbox.DevWeChatSecret,
		"HERALD_APPS_DEFAULT_WECHAT_PUSH_TOKEN=" + sandbox.DevPushToken,
		"HERALD_APPS_DEFAULT_WECHAT_PUSH_ENCODING_AES_KEY=" + sandbox.DevEncodingAESKey,
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := run(ctx, []string{"receiver"}, environ, nil, io.Discard, logs); err != nil {
			t.Errorf("herald receiver: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if t.Failed() {
			t.Logf("receiver log:\n%s", logs)
		}
	})
	addrRE := regexp.MustCompile(`"receiver listening".*"addr":"([^"]+)"`)
	testenv.Eventually(t, 10*time.Second, "the receiver to listen", func() bool { return addrRE.MatchString(logs.String()) })
	return "http://" + addrRE.FindStringSubmatch(logs.String())[1], logs
}

// herald sandbox --wechat-push --grants pushes to herald receiver: an
// accept arrives as an event and grants one send; the next send is
// refused with 43101.
func TestSandboxCommandPushesToTheReceiver(t *testing.T) {
	t.Parallel()
	js := testenv.StartJetStream(t)
	_, check := js.Connect(t)
	base, _ := startReceiverCmd(t, js.URL)

	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	var wg sync.WaitGroup
	wg.Go(func() {
		args := []string{"sandbox", "--addr", "127.0.0.1:0", "--json", "--grants", "--wechat-push",
			"url=" + base + "/wechat/default,token=" + sandbox.DevPushToken + ",aes_key=" + sandbox.DevEncodingAESKey + ",format=json"}
		if err := run(ctx, args, nil, nil, out, io.Discard); err != nil {
			t.Errorf("herald sandbox: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	var printed struct {
		URL    string `json:"url"`
		Grants bool   `json:"grants"`
		Pushes []struct {
			AppID, URL, Mode, Format string
		} `json:"wechat_pushes"`
	}
	testenv.Eventually(t, 10*time.Second, "the sandbox's address", func() bool { return json.Unmarshal([]byte(out.String()), &printed) == nil })
	if !printed.Grants || len(printed.Pushes) != 1 || printed.Pushes[0].Mode != "safe" || printed.Pushes[0].Format != "json" {
		t.Fatalf("sandbox printed %s", out)
	}
	if strings.Contains(out.String(), sandbox.DevEncodingAESKey) {
		t.Fatalf("the sandbox printed the key: %s", out)
	}

	post := func(path string, body string) string {
		t.Helper()
		resp, err := http.Post(printed.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	post("/sandbox/wechat/subscribe?openid=o1&template=TPL", "")
	stream := producer.DefaultTopology.SubscriptionsStream
	testenv.Eventually(t, 10*time.Second, "the popup event in the stream", func() bool {
		s, err := check.Stream(ctx, stream)
		return err == nil && s.CachedInfo().State.Msgs == 1
	})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(post("/cgi-bin/stable_token", `{"grant_type":"client_credential","appid":"`+
		sandbox.DevWeChatAppID+`","secret":"`+sandbox.DevWeChatSecret+`"}`)), &tok); err != nil {
		t.Fatal(err)
	}
	msg := `{"touser":"o1","template_id":"TPL","data":{"thing1":{"value":"hi"}}}`
	send := "/cgi-bin/message/subscribe/send?access_token=" + tok.AccessToken
	if a := post(send, msg); !strings.Contains(a, `"errcode":0`) {
		t.Fatalf("send on a grant: %s", a)
	}
	if a := post(send, msg); !strings.Contains(a, `"errcode":43101`) {
		t.Fatalf("second send on one grant: %s", a)
	}
	testenv.Eventually(t, 10*time.Second, "the sent event in the stream", func() bool {
		s, err := check.Stream(ctx, stream)
		return err == nil && s.CachedInfo().State.Msgs == 2
	})
}

func TestParseWeChatPushes(t *testing.T) {
	t.Parallel()
	one := map[string]string{"wx1": "s"}
	two := map[string]string{"wx1": "s", "wx2": "s"}
	tests := []struct {
		give    string
		apps    map[string]string
		want    sandbox.PushTarget
		wantErr string
	}{
		{give: "url=http://r/wechat/a,token=t", apps: one, want: sandbox.PushTarget{URL: "http://r/wechat/a", Token: "t", Mode: "plain", Format: "xml"}},
		{give: "url=http://r/a,token=t,aes_key=k,format=json", apps: one, want: sandbox.PushTarget{URL: "http://r/a", Token: "t", EncodingAESKey: "k", Mode: "safe", Format: "json"}},
		{give: "url=http://r/a,token=t,aes_key=k,mode=compatible,appid=wx2", apps: two, want: sandbox.PushTarget{URL: "http://r/a", Token: "t", EncodingAESKey: "k", Mode: "compatible", Format: "xml"}},
		{give: "url=http://r/a,token=t", apps: two, wantErr: "appid is required"},
		{give: "url=http://r/a,token=t,appid=wx9", apps: one, wantErr: "appid wx9 is not a --wechat-app"},
		{give: "url=http://r/a", apps: one, wantErr: "url and token are required"},
		{give: "url=ftp://r/a,token=t", apps: one, wantErr: "http or https URL"},
		{give: "url=http://r/a,token=t,color=red", apps: one, wantErr: `unknown key "color"`},
		{give: "http://r/a", apps: one, wantErr: "is not key=value"},
	}
	for _, tt := range tests {
		got, err := parseWeChatPushes([]string{tt.give}, tt.apps)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: error %v, want %q", tt.give, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.give, err)
			continue
		}
		for _, p := range got {
			if p != tt.want {
				t.Errorf("%q: %+v, want %+v", tt.give, p, tt.want)
			}
		}
	}
}

func TestReceiverCommandNeedsAPushApp(t *testing.T) {
	t.Parallel()
	environ := []string{
		"HERALD_APPS_DEFAULT_WECHAT_APP_ID=" + sandbox.DevWeChatAppID,
		"HERALD_APPS_DEFAULT_WECHAT_APP_SECRET=" + sandbox.DevWeChatSecret,
	}
	err := run(t.Context(), []string{"receiver"}, environ, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "apps.<app>.wechat.push.token") {
		t.Fatalf("herald receiver without push settings = %v, want an error naming the key", err)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
