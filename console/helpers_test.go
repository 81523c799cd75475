package console_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/heraldhq/herald/console"
	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
)

// testBundle is a JetStream server with herald's streams, and a console on
// it served over HTTP.
type testBundle struct {
	srv     *testenv.JetStream
	nc      *nats.Conn
	js      jetstream.JetStream
	topo    producer.Topology
	console *console.Console
	url     string
	client  *http.Client
}

// consoleConfig is the console's configuration for the default topology.
func consoleConfig() console.Config {
	t := producer.DefaultTopology
	return console.Config{
		SendStream: t.SendStream, DeadStream: t.DeadStream, EventsStream: t.EventsStream,
		Consumer: t.Consumer, OtherStreams: []string{t.SubscriptionsStream},
	}
}

// setup starts JetStream with herald's streams and a console whose config
// configure may change.
func setup(t testing.TB, configure ...func(*console.Config)) *testBundle {
	t.Helper()
	srv := testenv.StartJetStream(t)
	nc, js := srv.Connect(t)
	topo := producer.DefaultTopology
	if _, err := topo.Apply(t.Context(), js); err != nil {
		t.Fatalf("apply topology: %v", err)
	}
	b := &testBundle{srv: srv, nc: nc, js: js, topo: topo}
	b.start(t, configure...)
	return b
}

// start serves a console on b's JetStream.
func (b *testBundle) start(t testing.TB, configure ...func(*console.Config)) {
	t.Helper()
	cfg := consoleConfig()
	for _, c := range configure {
		c(&cfg)
	}
	b.serve(t, cfg)
}

// serve serves a console of cfg and opts on b's JetStream in place of
// the one b had: b.url is its URL from now on.
func (b *testBundle) serve(t testing.TB, cfg console.Config, opts ...console.Option) {
	t.Helper()
	var log *zap.Logger
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt, zaptest.Level(zap.WarnLevel))
	}
	c, err := console.New(cfg, b.js, log, opts...)
	if err != nil {
		t.Fatalf("console.New: %v", err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(func() {
		c.Close()
		srv.Close()
	})
	b.console, b.url = c, srv.URL
	b.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// spec describes a dead letter to store.
type spec struct {
	id, platform, reason, app, tpl, code, message, toUser, field string
	replays                                                      int
	raw                                                          []byte // an undecodable job: raw bytes, no job object
}

// letterOf builds the dead letter the worker would write for s.
func letterOf(s spec) job.DeadLetter {
	first := time.Now().UTC().Add(-time.Minute)
	l := job.DeadLetter{
		Reason: s.reason, Platform: s.platform, App: s.app, TemplateID: s.tpl,
		ToUser: s.toUser, ID: s.id, Code: s.code, Message: s.message, Field: s.field,
		Attempts: 1, FirstAttemptAt: &first, DeadAt: time.Now().UTC(), Worker: "worker-1", Replays: s.replays,
		Source: job.Source{Stream: "NOTIFY_SEND", Subject: job.SendSubject(s.platform), Sequence: 1},
	}
	if l.ToUser == "" {
		l.ToUser = "user-" + s.id
	}
	if l.Message == "" {
		l.Message = "scripted " + s.reason
	}
	if s.raw != nil {
		l.Raw = s.raw
		return l
	}
	data, err := json.Marshal(job.Job{
		ID: s.id, Platform: s.platform, App: s.app, TemplateID: s.tpl, ToUser: l.ToUser,
		Data: map[string]job.Value{"thing1": {Value: "hello"}},
	})
	if err != nil {
		panic(err)
	}
	l.Job = data
	return l
}

func deadMsg(t testing.TB, s spec) *nats.Msg {
	t.Helper()
	data, err := json.Marshal(letterOf(s))
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(job.DeadSubject(s.platform, s.reason))
	msg.Data = data
	msg.Header.Set(job.HeaderReason, s.reason)
	msg.Header.Set(job.HeaderCode, s.code)
	return msg
}

// storeDead publishes the dead letters of specs as the worker does and
// returns their sequences.
func (b *testBundle) storeDead(t testing.TB, specs ...spec) []uint64 {
	t.Helper()
	seqs := make([]uint64, 0, len(specs))
	for _, s := range specs {
		ack, err := b.js.PublishMsg(t.Context(), deadMsg(t, s))
		if err != nil {
			t.Fatalf("store dead letter %s: %v", s.id, err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

// storeMany publishes n dead letters made by mk, asynchronously, and
// waits until all are stored.
func (b *testBundle) storeMany(t testing.TB, n int, mk func(i int) spec) {
	t.Helper()
	for i := range n {
		if _, err := b.js.PublishMsgAsync(deadMsg(t, mk(i))); err != nil {
			t.Fatalf("store dead letter %d: %v", i, err)
		}
		if i%4096 == 4095 {
			<-b.js.PublishAsyncComplete()
		}
	}
	select {
	case <-b.js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		t.Fatal("dead letters not stored within a minute")
	}
}

// storeReceipt publishes the receipt the worker writes for a delivered job.
func (b *testBundle) storeReceipt(t testing.TB, platform, app, id string) {
	t.Helper()
	data, err := json.Marshal(job.Receipt{
		ID: id, Platform: platform, App: app, TemplateID: "tpl-order", ToUser: "user-" + id,
		Attempts: 1, MsgID: "2317554938710732141", SentAt: time.Now().UTC(), Worker: "worker-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(job.SentSubject(platform))
	msg.Data = data
	msg.Header.Set(job.HeaderMsgID, job.ReceiptMsgID(platform, app, id))
	if _, err := b.js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatalf("store receipt %s: %v", id, err)
	}
}

// msgs returns how many messages stream holds.
func (b *testBundle) msgs(t testing.TB, stream string) uint64 {
	t.Helper()
	s, err := b.js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	return s.CachedInfo().State.Msgs
}

// do sends a request to the console and returns the answer with its body.
func (b *testBundle) do(t testing.TB, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// get fetches path and fails the test unless it answers want.
func (b *testBundle) get(t testing.TB, path string, want int) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, b.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := b.do(t, req)
	if resp.StatusCode != want {
		t.Fatalf("GET %s = %d, want %d:\n%s", path, resp.StatusCode, want, body)
	}
	return body
}

// post sends a form as the console's own page does (same origin).
func (b *testBundle) post(t testing.TB, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", b.url)
	return b.do(t, req)
}

func mustContain(t testing.TB, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	if t.Failed() {
		t.Fatalf("page:\n%s", body)
	}
}

func mustNotContain(t testing.TB, body string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(body, w) {
			t.Errorf("page contains %q", w)
		}
	}
	if t.Failed() {
		t.Fatalf("page:\n%s", body)
	}
}
