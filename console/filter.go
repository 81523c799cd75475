package console

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/dlq"
	"github.com/heraldhq/herald/producer/job"
)

// Bounds on a filter from a request.
const (
	maxFilterValues = 32  // values per field
	maxFilterValue  = 256 // bytes per value
)

// defaultSince is the time range a page shows when the request names none.
const defaultSince = "24h"

// filterForm is the CLI's dead-letter filters as a form or query string
// carries them: reason, platform, app, template and code (each repeated or
// comma-separated), since and until (a duration ago, 30m or 2d, or an RFC
// 3339 time; empty: unbounded), and seq (one stream sequence).
type filterForm struct {
	Reasons, Platforms, Apps, Templates, Codes []string
	Since, Until                               string
	Seq                                        uint64
}

// parseFilterForm reads the filters of v. An absent since is
// [defaultSince]; since= (empty) is unbounded.
func parseFilterForm(v url.Values) (filterForm, error) {
	var f filterForm
	var errs []error
	for _, field := range []struct {
		key string
		dst *[]string
	}{
		{"reason", &f.Reasons}, {"platform", &f.Platforms}, {"app", &f.Apps},
		{"template", &f.Templates}, {"code", &f.Codes},
	} {
		list, err := splitValues(field.key, v[field.key])
		if err != nil {
			errs = append(errs, err)
		}
		*field.dst = list
	}
	f.Since = defaultSince
	if s, ok := v["since"]; ok {
		f.Since = strings.TrimSpace(first(s))
	}
	f.Until = strings.TrimSpace(v.Get("until"))
	for _, key := range []string{"since", "until"} {
		if len(v.Get(key)) > maxFilterValue {
			errs = append(errs, fmt.Errorf("%s: longer than %d bytes", key, maxFilterValue))
		}
	}
	if s := strings.TrimSpace(v.Get("seq")); s != "" {
		seq, err := strconv.ParseUint(s, 10, 64)
		if err != nil || seq == 0 {
			errs = append(errs, errors.New("seq: want a stream sequence number"))
		}
		f.Seq = seq
	}
	return f, errors.Join(errs...)
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// splitValues splits repeated and comma-separated values, trimmed, without
// empties or repeats.
func splitValues(key string, raw []string) ([]string, error) {
	var out []string
	for _, r := range raw {
		for s := range strings.SplitSeq(r, ",") {
			s = strings.TrimSpace(s)
			if s == "" || slices.Contains(out, s) {
				continue
			}
			if len(s) > maxFilterValue {
				return out, fmt.Errorf("%s: a value longer than %d bytes", key, maxFilterValue)
			}
			out = append(out, s)
		}
	}
	if len(out) > maxFilterValues {
		return out[:maxFilterValues], fmt.Errorf("%s: more than %d values", key, maxFilterValues)
	}
	return out, nil
}

// filter builds the dead-letter filter, times counted back from now. A
// reason or platform herald never writes is an error, as in herald dlq: it
// would match nothing, and a replay would report success having done
// nothing.
func (f filterForm) filter(now time.Time) (dlq.Filter, error) {
	out := dlq.Filter{
		Reasons: f.Reasons, Platforms: f.Platforms, Apps: f.Apps, Templates: f.Templates, Codes: f.Codes,
		FromSeq: f.Seq, ToSeq: f.Seq,
	}
	var errs []error
	var err error
	if out.Since, err = parseBound(f.Since, now); err != nil {
		errs = append(errs, fmt.Errorf("since: %w", err))
	}
	if out.Until, err = parseBound(f.Until, now); err != nil {
		errs = append(errs, fmt.Errorf("until: %w", err))
	}
	for _, r := range f.Reasons {
		if !slices.Contains(job.Reasons, r) {
			errs = append(errs, fmt.Errorf("reason %q: not a reason herald writes (%s)", r, strings.Join(job.Reasons, ", ")))
		}
	}
	for _, p := range f.Platforms {
		if p != job.WeChat && p != job.Alipay && p != job.UnknownPlatform {
			errs = append(errs, fmt.Errorf("platform %q: not a platform (wechat, alipay, %s)", p, job.UnknownPlatform))
		}
	}
	if len(errs) == 0 {
		errs = append(errs, out.Validate())
	}
	return out, errors.Join(errs...)
}

// parseBound reads an RFC 3339 time, or a duration (30s, 1h, 2d, 1d12h)
// before now. "" is the zero time: no bound.
func parseBound(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := parseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q: want a duration (30m, 1h, 2d) or an RFC 3339 time (2026-11-23T10:00:00Z)", s)
	}
	return now.Add(-d), nil
}

// parseDuration reads a Go duration, or whole or decimal days with the
// suffix d, optionally followed by a Go duration: 14d, 1.5d, 1d12h.
func parseDuration(s string) (time.Duration, error) {
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	n, err := strconv.ParseFloat(days, 64)
	if err != nil || n < 0 || n > 3650 || math.IsNaN(n) {
		return 0, fmt.Errorf("bad days %q", days)
	}
	d := time.Duration(n * 24 * float64(time.Hour))
	if rest == "" {
		return d, nil
	}
	r, err := time.ParseDuration(rest)
	if err != nil || r < 0 {
		return 0, fmt.Errorf("bad duration %q", rest)
	}
	return d + r, nil
}

// empty reports whether f selects every dead letter of all time.
func (f filterForm) empty() bool {
	return len(f.Reasons)+len(f.Platforms)+len(f.Apps)+len(f.Templates)+len(f.Codes) == 0 &&
		f.Since == "" && f.Until == "" && f.Seq == 0
}

// subjectOnly reports whether every constraint of f but time lies in the
// subject (platform and reason), so that the server's counts are exact.
func subjectOnly(f dlq.Filter) bool {
	return len(f.Apps)+len(f.Templates)+len(f.Codes)+len(f.IDs) == 0
}

// values writes f back as a query, for links that keep the filters.
func (f filterForm) values() url.Values {
	v := url.Values{}
	for _, field := range []struct {
		key  string
		list []string
	}{
		{"reason", f.Reasons}, {"platform", f.Platforms}, {"app", f.Apps},
		{"template", f.Templates}, {"code", f.Codes},
	} {
		if len(field.list) > 0 {
			v.Set(field.key, strings.Join(field.list, ","))
		}
	}
	v.Set("since", f.Since)
	if f.Until != "" {
		v.Set("until", f.Until)
	}
	if f.Seq != 0 {
		v.Set("seq", strconv.FormatUint(f.Seq, 10))
	}
	return v
}

// link is path with f's query and the extra pairs (key, value, ...); a
// pair with an empty value removes the key.
func (f filterForm) link(path string, pairs ...string) string {
	v := f.values()
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			v.Del(pairs[i])
		} else {
			v.Set(pairs[i], pairs[i+1])
		}
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// with returns f narrowed to one more value of a field, for the count
// tables' links.
func (f filterForm) with(field, value string) filterForm {
	switch field {
	case "reason":
		f.Reasons = []string{value}
	case "platform":
		f.Platforms = []string{value}
	case "app":
		f.Apps = []string{value}
	case "template":
		f.Templates = []string{value}
	case "code":
		if value == "" {
			value = dlq.NoCode
		}
		f.Codes = []string{value}
	}
	return f
}

// Join helpers for the templates.
func (f filterForm) Reason() string   { return strings.Join(f.Reasons, ",") }
func (f filterForm) Platform() string { return strings.Join(f.Platforms, ",") }
func (f filterForm) App() string      { return strings.Join(f.Apps, ",") }
func (f filterForm) Template() string { return strings.Join(f.Templates, ",") }
func (f filterForm) Code() string     { return strings.Join(f.Codes, ",") }

// Describe says in words what f selects, for headings and confirmations.
func (f filterForm) Describe() string {
	var parts []string
	for _, field := range []struct {
		name string
		list []string
	}{
		{"reason", f.Reasons}, {"platform", f.Platforms}, {"app", f.Apps},
		{"template", f.Templates}, {"code", f.Codes},
	} {
		if len(field.list) > 0 {
			parts = append(parts, field.name+" "+strings.Join(field.list, " or "))
		}
	}
	if f.Seq != 0 {
		parts = append(parts, "sequence "+strconv.FormatUint(f.Seq, 10))
	}
	switch {
	case f.Since != "" && f.Until != "":
		parts = append(parts, "stored from "+f.Since+" to "+f.Until)
	case f.Since != "":
		parts = append(parts, "stored since "+f.Since)
	case f.Until != "":
		parts = append(parts, "stored until "+f.Until)
	}
	if len(parts) == 0 {
		return "every dead letter"
	}
	return strings.Join(parts, ", ")
}

// ranges are the quick time ranges offered above the filters.
var ranges = []struct{ Label, Since string }{
	{"15m", "15m"}, {"1h", "1h"}, {"6h", "6h"}, {"24h", "24h"}, {"7d", "7d"}, {"all", ""},
}
