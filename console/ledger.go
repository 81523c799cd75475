package console

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/heraldhq/herald/internal/text"
	"github.com/heraldhq/herald/jobs"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/worker"
)

// WithLedger gives the console the shared store (Redis): the job page
// then starts with what `herald jobs show` reads there (the job's state
// and the platform's final result), and the subscriptions page shows what
// `herald subscriptions show` does.
func WithLedger(st worker.Ledger) Option {
	return func(c *Console) {
		c.ledger = st
		c.lookups = append([]JobLookup{StoreLookup(st)}, c.lookups...)
	}
}

type storeLookup struct{ st worker.Ledger }

// StoreLookup reads a job's state and final result from the shared store,
// as [jobs.Stored] does for `herald jobs show`.
func StoreLookup(st worker.Ledger) JobLookup { return storeLookup{st} }

func (storeLookup) Name() string { return "shared store" }

func (l storeLookup) LookupJob(ctx context.Context, key JobKey, _ LookupOptions) ([]Section, error) {
	state, status, err := jobs.Stored(ctx, l.st, jobs.Key{Platform: key.Platform, App: key.App, ID: key.ID})
	if err != nil {
		return nil, err
	}
	sec := Section{Title: "Shared state", State: StateNone,
		Summary: "Unknown to the store: still queued, never published, or older than dedup.ttl."}
	if state != nil {
		sec.State, sec.Summary, sec.Fields = stateSection(state)
	}
	final := Section{Title: "Final result", State: StateNone,
		Summary: "No final result from the platform (WeChat reports one per delivered message, when the push URL is set)."}
	if status != nil {
		final.State, final.Summary = StateGood, "Delivered to the user, the platform reported at "+formatTime(status.At)+"."
		if status.Status != job.StatusDelivered {
			final.State = StateBad
			final.Summary = fmt.Sprintf("Accepted, then not delivered: the platform reported %s %s at %s.",
				text.Dash(status.ErrorCode), text.Dash(status.ErrorStatus), formatTime(status.At))
		}
	}
	return []Section{sec, final}, nil
}

// stateSection words a job's stored state.
func stateSection(s *jobs.State) (state, summary string, fields []Field) {
	fields = []Field{{Name: "state", Value: s.State}, {Name: "attempts", Value: strconv.Itoa(s.Attempts)}}
	if s.FirstAttempt != nil {
		fields = append(fields, Field{Name: "first attempt", Value: formatTime(*s.FirstAttempt)})
	}
	switch s.State {
	case "sent":
		fields = append(fields,
			Field{Name: "sent at", Value: formatTime(*s.SentAt)},
			Field{Name: "platform msgid", Value: text.Dash(s.MsgID)},
			Field{Name: "stream sequence", Value: strconv.FormatUint(s.StreamSeq, 10)})
		return StateGood, "Accepted by the platform.", fields
	case "dead":
		d := s.Decision
		fields = append(fields, Field{Name: "reason", Value: d.Reason}, Field{Name: "code", Value: text.Dash(d.Code)},
			Field{Name: "message", Value: d.Message})
		if d.Field != "" {
			fields = append(fields, Field{Name: "field", Value: d.Field})
		}
		return StateBad, "Decided as a dead letter: it is never sent.", fields
	}
	if s.Owner != "" {
		fields = append(fields, Field{Name: "held by", Value: s.Owner})
	}
	return "", "In progress: not sent yet.", fields
}

// subscriptionsView is the subscriptions page.
type subscriptionsView struct {
	Platform, App, User string
	Asked               bool
	Problem             string
	Subscriptions       []subscriptionRow
	History             []worker.HistoryEntry
}

type subscriptionRow struct {
	Template, State, Grants, Since string
}

// maxHistoryShown bounds the changes the page lists.
const maxHistoryShown = 50

func (c *Console) subscriptions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := subscriptionsView{
		Platform: strings.TrimSpace(q.Get("platform")),
		App:      strings.TrimSpace(q.Get("app")),
		User:     strings.TrimSpace(q.Get("user")),
	}
	if v.Platform == "" {
		v.Platform = job.WeChat
	}
	if v.App == "" {
		v.App = job.DefaultApp
	}
	if c.ledger == nil {
		v.Problem = "The console has no shared store: give it redis.url (or HERALD_REDIS_URL) to read the subscription ledger."
		c.render(w, r, http.StatusOK, "subscriptions", "Subscriptions", v)
		return
	}
	if v.User == "" {
		c.render(w, r, http.StatusOK, "subscriptions", "Subscriptions", v)
		return
	}
	v.Asked = true
	if (v.Platform != job.WeChat && v.Platform != job.Alipay) || len(v.App) > maxKeyLen || len(v.User) > maxKeyLen {
		v.Problem = fmt.Sprintf("platform: wechat or alipay; app and user: at most %d bytes", maxKeyLen)
		c.render(w, r, http.StatusBadRequest, "subscriptions", "Subscriptions", v)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), lookupTime)
	defer cancel()
	subs, hist, err := c.ledger.Subscriptions(ctx, v.Platform, v.App, v.User)
	if err != nil {
		c.failErr(w, r, "read the subscription ledger", err)
		return
	}
	for _, s := range subs {
		row := subscriptionRow{Template: s.Template, State: string(s.State), Grants: "-", Since: "-"}
		if s.State == worker.SubGranted {
			row.Grants = strconv.Itoa(s.Grants)
		}
		if !s.Since.IsZero() {
			row.Since = formatTime(s.Since)
		}
		v.Subscriptions = append(v.Subscriptions, row)
	}
	if len(hist) > maxHistoryShown {
		hist = hist[:maxHistoryShown]
	}
	v.History = hist
	c.render(w, r, http.StatusOK, "subscriptions", "Subscriptions of "+v.User, v)
}
