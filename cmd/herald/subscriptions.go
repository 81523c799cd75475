package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/config"
	"github.com/heraldhq/herald/internal/httpclient"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/providers/alipay"
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
update it: show prints it.

Alipay keeps its own record and answers for it: query asks Alipay directly.`,
		Example: `  herald subscriptions show --app default --user oAbCd1234
  herald subscriptions show --app default --user oAbCd1234 --template TPL --json
  herald subscriptions query --platform alipay --app default --user 2088000000000001 --template TPL`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newSubscriptionsShowCmd(e), newSubscriptionsQueryCmd(e))
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

// subscriptionsQueryReport is herald subscriptions query --json.
type subscriptionsQueryReport struct {
	Platform      string            `json:"platform"`
	App           string            `json:"app"`
	AppID         string            `json:"app_id"`
	User          string            `json:"user"`
	ShowComponent bool              `json:"show_component"`
	Relations     []queriedRelation `json:"relations"`
}

// queriedRelation is a template asked about: Found false when Alipay left
// it out (the user never subscribed to it), its fields then empty.
type queriedRelation struct {
	alipay.Relation
	Found bool `json:"found"`
}

func newSubscriptionsQueryCmd(e *env) *cobra.Command {
	var platform, app, user string
	var templates []string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "query",
		Short: "Ask Alipay which templates a user subscribed to",
		Long: `Ask Alipay (alipay.open.app.messagetemplate.subscribe.query) for a user's
subscriptions to 1 to 3 templates of an app, and print them: the template, its
subscribe_state, subscribe_type, keep_state and show, as Alipay sent them, and
Alipay's show_component flag. Templates the user never subscribed to are left out of
Alipay's answer and shown as "not subscribed".

The user is an open_id or a user_id, as the app's alipay.recipient says. The request
is signed with the app's private key and the answer believed only once it verifies
with alipay_public_key; an unsigned or badly signed answer fails the command and says
so. Alipay does not document the values; an older SDK describes subscribe_state 1
(subscribed) and 0 (refused), subscribe_type onetime and longterm, keep_state 0 (keep
subscribing) and 1 (keep refusing). There is no count of one-time grants left.

WeChat has no such API: what herald knows of WeChat subscriptions is in the ledger
(herald subscriptions show). Reads only the config (apps.<app>.alipay); needs
neither NATS nor Redis.`,
		Example: `  herald subscriptions query --platform alipay --app default --user 2088000000000001 --template TPL
  herald subscriptions query --app shop --user 074aWVnOrZfhxIDOSMWSkh3a --template TPL1 --template TPL2 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch platform {
			case job.Alipay:
			case job.WeChat:
				return errors.New("--platform wechat: WeChat has no API to query a user's subscriptions; " +
					"herald learns them from WeChat's pushes into its ledger: use herald subscriptions show --platform wechat")
			default:
				return fmt.Errorf("--platform %q: only alipay can be queried", platform)
			}
			if user == "" {
				return errors.New("--user is required")
			}
			tpls := uniq(templates)
			switch {
			case len(tpls) == 0:
				return errors.New("--template is required (1 to 3)")
			case len(tpls) > alipay.MaxQueryTemplates:
				return fmt.Errorf("%d templates: Alipay answers at most %d per query", len(tpls), alipay.MaxQueryTemplates)
			}
			cfg, err := loadConfig(cmd, e)
			if err != nil {
				return err
			}
			a, ok := cfg.Apps[app]
			if !ok || a.Alipay == nil {
				return fmt.Errorf("apps.%s.alipay is not configured (alipay apps: %s)", app, alipayApps(cfg))
			}
			c, err := alipayClient(cfg, app, a.Alipay, httpclient.New())
			if err != nil {
				return err
			}
			res, err := c.QuerySubscriptions(cmd.Context(), user, tpls)
			if err != nil {
				return err
			}
			r := subscriptionsQueryReport{Platform: platform, App: app, AppID: c.AppID(), User: user,
				ShowComponent: res.ShowComponent, Relations: queried(res, tpls)}
			if jsonOut {
				return writeJSON(e.stdout, r)
			}
			return printQuery(e.stdout, r)
		},
	}
	cmd.Flags().StringVar(&platform, "platform", job.Alipay, "the platform (alipay only)")
	cmd.Flags().StringVar(&app, "app", job.DefaultApp, "the app")
	cmd.Flags().StringVar(&user, "user", "", "the user (an open_id or a user_id, as apps.<app>.alipay.recipient says)")
	cmd.Flags().StringArrayVar(&templates, "template", nil, "a template id (repeatable, 1 to 3)")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print as JSON")
	return cmd
}

// uniq drops repeated values, keeping the first of each.
func uniq(values []string) []string {
	out := make([]string, 0, len(values))
	for _, v := range values {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// alipayApps names the apps with Alipay settings, sorted, or "none".
func alipayApps(cfg *config.Config) string {
	var names []string
	for name, a := range cfg.Apps {
		if a.Alipay != nil {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// queried is one entry per template asked about, in that order, then any
// relation Alipay answered for a template not asked about.
func queried(res alipay.QueryResult, templates []string) []queriedRelation {
	out := make([]queriedRelation, 0, len(templates))
	for _, t := range templates {
		rel, ok := res.Relation(t)
		if !ok {
			rel = alipay.Relation{TemplateID: t}
		}
		out = append(out, queriedRelation{Relation: rel, Found: ok})
	}
	for _, rel := range res.Relations {
		if !slices.Contains(templates, rel.TemplateID) {
			out = append(out, queriedRelation{Relation: rel, Found: true})
		}
	}
	return out
}

func printQuery(w io.Writer, r subscriptionsQueryReport) error {
	t := newTable(w, "TEMPLATE", "STATE", "TYPE", "KEEP", "SHOW")
	for _, rel := range r.Relations {
		if !rel.Found {
			t.row(cell(rel.TemplateID), "not subscribed", "-", "-", "-")
			continue
		}
		t.row(cell(rel.TemplateID), cell(rel.SubscribeState), cell(rel.SubscribeType), cell(rel.KeepState), cell(rel.Show))
	}
	if err := t.flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "show_component: %t\n", r.ShowComponent)
	return err
}

// maxCell bounds a table cell holding a platform's text.
const maxCell = 64

// cell shows a platform's text in a table: "-" when empty, cut to maxCell
// characters. The table makes it terminal-safe.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	if r := []rune(s); len(r) > maxCell {
		s = string(r[:maxCell]) + "…"
	}
	return s
}
