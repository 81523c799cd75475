package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/heraldhq/herald/config"
	"github.com/heraldhq/herald/internal/text"
	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
)

func init() { commands = append(commands, newSendCmd) }

// defaultWindow is how many NDJSON jobs herald send keeps in flight.
const defaultWindow = 256

type sendOptions struct {
	conn     natsFlags
	platform string
	app      string
	template string
	to       string
	data     []string
	page     string
	id       string
	notAfter string
	state    string
	lang     string
	file     string
	window   int
	jsonOut  bool
	noChecks bool
	trace    bool     // start a trace per job
	parent   string   // continue this traceparent
	jobFlags []string // job flags the user set, refused with --file
}

func newSendCmd(e *env) *cobra.Command {
	o := &sendOptions{}
	cmd := &cobra.Command{
		Use:   "send",
		Short: "Publish jobs: one from flags, or many from NDJSON",
		Long: `Publish send jobs to notify.send.<platform>, where the worker picks them up.

With flags, send publishes one job and waits for JetStream's acknowledgement. The
job's id defaults to a random one; pass --id to make a retry of the same command
idempotent (JetStream drops a second publish of the same id within the job
stream's duplicate window, and the worker delivers a (platform, app, id) at most
once within dedup.ttl).

Every job is checked as the worker would check it before calling the platform
(the job contract, WeChat's keyword rules such as a thing value of at most 20
characters, Alipay's 50): a job the worker would only dead-letter is refused
here, unless --skip-checks is given.

With --file, send reads one job per line (NDJSON; "-" reads standard input),
checks each line, and publishes the good ones
asynchronously, at most --window unacknowledged at once, with a progress bar on
standard error. A bad line never stops the batch: it is reported with its line
number and reason, and send exits 1 once every other line is published. Blank
lines are skipped. Each job goes to the subject of its own platform field, with
Nats-Msg-Id set to its id.

The summary counts jobs JetStream stored (published), jobs it dropped as
duplicates of an id it saw within its window, and rejected lines.`,
		Example: `  # one job
  herald send --platform wechat --template VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc \
    --to oAbCd1234 --data thing1="Order shipped" --data time2="2026-11-23 10:00" --page pages/order?id=42

  # a job that must not arrive late, with a caller-chosen id
  herald send --id order-42-shipped --to oAbCd1234 --template tpl --data thing1=hi --not-after 30m

  # many jobs, 1000 in flight, summary as JSON
  herald send --file jobs.ndjson --window 1000 --json
  generate-jobs | herald send --file - --server nats://nats:4222`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, name := range []string{"platform", "app", "template", "to", "data", "page", "id", "not-after", "miniprogram-state", "lang"} {
				if cmd.Flags().Changed(name) {
					o.jobFlags = append(o.jobFlags, "--"+name)
				}
			}
			return runSend(cmd, e, o)
		},
	}
	o.conn.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.platform, "platform", job.WeChat, "wechat or alipay")
	f.StringVar(&o.app, "app", job.DefaultApp, "configured app whose credentials deliver the job")
	f.StringVar(&o.template, "template", "", "template id (WeChat template_id, Alipay user_template_id)")
	f.StringVar(&o.to, "to", "", "recipient (WeChat openid, Alipay open_id or user_id)")
	f.StringArrayVar(&o.data, "data", nil, "template keyword as key=value; repeat for each keyword")
	f.StringVar(&o.page, "page", "", "mini-program page the message card opens")
	f.StringVar(&o.id, "id", "", "job id, the idempotency key (default: a random id)")
	f.StringVar(&o.notAfter, "not-after", "", "deadline: an RFC 3339 time, or a duration from now (30m, 2h)")
	f.StringVar(&o.state, "miniprogram-state", "", "WeChat: developer, trial or formal")
	f.StringVar(&o.lang, "lang", "", "WeChat: zh_CN, en_US, zh_HK or zh_TW")
	f.StringVarP(&o.file, "file", "f", "", `NDJSON file of jobs, one per line; "-" for standard input`)
	f.IntVar(&o.window, "window", defaultWindow, "NDJSON: most publishes awaiting acknowledgement at once")
	f.BoolVar(&o.jsonOut, "json", false, "print the summary as JSON")
	f.BoolVar(&o.trace, "trace", false, "start a W3C trace per job: set its traceparent header (printed), which herald's worker continues when tracing is on")
	f.StringVar(&o.parent, "traceparent", "", "set this W3C traceparent on the job, to continue a trace of your own")
	f.BoolVar(&o.noChecks, "skip-checks", false, "publish jobs the worker would dead-letter before any call (a WeChat thing value over 20 characters, ...)")
	return cmd
}

// sendSummary is what herald send prints; its JSON form is documented in
// docs/operations-cli.md.
type sendSummary struct {
	Published  int             `json:"published"`
	Duplicates int             `json:"duplicates"`
	Rejected   []sendRejection `json:"rejected"`
	Stream     string          `json:"stream"`
	// One job from flags only: its id, subject and stream sequence (the
	// earlier copy's for a duplicate), and its traceparent when traced.
	TraceParent string `json:"traceparent,omitempty"`
	ID          string `json:"id,omitempty"`
	Subject     string `json:"subject,omitempty"`
	Seq         uint64 `json:"seq,omitempty"`
}

type sendRejection struct {
	Line   int    `json:"line,omitempty"` // NDJSON line, from 1
	ID     string `json:"id,omitempty"`
	Reason string `json:"reason"`
}

func runSend(cmd *cobra.Command, e *env, o *sendOptions) error {
	if o.file != "" && len(o.jobFlags) > 0 {
		return fmt.Errorf("--file cannot be combined with %s: the jobs come from the file", strings.Join(o.jobFlags, ", "))
	}
	if o.window < 1 {
		return fmt.Errorf("--window %d: want at least 1", o.window)
	}
	if o.parent != "" && !traceParentRE.MatchString(o.parent) {
		return fmt.Errorf("--traceparent %q: want 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>", o.parent)
	}
	var msg *nats.Msg
	if o.file == "" {
		if len(o.jobFlags) == 0 {
			return errors.New("nothing to send: give one job with --template, --to and --data, or many with --file (see herald send --help)")
		}
		j, err := o.job(time.Now())
		if err != nil {
			return err
		}
		if msg, err = producer.Message(j); err != nil {
			return err
		}
		o.setTrace(msg.Header)
		if !o.noChecks {
			if err := checkJob(j); err != nil {
				return fmt.Errorf("job %s not published: %w; --skip-checks publishes it anyway", j.ID, err)
			}
		}
	}
	ctx := cmd.Context()
	c, err := o.conn.connect(cmd, e, "send",
		jetstream.WithPublishAsyncMaxPending(o.window),
		jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		return err
	}
	defer c.close()
	sum := sendSummary{Rejected: []sendRejection{}, Stream: c.cfg.NATS.Stream}
	pubOpts := []jetstream.PublishOpt{jetstream.WithExpectStream(c.cfg.NATS.Stream)}

	if msg != nil {
		ack, err := c.js.PublishMsg(ctx, msg, pubOpts...)
		if err != nil {
			return fmt.Errorf("publish job %s: %w", msg.Header.Get(job.HeaderMsgID), err)
		}
		sum.ID, sum.Subject, sum.Seq = msg.Header.Get(job.HeaderMsgID), msg.Subject, ack.Sequence
		sum.TraceParent = msg.Header.Get(traceParentHeader)
		if ack.Duplicate {
			sum.Duplicates++
		} else {
			sum.Published++
		}
		return printSendSummary(e, o, c.cfg, sum)
	}

	in, total, closeIn, err := openJobs(e, o.file)
	if err != nil {
		return err
	}
	defer closeIn()
	bar := newProgress(e.stderr, "send", total)
	err = sendBatch(ctx, c.js, in, o.window, !o.noChecks, o.setTrace, pubOpts, &sum, bar)
	bar.finish()
	if perr := printSendSummary(e, o, c.cfg, sum); perr != nil {
		return perr
	}
	if err != nil {
		return fmt.Errorf("send stopped (published %d, duplicates %d): %w", sum.Published, sum.Duplicates, err)
	}
	if n := len(sum.Rejected); n > 0 {
		return fmt.Errorf("%d of %d jobs rejected", n, n+sum.Published+sum.Duplicates)
	}
	return nil
}

// traceParentHeader is W3C trace context's header.
const traceParentHeader = "traceparent"

// traceParentRE is a version 00 traceparent.
var traceParentRE = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

// setTrace sets a job message's traceparent as --trace and --traceparent
// ask: a new trace (random ids, sampled) for each job, or the given one.
func (o *sendOptions) setTrace(h nats.Header) {
	switch {
	case o.parent != "":
		h.Set(traceParentHeader, o.parent)
	case o.trace:
		h.Set(traceParentHeader, "00-"+hexRandom(16)+"-"+hexRandom(8)+"-01")
	}
}

// hexRandom is n random bytes in hex.
func hexRandom(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// job builds the job the flags describe.
func (o *sendOptions) job(now time.Time) (job.Job, error) {
	j := job.Job{
		ID: o.id, Platform: o.platform, App: o.app, TemplateID: o.template, ToUser: o.to,
		Page: o.page, Data: map[string]job.Value{},
	}
	if j.ID == "" {
		j.ID = rand.Text()
	}
	for _, kv := range o.data {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return j, fmt.Errorf("--data %q: want key=value", kv)
		}
		j.Data[k] = job.Value{Value: v}
	}
	if o.notAfter != "" {
		t, err := parseTimeFlag(o.notAfter, now, +1)
		if err != nil {
			return j, fmt.Errorf("--not-after: %w", err)
		}
		j.NotAfter = &t
	}
	if o.state != "" || o.lang != "" {
		j.WeChat = &job.WeChatOptions{MiniprogramState: o.state, Lang: o.lang}
	}
	return j, nil
}

// openJobs opens the NDJSON source and counts its lines when it is a
// regular file (total -1 otherwise), for the progress bar.
func openJobs(e *env, name string) (r io.Reader, total int, closeFn func(), err error) {
	if name == "-" {
		return e.stdin, -1, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("jobs file: %w", err)
	}
	total, err = countLines(f)
	if err != nil {
		_ = f.Close()
		return nil, 0, nil, fmt.Errorf("jobs file %s: %w", name, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, 0, nil, fmt.Errorf("jobs file %s: %w", name, err)
	}
	return f, total, func() { _ = f.Close() }, nil
}

func countLines(r io.Reader) (int, error) {
	buf := make([]byte, 64<<10)
	n, last := 0, byte('\n')
	for {
		k, err := r.Read(buf)
		if k > 0 {
			n += bytes.Count(buf[:k], []byte{'\n'})
			last = buf[k-1]
		}
		if errors.Is(err, io.EOF) {
			if last != '\n' {
				n++
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// inflight is one asynchronous publish awaiting its acknowledgement.
type inflight struct {
	line int
	id   string
	fut  jetstream.PubAckFuture
}

// sendBatch publishes the jobs of in, one per line, with at most window
// acknowledgements outstanding, recording every outcome in sum. It returns
// an error only when it cannot go on (reading fails, ctx ends).
func sendBatch(ctx context.Context, js jetstream.JetStream, in io.Reader, window int, checks bool, trace func(nats.Header),
	pubOpts []jetstream.PublishOpt, sum *sendSummary, bar *progress) error {
	var queue []inflight
	handled := 0
	settle := func(p inflight) error {
		select {
		case ack := <-p.fut.Ok():
			if ack.Duplicate {
				sum.Duplicates++
			} else {
				sum.Published++
			}
		case err := <-p.fut.Err():
			sum.Rejected = append(sum.Rejected, sendRejection{Line: p.line, ID: p.id, Reason: err.Error()})
		case <-ctx.Done():
			return ctx.Err()
		}
		handled++
		bar.update(handled)
		return nil
	}
	reject := func(line int, id, reason string) {
		sum.Rejected = append(sum.Rejected, sendRejection{Line: line, ID: id, Reason: reason})
		handled++
		bar.update(handled)
	}

	r := bufio.NewReaderSize(in, job.MaxSize+4096)
	for line := 1; ; line++ {
		data, tooLong, err := readLine(r)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read line %d: %w", line, err)
		}
		eof := errors.Is(err, io.EOF)
		data = bytes.TrimSpace(data)
		switch {
		case tooLong:
			reject(line, "", fmt.Sprintf("line longer than the %d-byte job limit", job.MaxSize))
		case len(data) == 0:
			if !eof {
				handled++ // a blank line: nothing to send
				bar.update(handled)
			}
		default:
			j, derr := job.Decode(data, "")
			if derr != nil {
				reject(line, j.ID, derr.Error())
				break
			}
			if checks {
				if cerr := checkJob(j); cerr != nil {
					reject(line, j.ID, cerr.Error())
					break
				}
			}
			msg := nats.NewMsg(job.SendSubject(j.Platform))
			msg.Data = data
			msg.Header.Set(job.HeaderMsgID, j.ID)
			trace(msg.Header)
			fut, perr := js.PublishMsgAsync(msg, pubOpts...)
			if perr != nil {
				reject(line, j.ID, perr.Error())
				break
			}
			queue = append(queue, inflight{line: line, id: j.ID, fut: fut})
			if len(queue) >= window {
				if err := settle(queue[0]); err != nil {
					return err
				}
				queue = queue[1:]
			}
		}
		if eof {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	for _, p := range queue {
		if err := settle(p); err != nil {
			return err
		}
	}
	return nil
}

// readLine reads one line without its newline. A line longer than r's
// buffer is skipped to its end and reported as tooLong.
func readLine(r *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			tooLong = true
			continue
		case tooLong:
			return nil, true, err
		default:
			return bytes.Clone(chunk), false, err
		}
	}
}

func printSendSummary(e *env, o *sendOptions, cfg *config.Config, sum sendSummary) error {
	if o.jsonOut {
		return writeJSON(e.stdout, sum)
	}
	if sum.ID != "" {
		if sum.Duplicates > 0 {
			fmt.Fprintf(e.stdout, "duplicate: %s already holds job %s (seq %d) from within its %s duplicate window; nothing published\n",
				sum.Stream, termSafe(sum.ID), sum.Seq, config.FormatDuration(cfg.NATS.DuplicateWindow))
			return nil
		}
		fmt.Fprintf(e.stdout, "published job %s to %s (%s seq %d)\n", termSafe(sum.ID), termSafe(sum.Subject), sum.Stream, sum.Seq)
		if sum.TraceParent != "" {
			fmt.Fprintf(e.stdout, "traceparent %s\n", termSafe(sum.TraceParent))
		}
		return nil
	}
	fmt.Fprintf(e.stdout, "published %d, duplicates %d, rejected %d\n", sum.Published, sum.Duplicates, len(sum.Rejected))
	if len(sum.Rejected) == 0 {
		return nil
	}
	tw := newTable(e.stdout, "LINE", "ID", "REASON")
	for _, r := range sum.Rejected {
		tw.row(r.Line, text.Dash(r.ID), r.Reason)
	}
	return tw.flush()
}

// Operator command plumbing, shared by send, dlq and streams.

// natsFlags are the connection flags of every operator command.
type natsFlags struct {
	server string
	creds  string
}

// register adds --server and --creds to cmd and its subcommands.
func (f *natsFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVarP(&f.server, "server", "s", "", "NATS URL, or a comma-separated list (default: nats.url of the config, $HERALD_NATS_URL)")
	pf.StringVar(&f.creds, "creds", "", "NATS credentials file, in place of the config's credentials (default: nats.creds_file of the config)")
}

// opsConn is an operator command's configuration and JetStream connection.
type opsConn struct {
	cfg *config.Config
	nc  *nats.Conn
	js  jetstream.JetStream
}

// connect loads the configuration and connects to the server the flags or
// the configuration name, with the configuration's credentials and TLS as
// the worker does, or the credentials file of --creds.
func (f *natsFlags) connect(cmd *cobra.Command, e *env, name string, opts ...jetstream.JetStreamOpt) (*opsConn, error) {
	cfg, err := loadConfig(cmd, e)
	if err != nil {
		return nil, err
	}
	link := cfg.NATS
	if f.server != "" {
		link.URL = f.server
	}
	if f.creds != "" {
		link.CredsFile, link.NKeySeedFile, link.User, link.Password, link.Token = f.creds, "", "", "", ""
	}
	if link.URL == "" {
		return nil, errors.New("no NATS server: nats.url is empty (the worker's embedded server); pass --server nats://host:port")
	}
	e.server = redactURL(link.URL)
	if f.server == "" && config.ConfigPath(configFlag(cmd), e.environ) == "" && config.LookupEnv(e.environ, "HERALD_NATS_URL") == "" {
		e.server += ", the default: pass --server or set HERALD_NATS_URL"
	}
	nc, err := connectNATS(link, "herald "+name, zap.NewNop())
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &opsConn{cfg: cfg, nc: nc, js: js}, nil
}

func (c *opsConn) close() { c.nc.Close() }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// table writes aligned columns, kubectl style. Every cell goes through
// termSafe: cells show producers' and platforms' strings, and a tab or
// newline in one would break the columns too.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	fmt.Fprintln(t.tw, strings.Join(header, "\t"))
	return t
}

func (t *table) row(cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = termSafe(fmt.Sprint(c))
	}
	fmt.Fprintln(t.tw, strings.Join(s, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// isTerminal reports whether v is a terminal. /dev/null and other
// character devices are not.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress reports long work on standard error: a bar redrawn in place on
// a terminal, otherwise a plain line at every tenth of the work (or every
// 10 s when the total is unknown), without control codes.
type progress struct {
	w       io.Writer
	tty     bool
	label   string
	total   int // -1: unknown
	done    int
	start   time.Time
	drawn   time.Time
	decile  int
	width   int
	started bool
}

func newProgress(w io.Writer, label string, total int) *progress {
	p := &progress{w: w, tty: isTerminal(w), label: label, total: total, start: time.Now()}
	if !p.tty {
		p.drawn = p.start // plain lines start after progressPlainGap
	}
	return p
}

const (
	progressRedraw   = 100 * time.Millisecond
	progressPlainGap = 10 * time.Second
	progressBarWidth = 30
)

func (p *progress) update(done int) {
	p.done = done
	now := time.Now()
	if p.tty {
		if now.Sub(p.drawn) >= progressRedraw {
			p.draw(now)
		}
		return
	}
	if p.total > 0 {
		if d := done * 10 / p.total; d > p.decile && done < p.total {
			p.decile = d
			p.plain(now)
		}
		return
	}
	if now.Sub(p.drawn) >= progressPlainGap {
		p.plain(now)
	}
}

// finish draws the final state; nothing is written for work that never
// started.
func (p *progress) finish() {
	if p.done == 0 && !p.started {
		return
	}
	now := time.Now()
	if p.tty {
		p.draw(now)
		fmt.Fprintln(p.w)
		return
	}
	fmt.Fprintf(p.w, "%s: %d done in %s (%s)\n", p.label, p.done, now.Sub(p.start).Round(time.Millisecond), p.rate(now))
}

func (p *progress) rate(now time.Time) string {
	secs := now.Sub(p.start).Seconds()
	if secs < 0.2 {
		return "-/s" // too soon for a meaningful rate
	}
	return fmt.Sprintf("%.0f/s", float64(p.done)/secs)
}

func (p *progress) draw(now time.Time) {
	p.started, p.drawn = true, now
	var line string
	if p.total > 0 {
		filled := min(p.done*progressBarWidth/p.total, progressBarWidth)
		bar := strings.Repeat("=", filled) + strings.Repeat(" ", progressBarWidth-filled)
		line = fmt.Sprintf("%s [%s] %d/%d %3d%% %s", p.label, bar, p.done, p.total, p.done*100/p.total, p.rate(now))
		if secs := now.Sub(p.start).Seconds(); p.done > 0 && p.done < p.total && secs > 0 {
			left := time.Duration(float64(p.total-p.done) / (float64(p.done) / secs) * float64(time.Second))
			line += " ETA " + left.Round(time.Second).String()
		}
	} else {
		line = fmt.Sprintf("%s %d %s", p.label, p.done, p.rate(now))
	}
	pad := max(p.width-len(line), 0)
	p.width = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
}

func (p *progress) plain(now time.Time) {
	p.started, p.drawn = true, now
	if p.total > 0 {
		fmt.Fprintf(p.w, "%s: %d/%d (%d%%) %s\n", p.label, p.done, p.total, p.done*100/p.total, p.rate(now))
		return
	}
	fmt.Fprintf(p.w, "%s: %d %s\n", p.label, p.done, p.rate(now))
}
