package dlq_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/dlq"
	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
)

// testBundle is a JetStream server with herald's streams and a client.
type testBundle struct {
	srv  *testenv.JetStream
	nc   *nats.Conn
	js   jetstream.JetStream
	topo producer.Topology
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	srv := testenv.StartJetStream(t)
	nc, js := srv.Connect(t)
	topo := producer.DefaultTopology
	if _, err := topo.Apply(t.Context(), js); err != nil {
		t.Fatalf("apply topology: %v", err)
	}
	return &testBundle{srv: srv, nc: nc, js: js, topo: topo}
}

// spec describes a dead letter to store.
type spec struct {
	id, platform, reason, app, tpl, code string
	replays                              int
	raw                                  bool // an undecodable job: raw bytes, no job object
}

// letterOf builds the dead letter the worker would write for s.
func letterOf(s spec) job.DeadLetter {
	l := job.DeadLetter{
		Reason: s.reason, Platform: s.platform, App: s.app, TemplateID: s.tpl,
		ToUser: "user-" + s.id, ID: s.id, Code: s.code, Message: "scripted " + s.reason,
		Attempts: 1, DeadAt: time.Now().UTC(), Worker: "test", Replays: s.replays,
		Source: job.Source{Stream: "NOTIFY_SEND", Subject: job.SendSubject(s.platform), Sequence: 1},
	}
	if s.raw {
		l.Raw = []byte("not json " + s.id)
		return l
	}
	data, err := json.Marshal(job.Job{
		ID: s.id, Platform: s.platform, App: s.app, TemplateID: s.tpl, ToUser: "user-" + s.id,
		Data: map[string]job.Value{"thing1": {Value: "hello"}},
	})
	if err != nil {
		panic(err)
	}
	l.Job = data
	return l
}

// storeDead publishes the dead letters of specs as the worker does and
// returns their sequences.
func (b *testBundle) storeDead(t *testing.T, specs ...spec) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, s := range specs {
		l := letterOf(s)
		data, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg(job.DeadSubject(s.platform, s.reason))
		msg.Data = data
		msg.Header.Set(job.HeaderReason, s.reason)
		msg.Header.Set(job.HeaderCode, s.code)
		ack, err := b.js.PublishMsg(t.Context(), msg)
		if err != nil {
			t.Fatalf("store dead letter %s: %v", s.id, err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

// state returns a stream's state.
func (b *testBundle) state(t *testing.T, stream string) jetstream.StreamState {
	t.Helper()
	s, err := b.js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	return s.CachedInfo().State
}

// sent returns every message in the job stream, oldest first, without
// consuming them (no worker runs in these tests).
func (b *testBundle) sent(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	s, err := b.js.Stream(t.Context(), b.topo.SendStream)
	if err != nil {
		t.Fatal(err)
	}
	st := s.CachedInfo().State
	var out []*jetstream.RawStreamMsg
	for seq := st.FirstSeq; st.Msgs > 0 && seq <= st.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			continue // deleted
		}
		out = append(out, m)
	}
	return out
}

func ids(entries []dlq.Entry) []string {
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Letter.ID)
	}
	return out
}

func sentIDs(t *testing.T, msgs []*jetstream.RawStreamMsg) []string {
	t.Helper()
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		var j job.Job
		if err := json.Unmarshal(m.Data, &j); err != nil {
			t.Fatalf("replayed job: %v", err)
		}
		out = append(out, j.ID)
	}
	slices.Sort(out)
	return out
}
