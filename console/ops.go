package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/heraldhq/herald/dlq"
)

// opKind is what an operation does to dead letters.
type opKind string

const (
	opReplay opKind = "replay"
	opPurge  opKind = "purge"
)

// Operation states.
const (
	stateRunning   = "running"
	stateDone      = "done"
	stateFailed    = "failed"
	stateCancelled = "cancelled"
)

// Bounds on operations.
const (
	maxRunningOps = 2  // replays and purges at once
	maxKeptOps    = 50 // finished ones remembered
	defaultRate   = 50 // replays per second offered by the form
	maxRate       = 100_000
)

// operation is one replay or purge the console runs in the background,
// through dlq.Replay or dlq.Purge, as herald dlq does.
type operation struct {
	ID       string
	Kind     opKind
	Form     filterForm // absolute times: what was previewed
	Rate     float64
	Limit    int
	Keep     bool
	Expected int // how many the preview showed: the most it may act on
	User     string
	Started  time.Time

	cancel context.CancelFunc

	mu       sync.Mutex
	state    string
	progress dlq.Progress
	replay   dlq.ReplayResult
	purge    dlq.PurgeResult
	err      string
	finished time.Time
}

// opView is an operation as the page and its status endpoint show it.
type opView struct {
	ID       string            `json:"id"`
	Kind     string            `json:"kind"`
	Describe string            `json:"filter"`
	User     string            `json:"user,omitempty"`
	State    string            `json:"state"`
	Done     int               `json:"done"`
	Total    int               `json:"total"`
	Percent  int               `json:"percent"`
	Rate     float64           `json:"rate,omitempty"`
	Limit    int               `json:"limit,omitempty"`
	Keep     bool              `json:"keep,omitempty"`
	Expected int               `json:"expected"`
	Started  time.Time         `json:"started"`
	Finished *time.Time        `json:"finished,omitempty"`
	Replay   *dlq.ReplayResult `json:"replay,omitempty"`
	Purge    *dlq.PurgeResult  `json:"purge,omitempty"`
	Error    string            `json:"error,omitempty"`
	Running  bool              `json:"running"`
	ListURL  string            `json:"-"`
	URL      string            `json:"-"`
}

func (o *operation) view() opView {
	o.mu.Lock()
	defer o.mu.Unlock()
	v := opView{
		ID: o.ID, Kind: string(o.Kind), Describe: o.Form.Describe(), User: o.User, State: o.state,
		Done: o.progress.Done, Total: o.progress.Total, Rate: o.Rate, Limit: o.Limit, Keep: o.Keep,
		Expected: o.Expected, Started: o.Started, Error: o.err, Running: o.state == stateRunning,
		ListURL: o.Form.link("/dead"), URL: "/ops/" + o.ID,
	}
	if v.Total > 0 {
		v.Percent = v.Done * 100 / v.Total
	}
	if !o.finished.IsZero() {
		f := o.finished
		v.Finished = &f
		if o.state == stateDone {
			v.Percent = 100
		}
	}
	if o.Kind == opReplay {
		r := o.replay
		v.Replay = &r
	} else {
		p := o.purge
		v.Purge = &p
	}
	return v
}

// refresh makes a running operation's page reload without script.
func (v opView) refresh() int {
	if v.Running {
		return 2
	}
	return 0
}

// operations are the replays and purges of this console, newest last.
type operations struct {
	mu    sync.Mutex
	byID  map[string]*operation
	order []string
}

func newOperations() *operations {
	return &operations{byID: map[string]*operation{}}
}

var errBusy = errors.New("busy")

// add registers o as running, unless maxRunningOps already run.
func (ops *operations) add(o *operation) error {
	ops.mu.Lock()
	defer ops.mu.Unlock()
	running := 0
	for _, other := range ops.byID {
		other.mu.Lock()
		if other.state == stateRunning {
			running++
		}
		other.mu.Unlock()
	}
	if running >= maxRunningOps {
		return errBusy
	}
	o.state = stateRunning
	ops.byID[o.ID] = o
	ops.order = append(ops.order, o.ID)
	for len(ops.order) > maxKeptOps {
		old := ops.byID[ops.order[0]]
		old.mu.Lock()
		done := old.state != stateRunning
		old.mu.Unlock()
		if !done {
			break
		}
		delete(ops.byID, ops.order[0])
		ops.order = ops.order[1:]
	}
	return nil
}

func (ops *operations) get(id string) *operation {
	ops.mu.Lock()
	defer ops.mu.Unlock()
	return ops.byID[id]
}

// recent returns up to n operations, newest first.
func (ops *operations) recent(n int) []opView {
	ops.mu.Lock()
	list := make([]*operation, 0, n)
	for i := len(ops.order) - 1; i >= 0 && len(list) < n; i-- {
		list = append(list, ops.byID[ops.order[i]])
	}
	ops.mu.Unlock()
	out := make([]opView, 0, len(list))
	for _, o := range list {
		out = append(out, o.view())
	}
	return out
}

func newOpID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validOpID reports whether s can name an operation: 16 hex digits.
func validOpID(s string) bool {
	if len(s) != 16 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// opParams are the settings of an operation besides its filter.
type opParams struct {
	Rate  float64
	Limit int
	Keep  bool
	All   bool // act on every dead letter when no filter is given
}

func parseOpParams(v url.Values, kind opKind) (opParams, error) {
	p := opParams{Keep: v.Get("keep") == "on", All: v.Get("all") == "on"}
	if kind == opPurge {
		return p, nil
	}
	var errs []error
	p.Rate = defaultRate
	if s := v.Get("rate"); s != "" {
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || r < 0 || r > maxRate || math.IsNaN(r) {
			errs = append(errs, fmt.Errorf("rate: want jobs per second, 0 (no limit) to %d", maxRate))
		}
		p.Rate = r
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			errs = append(errs, errors.New("limit: want a whole number, 0 for all"))
		}
		p.Limit = n
	}
	return p, errors.Join(errs...)
}

// operateView is the replay or purge page: the filters, a dry run, and
// the confirmation.
type operateView struct {
	Kind     string
	Verb     string // Replay or Purge
	Form     filterForm
	Params   opParams
	Problem  string
	Preview  bool
	Replay   dlq.ReplayResult
	Purge    dlq.PurgeResult
	Count    int // what the run would act on
	ByReason []countLink
	Samples  []letterRow
	// Confirm carries the previewed filter with absolute times, so the
	// run acts on what was previewed and on nothing stored since.
	Confirm     url.Values
	ConfirmForm filterForm
	NeedsAll    bool // no filter: the run needs "all" ticked
	Running     []opView
	Took        time.Duration
	ListURL     string
	Action      string
}

func verbOf(kind opKind) string {
	if kind == opReplay {
		return "Replay"
	}
	return "Purge"
}

func (c *Console) operateForm(kind opKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		q := r.URL.Query()
		form, err := parseFilterForm(q)
		params, perr := parseOpParams(q, kind)
		if _, ok := q["rate"]; !ok && kind == opReplay {
			params.Rate = defaultRate
		}
		v := operateView{Kind: string(kind), Verb: verbOf(kind), Form: form, Params: params,
			ListURL: form.link("/dead"), Action: "/" + string(kind), NeedsAll: form.empty()}
		if err = errors.Join(err, perr); err != nil {
			v.Problem = err.Error()
			c.render(w, r, http.StatusBadRequest, "operate", v.Verb+" dead letters", v)
			return
		}
		if q.Get("preview") != "1" {
			c.render(w, r, http.StatusOK, "operate", v.Verb+" dead letters", v)
			return
		}
		now := time.Now().UTC()
		f, err := form.filter(now)
		if err != nil {
			v.Problem = err.Error()
			c.render(w, r, http.StatusBadRequest, "operate", v.Verb+" dead letters", v)
			return
		}
		// The run acts on what the preview saw: the same range, in
		// absolute times, ending now at the latest.
		if f.Until.IsZero() || f.Until.After(now) {
			f.Until = now
		}
		abs := form
		abs.Until = f.Until.UTC().Format(time.RFC3339Nano)
		abs.Since = ""
		if !f.Since.IsZero() {
			abs.Since = f.Since.UTC().Format(time.RFC3339Nano)
		}
		v.Preview, v.ConfirmForm = true, abs
		switch kind {
		case opReplay:
			v.Replay, err = dlq.Replay(r.Context(), c.js, dlq.ReplayOptions{
				Stream: c.cfg.DeadStream, SendStream: c.cfg.SendStream, Filter: f,
				Limit: params.Limit, DryRun: true,
			})
			v.Count = v.Replay.Replayable
			v.ByReason = countLinks(form, "reason", v.Replay.ByReason, v.Replay.Replayable)
			for _, e := range v.Replay.Samples {
				v.Samples = append(v.Samples, rowOf(e))
			}
		case opPurge:
			v.Purge, err = dlq.Purge(r.Context(), c.js, c.cfg.DeadStream, f, true)
			v.Count = v.Purge.Matched
			v.ByReason = countLinks(form, "reason", v.Purge.ByReason, v.Purge.Matched)
		}
		if err != nil {
			c.failErr(w, r, "preview the "+string(kind), err)
			return
		}
		v.Confirm = abs.values()
		v.Took = time.Since(start).Round(time.Millisecond)
		c.render(w, r, http.StatusOK, "operate", v.Verb+" dead letters", v)
	}
}

func (c *Console) operateStart(kind opKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			c.fail(w, r, http.StatusBadRequest, "Bad form", err.Error())
			return
		}
		pf := r.PostForm
		form, err := parseFilterForm(pf)
		params, perr := parseOpParams(pf, kind)
		expected, eerr := strconv.Atoi(pf.Get("expected"))
		if eerr != nil || expected < 0 {
			eerr = errors.New("expected: the count the preview showed is missing")
		}
		if err = errors.Join(err, perr, eerr); err != nil {
			c.fail(w, r, http.StatusBadRequest, "Cannot "+string(kind), err.Error())
			return
		}
		back := form.link("/"+string(kind), "preview", "1")
		if pf.Get("confirm") != "yes" {
			c.render(w, r, http.StatusBadRequest, "error", "Not confirmed", problem{
				Heading: "Not confirmed", Back: back,
				Detail: "Nothing was changed: tick the confirmation under the preview, then " + string(kind) + ".",
			})
			return
		}
		if form.empty() && !params.All {
			c.fail(w, r, http.StatusBadRequest, "Refused: no filter",
				"Without a filter this would "+string(kind)+" every dead letter, those that will fail again (user_refused, invalid_template_data, ...) too. Narrow the filters, or tick \"all\".")
			return
		}
		f, err := form.filter(time.Now())
		if err != nil {
			c.fail(w, r, http.StatusBadRequest, "Cannot "+string(kind), err.Error())
			return
		}
		ctx, cancel := context.WithCancel(c.ctx)
		o := &operation{
			ID: newOpID(), Kind: kind, Form: form, Rate: params.Rate, Limit: params.Limit, Keep: params.Keep,
			Expected: expected, User: userOf(r), Started: time.Now(), cancel: cancel,
		}
		if err := c.ops.add(o); err != nil {
			cancel()
			c.render(w, r, http.StatusConflict, "error", "Busy", problem{
				Heading: "Busy", Back: "/",
				Detail: fmt.Sprintf("%d replays or purges are running; wait for one to finish.", maxRunningOps),
			})
			return
		}
		log := c.log.With(zap.String("operation", o.ID), zap.String("kind", string(kind)),
			zap.String("user", o.User), zap.String("filter", form.Describe()))
		log.Info("console operation started", zap.Int("expected", expected), zap.Float64("rate", params.Rate),
			zap.Int("limit", params.Limit), zap.Bool("keep", params.Keep))
		c.wg.Go(func() {
			defer cancel()
			c.run(ctx, o, f, log)
		})
		http.Redirect(w, r, "/ops/"+o.ID, http.StatusSeeOther)
	}
}

// run carries out o through the dlq package, recording progress.
func (c *Console) run(ctx context.Context, o *operation, f dlq.Filter, log *zap.Logger) {
	progress := func(p dlq.Progress) {
		o.mu.Lock()
		o.progress = p
		o.mu.Unlock()
	}
	var found int
	confirm := func(n int) bool {
		found = n
		o.mu.Lock()
		o.progress = dlq.Progress{Total: n}
		o.mu.Unlock()
		return n <= o.Expected
	}
	var err error
	switch o.Kind {
	case opReplay:
		var res dlq.ReplayResult
		res, err = dlq.Replay(ctx, c.js, dlq.ReplayOptions{
			Stream: c.cfg.DeadStream, SendStream: c.cfg.SendStream, Filter: f,
			Limit: o.Limit, Rate: o.Rate, Keep: o.Keep, Confirm: confirm, Progress: progress,
		})
		o.mu.Lock()
		o.replay = res
		o.mu.Unlock()
		log.Info("console replay finished", zap.Int("matched", res.Matched), zap.Int("replayed", res.Replayed),
			zap.Int("duplicates", res.Duplicates), zap.Int("deleted", res.Deleted), zap.Int("skipped", res.Skipped),
			zap.Int("gone", res.Gone), zap.Error(err))
	case opPurge:
		var res dlq.PurgeResult
		res, err = dlq.Purge(ctx, c.js, c.cfg.DeadStream, f, false, dlq.PurgeConfirm(confirm), dlq.PurgeProgress(progress))
		o.mu.Lock()
		o.purge = res
		o.mu.Unlock()
		log.Info("console purge finished", zap.Int("matched", res.Matched), zap.Int("deleted", res.Deleted),
			zap.Int("gone", res.Gone), zap.Error(err))
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.finished = time.Now()
	switch {
	case err == nil:
		o.state = stateDone
	case errors.Is(err, dlq.ErrNotConfirmed):
		o.state = stateFailed
		o.err = fmt.Sprintf("%d dead letters match now, more than the %d previewed; nothing was changed: preview again", found, o.Expected)
	case errors.Is(err, context.Canceled):
		o.state = stateCancelled
		o.err = "cancelled: what was done stays done; run it again to finish (nothing is repeated)"
	default:
		o.state = stateFailed
		o.err = err.Error() + "; run it again to finish (what was done is not repeated)"
	}
}

func (c *Console) lookupOp(w http.ResponseWriter, r *http.Request) *operation {
	id := r.PathValue("id")
	var o *operation
	if validOpID(id) {
		o = c.ops.get(id)
	}
	if o == nil {
		c.fail(w, r, http.StatusNotFound, "No such operation",
			"This console does not know that operation: it may have been started by another console, or before a restart.")
	}
	return o
}

func (c *Console) operation(w http.ResponseWriter, r *http.Request) {
	if o := c.lookupOp(w, r); o != nil {
		v := o.view()
		c.render(w, r, http.StatusOK, "operation", verbOf(o.Kind)+" "+v.State, v)
	}
}

func (c *Console) operationStatus(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var o *operation
	if validOpID(id) {
		o = c.ops.get(id)
	}
	w.Header().Set("Content-Type", "application/json")
	if o == nil {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"no such operation"}` + "\n"))
		return
	}
	_ = json.NewEncoder(w).Encode(o.view())
}

func (c *Console) operationCancel(w http.ResponseWriter, r *http.Request) {
	if o := c.lookupOp(w, r); o != nil {
		c.log.Info("console operation cancelled", zap.String("operation", o.ID), zap.String("user", userOf(r)))
		o.cancel()
		http.Redirect(w, r, "/ops/"+o.ID, http.StatusSeeOther)
	}
}
