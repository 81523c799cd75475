package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/config"
	"github.com/heraldhq/herald/dlq"
	"github.com/heraldhq/herald/internal/text"
	"github.com/heraldhq/herald/producer/job"
)

func init() { commands = append(commands, newDLQCmd) }

// confirmAbove is how many dead letters replay and purge change without
// asking.
const confirmAbove = 100

func newDLQCmd(e *env) *cobra.Command {
	var conn natsFlags
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, replay and purge dead letters",
		Long: `Dead letters are jobs herald gave up on: the worker publishes each one to
notify.dead.<platform>.<reason>, stored in the NOTIFY_DEAD stream (nats.dead_stream)
for 14 days (nats.dead_max_age), up to 1 GiB (nats.dead_max_bytes: when it is
full, new dead letters wait with their jobs until purge, replay or age makes room).
Each holds the reason, the platform's code and message, and the original job.

list, show and stats read the stream without consuming it. replay publishes the
original jobs again and deletes their dead letters once JetStream acknowledged the
replay; purge deletes dead letters. Both collect the sequence numbers first, so
they are safe to interrupt and run again.

Filters (list, stats, replay, purge) combine with AND; a repeated or
comma-separated filter matches any of its values:
  --reason     user_refused, invalid_template_data, sensitive_content,
               invalid_recipient, invalid_template, invalid_page, malformed_job,
               expired, retries_exhausted, unknown_app, platform_rejected
  --platform   wechat, alipay, unknown (an undecodable job's)
  --app        configured app name
  --template   template id
  --code       the platform's code (43101, USER_TEMPLATE_ILLEGAL); none: no code
  --since      a duration ago (1h, 30m, 2d) or an RFC 3339 time
  --until      likewise; both bound the time the dead letter was stored`,
		Example: `  herald dlq stats --since 1h
  herald dlq list --reason retries_exhausted --since 1h
  herald dlq show 1234
  herald dlq replay --reason retries_exhausted --since 1h --rate 50
  herald dlq purge --reason user_refused --until 7d`,
		Args: cobra.NoArgs,
	}
	conn.register(cmd)
	cmd.AddCommand(
		newDLQListCmd(e, &conn),
		newDLQShowCmd(e, &conn),
		newDLQStatsCmd(e, &conn),
		newDLQReplayCmd(e, &conn),
		newDLQPurgeCmd(e, &conn),
	)
	return cmd
}

// filterFlags are the dead-letter filters of list, stats, replay and purge.
type filterFlags struct {
	reasons, platforms, apps, templates, codes []string
	since, until                               string
}

func (f *filterFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringSliceVar(&f.reasons, "reason", nil, "dead-letter reason (repeatable, or comma-separated)")
	fs.StringSliceVar(&f.platforms, "platform", nil, "wechat, alipay or unknown (repeatable)")
	fs.StringSliceVar(&f.apps, "app", nil, "app name (repeatable)")
	fs.StringSliceVar(&f.templates, "template", nil, "template id (repeatable)")
	fs.StringSliceVar(&f.codes, "code", nil, `platform code, e.g. 43101; "none" for none (repeatable)`)
	fs.StringVar(&f.since, "since", "", "stored at or after: a duration ago (1h, 2d) or an RFC 3339 time")
	fs.StringVar(&f.until, "until", "", "stored at or before: a duration ago or an RFC 3339 time")
}

// filter builds the dead-letter filter. A reason or platform herald never
// writes is an error: it would match nothing.
func (f *filterFlags) filter(now time.Time) (dlq.Filter, error) {
	out := dlq.Filter{
		Reasons: f.reasons, Platforms: f.platforms, Apps: f.apps, Templates: f.templates, Codes: f.codes,
	}
	var err error
	if out.Since, err = parseTimeFlag(f.since, now, -1); err != nil {
		return out, fmt.Errorf("--since: %w", err)
	}
	if out.Until, err = parseTimeFlag(f.until, now, -1); err != nil {
		return out, fmt.Errorf("--until: %w", err)
	}
	if err := out.Validate(); err != nil {
		return out, err
	}
	// A misspelt reason or platform would match nothing, and a replay or
	// purge would report success having done nothing.
	for _, r := range f.reasons {
		if !slices.Contains(job.Reasons, r) {
			return out, fmt.Errorf("--reason %q: not a reason herald writes (%s)", r, strings.Join(job.Reasons, ", "))
		}
	}
	for _, p := range f.platforms {
		if p != job.WeChat && p != job.Alipay && p != job.UnknownPlatform {
			return out, fmt.Errorf("--platform %q: not a platform (wechat, alipay, %s)", p, job.UnknownPlatform)
		}
	}
	return out, nil
}

func (f *filterFlags) empty() bool {
	return len(f.reasons)+len(f.platforms)+len(f.apps)+len(f.templates)+len(f.codes) == 0 &&
		f.since == "" && f.until == ""
}

// parseTimeFlag reads an RFC 3339 time, or a duration (30m, 2d) counted
// from now: into the past for sign -1, the future for +1. "" is the zero
// time.
func parseTimeFlag(s string, now time.Time, sign int) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := config.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q: want a duration (30m, 1h, 2d) or an RFC 3339 time (2026-11-23T10:00:00Z)", s)
	}
	return now.Add(time.Duration(sign) * d), nil
}

func newDLQListCmd(e *env, conn *natsFlags) *cobra.Command {
	var ff filterFlags
	var limit int
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, oldest first",
		Long: `List the dead letters that match the filters, oldest first, without consuming
them. The table truncates recipients and messages; herald dlq show SEQ prints one
in full. --json prints every field of every entry.`,
		Example: `  herald dlq list --since 1h
  herald dlq list --reason user_refused,invalid_recipient --app shop --limit 20
  herald dlq list --code 47003 --json | jq -r '.[].letter.field' | sort | uniq -c`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := ff.filter(time.Now())
			if err != nil {
				return err
			}
			c, err := conn.connect(cmd, e, "dlq list")
			if err != nil {
				return err
			}
			defer c.close()
			entries, err := dlq.List(cmd.Context(), c.js, c.cfg.NATS.DeadStream, f, limit)
			if err != nil {
				return err
			}
			if jsonOut {
				if entries == nil {
					entries = []dlq.Entry{}
				}
				return writeJSON(e.stdout, entries)
			}
			if len(entries) == 0 {
				fmt.Fprintln(e.stderr, "no dead letters match")
				return nil
			}
			if err := printEntries(e.stdout, entries); err != nil {
				return err
			}
			if limit > 0 && len(entries) == limit {
				fmt.Fprintf(e.stderr, "showing the first %d; --limit 0 lists all, --since narrows\n", limit)
			}
			return nil
		},
	}
	ff.register(cmd)
	cmd.Flags().IntVar(&limit, "limit", 100, "most dead letters to list; 0 for all")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the entries as a JSON array")
	return cmd
}

// printEntries writes the dead-letter table of list and of a replay's dry
// run.
func printEntries(w io.Writer, entries []dlq.Entry) error {
	t := newTable(w, "SEQ", "TIME", "PLATFORM", "REASON", "CODE", "APP", "TEMPLATE", "ID", "TO_USER", "MESSAGE")
	for _, en := range entries {
		l := en.Letter
		msg := l.Message
		if en.Err != "" {
			msg = en.Err
		}
		t.row(en.Seq, en.Time.Format(time.RFC3339), text.Dash(l.Platform), text.Dash(l.Reason), text.Dash(l.Code),
			text.Dash(l.App), text.Dash(l.TemplateID), text.Dash(l.ID), text.Dash(text.Truncate(l.ToUser, 16)), text.Dash(text.Truncate(msg, 60)))
	}
	return t.flush()
}

func newDLQShowCmd(e *env, conn *natsFlags) *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "show SEQ",
		Short: "Print one dead letter in full",
		Long: `Print the dead letter stored at sequence SEQ of the dead-letter stream as
indented JSON: the stream entry (seq, subject, time) and every field of the
letter, with the original job as an object. The raw bytes of a job that could
not be decoded are shown as raw_text when they are printable text; --json keeps
them base64-encoded in raw, as stored. Without --json, characters a terminal
would act on (escape sequences, C1 controls) are written as \u escapes, which
leaves the same JSON value; --json prints the entry exactly as encoding/json does.`,
		Example: `  herald dlq show 1234
  herald dlq show 1234 --json | jq .letter.job`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || seq == 0 {
				return fmt.Errorf("SEQ %q: want a stream sequence number, as herald dlq list prints", args[0])
			}
			c, err := conn.connect(cmd, e, "dlq show")
			if err != nil {
				return err
			}
			defer c.close()
			en, err := dlq.Get(cmd.Context(), c.js, c.cfg.NATS.DeadStream, seq)
			if errors.Is(err, dlq.ErrNotFound) {
				return fmt.Errorf("no dead letter at sequence %d of %s: it was replayed, purged or aged out, or never existed", seq, c.cfg.NATS.DeadStream)
			}
			if err != nil {
				return err
			}
			if jsonOut {
				return writeJSON(e.stdout, en)
			}
			var buf bytes.Buffer
			if err := writeJSON(&buf, shownEntry(en)); err != nil {
				return err
			}
			_, err = e.stdout.Write(termSafeJSON(buf.Bytes()))
			return err
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the entry exactly as stored (raw stays base64)")
	return cmd
}

// shown is an entry as show prints it for people.
type shown struct {
	Seq     uint64      `json:"seq"`
	Subject string      `json:"subject"`
	Time    time.Time   `json:"time"`
	Letter  shownLetter `json:"letter"`
	Err     string      `json:"error,omitempty"`
}

type shownLetter struct {
	job.DeadLetter
	Raw     []byte `json:"raw,omitempty"` // shadows the letter's raw
	RawText string `json:"raw_text,omitempty"`
}

func shownEntry(en dlq.Entry) shown {
	l := shownLetter{DeadLetter: en.Letter}
	if printable(en.Letter.Raw) {
		l.RawText = string(en.Letter.Raw)
	} else {
		l.Raw = en.Letter.Raw
	}
	return shown{Seq: en.Seq, Subject: en.Subject, Time: en.Time, Letter: l, Err: en.Err}
}

func printable(b []byte) bool {
	if len(b) == 0 || !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && r != '\n' && r != '\t' && r != '\r' {
			return false
		}
	}
	return true
}

func newDLQStatsCmd(e *env, conn *natsFlags) *cobra.Command {
	var ff filterFlags
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Count dead letters by reason, platform, app, template and code",
		Long: `Count the dead letters that match the filters, in all and by reason, platform,
app, template and platform code, highest first. Set a window with --since and
--until; without one, stats reads the whole dead-letter stream.`,
		Example: `  herald dlq stats --since 1h
  herald dlq stats --platform wechat --since 2026-11-23T00:00:00Z --until 2026-11-24T00:00:00Z
  herald dlq stats --since 24h --json | jq .by_reason`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := ff.filter(time.Now())
			if err != nil {
				return err
			}
			c, err := conn.connect(cmd, e, "dlq stats")
			if err != nil {
				return err
			}
			defer c.close()
			counts, err := dlq.Stats(cmd.Context(), c.js, c.cfg.NATS.DeadStream, f)
			if err != nil {
				return err
			}
			if jsonOut {
				return writeJSON(e.stdout, counts)
			}
			return printCounts(e.stdout, counts)
		},
	}
	ff.register(cmd)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the counts as JSON")
	return cmd
}

func printCounts(w io.Writer, c dlq.Counts) error {
	if c.Total == 0 {
		fmt.Fprintln(w, "no dead letters match")
		return nil
	}
	fmt.Fprintf(w, "%d dead letters, stored %s to %s", c.Total, c.First.Format(time.RFC3339), c.Last.Format(time.RFC3339))
	if c.Unreplayable > 0 {
		fmt.Fprintf(w, "; %d hold no decodable job and cannot be replayed", c.Unreplayable)
	}
	fmt.Fprintln(w)
	for _, s := range []struct {
		name string
		m    map[string]int
	}{
		{"REASON", c.ByReason}, {"PLATFORM", c.ByPlatform}, {"APP", c.ByApp},
		{"TEMPLATE", c.ByTemplate}, {"CODE", c.ByCode},
	} {
		fmt.Fprintln(w)
		if err := printCountTable(w, s.name, s.m, c.Total); err != nil {
			return err
		}
	}
	return nil
}

func printCountTable(w io.Writer, name string, m map[string]int, total int) error {
	t := newTable(w, name, "COUNT", "SHARE")
	for _, kv := range dlq.Sorted(m) {
		key := kv.Key
		if key == "" {
			key = "(none)"
		}
		t.row(key, kv.Count, fmt.Sprintf("%.1f%%", float64(kv.Count)*100/float64(max(total, 1))))
	}
	return t.flush()
}

// confirmation asks before replay or purge change more than confirmAbove
// dead letters: on a terminal it prompts, elsewhere it refuses unless
// --yes was given. Its err explains a refusal, and is what the command
// returns instead of dlq.ErrNotConfirmed.
type confirmation struct {
	e    *env
	yes  bool
	verb string
	// narrow says how to select fewer: "narrow the filters".
	narrow string
	err    error
}

func (c *confirmation) ask(n int) bool {
	if c.yes || n <= confirmAbove {
		return true
	}
	if !isTerminal(c.e.stdin) {
		c.err = fmt.Errorf("refusing to %s %d dead letters without confirmation: standard input is not a terminal; pass --yes, or %s", c.verb, n, c.narrow)
		return false
	}
	fmt.Fprintf(c.e.stderr, "%s %d dead letters? [y/N] ", c.verb, n)
	answer, _ := bufio.NewReader(c.e.stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return true
	}
	c.err = fmt.Errorf("%s cancelled: nothing changed", c.verb)
	return false
}

func newDLQReplayCmd(e *env, conn *natsFlags) *cobra.Command {
	var ff filterFlags
	var o dlq.ReplayOptions
	var all, yes, jsonOut bool
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Publish dead letters' jobs again",
		Long: `Publish the original job of every matching dead letter again to
notify.send.<platform>, oldest first, then delete the dead letter once JetStream
acknowledged the replay (--keep leaves it). A replayed job carries the header
Herald-Replays (the dead letter's replays + 1), so a job that fails again comes
back with replays counted, and the message id replay:<dead stream>:<seq>: a rerun
within the job stream's duplicate window publishes nothing twice, yet a job whose
own id JetStream saw recently is still replayed. The worker forgets a job's dedup
state when it dead-letters it, so the replay is delivered.

Dead letters whose job could not be decoded (malformed_job with raw bytes) are
skipped and counted. Replay collects the sequence numbers first: if it is
interrupted (Ctrl-C, a lost connection), run the same command again.

Without a filter, replay refuses unless --all (or --dry-run) is given: a dead letter whose
reason is permanent (user_refused, invalid_template_data, ...) fails again unless
its cause was fixed. More than 100 dead letters need confirmation: a prompt on a
terminal, --yes elsewhere. --dry-run counts and samples what would be replayed
and changes nothing.`,
		Example: `  herald dlq replay --reason retries_exhausted --since 1h --dry-run
  herald dlq replay --reason retries_exhausted --since 1h --rate 50
  herald dlq replay --reason unknown_app --app shop --yes --json
  herald dlq replay --reason expired --limit 10 --keep`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ff.empty() && !all && !o.DryRun {
				return errors.New("replay needs a filter (--reason, --platform, --app, --template, --code, --since, --until) or --all: " +
					"without one it would replay every dead letter, those that will fail again (user_refused, invalid_template_data, ...) too")
			}
			f, err := ff.filter(time.Now())
			if err != nil {
				return err
			}
			if o.Rate < 0 || o.Limit < 0 {
				return errors.New("--rate and --limit must not be negative")
			}
			c, err := conn.connect(cmd, e, "dlq replay")
			if err != nil {
				return err
			}
			defer c.close()
			o.Filter, o.Stream, o.SendStream = f, c.cfg.NATS.DeadStream, c.cfg.NATS.Stream
			ask := &confirmation{e: e, yes: yes, verb: "replay",
				narrow: fmt.Sprintf("narrow the filters or pass --limit %d", confirmAbove)}
			o.Confirm = ask.ask
			var bar *progress
			o.Progress = func(p dlq.Progress) {
				if bar == nil {
					bar = newProgress(e.stderr, "replay", p.Total)
				}
				bar.update(p.Done)
			}
			res, err := dlq.Replay(cmd.Context(), c.js, o)
			if bar != nil {
				bar.finish()
			}
			if ask.err != nil {
				return ask.err
			}
			if err != nil && res.Replayable == 0 {
				return err
			}
			if perr := printReplay(e.stdout, res, jsonOut, c.cfg.NATS.Stream); perr != nil {
				return perr
			}
			if err != nil {
				done := res.Replayed + res.Duplicates + res.Gone
				return fmt.Errorf("replay stopped after %d of %d: %w; run the same command again to finish (what was replayed is not repeated)", done, res.Replayable, stopCause(err))
			}
			return nil
		},
	}
	ff.register(cmd)
	fs := cmd.Flags()
	fs.BoolVar(&all, "all", false, "replay every dead letter when no filter is given")
	fs.IntVar(&o.Limit, "limit", 0, "most dead letters to replay, oldest first; 0 for all")
	fs.Float64Var(&o.Rate, "rate", 0, "most jobs published per second; 0 for no limit")
	fs.BoolVar(&o.DryRun, "dry-run", false, "count and sample what would be replayed; change nothing")
	fs.BoolVar(&o.Keep, "keep", false, "keep replayed dead letters in the stream")
	fs.BoolVarP(&yes, "yes", "y", false, "replay more than 100 dead letters without asking")
	fs.BoolVar(&jsonOut, "json", false, "print the result as JSON")
	return cmd
}

func printReplay(w io.Writer, res dlq.ReplayResult, jsonOut bool, sendStream string) error {
	if jsonOut {
		return writeJSON(w, res)
	}
	if res.Matched == 0 {
		fmt.Fprintln(w, "no dead letters match; nothing to replay")
		return nil
	}
	if res.DryRun {
		fmt.Fprintf(w, "dry run: would replay %d dead letters to %s", res.Replayable, sendStream)
	} else {
		fmt.Fprintf(w, "replayed %d dead letters to %s", res.Replayed, sendStream)
		if res.Duplicates > 0 {
			fmt.Fprintf(w, "; %d had already been replayed (JetStream dropped the duplicates)", res.Duplicates)
		}
		fmt.Fprintf(w, "; deleted %d", res.Deleted)
		if res.Gone > 0 {
			fmt.Fprintf(w, "; %d were gone before their turn", res.Gone)
		}
	}
	if res.Skipped > 0 {
		fmt.Fprintf(w, "; skipped %d without a decodable job", res.Skipped)
	}
	fmt.Fprintln(w)
	if !res.DryRun || res.Replayable == 0 {
		return nil
	}
	fmt.Fprintln(w)
	if err := printCountTable(w, "REASON", res.ByReason, res.Replayable); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nfirst %d of them:\n", len(res.Samples))
	if err := printEntries(w, res.Samples); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nnothing was changed")
	return nil
}

// stopCause words an interruption as one.
func stopCause(err error) error {
	if errors.Is(err, context.Canceled) {
		return errors.New("interrupted")
	}
	return err
}

func newDLQPurgeCmd(e *env, conn *natsFlags) *cobra.Command {
	var ff filterFlags
	var all, dryRun, yes, jsonOut bool
	cmd := &cobra.Command{
		Use:   "purge",
		Short: "Delete dead letters",
		Long: `Delete the dead letters that match the filters. Without a filter, purge refuses
unless --all is given. More than 100 dead letters need confirmation: a prompt on a
terminal, --yes elsewhere. --dry-run counts what would be deleted. Purge collects
the sequence numbers first; an interrupted purge is finished by running it again.
Dead letters also age out by themselves after nats.dead_max_age (14 days).`,
		Example: `  herald dlq purge --reason user_refused --until 24h --dry-run
  herald dlq purge --reason user_refused --until 24h --yes
  herald dlq purge --all --yes --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ff.empty() && !all {
				return errors.New("purge needs a filter (--reason, --platform, --app, --template, --code, --since, --until) or --all")
			}
			f, err := ff.filter(time.Now())
			if err != nil {
				return err
			}
			c, err := conn.connect(cmd, e, "dlq purge")
			if err != nil {
				return err
			}
			defer c.close()
			ask := &confirmation{e: e, yes: yes, verb: "purge", narrow: "narrow the filters"}
			var bar *progress
			res, err := dlq.Purge(cmd.Context(), c.js, c.cfg.NATS.DeadStream, f, dryRun,
				dlq.PurgeConfirm(ask.ask),
				dlq.PurgeProgress(func(p dlq.Progress) {
					if bar == nil {
						bar = newProgress(e.stderr, "purge", p.Total)
					}
					bar.update(p.Done)
				}))
			if bar != nil {
				bar.finish()
			}
			if ask.err != nil {
				return ask.err
			}
			if err != nil && res.Matched == 0 {
				return err
			}
			if perr := printPurge(e.stdout, res, jsonOut); perr != nil {
				return perr
			}
			if err != nil {
				return fmt.Errorf("purge stopped after %d of %d: %w; run the same command again to finish", res.Deleted+res.Gone, res.Matched, stopCause(err))
			}
			return nil
		},
	}
	ff.register(cmd)
	fs := cmd.Flags()
	fs.BoolVar(&all, "all", false, "purge every dead letter when no filter is given")
	fs.BoolVar(&dryRun, "dry-run", false, "count what would be deleted; change nothing")
	fs.BoolVarP(&yes, "yes", "y", false, "purge more than 100 dead letters without asking")
	fs.BoolVar(&jsonOut, "json", false, "print the result as JSON")
	return cmd
}

func printPurge(w io.Writer, res dlq.PurgeResult, jsonOut bool) error {
	if jsonOut {
		return writeJSON(w, res)
	}
	switch {
	case res.Matched == 0:
		fmt.Fprintln(w, "no dead letters match; nothing to purge")
		return nil
	case res.DryRun:
		fmt.Fprintf(w, "dry run: would delete %d dead letters; nothing was changed\n\n", res.Matched)
	default:
		fmt.Fprintf(w, "deleted %d dead letters", res.Deleted)
		if res.Gone > 0 {
			fmt.Fprintf(w, "; %d were already gone", res.Gone)
		}
		fmt.Fprint(w, "\n\n")
	}
	return printCountTable(w, "REASON", res.ByReason, res.Matched)
}
