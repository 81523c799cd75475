package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/dlq"
	"github.com/heraldhq/herald/internal/text"
	"github.com/heraldhq/herald/producer/job"
)

// JobKey names one job: the key herald deduplicates on.
type JobKey struct {
	Platform string // wechat or alipay
	App      string // the configured app; "default" when the job named none
	ID       string
}

// LookupOptions bound what a lookup reads.
type LookupOptions struct {
	// Since is the oldest storage time a lookup that reads streams
	// searches from.
	Since time.Time
}

// A JobLookup tells what one source knows of a job, as sections of the
// job page. The console asks every lookup at once and shows their
// sections in order; a lookup that fails shows its error in place of its
// sections. Implementations must bound their own work and honour ctx.
//
// herald's own are [ReceiptLookup] and [DeadLetterLookup]; other sources
// (the dedup state, status events, the subscription ledger) plug in
// through [WithJobLookups] without changing the page.
type JobLookup interface {
	// Name is shown when the lookup fails: "receipt".
	Name() string
	LookupJob(ctx context.Context, key JobKey, opts LookupOptions) ([]Section, error)
}

// Section is one block of the job page: a title, a state, one line of
// summary, fields and a table. All text is shown escaped.
type Section struct {
	Title   string
	State   string // StateGood, StateBad, StateNone or ""
	Summary string
	Fields  []Field
	Table   *Table
}

// Section states, which colour the section's badge.
const (
	StateGood = "good" // e.g. delivered
	StateBad  = "bad"  // e.g. dead-lettered
	StateNone = "none" // nothing found
)

// Field is one name and value. Href, when set, links the value; only
// relative and http(s) links are followed. Pre keeps the value's line
// breaks and spacing (JSON).
type Field struct {
	Name, Value, Href string
	Pre               bool
}

// Table is a table of text cells.
type Table struct {
	Columns []string
	Rows    [][]Cell
}

// Cell is one table cell, linked when Href is set.
type Cell struct {
	Text, Href string
}

// Bounds on the default lookups.
const (
	maxReceiptScan     = 2_000_000 // receipts read to find one job's
	maxLookupMatches   = 10        // receipts or dead letters shown
	lookupTime         = 15 * time.Second
	defaultLookupSince = 24 * time.Hour
)

type receiptLookup struct {
	js     jetstream.JetStream
	stream string
}

// ReceiptLookup finds a job's delivery receipts in stream (NOTIFY_EVENTS)
// on notify.sent.<platform> by their Nats-Msg-Id, [job.ReceiptMsgID],
// reading headers only, from LookupOptions.Since on and at most 2,000,000
// receipts. An empty stream means receipts are off.
func ReceiptLookup(js jetstream.JetStream, stream string) JobLookup {
	return &receiptLookup{js: js, stream: stream}
}

func (l *receiptLookup) Name() string { return "receipt" }

func (l *receiptLookup) LookupJob(ctx context.Context, key JobKey, opts LookupOptions) ([]Section, error) {
	sec := Section{Title: "Delivery receipt", State: StateNone}
	if l.stream == "" {
		sec.Summary = "Receipts are off (nats.events_stream is empty)."
		return []Section{sec}, nil
	}
	want := job.ReceiptMsgID(key.Platform, key.App, key.ID)
	var seqs []uint64
	res, err := scanHeaders(ctx, l.js, l.stream, []string{job.SentSubject(key.Platform)}, opts.Since, maxReceiptScan,
		func(seq uint64, _ string, _ time.Time, h nats.Header) bool {
			if h.Get(jetstream.MsgIDHeader) == want {
				seqs = append(seqs, seq)
			}
			return len(seqs) < maxLookupMatches
		})
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("%s receipts on %s stored since %s", formatInt(res.read), job.SentSubject(key.Platform), formatTime(opts.Since))
	if !res.complete {
		where += fmt.Sprintf(" (stopped after %s: narrow the time range)", formatInt(res.read))
	}
	if len(seqs) == 0 {
		sec.Summary = "No receipt: searched " + where + "."
		return []Section{sec}, nil
	}
	s, err := l.js.Stream(ctx, l.stream)
	if err != nil {
		return nil, err
	}
	out := make([]Section, 0, len(seqs))
	for _, seq := range seqs {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // aged out meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("get %s sequence %d: %w", l.stream, seq, err)
		}
		var rc job.Receipt
		sec := Section{Title: "Delivery receipt", State: StateGood,
			Summary: fmt.Sprintf("Delivered: %s sequence %d, stored %s.", l.stream, seq, formatTime(m.Time))}
		if err := json.Unmarshal(m.Data, &rc); err != nil {
			sec.Fields = []Field{{Name: "receipt", Value: string(m.Data), Pre: true}, {Name: "error", Value: err.Error()}}
		} else {
			sec.Fields = []Field{
				{Name: "sent at", Value: formatTime(rc.SentAt)},
				{Name: "platform msgid", Value: text.Dash(rc.MsgID)},
				{Name: "attempts", Value: strconv.Itoa(rc.Attempts)},
				{Name: "template", Value: rc.TemplateID},
				{Name: "to user", Value: rc.ToUser},
				{Name: "worker", Value: rc.Worker},
			}
		}
		out = append(out, sec)
	}
	return out, nil
}

type deadLetterLookup struct {
	js     jetstream.JetStream
	stream string
}

// DeadLetterLookup finds a job's dead letters in stream (NOTIFY_DEAD)
// through [dlq.Scan], narrowed to the job's platform and stored since
// LookupOptions.Since.
func DeadLetterLookup(js jetstream.JetStream, stream string) JobLookup {
	return &deadLetterLookup{js: js, stream: stream}
}

func (l *deadLetterLookup) Name() string { return "dead letters" }

func (l *deadLetterLookup) LookupJob(ctx context.Context, key JobKey, opts LookupOptions) ([]Section, error) {
	apps := []string{key.App}
	if key.App == job.DefaultApp {
		apps = append(apps, "")
	}
	f := dlq.Filter{Platforms: []string{key.Platform}, Apps: apps, IDs: []string{key.ID}, Since: opts.Since}
	var found []dlq.Entry
	err := dlq.Scan(ctx, l.js, l.stream, f, func(e dlq.Entry) bool {
		found = append(found, e)
		return len(found) < maxLookupMatches
	})
	if err != nil {
		return nil, err
	}
	sec := Section{Title: "Dead letters", State: StateNone}
	if len(found) == 0 {
		sec.Summary = fmt.Sprintf("No dead letter in %s stored since %s.", l.stream, formatTime(opts.Since))
		return []Section{sec}, nil
	}
	sec.State = StateBad
	times := "times"
	if len(found) == 1 {
		times = "time"
	}
	sec.Summary = fmt.Sprintf("Dead-lettered %d %s: the dead letters in %s, oldest first (a replayed one is gone from the stream).",
		len(found), times, l.stream)
	sec.Table = &Table{Columns: []string{"seq", "stored", "reason", "code", "message", "attempts", "replays"}}
	for _, e := range found {
		l := e.Letter
		seq := strconv.FormatUint(e.Seq, 10)
		sec.Table.Rows = append(sec.Table.Rows, []Cell{
			{Text: seq, Href: "/dead/" + seq}, {Text: formatTime(e.Time)}, {Text: l.Reason}, {Text: text.Dash(l.Code)},
			{Text: text.Truncate(l.Message, maxListMessage)}, {Text: strconv.Itoa(l.Attempts)}, {Text: strconv.Itoa(l.Replays)},
		})
	}
	return []Section{sec}, nil
}

// jobsView is the job lookup page.
type jobsView struct {
	Key      JobKey
	Within   string
	Withins  []string
	Asked    bool
	Problem  string
	Sections []Section
	Failures []string
	Took     time.Duration
}

// lookupWithins are the time ranges the lookup offers.
var lookupWithins = []string{"1h", "24h", "7d", "14d"}

// maxKeyLen bounds an id, app or platform typed in.
const maxKeyLen = job.MaxIDLen

func (c *Console) jobs(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	q := r.URL.Query()
	v := jobsView{
		Key:     JobKey{Platform: strings.TrimSpace(q.Get("platform")), App: strings.TrimSpace(q.Get("app")), ID: q.Get("id")},
		Within:  q.Get("within"),
		Withins: lookupWithins,
	}
	if v.Key.Platform == "" {
		v.Key.Platform = job.WeChat
	}
	if v.Key.App == "" {
		v.Key.App = job.DefaultApp
	}
	if v.Within == "" {
		v.Within = "24h"
	}
	if v.Key.ID == "" {
		c.render(w, r, http.StatusOK, "jobs", "Job lookup", v)
		return
	}
	v.Asked = true
	var problems []string
	if v.Key.Platform != job.WeChat && v.Key.Platform != job.Alipay {
		problems = append(problems, "platform: wechat or alipay")
	}
	if len(v.Key.ID) > maxKeyLen || len(v.Key.App) > maxKeyLen {
		problems = append(problems, fmt.Sprintf("id and app: at most %d bytes", maxKeyLen))
	}
	d, err := parseDuration(v.Within)
	if err != nil || d <= 0 {
		problems = append(problems, "within: a duration such as 24h or 7d")
	}
	if len(problems) > 0 {
		v.Problem = strings.Join(problems, "; ")
		c.render(w, r, http.StatusBadRequest, "jobs", "Job lookup", v)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), lookupTime)
	defer cancel()
	opts := LookupOptions{Since: start.Add(-d)}
	results := make([][]Section, len(c.lookups))
	errs := make([]error, len(c.lookups))
	var wg sync.WaitGroup
	for i, l := range c.lookups {
		wg.Go(func() { results[i], errs[i] = l.LookupJob(ctx, v.Key, opts) })
	}
	wg.Wait()
	for i, l := range c.lookups {
		if errs[i] != nil {
			v.Failures = append(v.Failures, l.Name()+": "+errs[i].Error())
			continue
		}
		v.Sections = append(v.Sections, results[i]...)
	}
	v.Took = time.Since(start).Round(time.Millisecond)
	c.render(w, r, http.StatusOK, "jobs", "Job "+v.Key.ID, v)
}

// scanned says how far a headers-only scan went.
type scanned struct {
	read     uint64
	complete bool // reached the end (or visit stopped), not the bound
}

// scanHeaders calls visit with the headers of every message on subjects
// in stream stored since since (all when zero), oldest first, until visit
// returns false, limit messages were read, or the last message the stream
// held when the scan began. Bodies are not sent.
func scanHeaders(ctx context.Context, js jetstream.JetStream, stream string, subjects []string, since time.Time, limit uint64,
	visit func(seq uint64, subject string, t time.Time, h nats.Header) bool,
) (scanned, error) {
	var res scanned
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return res, fmt.Errorf("stream %s: %w", stream, err)
	}
	st := s.CachedInfo().State
	if st.Msgs == 0 || (!since.IsZero() && st.LastTime.Before(since)) {
		res.complete = true
		return res, nil
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: subjects, HeadersOnly: true, InactiveThreshold: time.Minute}
	if !since.IsZero() {
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &since
	}
	c, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return res, fmt.Errorf("read %s: %w", stream, err)
	}
	it, err := c.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return res, fmt.Errorf("read %s: %w", stream, err)
	}
	defer func() {
		it.Stop()
		if info := c.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = js.DeleteConsumer(dctx, stream, info.Name)
			cancel()
		}
	}()
	if info := c.CachedInfo(); info != nil && info.NumPending == 0 {
		res.complete = true
		return res, nil
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		msg, err := it.Next(jetstream.NextContext(wctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				return res, fmt.Errorf("read %s: %w", stream, err)
			}
			info, err := c.Info(ctx)
			if err != nil {
				return res, fmt.Errorf("read %s: %w", stream, err)
			}
			if info.NumPending == 0 {
				res.complete = true
				return res, nil
			}
			continue
		}
		meta, err := msg.Metadata()
		if err != nil {
			return res, fmt.Errorf("read %s: %w", stream, err)
		}
		seq := meta.Sequence.Stream
		if seq > st.LastSeq {
			res.complete = true
			return res, nil
		}
		res.read++
		if !visit(seq, msg.Subject(), meta.Timestamp, msg.Headers()) {
			res.complete = true
			return res, nil
		}
		if seq == st.LastSeq || meta.NumPending == 0 {
			res.complete = true
			return res, nil
		}
		if res.read >= limit {
			return res, nil
		}
	}
}
