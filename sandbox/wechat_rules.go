package sandbox

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// wxRules models WeChat's keyword value rules (platform-apis A.1) the
// strict way: the documented rule as written. herald's own check before
// sending is looser on purpose (it rejects only what is certain), so
// everything it rejects the sandbox rejects too, and tests hold it to that.
type wxRules struct {
	time, date, amount *regexp.Regexp
}

func newWXRules() *wxRules {
	const (
		clock = `(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?`
		day   = `(?:\d{4}年\d{1,2}月\d{1,2}日|\d{4}年\d{1,2}月|\d{1,2}月\d{1,2}日|` +
			`\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{4}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2})`
	)
	return &wxRules{
		// 24-hour time, a date prefix allowed, a range joined with ~.
		time: regexp.MustCompile(`^(?:` + day + `\s*)?` + clock + `(?:\s*~\s*(?:` + day + `\s*)?` + clock + `)?$`),
		// A date, a 24-hour time suffix allowed, a range joined with ~.
		date: regexp.MustCompile(`^` + day + `(?:\s*` + clock + `)?(?:\s*~\s*` + day + `(?:\s*` + clock + `)?)?$`),
		// One currency symbol, ≤10 digits, decimals, an optional 元.
		amount: regexp.MustCompile(`^[¥￥$€£]?\d{1,10}(?:\.\d+)?元?$`),
	}
}

// firstBadValue returns the smallest key whose value breaks the rules, and
// whether that value is empty; "" when all values pass.
func (rs *wxRules) firstBadValue(data map[string]wxValue) (key string, empty bool) {
	for k, v := range data {
		if key != "" && k > key {
			continue
		}
		switch {
		case v.Value == "":
			key, empty = k, true
		case !rs.valid(strings.TrimRightFunc(k, isASCIIDigit), v.Value):
			key, empty = k, false
		}
	}
	return key, empty
}

func isASCIIDigit(r rune) bool { return r >= '0' && r <= '9' }
func isHanRune(r rune) bool    { return unicode.Is(unicode.Han, r) }

// isWordLetter is a letter that is not Chinese.
func isWordLetter(r rune) bool { return unicode.IsLetter(r) && !isHanRune(r) }

// isSymbol is a printable character that is not Chinese, a letter or a
// digit.
func isSymbol(r rune) bool {
	return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsControl(r)
}

func all(v string, f func(rune) bool) bool {
	for _, r := range v {
		if !f(r) {
			return false
		}
	}
	return true
}

// valid applies the rule of keyword type typ; unknown types (enum) pass.
func (rs *wxRules) valid(typ, v string) bool {
	n := utf8.RuneCountInString(v)
	switch typ {
	case "thing", "number", "letter", "symbol", "character_string", "time", "date",
		"amount", "phone_number", "car_number", "name", "phrase":
		if strings.ContainsFunc(v, unicode.IsControl) {
			return false
		}
	default:
		return true
	}
	switch typ {
	case "thing":
		return n <= 20
	case "number":
		digits, points := 0, 0
		for _, r := range v {
			switch {
			case isASCIIDigit(r):
				digits++
			case r == '.':
				points++
			default:
				return false
			}
		}
		return digits >= 1 && digits <= 32 && points <= 1 && v[0] != '.' && v[len(v)-1] != '.'
	case "letter":
		return n <= 32 && all(v, isWordLetter)
	case "symbol":
		return n <= 5 && all(v, isSymbol)
	case "character_string":
		return n <= 32 && !strings.ContainsFunc(v, isHanRune)
	case "time":
		return rs.time.MatchString(v)
	case "date":
		return rs.date.MatchString(v)
	case "amount":
		return rs.amount.MatchString(v)
	case "phone_number":
		return n <= 17 && all(v, func(r rune) bool { return isASCIIDigit(r) || isSymbol(r) })
	case "car_number":
		if n > 8 {
			return false
		}
		i := 0
		for _, r := range v {
			edge := i == 0 || i == n-1
			if !(r < utf8.RuneSelf && (isASCIIDigit(r) || unicode.IsLetter(r)) || edge && isHanRune(r)) {
				return false
			}
			i++
		}
		return true
	case "name":
		if strings.ContainsFunc(v, isHanRune) {
			return n <= 10
		}
		return n <= 20 && !strings.ContainsFunc(v, unicode.IsDigit)
	case "phrase":
		return n <= 5 && all(v, isHanRune)
	}
	return true
}
