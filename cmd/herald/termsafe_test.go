package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/dlq"
	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer/job"
)

// hostile is what a producer or a platform might put in a job or an
// answer: an OSC that sets the terminal's title, a CSI that clears the
// screen, a carriage return that overwrites the line, a C1 CSI, DEL, a
// bidirectional override, and Chinese text that must stay readable.
const hostile = "订单\x1b]0;pwned\a\x1b[2J\rfake\u009b31m\x7f\u202e已发货"

// terminalActs reports the bytes of s a terminal would act on.
func terminalActs(s string) []string {
	var found []string
	for _, bad := range []string{"\x1b", "\a", "\r", "\x7f", "\u009b", "\u202e"} {
		if strings.Contains(s, bad) {
			found = append(found, strconv.Quote(bad))
		}
	}
	return found
}

func TestTermSafe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give, want string
	}{
		{"plain id-42", "plain id-42"},
		{"订单已发货 ✅ 👨\u200d👩", "订单已发货 ✅ 👨\u200d👩"},
		{"全角\u3000空格", "全角\u3000空格"},
		{hostile, `订单\x1b]0;pwned\x07\x1b[2J\rfake\u009b31m\x7f\u202e已发货`},
		{"a\tb\nc\x00", `a\tb\nc\x00`},
		{"bad \xff\xfe utf-8", `bad \xff\xfe utf-8`},
		{"\u2028\U000e0041", `\u2028\U000e0041`},
	}
	for _, tt := range tests {
		if got := termSafe(tt.give); got != tt.want {
			t.Errorf("termSafe(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
	if got := termSafeLines("2 problems:\n  a\x1b[2J\n  b"); got != "2 problems:\n  a\\x1b[2J\n  b" {
		t.Errorf("termSafeLines = %q", got)
	}
	// JSON made safe is still JSON, of the same value.
	data, _ := json.Marshal(map[string]string{"m": hostile})
	safe := termSafeJSON(data)
	var back map[string]string
	if err := json.Unmarshal(safe, &back); err != nil || back["m"] != hostile {
		t.Fatalf("termSafeJSON(%s) = %s: %v, %q", data, safe, err, back["m"])
	}
	if bad := terminalActs(string(safe)); bad != nil {
		t.Errorf("termSafeJSON left %v in %s", bad, safe)
	}
}

// A dead letter whose fields hold escape sequences reaches the operator's
// terminal as visible text in every human output of herald dlq (list,
// show, stats, the replay dry run's samples, purge), streams status, jobs
// show, subscriptions show and herald dev, while --json keeps the exact
// strings.
func TestDLQOutputIsTerminalSafe(t *testing.T) {
	t.Parallel()
	b := opsSetup(t)
	jobData, _ := json.Marshal(job.Job{ID: "id-" + hostile, Platform: job.WeChat, App: job.DefaultApp,
		TemplateID: "tpl-" + hostile, ToUser: "u-" + hostile, Data: map[string]job.Value{"thing1": {Value: hostile}}})
	l := job.DeadLetter{Reason: job.ReasonRetriesExhausted, Platform: job.WeChat, App: "app-" + hostile,
		TemplateID: "tpl-" + hostile, ToUser: "u-" + hostile, ID: "id-" + hostile, Code: "c-" + hostile,
		Message: "msg-" + hostile, Field: "f-" + hostile, Attempts: 3, DeadAt: time.Now().UTC(), Worker: "w", Job: jobData}
	seq := b.publishDead(t, l)
	b.environ = append(b.environ, "HERALD_REDIS_URL="+testenv.StartRedis(t).URL)

	for _, tt := range []struct {
		args  []string
		shows bool // the output shows the letter's strings, not only counts by reason
	}{
		{[]string{"dlq", "list"}, true},
		{[]string{"dlq", "show", strconv.FormatUint(seq, 10)}, true},
		{[]string{"dlq", "stats"}, true},
		{[]string{"dlq", "replay", "--dry-run", "--all"}, true},
		{[]string{"dlq", "purge", "--dry-run", "--all"}, false},
		{[]string{"streams", "status"}, false},
		{[]string{"jobs", "show", l.ID}, true},
		{[]string{"subscriptions", "show", "--user", l.ToUser}, true},
	} {
		cmd := strings.Join(tt.args, " ")
		out, errOut, err := b.run(t, "", tt.args...)
		if err != nil {
			t.Fatalf("herald %s: %v\n%s", cmd, err, errOut)
		}
		if bad := terminalActs(out + errOut); bad != nil {
			t.Errorf("herald %s printed %v raw:\n%s", cmd, bad, out)
		}
		if tt.shows && (!strings.Contains(out, `\x1b]0;pwned`) && !strings.Contains(out, `\u001b]0;pwned`) || !strings.Contains(out, "订单")) {
			t.Errorf("herald %s does not show the escape as text and the Chinese as it is:\n%s", cmd, out)
		}
	}

	// --json stays exact.
	var entries []dlq.Entry
	if err := b.runJSON(t, &entries, "", "dlq", "list", "--json"); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Letter.Message != l.Message || entries[0].Letter.ToUser != l.ToUser {
		t.Fatalf("dlq list --json = %+v", entries)
	}
	out, _, err := b.run(t, "", "dlq", "show", "--json", strconv.FormatUint(seq, 10))
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := writeJSON(&want, entries[0]); err != nil {
		t.Fatal(err)
	}
	if out != want.String() {
		t.Errorf("dlq show --json is not encoding/json's own output:\n%s\nwant:\n%s", out, want.String())
	}

	data, _ := json.Marshal(l)
	line := eventLine(job.DeadSubject(l.Platform, l.Reason), data)
	if bad := terminalActs(line); bad != nil || !strings.Contains(line, "id=id-订单") {
		t.Errorf("herald dev's line %q: %v raw", line, bad)
	}
}

// A rejected NDJSON line quoting a producer's bytes is shown escaped.
func TestSendRejectionsAreTerminalSafe(t *testing.T) {
	t.Parallel()
	b := opsSetup(t)
	bad, _ := json.Marshal(job.Job{ID: "id-" + hostile, Platform: "nowhere-" + hostile, TemplateID: "t", ToUser: "u"})
	out, _, err := b.run(t, string(bad)+"\n", "send", "--file", "-")
	if err == nil {
		t.Fatal("send of a bad line succeeded")
	}
	if found := terminalActs(out); found != nil || !strings.Contains(out, `id-订单\x1b]0;pwned`) {
		t.Fatalf("send printed %v raw:\n%s", found, out)
	}
}
