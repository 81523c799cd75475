package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/worker"
)

func init() { commands = append(commands, newSubscriptionsCmd) }

func newSubscriptionsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "subscriptions",
		Short: "Inspect users' subscriptions: the ledger, and Alipay's records",
		Long: `The subscription ledger (subscriptions.mode observe or enforce) keeps, in Redis, what
herald knows of each user's subscription to each template: unknown, granted with a
count of one-time grants, rejected, or exhausted (the platform answered 43101). WeChat's
popup and change events (through herald receiver), deliveries and 43101 answers
update it.`,
		Example: `  herald subscriptions show --app default --user oAbCd1234
  herald subscriptions show --app default --user oAbCd1234 --template TPL --json`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newSubscriptionsShowCmd(e))
	return cmd
}

// subscriptionsReport is herald subscriptions show --json.
type subscriptionsReport struct {
	Platform      string                `json:"platform"`
	App           string                `json:"app"`
	User          string                `json:"user"`
	Subscriptions []worker.Subscription `json:"subscriptions"`
	History       []worker.HistoryEntry `json:"history"`
}

func newSubscriptionsShowCmd(e *env) *cobra.Command {
	var platform, app, user string
	var templates []string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "The ledger's state of a user, with its latest changes",
		Long: `Print the ledger's state of a user for the given templates (every template the
ledger holds for the user without --template): unknown, granted with the one-time
grants known to be left, rejected or exhausted, and since when; then the user's
latest changes (accepts, rejects, sends, 43101 answers, and events that came too late
to change anything). Reads Redis (redis.url of the config or $HERALD_REDIS_URL).`,
		Example: `  herald subscriptions show --app default --user oAbCd1234
  herald subscriptions show --app shop --user oAbCd1234 --template TPL1 --template TPL2 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user == "" {
				return errors.New("--user is required")
			}
			cfg, err := loadConfig(cmd, e)
			if err != nil {
				return err
			}
			if cfg.Redis.URL == "" {
				return errors.New("redis.url is empty: the ledger lives in Redis; pass HERALD_REDIS_URL")
			}
			ledger, closeStore, err := openLedger(cfg)
			if err != nil {
				return err
			}
			defer closeStore()
			subs, hist, err := ledger.Subscriptions(cmd.Context(), platform, app, user, templates...)
			if err != nil {
				return err
			}
			r := subscriptionsReport{Platform: platform, App: app, User: user, Subscriptions: subs, History: hist}
			if r.Subscriptions == nil {
				r.Subscriptions = []worker.Subscription{}
			}
			if r.History == nil {
				r.History = []worker.HistoryEntry{}
			}
			if jsonOut {
				return writeJSON(e.stdout, r)
			}
			return printSubscriptions(e.stdout, r)
		},
	}
	cmd.Flags().StringVar(&platform, "platform", job.WeChat, "the platform")
	cmd.Flags().StringVar(&app, "app", job.DefaultApp, "the app")
	cmd.Flags().StringVar(&user, "user", "", "the user (WeChat openid)")
	cmd.Flags().StringArrayVar(&templates, "template", nil, "a template id (repeatable); default: all the ledger holds")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print as JSON")
	return cmd
}

func printSubscriptions(w io.Writer, r subscriptionsReport) error {
	if len(r.Subscriptions) == 0 {
		fmt.Fprintf(w, "the ledger knows nothing of %s in %s %s: every job for them is sent\n",
			termSafe(r.User), termSafe(r.Platform), termSafe(r.App))
		return nil
	}
	t := newTable(w, "TEMPLATE", "STATE", "GRANTS", "SINCE")
	for _, s := range r.Subscriptions {
		grants, since := "-", "-"
		if s.State == worker.SubGranted {
			grants = fmt.Sprint(s.Grants)
		}
		if !s.Since.IsZero() {
			since = s.Since.UTC().Format(time.RFC3339)
		}
		t.row(s.Template, s.State, grants, since)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(r.History) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	h := newTable(w, "AT", "WHAT", "TEMPLATE")
	for _, e := range r.History {
		h.row(e.At.UTC().Format(time.RFC3339), e.What, e.Template)
	}
	return h.flush()
}
