package memstore

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/heraldhq/herald/worker"
)

// ledger is the subscription ledger in process, with the rules of the
// Redis store's (worker.Ledger). The Store's lock guards it.
type ledger struct {
	subs    map[userKey]map[string]worker.Subscription // by template
	applied map[string]time.Time                       // event ids, when applied
	history map[userKey][]worker.HistoryEntry          // newest first
	refs    map[refKey]ref
}

type userKey struct{ platform, app, user string }

type refKey struct{ platform, app, msgID string }

type ref struct {
	worker.MsgRef
	expires time.Time
}

// historyLen is how many changes of a user the ledger keeps.
const historyLen = 20

func newLedger() ledger {
	return ledger{subs: map[userKey]map[string]worker.Subscription{}, applied: map[string]time.Time{},
		history: map[userKey][]worker.HistoryEntry{}, refs: map[refKey]ref{}}
}

func userOf(k worker.SubscriptionKey) userKey { return userKey{k.Platform, k.App, k.User} }

// later reports whether a state changed at since is later than an event at
// at: in whole seconds, the platforms' CreateTime being seconds.
func later(since, at time.Time) bool {
	return since.Truncate(time.Second).After(at.Truncate(time.Second))
}

func (l *ledger) get(k worker.SubscriptionKey) worker.Subscription {
	if sub, ok := l.subs[userOf(k)][k.Template]; ok {
		return sub
	}
	return worker.Subscription{Template: k.Template, State: worker.SubUnknown}
}

func (l *ledger) set(k worker.SubscriptionKey, sub worker.Subscription, what string, at time.Time) {
	u := userOf(k)
	if l.subs[u] == nil {
		l.subs[u] = map[string]worker.Subscription{}
	}
	sub.Template = k.Template
	l.subs[u][k.Template] = sub
	l.note(u, k.Template, what, at)
}

func (l *ledger) note(u userKey, template, what string, at time.Time) {
	h := append([]worker.HistoryEntry{{At: at, Template: template, What: what}}, l.history[u]...)
	l.history[u] = h[:min(len(h), historyLen)]
}

// take takes one grant for a delivered job: a delivery proves a grant, so
// a state the ledger held as rejected or exhausted becomes granted (none
// left). Nothing is known of an unknown one.
func (l *ledger) take(k worker.SubscriptionKey, at time.Time) {
	sub := l.get(k)
	switch sub.State {
	case worker.SubUnknown:
		return
	case worker.SubGranted:
		sub.Grants = max(sub.Grants-1, 0)
	default:
		sub.State, sub.Grants, sub.Since = worker.SubGranted, 0, at
	}
	l.set(k, sub, "sent", at)
}

func (l *ledger) remember(msgID string, r worker.MsgRef, expires time.Time) {
	l.refs[refKey{r.Platform, r.App, msgID}] = ref{r, expires}
}

// Apply implements [worker.Ledger].
func (s *Store) Apply(_ context.Context, k worker.SubscriptionKey, ev worker.LedgerEvent) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := &s.ledger
	if _, ok := l.applied[ev.ID]; ok {
		return false, nil
	}
	l.applied[ev.ID] = s.now()
	sub := l.get(k)
	switch {
	case ev.Accept && (sub.State == worker.SubRejected || sub.State == worker.SubExhausted) && later(sub.Since, ev.At):
		l.note(userOf(k), k.Template, "stale accept", ev.At)
	case ev.Accept:
		if sub.State != worker.SubGranted {
			sub.Grants = 0
		}
		sub.State, sub.Grants = worker.SubGranted, sub.Grants+1
		if ev.At.After(sub.Since) {
			sub.Since = ev.At
		}
		l.set(k, sub, "accept", ev.At)
	case sub.State == worker.SubGranted && later(sub.Since, ev.At):
		l.note(userOf(k), k.Template, "stale reject", ev.At)
	default:
		l.set(k, worker.Subscription{State: worker.SubRejected, Since: ev.At}, "reject", ev.At)
	}
	return true, nil
}

// Exhaust implements [worker.Ledger].
func (s *Store) Exhaust(_ context.Context, k worker.SubscriptionKey, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := &s.ledger
	if sub := l.get(k); sub.State == worker.SubGranted && later(sub.Since, at) {
		l.note(userOf(k), k.Template, "stale 43101", at)
		return nil
	}
	l.set(k, worker.Subscription{State: worker.SubExhausted, Since: at}, "43101", at)
	return nil
}

// Join implements [worker.Ledger].
func (s *Store) Join(_ context.Context, platform, app, msgID string, result worker.MsgRef) (worker.MsgRef, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := refKey{platform, app, msgID}
	r, ok := s.ledger.refs[k]
	if !ok || s.now().After(r.expires) {
		delete(s.ledger.refs, k)
		return worker.MsgRef{}, false, nil
	}
	r.Status, r.ErrorCode, r.ErrorStatus, r.StatusAt = result.Status, result.ErrorCode, result.ErrorStatus, result.StatusAt
	s.ledger.refs[k] = r
	return r.MsgRef, true, nil
}

// Subscriptions implements [worker.Ledger].
func (s *Store) Subscriptions(_ context.Context, platform, app, user string, templates ...string) ([]worker.Subscription, []worker.HistoryEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := userKey{platform, app, user}
	if len(templates) == 0 {
		for t := range s.ledger.subs[u] {
			templates = append(templates, t)
		}
		slices.Sort(templates)
	}
	out := make([]worker.Subscription, 0, len(templates))
	for _, t := range templates {
		out = append(out, s.ledger.get(worker.SubscriptionKey{Platform: platform, App: app, User: user, Template: t}))
	}
	return out, slices.Clone(s.ledger.history[u]), nil
}

// Job implements [worker.Ledger].
func (s *Store) Job(_ context.Context, key string) (worker.JobState, worker.MsgRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.get(key, s.now())
	if st == nil {
		return worker.JobState{}, worker.MsgRef{}, nil
	}
	js := worker.JobState{State: "idle", Owner: st.owner, Attempts: st.attempts, First: st.first}
	switch {
	case st.sent:
		js.State, js.Sent, js.Attempts = "sent", st.sentAs, st.sentAs.Attempts
	case st.decided != nil:
		js.State, js.Decision = "dead", *st.decided
	case st.owner != "" && st.leaseEnd.After(s.now()):
		js.State = "lease"
	}
	var r worker.MsgRef
	if st.sent && st.sentAs.MsgID != "" {
		platform, rest, _ := strings.Cut(key, ":")
		app, _, _ := strings.Cut(rest, ":")
		if got, ok := s.ledger.refs[refKey{platform, app, st.sentAs.MsgID}]; ok {
			r = got.MsgRef
		}
	}
	return js, r, nil
}
