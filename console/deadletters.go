package console

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/dlq"
	"github.com/heraldhq/herald/internal/text"
	"github.com/heraldhq/herald/producer/job"
)

// letterRow is one dead letter in a list.
type letterRow struct {
	Seq                                       uint64
	Time                                      time.Time
	Platform, Reason, Code, App, Template, ID string
	ToUser, Message                           string
	Replays                                   int
	Undecodable                               bool
	URL                                       string
}

// maxListText bounds the recipient and message shown in a list row.
const (
	maxListUser    = 24
	maxListMessage = 90
)

func rowOf(e dlq.Entry) letterRow {
	l := e.Letter
	msg := l.Message
	if e.Err != "" {
		msg = e.Err
	}
	return letterRow{
		Seq: e.Seq, Time: e.Time, Platform: l.Platform, Reason: l.Reason, Code: l.Code, App: l.App,
		Template: l.TemplateID, ID: text.Truncate(l.ID, 48), ToUser: text.Truncate(l.ToUser, maxListUser),
		Message: text.Truncate(msg, maxListMessage), Replays: l.Replays, Undecodable: !e.Replayable(),
		URL: "/dead/" + strconv.FormatUint(e.Seq, 10),
	}
}

// rangeLink is one quick time range above the filters.
type rangeLink struct {
	Label, URL string
	Active     bool
}

func rangeLinks(f filterForm, path string) []rangeLink {
	out := make([]rangeLink, 0, len(ranges))
	for _, r := range ranges {
		g := f
		g.Since, g.Until = r.Since, ""
		out = append(out, rangeLink{Label: r.Label, URL: g.link(path), Active: f.Since == r.Since && f.Until == ""})
	}
	return out
}

// countLink is one key of a count table, linking to its dead letters.
type countLink struct {
	Key, Label string
	Count      int
	Share      string
	Pct        float64
	URL        string
	Color      string
}

func countLinks(f filterForm, field string, m map[string]int, total int) []countLink {
	out := make([]countLink, 0, len(m))
	for _, kv := range dlq.Sorted(m) {
		label := kv.Key
		if label == "" {
			label = "(none)"
		}
		cl := countLink{Key: kv.Key, Label: label, Count: kv.Count, Share: percent(kv.Count, total),
			Pct: float64(kv.Count) * 100 / float64(max(total, 1)),
			URL: f.with(field, kv.Key).link("/dead")}
		if field == "reason" {
			cl.Color = reasonColor(kv.Key)
		}
		out = append(out, cl)
	}
	return out
}

// deadView is the dead-letter list page.
type deadView struct {
	Form      filterForm
	Problem   string
	Ranges    []rangeLink
	List      listing
	Rows      []letterRow
	From, To  int64 // positions of the page's rows among the matches, when known
	NewestURL string
	NewerURL  string
	OlderURL  string
	OldestURL string
	Took      time.Duration
	// The whole stream by platform and reason, from its per-subject
	// counts.
	InStream   uint64
	ByPlatform []countLink
	ByReason   []countLink
	CountsURL  string
	ReplayURL  string
	PurgeURL   string
}

func (c *Console) lister() *lister {
	return &lister{js: c.js, stream: c.cfg.DeadStream}
}

func (c *Console) deadLetters(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	q := r.URL.Query()
	form, err := parseFilterForm(q)
	v := deadView{Form: form, Ranges: rangeLinks(form, "/dead"), CountsURL: form.link("/dead/counts"),
		ReplayURL: form.link("/replay"), PurgeURL: form.link("/purge")}
	var f dlq.Filter
	if err == nil {
		f, err = form.filter(time.Now())
	}
	if err != nil {
		v.Problem = err.Error()
		c.render(w, r, http.StatusBadRequest, "dead", "Dead letters", v)
		return
	}
	before, err1 := cursor(q, "before")
	after, err2 := cursor(q, "after")
	if err := errors.Join(err1, err2); err != nil {
		v.Problem = err.Error()
		c.render(w, r, http.StatusBadRequest, "dead", "Dead letters", v)
		return
	}
	_, forward := q["after"]
	ctx := r.Context()

	var wg sync.WaitGroup
	var subjectErr error
	wg.Go(func() {
		var counts map[string]uint64
		counts, subjectErr = subjectCounts(ctx, c.js, c.cfg.DeadStream)
		byPlatform, byReason := map[string]int{}, map[string]int{}
		for subject, n := range counts {
			rest, _ := strings.CutPrefix(subject, job.DeadRoot+".")
			platform, reason, _ := strings.Cut(rest, ".")
			byPlatform[platform] += int(n)
			byReason[reason] += int(n)
			v.InStream += n
		}
		all := filterForm{}
		v.ByPlatform = countLinks(all, "platform", byPlatform, int(v.InStream))
		v.ByReason = countLinks(all, "reason", byReason, int(v.InStream))
	})
	v.List, err = c.lister().page(ctx, f, before, after, forward, c.cfg.PageSize)
	wg.Wait()
	if err == nil {
		err = subjectErr
	}
	if err != nil {
		c.failErr(w, r, "read the dead letters", err)
		return
	}
	for _, e := range v.List.Entries {
		v.Rows = append(v.Rows, rowOf(e))
	}
	if v.List.Newer >= 0 && len(v.Rows) > 0 {
		v.From, v.To = v.List.Newer+1, v.List.Newer+int64(len(v.Rows))
	}
	if before > 0 || forward {
		v.NewestURL = form.link("/dead")
	}
	if v.List.After > 0 {
		v.NewerURL = form.link("/dead", "after", strconv.FormatUint(v.List.After, 10))
	}
	if v.List.Before > 0 {
		v.OlderURL = form.link("/dead", "before", strconv.FormatUint(v.List.Before, 10))
		v.OldestURL = form.link("/dead", "after", "0")
	}
	v.Took = time.Since(start).Round(time.Millisecond)
	c.render(w, r, http.StatusOK, "dead", "Dead letters", v)
}

func cursor(q url.Values, key string) (uint64, error) {
	s := q.Get(key)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errors.New(key + ": want a stream sequence number")
	}
	return n, nil
}

// subjectCounts returns the stream's messages per subject: what the
// server keeps anyway, so nothing is read.
func subjectCounts(ctx context.Context, js jetstream.JetStream, stream string) (map[string]uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		return nil, err
	}
	return info.State.Subjects, nil
}

// countsView is the counts page: a chart and tables over a time range.
type countsView struct {
	Form      filterForm
	Problem   string
	Ranges    []rangeLink
	Counts    dlq.Counts
	Chart     chart
	Step      string
	Tables    []countTable
	Partial   bool
	At        time.Time
	Took      time.Duration
	Cached    bool
	ListURL   string
	FreshURL  string
	ReplayURL string
}

type countTable struct {
	Name string
	Rows []countLink
}

// statsResult is what one read of a time range counted.
type statsResult struct {
	counts  dlq.Counts
	chart   chart
	step    time.Duration
	partial bool
	at      time.Time
	took    time.Duration
}

// maxStatsTime bounds one count over a time range; past it the counts
// are shown as partial.
const maxStatsTime = 20 * time.Second

func (c *Console) deadCounts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	form, err := parseFilterForm(q)
	v := countsView{Form: form, Ranges: rangeLinks(form, "/dead/counts"), ListURL: form.link("/dead"),
		FreshURL: form.link("/dead/counts", "fresh", "1"), ReplayURL: form.link("/replay")}
	var f dlq.Filter
	now := time.Now()
	if err == nil {
		f, err = form.filter(now)
	}
	if err != nil {
		v.Problem = err.Error()
		c.render(w, r, http.StatusBadRequest, "counts", "Dead-letter counts", v)
		return
	}
	key := form.values().Encode()
	res, cached, err := c.stats.get(r.Context(), key, q.Get("fresh") == "1", func(ctx context.Context) (statsResult, error) {
		return c.count(ctx, f, now)
	})
	if err != nil {
		c.failErr(w, r, "count the dead letters", err)
		return
	}
	v.Counts, v.Chart, v.Partial, v.At, v.Took, v.Cached = res.counts, res.chart, res.partial, res.at, res.took, cached
	v.Step = formatStep(res.step)
	for _, t := range []struct {
		name, field string
		m           map[string]int
	}{
		{"Reason", "reason", res.counts.ByReason}, {"Platform", "platform", res.counts.ByPlatform},
		{"App", "app", res.counts.ByApp}, {"Template", "template", res.counts.ByTemplate},
		{"Code", "code", res.counts.ByCode},
	} {
		v.Tables = append(v.Tables, countTable{Name: t.name, Rows: countLinks(form, t.field, t.m, res.counts.Total)})
	}
	c.render(w, r, http.StatusOK, "counts", "Dead-letter counts", v)
}

// count reads the dead letters of f once, counting them as herald dlq
// stats does and by time bucket and reason for the chart.
func (c *Console) count(ctx context.Context, f dlq.Filter, now time.Time) (statsResult, error) {
	start := time.Now()
	res := statsResult{at: now}
	from, to := f.Since, f.Until
	if to.IsZero() || to.After(now) {
		to = now
	}
	if from.IsZero() {
		// All of the stream: from its oldest letter, and over an hour at
		// least, so that a burst shows as a bar and not as the whole chart.
		s, err := c.js.Stream(ctx, c.cfg.DeadStream)
		if err != nil {
			return res, err
		}
		from = s.CachedInfo().State.FirstTime
		if from.IsZero() || to.Sub(from) < time.Hour {
			from = to.Add(-time.Hour)
		}
	}
	starts, step := buckets(from, to)
	perReason := map[string][]int{}
	counts := dlq.NewCounts()
	sctx, cancel := context.WithTimeout(ctx, maxStatsTime)
	defer cancel()
	err := dlq.Scan(sctx, c.js, c.cfg.DeadStream, f, func(e dlq.Entry) bool {
		counts.Add(e)
		if i := bucketOf(starts, step, e.Time); i >= 0 {
			vals := perReason[e.Letter.Reason]
			if vals == nil {
				vals = make([]int, len(starts))
				perReason[e.Letter.Reason] = vals
			}
			vals[i]++
		}
		return true
	})
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		res.partial, err = true, nil
	}
	if err != nil {
		return res, err
	}
	reasons := make([]string, 0, len(perReason))
	for reason := range perReason {
		reasons = append(reasons, reason)
	}
	slices.SortFunc(reasons, func(a, b string) int { return counts.ByReason[b] - counts.ByReason[a] })
	list := make([]series, 0, len(reasons))
	for _, reason := range reasons {
		list = append(list, series{Name: reason, Color: reasonColor(reason), Values: perReason[reason]})
	}
	res.counts, res.step, res.took = counts, step, time.Since(start).Round(time.Millisecond)
	res.chart = stackedChart("Dead letters per "+formatStep(step)+" by reason", starts, step, list)
	return res, nil
}

func formatStep(d time.Duration) string {
	switch {
	case d >= 24*time.Hour:
		return "day"
	case d == time.Hour:
		return "hour"
	case d > time.Hour:
		return strconv.Itoa(int(d.Hours())) + " hours"
	case d == time.Minute:
		return "minute"
	default:
		return strconv.Itoa(int(d.Minutes())) + " minutes"
	}
}

// statsCache keeps counts over a time range for a while, keyed by the
// filters as given (relative times unresolved), so paging and coming back
// do not count again; one count per key runs at a time.
type statsCache struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[string]*statsEntry
}

type statsEntry struct {
	done chan struct{}
	res  statsResult
	err  error
	at   time.Time
}

// maxStatsEntries bounds the cache.
const maxStatsEntries = 64

func newStatsCache(ttl time.Duration) *statsCache {
	return &statsCache{ttl: ttl, entries: map[string]*statsEntry{}}
}

func (sc *statsCache) get(ctx context.Context, key string, fresh bool, compute func(context.Context) (statsResult, error)) (statsResult, bool, error) {
	sc.mu.Lock()
	e, ok := sc.entries[key]
	if ok && !fresh {
		select {
		case <-e.done:
			if e.err != nil || time.Since(e.at) > sc.ttl {
				ok = false
			}
		default: // being computed: wait for it
		}
	}
	if !ok || fresh {
		for k, old := range sc.entries {
			if len(sc.entries) < maxStatsEntries {
				break
			}
			select {
			case <-old.done:
				delete(sc.entries, k)
			default:
			}
		}
		e = &statsEntry{done: make(chan struct{})}
		sc.entries[key] = e
		sc.mu.Unlock()
		e.res, e.err = compute(ctx)
		e.at = time.Now()
		close(e.done)
		return e.res, false, e.err
	}
	sc.mu.Unlock()
	select {
	case <-e.done:
		return e.res, true, e.err
	case <-ctx.Done():
		return statsResult{}, false, ctx.Err()
	}
}

// letterView is one dead letter in full.
type letterView struct {
	Entry      dlq.Entry
	Letter     job.DeadLetter
	Job        string // the job, indented JSON
	RawText    string // undecodable bytes that are UTF-8 text
	RawHex     string // undecodable bytes that are not, as a hex dump
	RawCut     bool
	FirstAt    time.Time
	ReplayURL  string
	PurgeURL   string
	JobURL     string
	ListURL    string
	Replayable bool
}

// maxRawShown bounds the undecodable bytes shown.
const maxRawShown = 16 << 10

func (c *Console) deadLetter(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		c.fail(w, r, http.StatusNotFound, "No such dead letter", "A dead letter is named by its stream sequence number, as the list shows it.")
		return
	}
	e, err := dlq.Get(r.Context(), c.js, c.cfg.DeadStream, seq)
	if errors.Is(err, dlq.ErrNotFound) {
		c.fail(w, r, http.StatusNotFound, "No such dead letter",
			"Nothing is stored at sequence "+strconv.FormatUint(seq, 10)+" of "+c.cfg.DeadStream+
				": it was replayed, purged or aged out, or never existed.")
		return
	}
	if err != nil {
		c.failErr(w, r, "read the dead letter", err)
		return
	}
	l := e.Letter
	one := filterForm{Seq: seq}
	v := letterView{Entry: e, Letter: l, Replayable: e.Replayable(),
		ReplayURL: one.link("/replay"), PurgeURL: one.link("/purge"), ListURL: "/dead"}
	if l.FirstAttemptAt != nil {
		v.FirstAt = *l.FirstAttemptAt
	}
	if len(l.Job) > 0 {
		var buf bytes.Buffer
		if json.Indent(&buf, l.Job, "", "  ") == nil {
			v.Job = buf.String()
		} else {
			v.Job = string(l.Job)
		}
	}
	raw := l.Raw
	if len(raw) > maxRawShown {
		raw, v.RawCut = raw[:maxRawShown], true
	}
	switch {
	case len(raw) == 0:
	case utf8.Valid(raw):
		v.RawText = string(raw) // control characters are escaped when shown
	default:
		v.RawHex = hex.Dump(raw)
	}
	if l.ID != "" && (l.Platform == job.WeChat || l.Platform == job.Alipay) {
		app := l.App
		if app == "" {
			app = job.DefaultApp
		}
		v.JobURL = "/jobs?" + url.Values{"platform": {l.Platform}, "app": {app}, "id": {l.ID}}.Encode()
	}
	c.render(w, r, http.StatusOK, "letter", "Dead letter "+strconv.FormatUint(seq, 10), v)
}
