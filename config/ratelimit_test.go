package config_test

import (
	"testing"

	"github.com/heraldhq/herald/config"
)

func TestRateLimit(t *testing.T) {
	t.Parallel()
	c := &config.Config{RateLimits: []config.RateLimit{
		0: {Platform: "wechat", App: "*", TemplateID: "*", PerSecond: 200, Burst: 50},
		1: {Platform: "wechat", App: "default", TemplateID: "T1", PerSecond: 20, Burst: 5},
		2: {Platform: "*", App: "shop", TemplateID: "*", PerSecond: 30, Burst: 6},
		3: {Platform: "wechat", App: "shop", TemplateID: "*", PerSecond: 31, Burst: 6},
		4: {Platform: "", App: "*", TemplateID: "T2", PerSecond: 40, Burst: 8},
		5: {Platform: "alipay", App: "", TemplateID: "", PerSecond: 50, Burst: 10},
		6: {Platform: "alipay", App: "mall", TemplateID: "T3", PerSecond: 60, Burst: 12},
		7: {Platform: "*", App: "mall", TemplateID: "T3", PerSecond: 61, Burst: 12},
	}}
	tests := []struct {
		name                  string
		givePlatform, giveApp string
		giveTemplate          string
		wantRule              int // index into c.RateLimits; -1 for no rule
	}{
		{name: "platform rule", givePlatform: "wechat", giveApp: "default", giveTemplate: "T9", wantRule: 0},
		{name: "exact rule", givePlatform: "wechat", giveApp: "default", giveTemplate: "T1", wantRule: 1},
		{name: "exact template of another app", givePlatform: "wechat", giveApp: "other", giveTemplate: "T1", wantRule: 0},
		{name: "exact platform beats wildcard platform", givePlatform: "wechat", giveApp: "shop", giveTemplate: "T9", wantRule: 3},
		{name: "wildcard platform", givePlatform: "alipay", giveApp: "shop", giveTemplate: "T9", wantRule: 2},
		{name: "template beats app", givePlatform: "wechat", giveApp: "shop", giveTemplate: "T2", wantRule: 4},
		{name: "empty selectors are wildcards", givePlatform: "alipay", giveApp: "default", giveTemplate: "T9", wantRule: 5},
		{name: "exact everything beats wildcard platform", givePlatform: "alipay", giveApp: "mall", giveTemplate: "T3", wantRule: 6},
		{name: "exact app and template on any platform", givePlatform: "wechat", giveApp: "mall", giveTemplate: "T3", wantRule: 7},
		{name: "no rule", givePlatform: "sms", giveApp: "default", giveTemplate: "T9", wantRule: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := c.RateLimit(tt.givePlatform, tt.giveApp, tt.giveTemplate)
			want, wantOK := ruleAt(c, tt.wantRule)
			if got != want || ok != wantOK {
				t.Errorf("RateLimit(%q, %q, %q) = %+v, %v; want %+v, %v",
					tt.givePlatform, tt.giveApp, tt.giveTemplate, got, ok, want, wantOK)
			}
		})
	}
}

func TestRateLimitFirstOfEquals(t *testing.T) {
	t.Parallel()
	c := &config.Config{RateLimits: []config.RateLimit{
		{Platform: "wechat", App: "*", TemplateID: "*", PerSecond: 1, Burst: 1},
		{Platform: "wechat", App: "*", TemplateID: "*", PerSecond: 2, Burst: 1},
	}}
	if got, _ := c.RateLimit("wechat", "default", "T1"); got.PerSecond != 1 {
		t.Errorf("RateLimit picked %+v, want the first rule", got)
	}
}

func TestRateLimitNone(t *testing.T) {
	t.Parallel()
	if got, ok := config.Default().RateLimit("wechat", "default", "T1"); ok {
		t.Errorf("RateLimit = %+v, true; want no rule by default", got)
	}
}

func ruleAt(c *config.Config, i int) (config.RateLimit, bool) {
	if i < 0 {
		return config.RateLimit{}, false
	}
	return c.RateLimits[i], true
}
