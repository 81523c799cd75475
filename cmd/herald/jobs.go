package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/heraldhq/herald/config"
	"github.com/heraldhq/herald/internal/text"
	"github.com/heraldhq/herald/jobs"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/worker"
)

func init() { commands = append(commands, newJobsCmd) }

func newJobsCmd(e *env) *cobra.Command {
	var conn natsFlags
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "Look up jobs: did this one arrive?",
		Long: `Look up what herald knows of a job: its state in the shared store (Redis), its
delivery receipt, its dead letters and the platform's final result.`,
		Example: `  herald jobs show order-42-shipped
  herald jobs show order-42-shipped --platform wechat --app shop --json`,
		Args: cobra.NoArgs,
	}
	conn.register(cmd)
	cmd.AddCommand(newJobsShowCmd(e, &conn))
	return cmd
}

func newJobsShowCmd(e *env, conn *natsFlags) *cobra.Command {
	var k jobs.Key
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Everything herald knows of one job, and whether it arrived",
		Long: `Print, for the job (platform, app, ID):

  - its state in the shared store (Redis): claimed, sent (with the platform's
    msgid and the attempts it took) or decided to be dead-lettered; the store
    keeps it for dedup.ttl (24h);
  - its delivery receipt, looked for in the receipt stream near the time the
    store says it was sent;
  - its dead letters still in the dead-letter stream (read in full for the
    platform and app: seconds on a large stream);
  - the platform's final result, once its sent event arrived (WeChat pushes
    it to herald receiver; needs subscriptions.mode observe or enforce).

The first line answers "did it arrive?": arrived, failed after the platform
accepted it, accepted with no final result yet, dead-lettered, in progress,
or unknown (still queued, never published, or older than dedup.ttl). Without
a Redis in the config only the streams are read.`,
		Example: `  herald jobs show order-42-shipped
  herald jobs show 7f3c --platform alipay --app shop
  herald jobs show order-42-shipped --json | jq .verdict`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k.ID = args[0]
			if k.Platform != job.WeChat && k.Platform != job.Alipay {
				return fmt.Errorf("--platform %q: not a platform (wechat, alipay)", k.Platform)
			}
			c, err := conn.connect(cmd, e, "jobs show")
			if err != nil {
				return err
			}
			defer c.close()
			ledger, closeStore, err := openLedger(c.cfg)
			if err != nil {
				return err
			}
			defer closeStore()
			r, err := jobs.Show(cmd.Context(), c.js, ledger, jobs.Streams{Events: c.cfg.NATS.EventsStream, Dead: c.cfg.NATS.DeadStream}, k)
			if err != nil {
				return err
			}
			if jsonOut {
				return writeJSON(e.stdout, r)
			}
			if ledger == nil {
				fmt.Fprintln(e.stderr, "note: redis.url is empty: the store's state is not known here")
			}
			return printJobReport(e.stdout, r)
		},
	}
	cmd.Flags().StringVar(&k.Platform, "platform", job.WeChat, "wechat or alipay")
	cmd.Flags().StringVar(&k.App, "app", job.DefaultApp, "the job's app")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the report as JSON")
	return cmd
}

// openLedger opens the shared store for reading, or nil when the config
// names no Redis.
func openLedger(cfg *config.Config) (worker.Ledger, func(), error) {
	if cfg.Redis.URL == "" {
		return nil, func() {}, nil
	}
	st, err := newStores(cfg, zap.NewNop())
	if err != nil {
		return nil, nil, err
	}
	l, ok := st.jobs.(worker.Ledger)
	if !ok {
		st.close()
		return nil, nil, errors.New("the store has no ledger")
	}
	return l, st.close, nil
}

func printJobReport(w io.Writer, r jobs.Report) error {
	fmt.Fprintf(w, "%s %s %s: %s\n\n", termSafe(r.Platform), termSafe(r.App), termSafe(r.ID), termSafe(r.Verdict))
	t := newTable(w, "WHAT", "DETAIL")
	if s := r.State; s != nil {
		detail := fmt.Sprintf("%s, %d attempts", s.State, s.Attempts)
		if s.FirstAttempt != nil {
			detail += ", first " + s.FirstAttempt.Format(time.RFC3339)
		}
		if s.State == "sent" {
			detail += fmt.Sprintf(", sent %s, msgid %s, stream seq %d", s.SentAt.Format(time.RFC3339), text.Dash(s.MsgID), s.StreamSeq)
		}
		if d := s.Decision; d != nil {
			detail += fmt.Sprintf(", decided %s code %s: %s", d.Reason, text.Dash(d.Code), d.Message)
		}
		t.row("store", detail)
	} else {
		t.row("store", "-")
	}
	if rc := r.Receipt; rc != nil {
		t.row("receipt", fmt.Sprintf("seq %d, sent %s by %s, %d attempts, msgid %s", r.ReceiptSeq, rc.SentAt.Format(time.RFC3339), rc.Worker, rc.Attempts, text.Dash(rc.MsgID)))
	} else {
		t.row("receipt", "-")
	}
	if s := r.Status; s != nil {
		t.row("final result", fmt.Sprintf("%s at %s, code %s %s", s.Status, s.At.Format(time.RFC3339), text.Dash(s.ErrorCode), s.ErrorStatus))
	} else {
		t.row("final result", "-")
	}
	if len(r.DeadLetters) == 0 {
		t.row("dead letters", "-")
	}
	for _, d := range r.DeadLetters {
		l := d.Letter
		t.row("dead letter", fmt.Sprintf("seq %d, %s code %s, %d attempts, %s: %s", d.Seq, l.Reason, text.Dash(l.Code), l.Attempts, d.Time.Format(time.RFC3339), text.Truncate(l.Message, 80)))
	}
	return t.flush()
}
