package config

import "slices"

// RateLimit returns the rule that governs jobs for templateID of app on
// platform, and false if no rule matches. A rule matches when each of its
// platform, app and template_id is the job's value or [Wildcard]. Of the
// matching rules the most specific wins: an exact template_id first, then
// an exact app, then an exact platform; of equally specific rules, the
// first listed.
func (c *Config) RateLimit(platform, app, templateID string) (RateLimit, bool) {
	best, bestRank := -1, -1
	for i, r := range c.RateLimits {
		t, okT := rank(r.TemplateID, templateID, 4)
		a, okA := rank(r.App, app, 2)
		p, okP := rank(r.Platform, platform, 1)
		if okT && okA && okP && t+a+p > bestRank {
			best, bestRank = i, t+a+p
		}
	}
	if best < 0 {
		return RateLimit{}, false
	}
	return c.RateLimits[best], true
}

// wild reads an empty selector as [Wildcard].
func wild(s string) string {
	if s == "" {
		return Wildcard
	}
	return s
}

// rank scores one selector of a rule against the job's value: weight for an
// exact match, 0 for a wildcard, and false for a mismatch.
func rank(rule, job string, weight int) (int, bool) {
	switch wild(rule) {
	case Wildcard:
		return 0, true
	case job:
		return weight, true
	default:
		return 0, false
	}
}

// MetricTemplate reports whether templateID may label metrics: a template
// named by worker.metric_templates, or by a rate-limit rule that applies to
// the platform and app. Every other template is counted as "other", so a
// producer cannot grow herald's metrics with made-up template ids.
func (c *Config) MetricTemplate(platform, app, templateID string) bool {
	if slices.Contains(c.Worker.MetricTemplates, templateID) {
		return true
	}
	for _, r := range c.RateLimits {
		_, okA := rank(r.App, app, 1)
		_, okP := rank(r.Platform, platform, 1)
		if r.TemplateID == templateID && okA && okP {
			return true
		}
	}
	return false
}
