package dlq

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/heraldhq/herald/producer/job"
)

// Filter selects dead letters. Each non-empty list must contain the dead
// letter's value; zero times do not bound. The zero Filter matches every
// dead letter.
type Filter struct {
	Reasons   []string // e.g. user_refused
	Platforms []string // wechat, alipay or unknown
	Apps      []string
	Templates []string // template_id
	Codes     []string // the platform's code, e.g. 43101; NoCode (or "") matches letters without one
	IDs       []string // the job's id
	// Since and Until bound the time the dead letter was stored, both
	// inclusive.
	Since, Until time.Time
	// FromSeq and ToSeq bound the dead letter's stream sequence, both
	// inclusive; 0 does not bound. A scan with FromSeq starts there
	// rather than at Since: it is how a page of dead letters is read
	// without reading those before it.
	FromSeq, ToSeq uint64
}

// Validate reports a filter that cannot be turned into subjects: reasons and
// platforms are subject tokens, so they may not be empty or hold '.', '*',
// '>' or white space; Since may not be after Until, nor FromSeq after ToSeq.
func (f Filter) Validate() error {
	var problems []string
	for _, list := range []struct {
		name   string
		values []string
	}{{"reason", f.Reasons}, {"platform", f.Platforms}} {
		for _, v := range list.values {
			if !validToken(v) {
				problems = append(problems, fmt.Sprintf("%s %q is not a subject token", list.name, v))
			}
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Since.After(f.Until) {
		problems = append(problems, fmt.Sprintf("since %s is after until %s",
			f.Since.Format(time.RFC3339), f.Until.Format(time.RFC3339)))
	}
	if f.FromSeq > 0 && f.ToSeq > 0 && f.FromSeq > f.ToSeq {
		problems = append(problems, fmt.Sprintf("from sequence %d is after to sequence %d", f.FromSeq, f.ToSeq))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidFilter, strings.Join(problems, "; "))
	}
	return nil
}

func validToken(s string) bool {
	return s != "" && !strings.ContainsAny(s, ".*> \t\r\n")
}

// Subjects returns the filter subjects that narrow a scan of the dead-letter
// stream: notify.dead.<platform>.<reason> for every pair, with * for an
// unconstrained token, or notify.dead.> when neither is constrained. They
// never overlap, as consumers require.
func (f Filter) Subjects() []string {
	platforms, reasons := uniq(f.Platforms), uniq(f.Reasons)
	if len(platforms) == 0 && len(reasons) == 0 {
		return []string{job.DeadRoot + ".>"}
	}
	if len(platforms) == 0 {
		platforms = []string{"*"}
	}
	if len(reasons) == 0 {
		reasons = []string{"*"}
	}
	out := make([]string, 0, len(platforms)*len(reasons))
	for _, p := range platforms {
		for _, r := range reasons {
			out = append(out, job.DeadRoot+"."+p+"."+r)
		}
	}
	return out
}

// Match reports whether e passes the filter. Reasons and platforms are
// checked on the letter too, so Match is exact on its own.
func (f Filter) Match(e Entry) bool {
	l := e.Letter
	return in(f.Reasons, l.Reason) &&
		in(f.Platforms, l.Platform) &&
		in(f.Apps, l.App) &&
		in(f.Templates, l.TemplateID) &&
		in(f.Codes, codeKey(l.Code)) &&
		in(f.IDs, l.ID) &&
		(f.Since.IsZero() || !e.Time.Before(f.Since)) &&
		(f.Until.IsZero() || !e.Time.After(f.Until)) &&
		(f.FromSeq == 0 || e.Seq >= f.FromSeq) &&
		(f.ToSeq == 0 || e.Seq <= f.ToSeq)
}

// NoCode stands for "no platform code" in a filter and in [Counts.ByCode]:
// the dead letters no platform answered for (malformed, expired, rejected
// by herald's own checks, ...).
const NoCode = "none"

// codeKey is how a letter's code is counted and matched: NoCode for none.
func codeKey(code string) string {
	if code == "" {
		return NoCode
	}
	return code
}

func in(list []string, v string) bool {
	if v == NoCode && slices.Contains(list, "") {
		return true
	}
	return len(list) == 0 || slices.Contains(list, v)
}

func uniq(list []string) []string {
	out := slices.Clone(list)
	slices.Sort(out)
	return slices.Compact(out)
}
