package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldhq/herald/worker"
)

var _ worker.Ledger = (*Store)(nil)

// ledgerEventAge is how long the ids of applied subscription events are
// kept: longer than the subscriptions stream keeps the events (30 days),
// so a redelivered event is always recognised.
const ledgerEventAge = 31 * 24 * time.Hour

// hashOf hashes parts, each length-prefixed, into 32 hex digits: the keys
// of the ledger hold no producer or internet bytes, and are bounded.
func hashOf(parts ...string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, p := range parts {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// userKeys are the keys of one user's ledger, in one slot: the state hash,
// the applied events and the history.
func (s *Store) userKeys(platform, app, user string) (state, events, history string) {
	base := s.prefix + "sub:{" + hashOf(platform, app, user) + "}"
	return base, base + ":ev", base + ":h"
}

func (s *Store) refKey(platform, app, msgID string) string {
	return s.prefix + "ref:{" + hashOf(platform, app, msgID) + "}"
}

// parseSub reads "state|grants|since µs|taker".
func parseSub(template, v string) worker.Subscription {
	sub := worker.Subscription{Template: template, State: worker.SubUnknown}
	parts := strings.SplitN(v, "|", 4)
	if len(parts) < 3 {
		return sub
	}
	switch parts[0] {
	case "g":
		sub.State = worker.SubGranted
	case "r":
		sub.State = worker.SubRejected
	case "x":
		sub.State = worker.SubExhausted
	default:
		return sub
	}
	sub.Grants, _ = strconv.Atoi(parts[1])
	if us, err := strconv.ParseInt(parts[2], 10, 64); err == nil && us > 0 {
		sub.Since = time.UnixMicro(us)
	}
	return sub
}

// ledgerTTL is how long a user's ledger outlives its last change.
func (s *Store) ledgerTTL() int64 { return s.subTTL.Milliseconds() }

// Apply implements [worker.Ledger].
func (s *Store) Apply(ctx context.Context, k worker.SubscriptionKey, ev worker.LedgerEvent) (bool, error) {
	state, events, history := s.userKeys(k.Platform, k.App, k.User)
	accept := "0"
	if ev.Accept {
		accept = "1"
	}
	res, _, err := s.do(ctx, []string{state, events, history}, opSubApply,
		k.Template, accept, ev.At.UnixMicro(), hashOf(ev.ID), s.ledgerTTL(), ledgerEventAge.Microseconds())
	if err != nil {
		return false, fmt.Errorf("apply subscription event: %w", err)
	}
	n, _ := res.(int64)
	return n == 1, nil
}

// Exhaust implements [worker.Ledger].
func (s *Store) Exhaust(ctx context.Context, k worker.SubscriptionKey, at time.Time) error {
	state, _, history := s.userKeys(k.Platform, k.App, k.User)
	if _, _, err := s.do(ctx, []string{state, history}, opSubExhaust, k.Template, at.UnixMicro(), s.ledgerTTL()); err != nil {
		return fmt.Errorf("record 43101: %w", err)
	}
	return nil
}

// refRecord is what a remembered message id stands for, as stored: JSON,
// so that no producer byte can pass for the separator of the final result.
type refRecord struct {
	ID       string `json:"i"`
	Template string `json:"t"`
	ToUser   string `json:"u"`
	SentAt   int64  `json:"s"`
	Trace    string `json:"p,omitempty"`
}

type refResult struct {
	Status      string `json:"s"`
	ErrorCode   string `json:"c,omitempty"`
	ErrorStatus string `json:"e,omitempty"`
	At          int64  `json:"t"`
}

// refSep separates a remembered message id from its final result.
const refSep = "\x1e"

// Join implements [worker.Ledger].
func (s *Store) Join(ctx context.Context, platform, app, msgID string, result worker.MsgRef) (worker.MsgRef, bool, error) {
	r, err := json.Marshal(refResult{Status: result.Status, ErrorCode: result.ErrorCode,
		ErrorStatus: result.ErrorStatus, At: result.StatusAt.UnixMicro()})
	if err != nil {
		return worker.MsgRef{}, false, err
	}
	res, _, err := s.do(ctx, []string{s.refKey(platform, app, msgID)}, opRefJoin, string(r))
	if errors.Is(err, redis.Nil) {
		return worker.MsgRef{}, false, nil
	}
	if err != nil {
		return worker.MsgRef{}, false, fmt.Errorf("join message %s: %w", msgID, err)
	}
	v, ok := res.(string)
	if !ok {
		return worker.MsgRef{}, false, nil
	}
	ref, ok := parseRef(platform, app, v)
	return ref, ok, nil
}

func parseRef(platform, app, v string) (worker.MsgRef, bool) {
	rec, result, _ := strings.Cut(v, refSep)
	var r refRecord
	if json.Unmarshal([]byte(rec), &r) != nil {
		return worker.MsgRef{}, false
	}
	ref := worker.MsgRef{Platform: platform, App: app, ID: r.ID, TemplateID: r.Template, ToUser: r.ToUser,
		SentAt: time.UnixMicro(r.SentAt), TraceParent: r.Trace}
	var res refResult
	if result != "" && json.Unmarshal([]byte(result), &res) == nil {
		ref.Status, ref.ErrorCode, ref.ErrorStatus, ref.StatusAt = res.Status, res.ErrorCode, res.ErrorStatus, time.UnixMicro(res.At)
	}
	return ref, true
}

// sentOps are the ledger operations a delivered job adds to its sent
// marker's batch: a grant taken, its message id remembered.
func (s *Store) sentOps(key string, d worker.SentRecord) ([]*op, error) {
	var ops []*op
	if k := d.Take; k != nil {
		state, _, history := s.userKeys(k.Platform, k.App, k.User)
		ops = append(ops, newOp([]string{state, history}, opSubTake, k.Template, d.At.UnixMicro(), s.ledgerTTL(), hashOf(key)))
	}
	if r := d.Ref; r != nil && d.MsgID != "" && d.RefTTL > 0 {
		v, err := json.Marshal(refRecord{ID: r.ID, Template: r.TemplateID, ToUser: r.ToUser, SentAt: d.At.UnixMicro(), Trace: r.TraceParent})
		if err != nil {
			return nil, fmt.Errorf("remember message %s of %s: %w", d.MsgID, key, err)
		}
		ops = append(ops, newOp([]string{s.refKey(r.Platform, r.App, d.MsgID)}, opRefPut, string(v), d.RefTTL.Milliseconds()))
	}
	return ops, nil
}

// Subscriptions implements [worker.Ledger].
func (s *Store) Subscriptions(ctx context.Context, platform, app, user string, templates ...string) ([]worker.Subscription, []worker.HistoryEntry, error) {
	state, _, history := s.userKeys(platform, app, user)
	all, err := s.rdb.HGetAll(ctx, state).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("read subscriptions: %w", err)
	}
	if len(templates) == 0 {
		for t := range all {
			templates = append(templates, t)
		}
		slices.Sort(templates)
	}
	subs := make([]worker.Subscription, 0, len(templates))
	for _, t := range templates {
		subs = append(subs, parseSub(t, all[t]))
	}
	lines, err := s.rdb.LRange(ctx, history, 0, -1).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("read subscription history: %w", err)
	}
	hist := make([]worker.HistoryEntry, 0, len(lines))
	for _, l := range lines {
		parts := strings.SplitN(l, "|", 3)
		if len(parts) != 3 {
			continue
		}
		us, _ := strconv.ParseInt(parts[0], 10, 64)
		hist = append(hist, worker.HistoryEntry{At: time.UnixMicro(us), What: parts[1], Template: parts[2]})
	}
	return subs, hist, nil
}

// Job implements [worker.Ledger].
func (s *Store) Job(ctx context.Context, key string) (worker.JobState, worker.MsgRef, error) {
	h, err := s.rdb.HGetAll(ctx, s.JobKey(key)).Result()
	if err != nil {
		return worker.JobState{}, worker.MsgRef{}, fmt.Errorf("read job %s: %w", key, err)
	}
	js := worker.JobState{State: h["s"], Owner: h["o"]}
	if h["t"] != "" {
		js.State = "sent" // a sent job keeps its delivery alone (see batchScript)
	}
	js.Attempts, _ = strconv.Atoi(h["a"])
	if us, err := strconv.ParseInt(h["f"], 10, 64); err == nil && us > 0 {
		js.First = time.UnixMicro(us)
	}
	if js.State == "lease" {
		if end, err := strconv.ParseInt(h["l"], 10, 64); err == nil && time.UnixMicro(end).Before(time.Now()) {
			js.State = "idle" // the lease ran out
		}
	}
	var ref worker.MsgRef
	switch js.State {
	case "sent":
		js.Sent.Seq, _ = strconv.ParseUint(h["q"], 10, 64)
		js.Sent.MsgID = h["m"]
		js.Sent.Attempts, _ = strconv.Atoi(h["n"])
		js.Attempts = js.Sent.Attempts
		if us, err := strconv.ParseInt(h["t"], 10, 64); err == nil {
			js.Sent.At = time.UnixMicro(us)
		}
		if js.Sent.MsgID != "" {
			platform, rest, _ := strings.Cut(key, ":")
			app, _, _ := strings.Cut(rest, ":")
			v, err := s.rdb.Get(ctx, s.refKey(platform, app, js.Sent.MsgID)).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return js, ref, fmt.Errorf("read message %s: %w", js.Sent.MsgID, err)
			}
			if v != "" {
				ref, _ = parseRef(platform, app, v)
			}
		}
	case "dead":
		js.Decision = worker.Decision{Reason: h["dr"], Code: h["dc"], Message: h["dm"], Field: h["df"], First: js.First}
		js.Decision.Attempts, _ = strconv.Atoi(h["dn"])
	}
	return js, ref, nil
}
