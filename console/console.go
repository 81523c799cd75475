package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/heraldhq/herald/dlq"
	"github.com/heraldhq/herald/internal/text"
	"github.com/heraldhq/herald/worker"
)

// Config is what the console needs to know of herald's deployment and how
// it is protected. The stream names are those of herald's config (nats.*).
type Config struct {
	SendStream   string // the job stream, NOTIFY_SEND: replays must land in it
	DeadStream   string // NOTIFY_DEAD
	EventsStream string // NOTIFY_EVENTS; empty when receipts are off
	Consumer     string // the worker consumer on SendStream, herald-worker
	// OtherStreams are shown with the others on the overview
	// (NOTIFY_SUBSCRIPTIONS).
	OtherStreams []string

	// ReadOnly refuses replay and purge and hides their buttons.
	ReadOnly bool
	// BasicAuthUser and BasicAuthPassword, when the user is set, require
	// HTTP basic authentication.
	BasicAuthUser, BasicAuthPassword string
	// TrustedUserHeader names the header an authenticating reverse proxy
	// sets to the signed-in user; when set, requests without it are
	// refused.
	TrustedUserHeader string
	// Replicas are base URLs of workers and receivers whose /readyz the
	// overview shows.
	Replicas []string

	// PageSize is how many dead letters a page lists; default 50.
	PageSize int
	// StatsTTL is how long counts over a time range are reused; default
	// 30s.
	StatsTTL time.Duration
}

func (c *Config) setDefaults() {
	if c.DeadStream == "" {
		c.DeadStream = dlq.DefaultStream
	}
	if c.PageSize <= 0 {
		c.PageSize = 50
	}
	if c.StatsTTL <= 0 {
		c.StatsTTL = 30 * time.Second
	}
}

func (c *Config) validate() error {
	var problems []string
	if c.SendStream == "" {
		problems = append(problems, "SendStream is required: replays are published to it")
	}
	if c.BasicAuthUser != "" && c.BasicAuthPassword == "" {
		problems = append(problems, "BasicAuthPassword is required with BasicAuthUser")
	}
	if c.PageSize > maxPageSize {
		problems = append(problems, fmt.Sprintf("PageSize %d is above %d", c.PageSize, maxPageSize))
	}
	if len(problems) > 0 {
		return fmt.Errorf("console config: %s", strings.Join(problems, "; "))
	}
	return nil
}

// maxPageSize bounds Config.PageSize and the page size a request may ask
// for.
const maxPageSize = 500

// Option configures [New].
type Option func(*Console)

// WithJobLookups sets the sources the job page asks, in the order their
// sections are shown; by default [ReceiptLookup] and [DeadLetterLookup].
func WithJobLookups(lookups ...JobLookup) Option {
	return func(c *Console) { c.lookups = lookups }
}

// WithHTTPClient sets the client that asks the replicas for /readyz;
// by default one without redirects. Each request carries its own timeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Console) { c.client = hc }
}

// Console is the web console: an [http.Handler]. [Console.Close] stops the
// replays and purges it runs.
type Console struct {
	cfg     Config
	js      jetstream.JetStream
	log     *zap.Logger
	handler http.Handler
	pages   map[string]*template.Template
	static  http.Handler
	lookups []JobLookup
	ledger  worker.Ledger // nil without a shared store
	client  *http.Client
	ops     *operations
	stats   *statsCache

	// ctx ends when the console closes; operations run under it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New builds the console on js. log may be nil.
func New(cfg Config, js jetstream.JetStream, log *zap.Logger, opts ...Option) (*Console, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if js == nil {
		return nil, errors.New("console: no JetStream")
	}
	if log == nil {
		log = zap.NewNop()
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("console static files: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Console{
		cfg:    cfg,
		js:     js,
		log:    log,
		pages:  pages,
		static: staticFiles(static),
		ops:    newOperations(),
		stats:  newStatsCache(cfg.StatsTTL),
		ctx:    ctx,
		cancel: cancel,
	}
	c.lookups = []JobLookup{
		ReceiptLookup(js, cfg.EventsStream),
		DeadLetterLookup(js, cfg.DeadStream),
	}
	c.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, o := range opts {
		o(c)
	}
	c.handler = c.protect(c.routes())
	return c, nil
}

// staticFiles serves the embedded stylesheet and script, and no directory
// listing.
func staticFiles(fsys fs.FS) http.Handler {
	files := http.StripPrefix("/static/", http.FileServerFS(fsys))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	})
}

// ServeHTTP serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.handler.ServeHTTP(w, r)
}

// Close cancels the replays and purges in progress and waits for them to
// stop; each stops after the dead letter in hand, as an interrupted
// herald dlq replay does. Closing twice is harmless.
func (c *Console) Close() {
	c.cancel()
	c.wg.Wait()
}

func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.overview)
	mux.HandleFunc("GET /dead", c.deadLetters)
	mux.HandleFunc("GET /dead/counts", c.deadCounts)
	mux.HandleFunc("GET /dead/{seq}", c.deadLetter)
	mux.HandleFunc("GET /replay", c.operateForm(opReplay))
	mux.HandleFunc("POST /replay", c.operateStart(opReplay))
	mux.HandleFunc("GET /purge", c.operateForm(opPurge))
	mux.HandleFunc("POST /purge", c.operateStart(opPurge))
	mux.HandleFunc("GET /ops/{id}", c.operation)
	mux.HandleFunc("GET /ops/{id}/status", c.operationStatus)
	mux.HandleFunc("POST /ops/{id}/cancel", c.operationCancel)
	mux.HandleFunc("GET /jobs", c.jobs)
	mux.HandleFunc("GET /subscriptions", c.subscriptions)
	mux.Handle("GET /static/", c.static)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusNotFound, "No such page", "There is nothing at "+r.URL.Path+".")
	})
	return mux
}

// page is what every page template receives.
type page struct {
	Title    string
	Nav      string // the navigation entry to highlight
	User     string // who is signed in, when known
	ReadOnly bool
	Refresh  int // seconds between reloads, for live pages; 0: none
	Body     any
}

// funcs are the helpers templates may call. None returns trusted HTML.
var funcs = template.FuncMap{
	"visible":  visible,
	"num":      formatInt,
	"time":     formatTime,
	"ago":      formatAgo,
	"dash":     text.Dash,
	"bytes":    text.Bytes,
	"pct":      percent,
	"add":      func(a, b int) int { return a + b },
	"addf":     func(a, b float64) float64 { return a + b },
	"reasons":  func() []string { return knownReasons },
	"nonempty": func(s []string) bool { return len(s) > 0 },
	"dict":     dict,
}

// dict builds a map from key, value pairs, to hand a sub-template more
// than one value.
func dict(pairs ...any) (map[string]any, error) {
	if len(pairs)%2 != 0 {
		return nil, errors.New("dict: odd number of arguments")
	}
	m := make(map[string]any, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		k, ok := pairs[i].(string)
		if !ok {
			return nil, errors.New("dict: a key is not a string")
		}
		m[k] = pairs[i+1]
	}
	return m, nil
}

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"overview", "dead", "counts", "letter", "operate", "operation", "jobs", "subscriptions", "error"}

func parsePages() (map[string]*template.Template, error) {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS,
			"templates/layout.html", "templates/chart.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes page name with body, or an error page when it cannot be
// rendered. Pages are rendered into a buffer first, so a template error
// never leaves half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name, title string, body any) {
	p := page{Title: title, Nav: name, User: userOf(r), ReadOnly: c.cfg.ReadOnly, Body: body}
	if rf, ok := body.(interface{ refresh() int }); ok {
		p.Refresh = rf.refresh()
	}
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, p); err != nil {
		c.log.Error("console render", zap.String("page", name), zap.Error(err))
		http.Error(w, "the page could not be rendered; see the console's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// problem is the body of the error page.
type problem struct {
	Heading, Detail string
	Back            string // a link to go on from, or ""
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, heading, detail string) {
	c.render(w, r, status, "error", heading, problem{Heading: heading, Detail: detail})
}

// failErr answers a failed read of JetStream: 504 when the request ran out
// of time, 502 otherwise; the error is logged and shown, escaped.
func (c *Console) failErr(w http.ResponseWriter, r *http.Request, what string, err error) {
	status := http.StatusBadGateway
	if errors.Is(err, context.DeadlineExceeded) {
		status = http.StatusGatewayTimeout
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the browser went away
	}
	c.log.Warn("console "+what, zap.Error(err))
	c.fail(w, r, status, "Could not "+what, err.Error())
}
