package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald/console"
	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/worker"
	"github.com/heraldhq/herald/worker/redisstore"
)

// The browser tests drive Debian's chromium, headless, against a console
// on a real JetStream. They are never skipped: without chromium they fail
// saying how to install it.

// envChromium names a browser binary other than the one on PATH;
// envArtifacts a directory for the screenshots (else the test's temporary
// directory).
const (
	envChromium  = "HERALD_CHROMIUM"
	envArtifacts = "HERALD_TEST_ARTIFACTS"
)

// browserTimeout bounds one browser test, a cold start of chromium on a
// busy machine included.
const browserTimeout = 3 * time.Minute

func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(envChromium); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	t.Fatalf("the browser tests need chromium, and none is on PATH: install it with "+
		"`apt-get update && apt-get install -y chromium` (bash .ci/run does), or set %s to a Chromium binary", envChromium)
	return ""
}

// browser starts a headless chromium with a fresh profile and returns a
// tab's context; everything stops when the test ends.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	ctx, cancel := context.WithTimeout(t.Context(), browserTimeout)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	tab, tcancel := chromedp.NewContext(actx)
	t.Cleanup(tcancel)
	if err := chromedp.Do(tab); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return tab
}

// artifactDir is where screenshots go.
func artifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv(envArtifacts); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// screenshot saves the whole page as name.png in the artifact directory.
func screenshot(t *testing.T, tab context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
}

func do(t *testing.T, tab context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tab, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func text(t *testing.T, tab context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("text of %s: %v", css, err)
	}
	return s
}

// until waits for a JavaScript condition on the page to hold. The page
// may load another meanwhile (a form sent, a reload when a replay ends):
// the condition is then asked of the new page.
func until(t *testing.T, tab context.Context, what, expr string) {
	t.Helper()
	for {
		_, err := chromedp.Run(tab, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(30*time.Second)))
		if err == nil {
			return
		}
		if tab.Err() == nil && navigated(err) {
			continue
		}
		t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

// navigated reports the errors of a page that went away under a query.
func navigated(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "navigated or closed") || strings.Contains(msg, "context was destroyed") ||
		strings.Contains(msg, "Cannot find context")
}

// clickAndLoad clicks what css selects and waits for the page it leads to
// to load.
func clickAndLoad(t *testing.T, tab context.Context, what, css string) {
	t.Helper()
	loaded := chromedp.Events(tab, page.LoadEventFired)
	do(t, tab, what, chromedp.Click(chromedp.CSS(css)))
	for _, err := range loaded {
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return
	}
}

// TestBrowserDeadLetterWorkflow is what an operator does: look at the
// dead letters, filter them, open one, rehearse a replay, run it and see
// the count go down; and look at the other pages, one screenshot each.
func TestBrowserDeadLetterWorkflow(t *testing.T) {
	b := setup(t)
	for i := range 5 {
		b.storeDead(t, spec{id: fmt.Sprintf("order-%d", i), platform: job.WeChat, reason: job.ReasonRetriesExhausted,
			app: "default", tpl: "tpl-shipped", code: "-1", message: "system error rid: 6433-" + fmt.Sprint(i), replays: i % 2})
	}
	for i := range 3 {
		b.storeDead(t, spec{id: fmt.Sprintf("refused-%d", i), platform: job.WeChat, reason: job.ReasonUserRefused,
			app: "shop", tpl: "tpl-coupon", code: "43101", message: "user refuse to accept the msg rid: 77aa-" + fmt.Sprint(i)})
	}
	b.storeDead(t, spec{id: "<script>alert(1)</script>", platform: job.Alipay, reason: job.ReasonInvalidTemplate,
		app: "default", tpl: `T"><img src=x onerror=alert(2)>`, code: "USER_TEMPLATE_ILLEGAL",
		message: "\x1b[2Jtemplate \u202eillegal"})
	b.storeDead(t, spec{id: "", platform: job.UnknownPlatform, reason: job.ReasonMalformedJob,
		raw: []byte("{\"id\": oops \x1b[31m")})
	for i := range 12 {
		b.storeReceipt(t, job.WeChat, job.DefaultApp, fmt.Sprintf("delivered-%d", i))
	}
	// The shared store, for the job's state and the subscription ledger.
	st := redisstore.New(testenv.StartRedis(t).Client(t), redisstore.Config{})
	t.Cleanup(st.Close)
	if _, err := st.Apply(t.Context(), worker.SubscriptionKey{Platform: job.WeChat, App: "shop", User: "user-7", Template: "tpl-coupon"},
		worker.LedgerEvent{ID: "accept-1", Accept: true, At: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	b.serve(t, consoleConfig(), console.WithLedger(st))
	dir := artifactDir(t)
	tab := browser(t)

	// The list: ten dead letters.
	do(t, tab, "open the list",
		chromedp.Navigate(b.url+"/dead?since="),
		chromedp.WaitVisible(chromedp.CSS("#match-count")))
	if got := text(t, tab, "#match-count"); got != "10" {
		t.Fatalf("match count = %q, want 10", got)
	}
	// The hostile letter is text, not markup: no element was injected.
	until(t, tab, "no injected element",
		`document.querySelectorAll("img, iframe").length === 0 && document.querySelectorAll("script").length === 1`)
	until(t, tab, "the hostile id shown as text",
		`document.querySelector("table.letters").textContent.includes("<script>alert(1)</script>")`)
	screenshot(t, tab, dir, "dead-letters")

	// Filter by reason through the form.
	do(t, tab, "type a reason", chromedp.SetValue(chromedp.CSS(`input[name="reason"]`), job.ReasonRetriesExhausted))
	clickAndLoad(t, tab, "filter by reason", "#apply")
	until(t, tab, "the filtered list", `document.getElementById("match-count")?.textContent === "5" && location.search.includes("reason=retries_exhausted")`)
	if rows, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("table.letters tbody tr").length`)); err != nil || rows != 5 {
		t.Fatalf("rows = %d (%v), want 5", rows, err)
	}

	// Open the newest letter.
	listURL, err := chromedp.Run(tab, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	clickAndLoad(t, tab, "open a letter", "table.letters tbody tr:first-child a.seq")
	do(t, tab, "the letter", chromedp.WaitVisible(chromedp.CSS("#letter-message")))
	if got := text(t, tab, "#letter-id"); got != "order-4" {
		t.Fatalf("letter id = %q, want order-4", got)
	}
	if got := text(t, tab, "#letter-message"); got != "system error rid: 6433-4" {
		t.Fatalf("letter message = %q", got)
	}
	until(t, tab, "the job as JSON", `document.getElementById("letter-job").textContent.includes('"template_id": "tpl-shipped"')`)
	screenshot(t, tab, dir, "dead-letter")

	// Back to the filtered list, then rehearse the replay.
	do(t, tab, "back to the filtered list", chromedp.Navigate(listURL), chromedp.WaitVisible(chromedp.CSS("#replay-link")))
	clickAndLoad(t, tab, "open the replay page", "#replay-link")
	do(t, tab, "set a rate", chromedp.WaitVisible(chromedp.CSS("#preview")), chromedp.SetValue(chromedp.CSS(`input[name="rate"]`), "20"))
	clickAndLoad(t, tab, "dry run", "#preview")
	do(t, tab, "the dry run", chromedp.WaitVisible(chromedp.CSS("#preview-count")))
	if got := text(t, tab, "#preview-count"); got != "5" {
		t.Fatalf("dry run would replay %q, want 5", got)
	}
	if n := b.msgs(t, b.topo.SendStream); n != 0 {
		t.Fatalf("the dry run published %d jobs", n)
	}
	screenshot(t, tab, dir, "replay-preview")

	// The run button does nothing until the confirmation is ticked.
	do(t, tab, "run unconfirmed", chromedp.Click(chromedp.CSS("#run")))
	if loc, err := chromedp.Run(tab, chromedp.Location()); err != nil || !strings.Contains(loc, "/replay?") {
		t.Fatalf("after an unconfirmed click the page is %q (%v), want the preview still", loc, err)
	}
	do(t, tab, "confirm", chromedp.Click(chromedp.CSS("#confirm")))
	clickAndLoad(t, tab, "run", "#run")
	until(t, tab, "the replay to finish", `document.getElementById("op-state")?.textContent === "done" && document.getElementById("op-result") !== null`)
	if got := text(t, tab, "#op-replayed"); got != "5" {
		t.Fatalf("replayed = %q, want 5", got)
	}
	screenshot(t, tab, dir, "replay-done")
	if n := b.msgs(t, b.topo.SendStream); n != 5 {
		t.Fatalf("job stream holds %d jobs, want the 5 replayed", n)
	}

	// The count went down.
	clickAndLoad(t, tab, "back to the list", "#back-to-list")
	do(t, tab, "the emptied list", chromedp.WaitVisible(chromedp.CSS("#no-letters")))
	do(t, tab, "all dead letters",
		chromedp.Navigate(b.url+"/dead?since="),
		chromedp.WaitVisible(chromedp.CSS("#match-count")))
	if got := text(t, tab, "#match-count"); got != "5" {
		t.Fatalf("after the replay the list counts %q, want 5", got)
	}

	// The other pages, one screenshot each.
	do(t, tab, "counts", chromedp.Navigate(b.url+"/dead/counts?since="), chromedp.WaitVisible(chromedp.CSS("figure.chart svg")))
	if got := text(t, tab, "#counts-total b"); got != "5" {
		t.Fatalf("counts total = %q, want 5", got)
	}
	screenshot(t, tab, dir, "dead-letter-counts")

	do(t, tab, "overview", chromedp.Navigate(b.url+"/"), chromedp.WaitVisible(chromedp.CSS("#delivered-hour")))
	if got := text(t, tab, "#delivered-hour"); got != "12" {
		t.Fatalf("delivered in the last hour = %q, want 12", got)
	}
	screenshot(t, tab, dir, "overview")

	do(t, tab, "job lookup",
		chromedp.Navigate(b.url+"/jobs"),
		chromedp.WaitVisible(chromedp.CSS("#job-form")),
		chromedp.SetValue(chromedp.CSS(`input[name="id"]`), "delivered-3"))
	clickAndLoad(t, tab, "look up", "#lookup")
	do(t, tab, "the receipt", chromedp.WaitVisible(chromedp.CSS("section.fact.good")))
	screenshot(t, tab, dir, "job")

	do(t, tab, "subscription lookup",
		chromedp.Navigate(b.url+"/subscriptions"),
		chromedp.WaitVisible(chromedp.CSS("#subscriptions-form")),
		chromedp.SetValue(chromedp.CSS(`input[name="app"]`), "shop"),
		chromedp.SetValue(chromedp.CSS(`input[name="user"]`), "user-7"))
	clickAndLoad(t, tab, "look up", "#subscriptions-lookup")
	do(t, tab, "the ledger", chromedp.WaitVisible(chromedp.CSS("#subscriptions")))
	if got := text(t, tab, "#subscriptions tbody tr td:nth-child(2)"); got != "granted" {
		t.Fatalf("tpl-coupon of user-7 is %q, want granted", got)
	}
	screenshot(t, tab, dir, "subscriptions")

	do(t, tab, "the malformed letter", chromedp.Navigate(b.url+"/dead/10"), chromedp.WaitVisible(chromedp.CSS("#letter-raw")))
	if got := text(t, tab, "#letter-raw"); got != `{"id": oops \x1b[31m` {
		t.Fatalf("raw bytes shown as %q", got)
	}
}
