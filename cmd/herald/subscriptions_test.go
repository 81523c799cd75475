package main

import (
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/heraldhq/herald/sandbox"
)

// herald subscriptions query asks the sandbox gateway as it would ask
// Alipay: the app's keys from the config, the answer verified.
func TestSubscriptionsQueryAlipay(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "keys")
	keys, _, err := sandbox.LoadOrGenerateAlipayKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	sb := sandbox.New(keys.Options(sandbox.DevAlipayAppID))
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	cfgPath := writeOpsConfig(t, sandbox.AlipayConfigSnippet(sandbox.DevAlipayAppID, srv.URL+sandbox.AlipayGatewayPath, dir))
	b := &opsBundle{}
	query := func(args ...string) []string {
		return append([]string{"subscriptions", "query", "--config", cfgPath}, args...)
	}

	sb.SetAlipayRelation(sandbox.DevAlipayAppID, "o-1", sandbox.AlipayRelation{TemplateID: "T1",
		SubscribeState: sandbox.AlipayStateSubscribed, SubscribeType: sandbox.AlipayOneTime, KeepState: "0", Show: true})
	sb.SetAlipayRelation(sandbox.DevAlipayAppID, "o-1", sandbox.AlipayRelation{TemplateID: "T3",
		SubscribeState: "0", SubscribeType: "long\x1b[31mterm"})

	out, _, err := b.run(t, "", query("--platform", "alipay", "--user", "o-1", "--template", "T1", "--template", "T2",
		"--template", "T3", "--template", "T1")...)
	if err != nil {
		t.Fatalf("query: %v\n%s", err, out)
	}
	for _, re := range []string{
		`(?m)^TEMPLATE +STATE +TYPE +KEEP +SHOW$`,
		`(?m)^T1 +1 +onetime +0 +true$`,
		`(?m)^T2 +not subscribed +- +- +-$`,
		`(?m)^T3 +0 +long\\x1b\[31mterm +- +false$`,
		`(?m)^show_component: true$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output lacks %s:\n%s", re, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("an escape sequence reached the output: %q", out)
	}

	var r subscriptionsQueryReport
	if err := b.runJSON(t, &r, "", query("--user", "o-1", "--template", "T2", "--template", "T1", "--json")...); err != nil {
		t.Fatal(err)
	}
	if r.Platform != "alipay" || r.App != "default" || r.AppID != sandbox.DevAlipayAppID || r.User != "o-1" || !r.ShowComponent ||
		len(r.Relations) != 2 || r.Relations[0].TemplateID != "T2" || r.Relations[0].Found ||
		!r.Relations[1].Found || r.Relations[1].SubscribeState != "1" || r.Relations[1].SubscribeType != "onetime" ||
		r.Relations[1].KeepState != "0" || r.Relations[1].Show != "true" {
		t.Fatalf("query --json = %+v", r)
	}
	out, _, err = b.run(t, "", query("--user", "o-1", "--template", "T2", "--json")...)
	if err != nil || !strings.Contains(out, `"found": false`) || !strings.Contains(out, `"subscribe_state": ""`) {
		t.Fatalf("query --json of a template never subscribed:\n%s%v", out, err)
	}
	calls := sb.Stats()["alipay"].QueryCalls

	// A forged answer is refused and nothing is printed.
	sb.SetAlipayRelation(sandbox.DevAlipayAppID, "badsign-1", sandbox.AlipayRelation{TemplateID: "T1", SubscribeState: "1"})
	out, _, err = b.run(t, "", query("--user", "badsign-1", "--template", "T1")...)
	if err == nil || !strings.Contains(err.Error(), "signature does not verify") || !strings.Contains(err.Error(), "not believed") || out != "" {
		t.Fatalf("forged answer: %v\n%s", err, out)
	}
	if n := sb.Stats()["alipay"].QueryCalls; n != calls+1 {
		t.Fatalf("%d queries, want %d", n, calls+1)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"four templates", []string{"--user", "o-1", "--template", "A", "--template", "B", "--template", "C", "--template", "D"}, "at most 3"},
		{"no template", []string{"--user", "o-1"}, "--template is required"},
		{"no user", []string{"--template", "T1"}, "--user is required"},
		{"wechat", []string{"--platform", "wechat", "--user", "o-1", "--template", "T1"}, "herald subscriptions show"},
		{"unknown platform", []string{"--platform", "qq", "--user", "o-1", "--template", "T1"}, "only alipay"},
		{"app without alipay", []string{"--app", "shop", "--user", "o-1", "--template", "T1"}, "apps.shop.alipay is not configured (alipay apps: default)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := b.run(t, "", query(tt.args...)...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("query %v = %v, want %q", tt.args, err, tt.want)
			}
		})
	}
	if n := sb.Stats()["alipay"].QueryCalls; n != calls+1 {
		t.Fatalf("refused queries reached the gateway: %d calls, want %d", n, calls+1)
	}
}
