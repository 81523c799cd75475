package dlq_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/dlq"
	"github.com/heraldhq/herald/producer/job"
)

func TestFilterSubjects(t *testing.T) {
	tests := []struct {
		name string
		give dlq.Filter
		want []string
	}{
		{"everything", dlq.Filter{}, []string{"notify.dead.>"}},
		{"only fields", dlq.Filter{Apps: []string{"shop"}, Codes: []string{"43101"}}, []string{"notify.dead.>"}},
		{"reasons", dlq.Filter{Reasons: []string{"user_refused", "expired", "user_refused"}},
			[]string{"notify.dead.*.expired", "notify.dead.*.user_refused"}},
		{"platforms", dlq.Filter{Platforms: []string{"wechat"}}, []string{"notify.dead.wechat.*"}},
		{"both", dlq.Filter{Platforms: []string{"wechat", "alipay"}, Reasons: []string{"expired"}},
			[]string{"notify.dead.alipay.expired", "notify.dead.wechat.expired"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.give.Subjects(); !slices.Equal(got, tt.want) {
				t.Fatalf("Subjects() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFilterValidate(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		give dlq.Filter
		want string // substring of the error; empty: valid
	}{
		{"zero", dlq.Filter{}, ""},
		{"dot in reason", dlq.Filter{Reasons: []string{"user.refused"}}, `reason "user.refused"`},
		{"wildcard platform", dlq.Filter{Platforms: []string{"*"}}, `platform "*"`},
		{"empty reason", dlq.Filter{Reasons: []string{""}}, `reason ""`},
		{"free text app", dlq.Filter{Apps: []string{"my shop.v2"}}, ""},
		{"since after until", dlq.Filter{Since: now, Until: now.Add(-time.Hour)}, "is after until"},
		{"from after to", dlq.Filter{FromSeq: 5, ToSeq: 4}, "from sequence 5 is after to sequence 4"},
		{"one sequence", dlq.Filter{FromSeq: 5, ToSeq: 5}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, dlq.ErrInvalidFilter) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want ErrInvalidFilter containing %q", err, tt.want)
			}
		})
	}
}

// fixture is the dead letters most tests read, in stream order.
var fixture = []spec{
	{id: "a1", platform: "wechat", reason: "user_refused", app: "default", tpl: "T1", code: "43101"},
	{id: "a2", platform: "wechat", reason: "invalid_template_data", app: "default", tpl: "T2", code: "47003"},
	{id: "a3", platform: "alipay", reason: "user_refused", app: "shop", tpl: "T1"},
	{id: "a4", platform: "wechat", reason: "retries_exhausted", app: "shop", tpl: "T1"},
	{id: "a5", platform: "unknown", reason: "malformed_job", raw: true},
	{id: "a6", platform: "wechat", reason: "user_refused", app: "shop", tpl: "T2", code: "43101"},
}

// storeFixture stores the fixture and returns the time the stream stored
// each dead letter, by id.
func storeFixture(t *testing.T, b *testBundle) map[string]time.Time {
	t.Helper()
	seqs := b.storeDead(t, fixture...)
	at := map[string]time.Time{}
	for i, seq := range seqs {
		e, err := dlq.Get(t.Context(), b.js, b.topo.DeadStream, seq)
		if err != nil {
			t.Fatal(err)
		}
		at[fixture[i].id] = e.Time
	}
	return at
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	at := storeFixture(t, b)

	tests := []struct {
		name string
		give dlq.Filter
		want []string
	}{
		{"everything", dlq.Filter{}, []string{"a1", "a2", "a3", "a4", "a5", "a6"}},
		{"reason", dlq.Filter{Reasons: []string{"user_refused"}}, []string{"a1", "a3", "a6"}},
		{"reasons", dlq.Filter{Reasons: []string{"retries_exhausted", "malformed_job"}}, []string{"a4", "a5"}},
		{"platform", dlq.Filter{Platforms: []string{"alipay"}}, []string{"a3"}},
		{"unknown platform", dlq.Filter{Platforms: []string{"unknown"}}, []string{"a5"}},
		{"platform and reason", dlq.Filter{Platforms: []string{"wechat"}, Reasons: []string{"user_refused"}}, []string{"a1", "a6"}},
		{"app", dlq.Filter{Apps: []string{"shop"}}, []string{"a3", "a4", "a6"}},
		{"template", dlq.Filter{Templates: []string{"T2"}}, []string{"a2", "a6"}},
		{"code", dlq.Filter{Codes: []string{"43101"}}, []string{"a1", "a6"}},
		{"no code", dlq.Filter{Codes: []string{""}}, []string{"a3", "a4", "a5"}},
		{"since", dlq.Filter{Since: at["a4"]}, []string{"a4", "a5", "a6"}},
		{"until", dlq.Filter{Until: at["a2"]}, []string{"a1", "a2"}},
		{"window", dlq.Filter{Since: at["a2"], Until: at["a4"]}, []string{"a2", "a3", "a4"}},
		{"window and reason", dlq.Filter{Since: at["a2"], Until: at["a4"], Reasons: []string{"user_refused"}}, []string{"a3"}},
		{"all fields", dlq.Filter{Reasons: []string{"user_refused"}, Apps: []string{"shop"}, Codes: []string{"43101"}}, []string{"a6"}},
		{"since after the last", dlq.Filter{Since: at["a6"].Add(time.Second)}, []string{}},
		{"id", dlq.Filter{IDs: []string{"a4", "a2"}}, []string{"a2", "a4"}},
		// A fresh stream: a1 is at sequence 1, a6 at 6.
		{"from sequence", dlq.Filter{FromSeq: 4}, []string{"a4", "a5", "a6"}},
		{"to sequence", dlq.Filter{ToSeq: 2}, []string{"a1", "a2"}},
		{"sequence window and reason", dlq.Filter{FromSeq: 2, ToSeq: 5, Reasons: []string{"user_refused"}}, []string{"a3"}},
		{"from sequence before since", dlq.Filter{FromSeq: 2, Since: at["a4"]}, []string{"a4", "a5", "a6"}},
		{"from sequence after the last", dlq.Filter{FromSeq: 7}, []string{}},
		{"nothing matches", dlq.Filter{Reasons: []string{"expired"}}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dlq.List(t.Context(), b.js, b.topo.DeadStream, tt.give, 0)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Fatalf("List() = %q, want %q", ids(got), tt.want)
			}
		})
	}
}

func TestListDoesNotConsumeOrWait(t *testing.T) {
	t.Parallel()
	b := setup(t)
	storeFixture(t, b)
	before := b.state(t, b.topo.DeadStream)

	// The filter's last match is not the stream's last message: List must
	// stop there rather than wait for more.
	start := time.Now()
	first, err := dlq.List(t.Context(), b.js, b.topo.DeadStream, dlq.Filter{Reasons: []string{"invalid_template_data"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took >= time.Second {
		t.Fatalf("List took %v; it waited for messages that were never coming", took)
	}
	again, err := dlq.List(t.Context(), b.js, b.topo.DeadStream, dlq.Filter{Reasons: []string{"invalid_template_data"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(first), []string{"a2"}) || !slices.Equal(ids(again), ids(first)) {
		t.Fatalf("List twice = %q then %q, want a2 both times", ids(first), ids(again))
	}
	limited, err := dlq.List(t.Context(), b.js, b.topo.DeadStream, dlq.Filter{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(limited), []string{"a1", "a2"}) {
		t.Fatalf("List(limit 2) = %q", ids(limited))
	}

	after := b.state(t, b.topo.DeadStream)
	if after.Msgs != before.Msgs || after.LastSeq != before.LastSeq {
		t.Fatalf("stream changed from %+v to %+v", before, after)
	}
	if after.Consumers != 0 {
		t.Fatalf("%d consumers left on %s after listing", after.Consumers, b.topo.DeadStream)
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seqs := b.storeDead(t, spec{id: "g1", platform: "wechat", reason: "expired", app: "default", tpl: "T"})
	e, err := dlq.Get(t.Context(), b.js, b.topo.DeadStream, seqs[0])
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != seqs[0] || e.Subject != "notify.dead.wechat.expired" || e.Letter.ID != "g1" || !e.Replayable() {
		t.Fatalf("Get() = %+v", e)
	}
	if _, err := dlq.Get(t.Context(), b.js, b.topo.DeadStream, seqs[0]+10); !errors.Is(err, dlq.ErrNotFound) {
		t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	b := setup(t)
	at := storeFixture(t, b)

	c, err := dlq.Stats(t.Context(), b.js, b.topo.DeadStream, dlq.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]int{
		"reason":   {"user_refused": 3, "invalid_template_data": 1, "retries_exhausted": 1, "malformed_job": 1},
		"platform": {"wechat": 4, "alipay": 1, "unknown": 1},
		"template": {"T1": 3, "T2": 2, "": 1},
		"code":     {"43101": 2, "47003": 1, dlq.NoCode: 3},
	}
	got := map[string]map[string]int{"reason": c.ByReason, "platform": c.ByPlatform, "template": c.ByTemplate, "code": c.ByCode}
	for field, w := range want {
		if !mapsEqual(got[field], w) {
			t.Errorf("by %s = %v, want %v", field, got[field], w)
		}
	}
	if c.Total != 6 || c.Unreplayable != 1 || !c.First.Equal(at["a1"]) || !c.Last.Equal(at["a6"]) {
		t.Errorf("Stats() = total %d, unreplayable %d, first %v, last %v", c.Total, c.Unreplayable, c.First, c.Last)
	}

	window, err := dlq.Stats(t.Context(), b.js, b.topo.DeadStream, dlq.Filter{Since: at["a3"], Until: at["a5"]})
	if err != nil {
		t.Fatal(err)
	}
	if window.Total != 3 || !mapsEqual(window.ByReason, map[string]int{"user_refused": 1, "retries_exhausted": 1, "malformed_job": 1}) {
		t.Errorf("Stats(window) = %d %v", window.Total, window.ByReason)
	}
	if got := dlq.Sorted(c.ByReason); got[0] != (dlq.Count{Key: "user_refused", Count: 3}) || got[1].Key != "invalid_template_data" {
		t.Errorf("Sorted() = %v", got)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestReplayRepublishesThenDeletes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seqs := b.storeDead(t,
		spec{id: "r1", platform: "wechat", reason: "user_refused", app: "default", tpl: "T", code: "43101"},
		spec{id: "r2", platform: "alipay", reason: "user_refused", app: "default", tpl: "T", replays: 2},
		spec{id: "r3", platform: "unknown", reason: "user_refused", raw: true},
		spec{id: "k1", platform: "wechat", reason: "expired", app: "default", tpl: "T"},
	)
	var progress []dlq.Progress
	res, err := dlq.Replay(t.Context(), b.js, dlq.ReplayOptions{
		Stream: b.topo.DeadStream, SendStream: b.topo.SendStream,
		Filter:   dlq.Filter{Reasons: []string{"user_refused"}},
		Progress: func(p dlq.Progress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatal(err)
	}
	want := dlq.ReplayResult{Matched: 3, Replayable: 2, Skipped: 1, Replayed: 2, Deleted: 2}
	if res.Matched != want.Matched || res.Replayable != want.Replayable || res.Skipped != want.Skipped ||
		res.Replayed != want.Replayed || res.Deleted != want.Deleted || res.Duplicates != 0 || res.Gone != 0 {
		t.Fatalf("Replay() = %+v, want %+v", res, want)
	}
	if !slices.Equal(progress, []dlq.Progress{{Done: 1, Total: 2}, {Done: 2, Total: 2}}) {
		t.Errorf("progress = %v", progress)
	}

	msgs := b.sent(t)
	if len(msgs) != 2 {
		t.Fatalf("%d jobs in %s, want 2", len(msgs), b.topo.SendStream)
	}
	tests := []struct {
		give                        int
		subject, msgID, replays, id string
	}{
		{0, "notify.send.wechat", dlq.ReplayMsgID("NOTIFY_DEAD", seqs[0]), "1", "r1"},
		{1, "notify.send.alipay", dlq.ReplayMsgID("NOTIFY_DEAD", seqs[1]), "3", "r2"},
	}
	for _, tt := range tests {
		m := msgs[tt.give]
		if m.Subject != tt.subject || m.Header.Get(job.HeaderMsgID) != tt.msgID || m.Header.Get(job.HeaderReplays) != tt.replays {
			t.Errorf("replay %d: subject %s, msg id %s, replays %s; want %s, %s, %s", tt.give,
				m.Subject, m.Header.Get(job.HeaderMsgID), m.Header.Get(job.HeaderReplays), tt.subject, tt.msgID, tt.replays)
		}
		if got := string(m.Data); got != string(letterOf(spec{id: tt.id, platform: job.PlatformOf(tt.subject), app: "default", tpl: "T"}).Job) {
			t.Errorf("replay %d data = %s", tt.give, got)
		}
	}

	left, err := dlq.List(t.Context(), b.js, b.topo.DeadStream, dlq.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(left), []string{"r3", "k1"}) {
		t.Fatalf("dead letters left = %q, want the raw one and the unmatched one", ids(left))
	}
}

func fiveRefused() []spec {
	var out []spec
	for _, id := range []string{"j1", "j2", "j3", "j4", "j5"} {
		out = append(out, spec{id: id, platform: "wechat", reason: "user_refused", app: "default", tpl: "T", code: "43101"})
	}
	return out
}

func TestReplayRerunAfterLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.storeDead(t, fiveRefused()...)
	opts := dlq.ReplayOptions{Stream: b.topo.DeadStream, Limit: 2}

	first, err := dlq.Replay(t.Context(), b.js, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Limit = 0
	second, err := dlq.Replay(t.Context(), b.js, opts)
	if err != nil {
		t.Fatal(err)
	}
	if first.Replayed != 2 || second.Replayed != 3 || first.Duplicates+second.Duplicates != 0 {
		t.Fatalf("runs replayed %+v then %+v, want 2 then 3", first, second)
	}
	if got := sentIDs(t, b.sent(t)); !slices.Equal(got, []string{"j1", "j2", "j3", "j4", "j5"}) {
		t.Fatalf("jobs replayed = %q, want each of j1..j5 once", got)
	}
	if n := b.state(t, b.topo.DeadStream).Msgs; n != 0 {
		t.Fatalf("%d dead letters left", n)
	}
}

func TestReplayRerunAfterInterruption(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.storeDead(t, fiveRefused()...)

	// Interrupted after two replays.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	first, err := dlq.Replay(ctx, b.js, dlq.ReplayOptions{
		Stream: b.topo.DeadStream,
		Progress: func(p dlq.Progress) {
			if p.Done == 2 {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) || first.Replayed != 2 || first.Deleted != 2 {
		t.Fatalf("interrupted Replay() = %+v, %v; want 2 replayed and context.Canceled", first, err)
	}
	second, err := dlq.Replay(t.Context(), b.js, dlq.ReplayOptions{Stream: b.topo.DeadStream})
	if err != nil || second.Replayed != 3 {
		t.Fatalf("rerun Replay() = %+v, %v; want 3 replayed", second, err)
	}
	if got := sentIDs(t, b.sent(t)); !slices.Equal(got, []string{"j1", "j2", "j3", "j4", "j5"}) {
		t.Fatalf("jobs replayed = %q, want each of j1..j5 once", got)
	}
}

func TestReplayRerunAfterAckBeforeDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.storeDead(t, fiveRefused()...)

	// Keep leaves the dead letters as a crash between the publish ack and
	// the delete would: the rerun's replays of those two are duplicates.
	kept, err := dlq.Replay(t.Context(), b.js, dlq.ReplayOptions{Stream: b.topo.DeadStream, Limit: 2, Keep: true})
	if err != nil || kept.Replayed != 2 || kept.Deleted != 0 {
		t.Fatalf("Replay(keep) = %+v, %v", kept, err)
	}
	if n := b.state(t, b.topo.DeadStream).Msgs; n != 5 {
		t.Fatalf("%d dead letters after a replay with Keep, want 5", n)
	}
	rerun, err := dlq.Replay(t.Context(), b.js, dlq.ReplayOptions{Stream: b.topo.DeadStream})
	if err != nil || rerun.Replayed != 3 || rerun.Duplicates != 2 || rerun.Deleted != 5 {
		t.Fatalf("rerun Replay() = %+v, %v; want 3 replayed, 2 duplicates, 5 deleted", rerun, err)
	}
	if got := sentIDs(t, b.sent(t)); !slices.Equal(got, []string{"j1", "j2", "j3", "j4", "j5"}) {
		t.Fatalf("jobs replayed = %q, want each of j1..j5 once", got)
	}
}

func TestReplayDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	storeFixture(t, b)
	dead, send := b.state(t, b.topo.DeadStream), b.state(t, b.topo.SendStream)

	res, err := dlq.Replay(t.Context(), b.js, dlq.ReplayOptions{
		Stream: b.topo.DeadStream, DryRun: true, Samples: 2,
		Confirm: func(int) bool { t.Error("Confirm called on a dry run"); return false },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.DryRun || res.Matched != 6 || res.Replayable != 5 || res.Skipped != 1 || res.Replayed != 0 ||
		!slices.Equal(ids(res.Samples), []string{"a1", "a2"}) || res.ByReason["user_refused"] != 3 {
		t.Fatalf("Replay(dry run) = %+v", res)
	}
	pres, err := dlq.Purge(t.Context(), b.js, b.topo.DeadStream, dlq.Filter{}, true)
	if err != nil || pres.Matched != 6 || pres.Deleted != 0 {
		t.Fatalf("Purge(dry run) = %+v, %v", pres, err)
	}
	if got := b.state(t, b.topo.DeadStream); got.Msgs != dead.Msgs || got.LastSeq != dead.LastSeq {
		t.Fatalf("dead-letter stream changed: %+v -> %+v", dead, got)
	}
	if got := b.state(t, b.topo.SendStream); got.Msgs != send.Msgs || got.LastSeq != send.LastSeq {
		t.Fatalf("job stream changed: %+v -> %+v", send, got)
	}
}

func TestReplayNotConfirmed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.storeDead(t, fiveRefused()...)
	var asked int
	_, err := dlq.Replay(t.Context(), b.js, dlq.ReplayOptions{
		Stream: b.topo.DeadStream, Rate: 1000,
		Confirm: func(n int) bool { asked = n; return false },
	})
	if !errors.Is(err, dlq.ErrNotConfirmed) || asked != 5 {
		t.Fatalf("Replay() = %v after asking about %d, want ErrNotConfirmed after 5", err, asked)
	}
	if n := b.state(t, b.topo.SendStream).Msgs; n != 0 {
		t.Fatalf("%d jobs published without confirmation", n)
	}
}

func TestReplayExpectsSendStream(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.storeDead(t, fiveRefused()[:1]...)
	res, err := dlq.Replay(t.Context(), b.js, dlq.ReplayOptions{Stream: b.topo.DeadStream, SendStream: "ELSEWHERE"})
	if err == nil || res.Replayed != 0 {
		t.Fatalf("Replay(wrong send stream) = %+v, %v; want an error", res, err)
	}
	if n := b.state(t, b.topo.DeadStream).Msgs; n != 1 {
		t.Fatalf("dead letter deleted although its replay failed")
	}
}

func TestPurge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	storeFixture(t, b)
	var asked int
	res, err := dlq.Purge(t.Context(), b.js, b.topo.DeadStream, dlq.Filter{Reasons: []string{"user_refused"}}, false,
		dlq.PurgeConfirm(func(n int) bool { asked = n; return true }))
	if err != nil || res.Matched != 3 || res.Deleted != 3 || asked != 3 {
		t.Fatalf("Purge() = %+v, %v (asked about %d)", res, err, asked)
	}
	left, err := dlq.List(t.Context(), b.js, b.topo.DeadStream, dlq.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(left), []string{"a2", "a4", "a5"}) {
		t.Fatalf("left after purge: %q", ids(left))
	}
	again, err := dlq.Purge(t.Context(), b.js, b.topo.DeadStream, dlq.Filter{Reasons: []string{"user_refused"}}, false)
	if err != nil || again.Matched != 0 {
		t.Fatalf("second Purge() = %+v, %v; want nothing left to purge", again, err)
	}
}
