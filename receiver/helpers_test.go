package receiver_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/providers/wechat/push"
	"github.com/heraldhq/herald/receiver"
)

// The apps every test receiver serves.
const (
	safeApp    = "default" // compatible and safe mode, key rotated from oldKey
	plainApp   = "plain"   // plaintext mode
	otherApp   = "other"   // another app, safe mode with its own key
	safeAppID  = "wx0123456789abcdef"
	plainAppID = "wx2222222222222222"
	otherAppID = "wx3333333333333333"
	token      = "pushToken2024"
	aesKey     = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	oldKey     = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
	otherKey   = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
)

var stream = producer.DefaultTopology.SubscriptionsStream

func testApps() []receiver.WeChatApp {
	return []receiver.WeChatApp{
		{Name: safeApp, Config: push.Config{AppID: safeAppID, Token: token, EncodingAESKey: aesKey, PreviousEncodingAESKey: oldKey}},
		{Name: plainApp, Config: push.Config{AppID: plainAppID, Token: "plainToken"}},
		{Name: otherApp, Config: push.Config{AppID: otherAppID, Token: "otherToken", EncodingAESKey: otherKey}},
	}
}

// testBundle is a receiver behind a real HTTP server, storing into a real
// JetStream.
type testBundle struct {
	srv  *testenv.JetStream
	nc   *nats.Conn
	js   jetstream.JetStream
	recv *receiver.Server
	http *httptest.Server
	reg  *prometheus.Registry
}

// setup starts JetStream, creates the subscriptions stream and serves a
// receiver for testApps. The receiver's connection buffers nothing while
// disconnected, as herald receiver's does.
func setup(t testing.TB, cfg receiver.Config) *testBundle {
	t.Helper()
	b := &testBundle{srv: testenv.StartJetStream(t), reg: prometheus.NewRegistry()}
	b.nc, b.js = b.srv.Connect(t, nats.ReconnectBufSize(-1), nats.ReconnectWait(20*time.Millisecond), nats.MaxReconnects(-1))
	if _, err := producer.DefaultTopology.ApplySubscriptions(context.Background(), b.js); err != nil {
		t.Fatal(err)
	}
	b.recv = newReceiver(t, b.js, cfg, b.reg)
	b.http = httptest.NewServer(b.recv)
	t.Cleanup(b.http.Close)
	return b
}

func newReceiver(t testing.TB, js jetstream.JetStream, cfg receiver.Config, reg prometheus.Registerer) *receiver.Server {
	t.Helper()
	wx, err := receiver.NewWeChat("", testApps())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Stream == "" {
		cfg.Stream = stream
	}
	var log = zaptest.NewLogger(t)
	if _, ok := t.(*testing.B); ok {
		log = nil
	}
	r, err := receiver.New(cfg, js, []receiver.Platform{wx}, log, receiver.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sealer makes app's pushes in mode and format.
func sealer(t testing.TB, app string, mode push.Mode, format push.Format) *push.Sealer {
	t.Helper()
	for _, a := range testApps() {
		if a.Name != app {
			continue
		}
		s := &push.Sealer{AppID: a.AppID, Token: a.Token, Mode: mode, Format: format}
		if mode != push.ModePlain {
			s.Key = mustKey(t, a.EncodingAESKey)
		}
		return s
	}
	t.Fatalf("no test app %s", app)
	return nil
}

func mustKey(t testing.TB, encodingAESKey string) *push.Key {
	t.Helper()
	k, err := push.ParseKey(encodingAESKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// answer is an HTTP answer.
type answer struct {
	status int
	body   string
}

// post sends a push to app's URL.
func (b *testBundle) post(t testing.TB, app string, q url.Values, body []byte) answer {
	t.Helper()
	return do(t, b.http.URL, http.MethodPost, app, q, body)
}

func do(t testing.TB, base, method, app string, q url.Values, body []byte) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequest(method, base+receiver.DefaultWeChatPrefix+app+"?"+q.Encode(), rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, app, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, string(raw)}
}

// stored is one message of the subscriptions stream.
type stored struct {
	subject string
	msgID   string
	event   job.SubscriptionEvent
}

// stored returns every message in the subscriptions stream, oldest first.
func (b *testBundle) stored(t testing.TB) []stored {
	t.Helper()
	return storedIn(t, b.js)
}

func storedIn(t testing.TB, js jetstream.JetStream) []stored {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info := s.CachedInfo().State
	var out []stored
	for seq := info.FirstSeq; info.Msgs > 0 && seq <= info.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var e job.SubscriptionEvent
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Fatalf("stored event %s: %v", m.Data, err)
		}
		out = append(out, stored{subject: m.Subject, msgID: m.Header.Get(job.HeaderMsgID), event: e})
	}
	return out
}

// count is how many messages the subscriptions stream holds.
func (b *testBundle) count(t testing.TB) uint64 {
	t.Helper()
	return countIn(t, b.js)
}

func countIn(t testing.TB, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

// metric returns the value of the counter name whose labels include the
// given name, value pairs; 0 when there is none.
func (b *testBundle) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	families, err := b.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
