package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/sandbox"
)

// knownTemplate is the one template the test's config names.
const knownTemplate = "tpl-known"

// exposition is what a scrape of reg returns, in the text format, and how
// many series it holds.
func exposition(t *testing.T, reg *prometheus.Registry) (text string, series int) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
		series += len(mf.GetMetric())
	}
	return buf.String(), series
}

// hostileTemplate is a template id no config names: long, with control
// bytes, escapes and invalid UTF-8, distinct for every i.
func hostileTemplate(i, size int) string {
	head := fmt.Sprintf("tpl-%d-\x1b]0;owned\a\x1b[2J\r\n\x00\x7f\xc2\x9b\"}", i)
	return head + strings.Repeat("x", max(0, size-len(head)))
}

// publishAsync publishes every message and waits for JetStream's acks.
func (b *testBundle) publishAsync(t *testing.T, msgs []*nats.Msg) {
	t.Helper()
	for _, m := range msgs {
		if _, err := b.js.PublishMsgAsync(m); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	select {
	case <-b.js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		t.Fatal("publishes not acknowledged within 60s")
	}
}

// hostileJobs are n jobs, each with a template id of its own: most for the
// configured app and delivered, every fifth for an app nobody configured,
// every seventh not JSON, every eleventh for a platform that does
// not exist; a few carry template ids of about 60 KB.
func hostileJobs(round, n int) []*nats.Msg {
	msgs := make([]*nats.Msg, 0, n)
	for i := range n {
		k := round*n + i
		size := 512
		if i%200 == 0 {
			size = 60 << 10
		}
		tpl := hostileTemplate(k, size)
		j := job.Job{ID: fmt.Sprintf("m-%d", k), Platform: job.WeChat, TemplateID: tpl, ToUser: "user-" + tpl[:12],
			Data: map[string]job.Value{"thing1": {Value: "hi"}}}
		if i%5 == 0 {
			j.App = "app-" + tpl[:40]
		}
		subject := job.SendSubject(job.WeChat)
		if i%11 == 0 {
			j.Platform = "x" + tpl[:20]
			subject = "notify.send.x" + strings.Repeat("y", i%64)
		}
		data, _ := json.Marshal(j)
		if i%7 == 0 {
			data = []byte("not json " + tpl)
		}
		msg := nats.NewMsg(subject)
		msg.Data = data
		msgs = append(msgs, msg)
	}
	return msgs
}

// Producers cannot grow the metrics: thousands of jobs, each with a
// template id of its own (long, with control bytes), some malformed, some
// for unknown apps or made-up platforms, leave /metrics with the series it
// had after the first few hundred, small, and with no producer string in
// any label. Only the template the config names gets a label of its own.
func TestProducersCannotGrowTheMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	// The subject of a made-up platform must reach the worker's consumer.
	s, err := b.js.Stream(context.Background(), "NOTIFY_SEND")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Subjects; len(got) != 1 || got[0] != job.SendRoot+".>" {
		t.Fatalf("NOTIFY_SEND subjects %v", got)
	}
	cfg := testConfig("w1")
	cfg.Concurrency = 128
	cfg.KnownTemplate = func(_, _, tpl string) bool { return tpl == knownTemplate }
	r := b.startWorker(t, cfg)

	handled := func() float64 {
		var n float64
		for _, o := range []string{"delivered", "dead_letter"} {
			n += r.jobs(t, o)
		}
		return n
	}
	known := nats.NewMsg(job.SendSubject(job.WeChat))
	known.Data = []byte(strings.Replace(jobJSON("known", "user-known", nil), `"tpl"`, `"`+knownTemplate+`"`, 1))
	b.publishAsync(t, []*nats.Msg{known})

	const perRound, rounds = 500, 6
	var firstSeries, firstSize int
	for round := range rounds {
		b.publishAsync(t, hostileJobs(round, perRound))
		want := float64(1 + (round+1)*perRound)
		testenv.Eventually(t, 120*time.Second, fmt.Sprintf("%v jobs handled", want), func() bool { return handled() >= want })
		text, series := exposition(t, r.reg)
		t.Logf("after %d distinct template ids: %d series, %d bytes", (round+1)*perRound, series, len(text))
		if round == 0 {
			firstSeries, firstSize = series, len(text)
			continue
		}
		if series != firstSeries {
			t.Fatalf("%d series after %d distinct template ids, %d after %d: producers grow the metrics",
				series, (round+1)*perRound, firstSeries, perRound)
		}
		// Counters grow by digits, never by series.
		if len(text) > firstSize+firstSize/10 {
			t.Fatalf("exposition grew from %d to %d bytes", firstSize, len(text))
		}
	}
	text, _ := exposition(t, r.reg)
	if len(text) > 48<<10 {
		t.Errorf("exposition is %d bytes, want well under 48 KiB", len(text))
	}
	if !strings.Contains(text, `template="`+knownTemplate+`"`) {
		t.Errorf("the configured template has no label of its own:\n%s", text)
	}
	for _, want := range []string{`template="other"`, `template="none"`, `platform="unknown"`} {
		if !strings.Contains(text, want) {
			t.Errorf("no %s in the exposition", want)
		}
	}
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				v := l.GetValue()
				if len(v) > 64 || strings.ContainsFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }) ||
					strings.HasPrefix(v, "tpl-") && v != knownTemplate || strings.HasPrefix(v, "app-") || strings.HasPrefix(v, "x") {
					t.Errorf("%s{%s=%q}: a producer's string in a label", mf.GetName(), l.GetName(), v)
				}
			}
		}
	}
}
