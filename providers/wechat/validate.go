package wechat

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/retry"
)

// ValueError is a template value that WeChat would reject with 47003. It
// implements retry.Detailer: Field is "data.<key>.value", Code is empty
// because no platform call was made.
type ValueError struct {
	Field   string // data.<key>.value
	Message string // names the field and the rule it breaks
}

var _ retry.Detailer = (*ValueError)(nil)

func (e *ValueError) Error() string { return e.Message }

// Detail reports the field and the rule the value breaks.
func (e *ValueError) Detail() retry.Detail {
	return retry.Detail{Message: e.Message, Field: e.Field}
}

// Validate checks the job's template values against the keyword rules of
// platform-apis A.1 without calling WeChat, so a value WeChat would answer
// 47003 to is dead-lettered as invalid_template_data without spending quota.
//
// The rules are deliberately conservative: a false rejection loses a real
// message, so only what WeChat certainly rejects is rejected. Characters
// are counted as runes (WeChat's own counting is undocumented), emoji are
// allowed, and keys of unknown types (enum and anything newer) are not
// checked at all. The page is not checked: WeChat documents no length limit.
//
// When several values break a rule, the one with the smallest key is
// reported.
func (c *Client) Validate(j job.Job) error { return ValidateJob(j) }

// ValidateJob is [Client.Validate] without a client: herald send checks
// jobs with it before publishing them.
func ValidateJob(j job.Job) error {
	var first *ValueError
	firstKey := ""
	for key, v := range j.Data {
		if first != nil && key > firstKey {
			continue
		}
		if msg := checkValue(keywordType(key), v.Value); msg != "" {
			field := "data." + key + ".value"
			first = &ValueError{Field: field, Message: field + " " + msg}
			firstKey = key
		}
	}
	if first != nil {
		return retry.Permanent(job.ReasonInvalidTemplateData,
			fmt.Errorf("wechat validate %s: %w", j.TemplateID, first))
	}
	return nil
}

// keywordType is the key without its trailing index: thing12 -> thing.
func keywordType(key string) string {
	return strings.TrimRightFunc(key, func(r rune) bool { return r >= '0' && r <= '9' })
}

// valueRule is what herald checks for one keyword type. Every check here is
// a rule WeChat documents (platform-apis A.1, [W3]); where the documented
// rule is broader than what is certain, the narrower certain part is
// checked and the rest left to WeChat.
type valueRule struct {
	// maxRunes caps the length; 0 means no length is checked.
	maxRunes int
	// bad reports a character the type certainly does not allow.
	bad func(r rune) bool
	// check, when set, replaces the length and character checks.
	check func(v string) string
}

// isHan is a Chinese character.
func isHan(r rune) bool { return unicode.Is(unicode.Han, r) }

// isDigit is an ASCII or other decimal digit.
func isDigit(r rune) bool { return unicode.IsDigit(r) }

// isLetter is a letter that is not a Chinese character (WeChat's "letter"
// means 字母).
func isLetter(r rune) bool { return unicode.IsLetter(r) && !isHan(r) }

// ruleFor returns the rule for a keyword type; false for enum and types
// herald does not know.
func ruleFor(typ string) (valueRule, bool) {
	switch typ {
	case "thing":
		// ≤20 characters of any kind (Chinese, digits, letters, symbols).
		return valueRule{maxRunes: 20}, true
	case "number":
		// ≤32 digits, a decimal point allowed. Certain: no letters or
		// Chinese, at most 32 digits. Signs and separators are left to
		// WeChat.
		return valueRule{check: checkNumber}, true
	case "letter":
		// ≤32 letters only. Certain: no digits, no Chinese. Whether a space
		// counts is undocumented, so other characters are left to WeChat.
		return valueRule{maxRunes: 32, bad: func(r rune) bool { return isDigit(r) || isHan(r) }}, true
	case "symbol":
		// ≤5 symbols only; a symbol is anything but Chinese, letters and
		// digits.
		return valueRule{maxRunes: 5, bad: func(r rune) bool { return isDigit(r) || unicode.IsLetter(r) }}, true
	case "character_string":
		// ≤32 digits, letters or symbols: no Chinese.
		return valueRule{maxRunes: 32, bad: isHan}, true
	case "time", "date":
		// 24-hour time or a date, each allowing the other as prefix or
		// suffix, and ranges joined by ~. The accepted formats are only
		// partly documented, so only a value without a digit is certainly
		// wrong.
		return valueRule{check: needsDigit}, true
	case "amount":
		// A currency symbol, ≤10 digits, decimals, an optional 元. Certain:
		// at least one digit and at most 10 before the decimal point.
		return valueRule{check: checkAmount}, true
	case "phone_number":
		// ≤17 digits and symbols: no letters, no Chinese.
		return valueRule{maxRunes: 17, bad: unicode.IsLetter}, true
	case "car_number":
		// ≤8 characters; only the first and last may be Chinese.
		return valueRule{check: checkCarNumber}, true
	case "name":
		// ≤10 Chinese characters, or ≤20 letters and symbols; a mix counts
		// as Chinese.
		return valueRule{check: checkName}, true
	case "phrase":
		// ≤5 Chinese characters only: no letters, no digits.
		return valueRule{maxRunes: 5, bad: func(r rune) bool { return isDigit(r) || isLetter(r) }}, true
	}
	return valueRule{}, false
}

// checkValue returns why WeChat would reject v for keyword type typ, or "".
func checkValue(typ, v string) string {
	rule, ok := ruleFor(typ)
	if !ok {
		return "" // enum and unknown types: not checked
	}
	// Every type: an empty value fails ("is emtpy", A.1) and control
	// characters such as newline are forbidden ([W3]).
	if v == "" {
		return "is empty"
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return fmt.Sprintf("contains control character %U", r)
		}
	}
	if rule.check != nil {
		return rule.check(v)
	}
	if n := utf8.RuneCountInString(v); rule.maxRunes > 0 && n > rule.maxRunes {
		return fmt.Sprintf("has %d characters, %s allows %d", n, typ, rule.maxRunes)
	}
	if rule.bad != nil {
		for _, r := range v {
			if rule.bad(r) {
				return fmt.Sprintf("contains %q, not allowed in %s", r, typ)
			}
		}
	}
	return ""
}

func checkNumber(v string) string {
	digits := 0
	for _, r := range v {
		switch {
		case isDigit(r):
			digits++
		case unicode.IsLetter(r):
			return fmt.Sprintf("contains %q, not allowed in number", r)
		}
	}
	if digits > 32 {
		return fmt.Sprintf("has %d digits, number allows 32", digits)
	}
	return ""
}

func needsDigit(v string) string {
	for _, r := range v {
		if isDigit(r) {
			return ""
		}
	}
	return "has no digit"
}

func checkAmount(v string) string {
	intDigits, digits := 0, 0
	point := false
	for _, r := range v {
		switch {
		case r == '.':
			point = true
		case isDigit(r):
			digits++
			if !point {
				intDigits++
			}
		}
	}
	switch {
	case digits == 0:
		return "has no digit"
	case intDigits > 10:
		return fmt.Sprintf("has %d digits before the decimal point, amount allows 10", intDigits)
	}
	return ""
}

func checkCarNumber(v string) string {
	n := utf8.RuneCountInString(v)
	if n > 8 {
		return fmt.Sprintf("has %d characters, car_number allows 8", n)
	}
	i := 0
	for _, r := range v {
		if isHan(r) && i != 0 && i != n-1 {
			return fmt.Sprintf("contains %q inside, car_number allows Chinese only first and last", r)
		}
		i++
	}
	return ""
}

func checkName(v string) string {
	n := utf8.RuneCountInString(v)
	if strings.ContainsFunc(v, isHan) {
		if n > 10 {
			return fmt.Sprintf("has %d characters with Chinese, name allows 10", n)
		}
		return ""
	}
	if n > 20 {
		return fmt.Sprintf("has %d characters, name allows 20", n)
	}
	return ""
}
