package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/console"
	"github.com/heraldhq/herald/dlq"
	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer/job"
)

// status is the JSON of /ops/{id}/status.
type status struct {
	State   string            `json:"state"`
	Done    int               `json:"done"`
	Total   int               `json:"total"`
	Error   string            `json:"error"`
	Running bool              `json:"running"`
	Replay  *dlq.ReplayResult `json:"replay"`
	Purge   *dlq.PurgeResult  `json:"purge"`
}

// launch posts a confirmed operation and returns the page it redirects to.
func (b *testBundle) launch(t testing.TB, path string, form url.Values) string {
	t.Helper()
	resp, body := b.post(t, path, form)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST %s: status %d, want 303:\n%s", path, resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/ops/") {
		t.Fatalf("POST %s redirects to %q, want /ops/<id>", path, loc)
	}
	return loc
}

// await polls an operation's status until it is no longer running.
func (b *testBundle) await(t testing.TB, op string) status {
	t.Helper()
	var s status
	testenv.Eventually(t, 30*time.Second, "operation "+op+" to finish", func() bool {
		body := b.get(t, op+"/status", http.StatusOK)
		s = status{}
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Fatalf("status %s: %v", body, err)
		}
		return !s.Running
	})
	return s
}

// previewForm reads the hidden fields of the confirmation form of a
// preview page, as the browser would post them.
func previewForm(t testing.TB, page string) url.Values {
	t.Helper()
	start := strings.Index(page, `id="confirm-form"`)
	if start < 0 {
		t.Fatalf("no confirmation form:\n%s", page)
	}
	form := url.Values{}
	rest := page[start:]
	rest = rest[:strings.Index(rest, "</form>")]
	for {
		i := strings.Index(rest, `<input type="hidden" name="`)
		if i < 0 {
			break
		}
		rest = rest[i+len(`<input type="hidden" name="`):]
		name := rest[:strings.Index(rest, `"`)]
		rest = rest[strings.Index(rest, `value="`)+len(`value="`):]
		value := rest[:strings.Index(rest, `"`)]
		value = strings.NewReplacer("&#43;", "+", "&amp;", "&", "&#34;", `"`, "&#39;", "'").Replace(value)
		form.Add(name, value)
	}
	return form
}

func TestReplayFromConsole(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.storeDead(t,
		spec{id: "r1", platform: job.WeChat, reason: job.ReasonRetriesExhausted, app: "default", tpl: "T1"},
		spec{id: "u1", platform: job.WeChat, reason: job.ReasonUserRefused, app: "default", tpl: "T1", code: "43101"},
		spec{id: "r2", platform: job.Alipay, reason: job.ReasonRetriesExhausted, app: "shop", tpl: "T2", replays: 2},
		spec{id: "r3", platform: job.WeChat, reason: job.ReasonRetriesExhausted, app: "default", tpl: "T3"},
	)
	preview := b.get(t, "/replay?reason=retries_exhausted&rate=0&preview=1", http.StatusOK)
	mustContain(t, preview, `<b id="preview-count">3</b>`, "r1", "r2", "r3", "nothing was changed")
	if n := b.msgs(t, b.topo.SendStream); n != 0 {
		t.Fatalf("a dry run published %d jobs", n)
	}
	form := previewForm(t, preview)
	if form.Get("expected") != "3" || form.Get("reason") != job.ReasonRetriesExhausted || form.Get("until") == "" {
		t.Fatalf("confirmation form = %v, want the previewed filter, an absolute until and expected 3", form)
	}

	// Without the tick, nothing happens.
	resp, body := b.post(t, "/replay", form)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unconfirmed replay: status %d, want 400", resp.StatusCode)
	}
	mustContain(t, body, "Nothing was changed")

	form.Set("confirm", "yes")
	op := b.launch(t, "/replay", form)
	s := b.await(t, op)
	if s.State != "done" || s.Replay == nil || s.Replay.Replayed != 3 || s.Replay.Deleted != 3 || s.Done != 3 || s.Total != 3 {
		t.Fatalf("replay status = %+v (%+v), want done, 3 replayed and deleted", s, s.Replay)
	}
	if n := b.msgs(t, b.topo.SendStream); n != 3 {
		t.Fatalf("job stream holds %d jobs, want the 3 replayed", n)
	}
	// Published as herald dlq replay publishes: replays counted on.
	stream, _ := b.js.Stream(t.Context(), b.topo.SendStream)
	replays := map[string]string{}
	for seq := uint64(1); seq <= 3; seq++ {
		m, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		var j job.Job
		_ = json.Unmarshal(m.Data, &j)
		replays[j.ID] = m.Header.Get(job.HeaderReplays)
		if !strings.HasPrefix(m.Header.Get(job.HeaderMsgID), "replay:NOTIFY_DEAD:") {
			t.Errorf("replay of %s has Nats-Msg-Id %q", j.ID, m.Header.Get(job.HeaderMsgID))
		}
	}
	if replays["r1"] != "1" || replays["r2"] != "3" || replays["r3"] != "1" {
		t.Fatalf("Herald-Replays = %v, want r1 1, r2 3, r3 1", replays)
	}
	list := b.get(t, "/dead?since=", http.StatusOK)
	mustContain(t, list, `<b id="match-count">1</b>`, "u1")
	page := b.get(t, op, http.StatusOK)
	mustContain(t, page, "state-done", `<td id="op-replayed">3</td>`)
	mustContain(t, b.get(t, "/", http.StatusOK), "Recent replays and purges", "reason retries_exhausted")
}

// TestReplayRefusesMoreThanPreviewed posts a confirmation for fewer dead
// letters than match by the time it runs: the run changes nothing.
func TestReplayRefusesMoreThanPreviewed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.storeDead(t,
		spec{id: "r1", platform: job.WeChat, reason: job.ReasonRetriesExhausted, app: "default", tpl: "T1"},
		spec{id: "r2", platform: job.WeChat, reason: job.ReasonRetriesExhausted, app: "default", tpl: "T1"},
	)
	op := b.launch(t, "/replay", url.Values{
		"reason": {job.ReasonRetriesExhausted}, "since": {""}, "expected": {"1"}, "confirm": {"yes"}, "rate": {"0"},
	})
	s := b.await(t, op)
	if s.State != "failed" || !strings.Contains(s.Error, "2 dead letters match now, more than the 1 previewed") {
		t.Fatalf("status = %+v, want failed: more match than previewed", s)
	}
	if n, m := b.msgs(t, b.topo.SendStream), b.msgs(t, b.topo.DeadStream); n != 0 || m != 2 {
		t.Fatalf("after a refused replay: %d jobs, %d dead letters; want 0 and 2", n, m)
	}
}

func TestReplayWithoutFilterNeedsAll(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.storeDead(t, spec{id: "r1", platform: job.WeChat, reason: job.ReasonRetriesExhausted, app: "default", tpl: "T1"})
	form := url.Values{"since": {""}, "expected": {"1"}, "confirm": {"yes"}, "rate": {"0"}}
	resp, body := b.post(t, "/replay", form)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("replay without a filter: status %d, want 400", resp.StatusCode)
	}
	mustContain(t, body, "Without a filter")
	form.Set("all", "on")
	if s := b.await(t, b.launch(t, "/replay", form)); s.State != "done" || s.Replay.Replayed != 1 {
		t.Fatalf("replay with all: %+v", s)
	}
}

func TestPurgeFromConsole(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.storeDead(t,
		spec{id: "u1", platform: job.WeChat, reason: job.ReasonUserRefused, app: "default", tpl: "T1", code: "43101"},
		spec{id: "u2", platform: job.Alipay, reason: job.ReasonUserRefused, app: "default", tpl: "T1"},
		spec{id: "x1", platform: job.WeChat, reason: job.ReasonExpired, app: "default", tpl: "T1"},
	)
	preview := b.get(t, "/purge?reason=user_refused&since=&preview=1", http.StatusOK)
	mustContain(t, preview, `<b id="preview-count">2</b>`)
	form := previewForm(t, preview)
	form.Set("confirm", "yes")
	s := b.await(t, b.launch(t, "/purge", form))
	if s.State != "done" || s.Purge == nil || s.Purge.Deleted != 2 {
		t.Fatalf("purge status = %+v (%+v), want done, 2 deleted", s, s.Purge)
	}
	if n := b.msgs(t, b.topo.DeadStream); n != 1 {
		t.Fatalf("dead letters = %d, want the expired one", n)
	}
	// The same letter again: gone.
	b.get(t, "/dead/1", http.StatusNotFound)
}

// TestCloseStopsOperations closes the console during a slow replay: Close
// waits for it, and what it did stays done.
func TestCloseStopsOperations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.storeMany(t, 50, func(i int) spec {
		return spec{id: fmt.Sprintf("r%d", i), platform: job.WeChat, reason: job.ReasonRetriesExhausted, app: "default", tpl: "T1"}
	})
	op := b.launch(t, "/replay", url.Values{
		"reason": {job.ReasonRetriesExhausted}, "since": {""}, "expected": {"50"}, "confirm": {"yes"}, "rate": {"5"},
	})
	testenv.Eventually(t, 10*time.Second, "the replay to start", func() bool {
		return b.msgs(t, b.topo.SendStream) > 0
	})
	b.console.Close()
	replayed, dead := b.msgs(t, b.topo.SendStream), b.msgs(t, b.topo.DeadStream)
	if replayed == 0 || replayed == 50 || replayed+dead != 50 {
		t.Fatalf("after Close: %d replayed, %d dead letters left; want some of each, 50 in all", replayed, dead)
	}
	body := b.get(t, op+"/status", http.StatusOK)
	mustContain(t, body, `"state":"cancelled"`)
}

func TestJobLookup(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.storeReceipt(t, job.WeChat, job.DefaultApp, "order-42")
	b.storeReceipt(t, job.WeChat, "shop", "order-42") // another app's job of the same id
	b.storeDead(t,
		spec{id: "order-43", platform: job.WeChat, reason: job.ReasonUserRefused, app: "default", tpl: "T1", code: "43101", message: "user refuse to accept the msg rid: 1"},
		spec{id: "order-43", platform: job.WeChat, reason: job.ReasonUserRefused, app: "default", tpl: "T1", code: "43101", replays: 1},
		spec{id: "order-43", platform: job.Alipay, reason: job.ReasonUserRefused, app: "default", tpl: "T1"},
	)

	delivered := b.get(t, "/jobs?platform=wechat&app=default&id=order-42", http.StatusOK)
	mustContain(t, delivered, "Delivered: NOTIFY_EVENTS sequence 1", "2317554938710732141", "No dead letter in NOTIFY_DEAD")
	mustNotContain(t, delivered, "sequence 2")

	dead := b.get(t, "/jobs?platform=wechat&app=default&id=order-43", http.StatusOK)
	mustContain(t, dead, "No receipt: searched 2 receipts", "Dead-lettered 2 times", "user refuse to accept the msg rid: 1",
		`<a href="/dead/1">1</a>`, `<a href="/dead/2">2</a>`)
	mustNotContain(t, dead, `<a href="/dead/3">`)

	b.get(t, "/jobs?platform=sms&id=x", http.StatusBadRequest)
	form := b.get(t, "/jobs", http.StatusOK)
	mustContain(t, form, `id="job-form"`)
	mustNotContain(t, form, "Delivery receipt")
}

// ledger is a lookup another package could add: the console shows its
// sections with herald's own.
type ledger struct{}

func (ledger) Name() string { return "ledger" }

func (ledger) LookupJob(_ context.Context, key console.JobKey, _ console.LookupOptions) ([]console.Section, error) {
	if key.ID == "broken" {
		return nil, fmt.Errorf("ledger unreachable")
	}
	return []console.Section{{
		Title: "Dedup state", State: console.StateGood, Summary: "sent, 1 attempt",
		Fields: []console.Field{{Name: "msgid", Value: "<42>", Href: "javascript:alert(1)"}},
		Table:  &console.Table{Columns: []string{"when", "what"}, Rows: [][]console.Cell{{{Text: "now"}, {Text: "claimed", Href: "/dead"}}}},
	}}, nil
}

func TestJobLookupPluggable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.serve(t, consoleConfig(), console.WithJobLookups(console.ReceiptLookup(b.js, b.topo.EventsStream), ledger{}))

	body := b.get(t, "/jobs?id=j1", http.StatusOK)
	mustContain(t, body, "Delivery receipt", "Dedup state", "sent, 1 attempt", "&lt;42&gt;", "#ZgotmplZ", `<a href="/dead">claimed</a>`)
	mustNotContain(t, body, "<h2>Dead letters", "javascript:")
	broken := b.get(t, "/jobs?id=broken", http.StatusOK)
	mustContain(t, broken, "ledger: ledger unreachable", "Delivery receipt")
}

func TestOverview(t *testing.T) {
	t.Parallel()
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	}))
	t.Cleanup(ready.Close)
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not ready: redis <down>", http.StatusServiceUnavailable)
	}))
	t.Cleanup(notReady.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	b := setup(t, func(c *console.Config) { c.Replicas = []string{ready.URL, notReady.URL, gone.URL} })
	for i := range 7 {
		b.storeReceipt(t, job.WeChat, job.DefaultApp, fmt.Sprintf("d%d", i))
	}
	b.storeMany(t, 3, mixed)
	body := b.get(t, "/", http.StatusOK)
	mustContain(t, body,
		`id="delivered-hour">7<`, `id="dead-hour">3<`, `id="pending">0<`,
		"NOTIFY_SEND", "NOTIFY_DEAD", "NOTIFY_EVENTS", "NOTIFY_SUBSCRIPTIONS",
		`<span class="badge good">ready</span>`, `<span class="badge bad">not ready</span>`, "not ready: redis &lt;down&gt;",
		`<span class="badge bad">unreachable</span>`,
		"delivered <b>7</b>", "dead-lettered <b>3</b>",
	)
	// Jobs waiting for a worker show as pending.
	for i := range 4 {
		if _, err := b.js.Publish(t.Context(), job.SendSubject(job.WeChat), []byte(fmt.Sprintf(`{"id":"p%d"}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.js.CreateOrUpdateConsumer(t.Context(), b.topo.SendStream, b.topo.ConsumerConfig()); err != nil {
		t.Fatal(err)
	}
	mustContain(t, b.get(t, "/", http.StatusOK), `id="pending">4<`)
}

func TestCountsPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.storeMany(t, 110, mixed)
	body := b.get(t, "/dead/counts?since=", http.StatusOK)
	// Every reason 10 times; wechat and alipay 55 each; shop 1 in 17.
	mustContain(t, body, "<b>110</b> dead letters match every dead letter",
		`<a href="/dead?reason=expired&amp;since=">expired</a></td><td class="n">10</td>`,
		`<a href="/dead?platform=wechat&amp;since=">wechat</a></td><td class="n">55</td>`,
		`<a href="/dead?app=shop&amp;since=">shop</a></td><td class="n">7</td>`,
		`<a href="/dead?code=none&amp;since=">none</a></td><td class="n">22</td>`,
		`role="img"`, "Per minute, by reason")
	narrowed := b.get(t, "/dead/counts?since=&platform=alipay&reason=expired", http.StatusOK)
	mustContain(t, narrowed, "<b>5</b> dead letters match")
}

func TestBadFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for path, want := range map[string]string{
		"/dead?reason=nope":              `reason &#34;nope&#34;: not a reason herald writes`,
		"/dead?platform=sms":             `platform &#34;sms&#34;: not a platform`,
		"/dead?since=yesterday":          `since: &#34;yesterday&#34;: want a duration`,
		"/dead?since=1h&until=2h":        "is after until",
		"/dead?before=x":                 "before: want a stream sequence number",
		"/dead/counts?reason=a.b":        "not a reason",
		"/replay?rate=-1&reason=expired": "rate: want jobs per second",
	} {
		mustContain(t, b.get(t, path, http.StatusBadRequest), want)
	}
	b.get(t, "/dead/0", http.StatusNotFound)
	b.get(t, "/dead/999", http.StatusNotFound)
	b.get(t, "/ops/0123456789abcdef", http.StatusNotFound)
	b.get(t, "/ops/not-an-id", http.StatusNotFound)
}
