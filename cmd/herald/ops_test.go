package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/dlq"
	"github.com/heraldhq/herald/internal/buildinfo"
	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
)

// opsBundle is a JetStream server the operator commands are pointed at
// through HERALD_NATS_URL, and a client to check what they did.
type opsBundle struct {
	environ []string
	js      jetstream.JetStream
}

// opsSetup starts JetStream and applies the topology with herald streams
// apply.
func opsSetup(t *testing.T) *opsBundle {
	t.Helper()
	srv := testenv.StartJetStream(t)
	_, js := srv.Connect(t)
	b := &opsBundle{environ: []string{"HERALD_NATS_URL=" + srv.URL}, js: js}
	if out, errOut, err := b.run(t, "", "streams", "apply"); err != nil {
		t.Fatalf("streams apply: %v\n%s%s", err, out, errOut)
	}
	return b
}

// run runs herald with args as main does, stdin holding stdin.
func (b *opsBundle) run(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(t.Context(), args, b.environ, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

// runJSON runs herald and decodes its standard output into v.
func (b *opsBundle) runJSON(t *testing.T, v any, stdin string, args ...string) error {
	t.Helper()
	out, errOut, err := b.run(t, stdin, args...)
	if jerr := json.Unmarshal([]byte(out), v); jerr != nil {
		t.Fatalf("herald %s: output is not JSON (%v; command error %v):\n%s\nstderr:\n%s", strings.Join(args, " "), jerr, err, out, errOut)
	}
	return err
}

func (b *opsBundle) msgs(t *testing.T, stream string) uint64 {
	t.Helper()
	s, err := b.js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

// storeDead publishes n dead letters of reason for wechat, as the worker
// writes them, with ids prefix-1 .. prefix-n.
func (b *opsBundle) storeDead(t *testing.T, reason, code, prefix string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		id := prefix + "-" + strconv.Itoa(i)
		data, err := json.Marshal(job.Job{ID: id, Platform: job.WeChat, App: job.DefaultApp, TemplateID: "tpl",
			ToUser: "user-" + id, Data: map[string]job.Value{"thing1": {Value: "hi"}}})
		if err != nil {
			t.Fatal(err)
		}
		l := job.DeadLetter{Reason: reason, Platform: job.WeChat, App: job.DefaultApp, TemplateID: "tpl",
			ToUser: "user-" + id, ID: id, Code: code, Message: "scripted", Attempts: 1, DeadAt: time.Now().UTC(),
			Worker: "test", Job: data}
		b.publishDead(t, l)
	}
}

func (b *opsBundle) publishDead(t *testing.T, l job.DeadLetter) uint64 {
	t.Helper()
	data, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(job.DeadSubject(l.Platform, l.Reason))
	msg.Data = data
	msg.Header.Set(job.HeaderReason, l.Reason)
	msg.Header.Set(job.HeaderCode, l.Code)
	ack, err := b.js.PublishMsg(t.Context(), msg)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func TestStreamsApplyJSON(t *testing.T) {
	t.Parallel()
	b := opsSetup(t) // the first apply creates

	var changes []producer.Change
	if err := b.runJSON(t, &changes, "", "streams", "apply", "--json"); err != nil {
		t.Fatal(err)
	}
	want := []producer.Change{
		{Kind: "stream", Name: "NOTIFY_SEND", Action: "unchanged"},
		{Kind: "stream", Name: "NOTIFY_DEAD", Action: "unchanged"},
		{Kind: "stream", Name: "NOTIFY_EVENTS", Action: "unchanged"},
		{Kind: "stream", Name: "NOTIFY_SUBSCRIPTIONS", Action: "unchanged"},
		{Kind: "consumer", Name: "herald-worker", Action: "unchanged"},
	}
	if !slices.Equal(changes, want) {
		t.Fatalf("second apply = %+v, want %+v", changes, want)
	}

	b.environ = append(b.environ, "HERALD_NATS_DUPLICATE_WINDOW=5m")
	if err := b.runJSON(t, &changes, "", "streams", "apply", "--json"); err != nil {
		t.Fatal(err)
	}
	if changes[0] != (producer.Change{Kind: "stream", Name: "NOTIFY_SEND", Action: "updated"}) {
		t.Fatalf("apply with a new duplicate window = %+v, want NOTIFY_SEND updated", changes)
	}
}

func TestStreamsStatus(t *testing.T) {
	t.Parallel()
	b := opsSetup(t)
	b.storeDead(t, job.ReasonUserRefused, "43101", "s", 2)

	var st struct {
		Streams []struct {
			Name     string `json:"name"`
			Exists   bool   `json:"exists"`
			Messages uint64 `json:"messages"`
		} `json:"streams"`
		Consumer struct {
			Name    string `json:"name"`
			Exists  bool   `json:"exists"`
			Pending uint64 `json:"pending"`
		} `json:"consumer"`
		DeadLetters struct {
			Total    int            `json:"total"`
			ByReason map[string]int `json:"by_reason"`
		} `json:"dead_letters"`
	}
	if err := b.runJSON(t, &st, "", "streams", "status", "--json"); err != nil {
		t.Fatal(err)
	}
	if len(st.Streams) != 4 || st.Streams[3].Name != "NOTIFY_SUBSCRIPTIONS" || !st.Streams[3].Exists || !st.Streams[1].Exists || st.Streams[1].Messages != 2 ||
		!st.Consumer.Exists || st.Consumer.Name != "herald-worker" ||
		st.DeadLetters.Total != 2 || st.DeadLetters.ByReason[job.ReasonUserRefused] != 2 {
		t.Fatalf("status = %+v", st)
	}

	out, _, err := b.run(t, "", "streams", "status", "--config", writeOpsConfig(t, "nats:\n  events_stream: OTHER_EVENTS\n"))
	if err == nil || !strings.Contains(err.Error(), "missing stream OTHER_EVENTS") || !regexp.MustCompile(`OTHER_EVENTS +missing`).MatchString(out) {
		t.Fatalf("status with a missing stream: %v\n%s", err, out)
	}
}

func writeOpsConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "herald.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type sendResult struct {
	Published  int `json:"published"`
	Duplicates int `json:"duplicates"`
	Rejected   []struct {
		Line   int    `json:"line"`
		ID     string `json:"id"`
		Reason string `json:"reason"`
	} `json:"rejected"`
	ID  string `json:"id"`
	Seq uint64 `json:"seq"`
}

func TestSendOneJob(t *testing.T) {
	t.Parallel()
	b := opsSetup(t)
	args := []string{"send", "--template", "tpl", "--to", "user-1", "--data", "thing1=Order shipped", "--data", "thing2=a=b",
		"--page", "pages/order?id=1", "--id", "order-1", "--not-after", "1h", "--json"}

	var first, second sendResult
	if err := b.runJSON(t, &first, "", args...); err != nil {
		t.Fatal(err)
	}
	if err := b.runJSON(t, &second, "", args...); err != nil {
		t.Fatal(err)
	}
	if first.Published != 1 || first.ID != "order-1" || first.Seq != 1 || second.Duplicates != 1 || second.Published != 0 {
		t.Fatalf("send twice = %+v then %+v, want published then duplicate", first, second)
	}
	s, err := b.js.Stream(t.Context(), "NOTIFY_SEND")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	j, err := job.Decode(m.Data, job.PlatformOf(m.Subject))
	if err != nil {
		t.Fatalf("published job: %v", err)
	}
	if m.Subject != "notify.send.wechat" || m.Header.Get(job.HeaderMsgID) != "order-1" ||
		j.Data["thing2"].Value != "a=b" || j.Page != "pages/order?id=1" || j.NotAfter == nil {
		t.Fatalf("published %s %v: %+v", m.Subject, m.Header, j)
	}

	out, _, err := b.run(t, "", "send", "--template", "tpl", "--to", "user-2", "--data", "thing1=hi")
	if err != nil || !strings.HasPrefix(out, "published job ") {
		t.Fatalf("send with a random id: %v\n%s", err, out)
	}
	if _, _, err := b.run(t, "", "send", "--to", "user-3"); err == nil || !strings.Contains(err.Error(), "template_id is required") {
		t.Fatalf("send without a template = %v, want the validation error", err)
	}
	if n := b.msgs(t, "NOTIFY_SEND"); n != 2 {
		t.Fatalf("%d jobs stored, want 2", n)
	}
}

func TestSendNDJSONReportsBadLines(t *testing.T) {
	t.Parallel()
	b := opsSetup(t)
	lines := []string{
		`{"id":"n1","platform":"wechat","template_id":"t","to_user":"u1","data":{"k":{"value":"v"}}}`,
		`not json`,
		``,
		`{"id":"n2","platform":"alipay","template_id":"t","to_user":"u2","data":{"k":{"value":"v"}},"extra":1}`,
		`{"id":"n3","platform":"line","template_id":"t","to_user":"u3","data":{"k":{"value":"v"}}}`,
		`{"id":"n1","platform":"wechat","template_id":"t","to_user":"u1","data":{"k":{"value":"v"}}}`,
		`{"id":"n4","platform":"wechat","to_user":"u4","data":{}}`,
		`{"id":"n5","platform":"wechat","template_id":"t","to_user":"u5","data":{"k":{"value":"v"}}}`,
	}
	input := strings.Join(lines, "\n") // no final newline

	tests := []struct {
		name string
		give func(t *testing.T) []string // the arguments naming the input
	}{
		{"stdin", func(*testing.T) []string { return []string{"--file", "-"} }},
		{"file", func(t *testing.T) []string {
			p := filepath.Join(t.TempDir(), "jobs.ndjson")
			if err := os.WriteFile(p, []byte(input), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{"-f", p}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := b.msgs(t, "NOTIFY_SEND")
			var out, errOut bytes.Buffer
			args := append([]string{"send", "--json", "--window", "2"}, tt.give(t)...)
			err := run(t.Context(), args, b.environ, strings.NewReader(input), &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), "3 of 7 jobs rejected") {
				t.Fatalf("send = %v, want 3 of 7 rejected", err)
			}
			var sum sendResult
			if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
				t.Fatalf("summary: %v\n%s", err, out.String())
			}
			// The first run publishes n1, n2 and n5 (n1 twice: a duplicate);
			// the second finds all of them duplicates.
			wantPublished, wantDup := 3, 1
			if i > 0 {
				wantPublished, wantDup = 0, 4
			}
			if sum.Published != wantPublished || sum.Duplicates != wantDup {
				t.Fatalf("summary = %+v, want %d published, %d duplicates", sum, wantPublished, wantDup)
			}
			var rejected []string
			for _, r := range sum.Rejected {
				rejected = append(rejected, strconv.Itoa(r.Line)+":"+r.ID)
			}
			if !slices.Equal(rejected, []string{"2:", "5:n3", "7:n4"}) ||
				!strings.Contains(sum.Rejected[1].Reason, `platform "line"`) || !strings.Contains(sum.Rejected[2].Reason, "template_id is required") {
				t.Fatalf("rejected = %+v", sum.Rejected)
			}
			if got := b.msgs(t, "NOTIFY_SEND") - before; got != uint64(wantPublished) {
				t.Fatalf("%d jobs stored, want %d", got, wantPublished)
			}
			if strings.ContainsAny(errOut.String(), "\r\x1b") {
				t.Fatalf("progress on a non-terminal has control characters: %q", errOut.String())
			}
		})
	}
	s, err := b.js.Stream(t.Context(), "NOTIFY_SEND")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := s.GetMsg(t.Context(), 2); err != nil || m.Subject != "notify.send.alipay" || !strings.Contains(string(m.Data), `"extra":1`) {
		t.Fatalf("alipay job: %v %+v", err, m)
	}
}

func TestDLQListJSON(t *testing.T) {
	t.Parallel()
	b := opsSetup(t)
	b.storeDead(t, job.ReasonUserRefused, "43101", "r", 3)
	b.storeDead(t, job.ReasonExpired, "", "e", 2)

	var entries []dlq.Entry
	if err := b.runJSON(t, &entries, "", "dlq", "list", "--json", "--reason", "user_refused,expired", "--code", "none"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Letter.ID)
	}
	if !slices.Equal(got, []string{"e-1", "e-2"}) || entries[0].Seq != 4 || entries[0].Subject != "notify.dead.wechat.expired" {
		t.Fatalf("dlq list --json = %+v", entries)
	}

	if err := b.runJSON(t, &entries, "", "dlq", "list", "--json", "--since", "1h", "--limit", "2"); err != nil || len(entries) != 2 {
		t.Fatalf("dlq list --limit 2 = %d entries, %v", len(entries), err)
	}
	if err := b.runJSON(t, &entries, "", "dlq", "list", "--json", "--app", "nobody"); err != nil || entries == nil || len(entries) != 0 {
		t.Fatalf("dlq list matching nothing = %#v, %v; want []", entries, err)
	}
	out, _, err := b.run(t, "", "dlq", "list", "--reason", "user_refused")
	if err != nil || !strings.Contains(out, "SEQ") || strings.Count(out, "user_refused") != 3 {
		t.Fatalf("dlq list table: %v\n%s", err, out)
	}
	if _, _, err := b.run(t, "", "dlq", "list", "--since", "yesterday"); err == nil || !strings.Contains(err.Error(), "--since") {
		t.Fatalf("dlq list --since yesterday = %v, want a flag error", err)
	}
	if n := b.msgs(t, "NOTIFY_DEAD"); n != 5 {
		t.Fatalf("listing changed the stream: %d messages", n)
	}
}

func TestDLQShow(t *testing.T) {
	t.Parallel()
	b := opsSetup(t)
	seq := b.publishDead(t, job.DeadLetter{Reason: job.ReasonMalformedJob, Platform: "unknown", Message: "not a JSON object",
		DeadAt: time.Now().UTC(), Raw: []byte("id=42 oops")})

	out, _, err := b.run(t, "", "dlq", "show", strconv.FormatUint(seq, 10))
	if err != nil || !strings.Contains(out, `"raw_text": "id=42 oops"`) || strings.Contains(out, `"raw":`) {
		t.Fatalf("dlq show: %v\n%s", err, out)
	}
	var e dlq.Entry
	if err := b.runJSON(t, &e, "", "dlq", "show", "--json", strconv.FormatUint(seq, 10)); err != nil || string(e.Letter.Raw) != "id=42 oops" {
		t.Fatalf("dlq show --json = %+v, %v", e, err)
	}
	if _, _, err := b.run(t, "", "dlq", "show", "999"); err == nil || !strings.Contains(err.Error(), "no dead letter at sequence 999") {
		t.Fatalf("dlq show 999 = %v", err)
	}
}

func TestDLQStatsJSON(t *testing.T) {
	t.Parallel()
	b := opsSetup(t)
	b.storeDead(t, job.ReasonUserRefused, "43101", "r", 3)
	b.storeDead(t, job.ReasonRetriesExhausted, "", "x", 1)
	var c dlq.Counts
	if err := b.runJSON(t, &c, "", "dlq", "stats", "--json", "--since", "1h"); err != nil {
		t.Fatal(err)
	}
	if c.Total != 4 || c.ByReason[job.ReasonUserRefused] != 3 || c.ByCode[dlq.NoCode] != 1 || c.ByTemplate["tpl"] != 4 {
		t.Fatalf("dlq stats --json = %+v", c)
	}
	// The table names a letter without a code as --json and --code do.
	out, _, err := b.run(t, "", "dlq", "stats")
	if err != nil || !strings.Contains(out, "4 dead letters") || !regexp.MustCompile(`(?m)^none +1 `).MatchString(out) {
		t.Fatalf("dlq stats: %v\n%s", err, out)
	}
}

func TestDLQReplayDryRun(t *testing.T) {
	t.Parallel()
	b := opsSetup(t)
	b.storeDead(t, job.ReasonRetriesExhausted, "", "x", 3)
	dead, send := b.msgs(t, "NOTIFY_DEAD"), b.msgs(t, "NOTIFY_SEND")

	var res dlq.ReplayResult
	if err := b.runJSON(t, &res, "", "dlq", "replay", "--dry-run", "--json", "--reason", "retries_exhausted"); err != nil {
		t.Fatal(err)
	}
	if !res.DryRun || res.Replayable != 3 || res.Replayed != 0 || len(res.Samples) != 3 {
		t.Fatalf("dry run = %+v", res)
	}
	out, _, err := b.run(t, "", "dlq", "replay", "--dry-run")
	if err != nil || !strings.Contains(out, "would replay 3") || !strings.Contains(out, "nothing was changed") {
		t.Fatalf("dry run table: %v\n%s", err, out)
	}
	if b.msgs(t, "NOTIFY_DEAD") != dead || b.msgs(t, "NOTIFY_SEND") != send {
		t.Fatal("a dry run changed the streams")
	}

	var done dlq.ReplayResult
	if err := b.runJSON(t, &done, "", "dlq", "replay", "--all", "--json", "--rate", "1000"); err != nil {
		t.Fatal(err)
	}
	if done.Replayed != 3 || done.Deleted != 3 || b.msgs(t, "NOTIFY_DEAD") != 0 || b.msgs(t, "NOTIFY_SEND") != 3 {
		t.Fatalf("replay = %+v", done)
	}
}

func TestDLQReplayAndPurgeNeedConfirmation(t *testing.T) {
	t.Parallel()
	b := opsSetup(t)
	b.storeDead(t, job.ReasonUnknownApp, "", "u", confirmAbove+1)

	// Each names the way out it really has: purge has no --limit.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"dlq", "replay", "--all"}, "not a terminal; pass --yes, or narrow the filters or pass --limit 100"},
		{[]string{"dlq", "purge", "--all"}, "not a terminal; pass --yes, or narrow the filters"},
	} {
		_, _, err := b.run(t, "y\n", tt.args...)
		if err == nil || !strings.HasSuffix(err.Error(), tt.want) {
			t.Fatalf("herald %s without --yes = %v, want a refusal ending %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
	if b.msgs(t, "NOTIFY_DEAD") != confirmAbove+1 || b.msgs(t, "NOTIFY_SEND") != 0 {
		t.Fatal("a refused command changed the streams")
	}
	for _, verb := range []string{"purge", "replay"} {
		if _, _, err := b.run(t, "", "dlq", verb); err == nil || !strings.Contains(err.Error(), "or --all") {
			t.Fatalf("%s without a filter = %v, want a refusal", verb, err)
		}
	}

	var res dlq.ReplayResult
	if err := b.runJSON(t, &res, "", "dlq", "replay", "--all", "--yes", "--keep", "--json"); err != nil || res.Replayed != confirmAbove+1 {
		t.Fatalf("replay --yes = %+v, %v", res, err)
	}
	var pres dlq.PurgeResult
	if err := b.runJSON(t, &pres, "", "dlq", "purge", "--reason", "unknown_app", "--yes", "--json"); err != nil || pres.Deleted != confirmAbove+1 {
		t.Fatalf("purge --yes = %+v, %v", pres, err)
	}
	if b.msgs(t, "NOTIFY_DEAD") != 0 {
		t.Fatal("dead letters left after purge")
	}
}

func TestOpsCommandsNeedAServer(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := run(t.Context(), []string{"dlq", "list"}, []string{"HERALD_NATS_URL="}, strings.NewReader(""), &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "pass --server") {
		t.Fatalf("dlq list without a server = %v", err)
	}
}

// A misspelt filter value is an error, never a command that succeeds having
// matched nothing.
func TestDLQMisspeltFiltersFail(t *testing.T) {
	t.Parallel()
	b := opsSetup(t)
	b.storeDead(t, job.ReasonUserRefused, "43101", "r", 1)
	for _, args := range [][]string{
		{"dlq", "list", "--reason", "user_refused,user_refuse"},
		{"dlq", "replay", "--reason", "retries_exausted", "--yes"},
		{"dlq", "purge", "--platform", "wechta", "--yes"},
		{"dlq", "stats", "--platform", "weixin"},
	} {
		_, _, err := b.run(t, "", args...)
		if err == nil || !strings.Contains(err.Error(), "not a") {
			t.Errorf("herald %s = %v, want an error naming the bad value", strings.Join(args, " "), err)
		}
	}
	if b.msgs(t, "NOTIFY_DEAD") != 1 {
		t.Fatal("a refused command changed the dead letters")
	}
}

// An error about the server says which server: here the default one, which
// nothing pointed the command at.
func TestOpsErrorsNameTheServer(t *testing.T) {
	t.Parallel()
	srv := testenv.StartJetStream(t) // no streams applied
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"dlq", "list"}, []string{"HERALD_NATS_URL=" + srv.URL}, strings.NewReader(""), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "stream not found") || !strings.Contains(err.Error(), "(NATS server "+srv.URL+")") {
		t.Fatalf("dlq list without streams = %v, want the error with the server's URL", err)
	}
}

// herald send refuses a job the worker would dead-letter before any call,
// unless told to publish it anyway.
func TestSendChecksJobsAsTheWorkerWould(t *testing.T) {
	t.Parallel()
	b := opsSetup(t)
	long := "thing1=" + strings.Repeat("x", 21)
	_, _, err := b.run(t, "", "send", "--id", "long-1", "--template", "tpl", "--to", "u1", "--data", long)
	if err == nil || !strings.Contains(err.Error(), "invalid_template_data") || !strings.Contains(err.Error(), "data.thing1.value") {
		t.Fatalf("send of a 21-character thing = %v, want a refusal naming the reason and field", err)
	}
	if b.msgs(t, "NOTIFY_SEND") != 0 {
		t.Fatal("a refused job was published")
	}
	if out, errOut, err := b.run(t, "", "send", "--id", "long-1", "--template", "tpl", "--to", "u1", "--data", long, "--skip-checks"); err != nil {
		t.Fatalf("send --skip-checks: %v\n%s%s", err, out, errOut)
	}
	if b.msgs(t, "NOTIFY_SEND") != 1 {
		t.Fatal("--skip-checks did not publish")
	}

	lines := `{"id":"ok-1","platform":"wechat","template_id":"t","to_user":"u","data":{"thing1":{"value":"fine"}}}
{"id":"long-2","platform":"alipay","template_id":"t","to_user":"u","data":{"keyword1":{"value":"` + strings.Repeat("y", 51) + `"}}}
`
	var sum sendSummary
	err = b.runJSON(t, &sum, lines, "send", "--file", "-", "--json")
	if err == nil || sum.Published != 1 || len(sum.Rejected) != 1 || sum.Rejected[0].Line != 2 ||
		!strings.Contains(sum.Rejected[0].Reason, "invalid_template_data") {
		t.Fatalf("send --file = %+v, %v: want line 2 rejected as invalid_template_data", sum, err)
	}
}

// herald version answers, and /metrics carries the same build.
func TestVersion(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(t.Context(), []string{"version", "--json"}, nil, strings.NewReader(""), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var info buildinfo.Info
	if err := json.Unmarshal(out.Bytes(), &info); err != nil || info.Version == "" || info.GoVersion == "" {
		t.Fatalf("version --json = %q (%v)", out.String(), err)
	}
	mfs, err := newRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "herald_build_info" {
			continue
		}
		for _, l := range mf.GetMetric()[0].GetLabel() {
			if l.GetName() == "version" && l.GetValue() == info.Version {
				return
			}
		}
	}
	t.Fatalf("no herald_build_info{version=%q} in the registry", info.Version)
}
