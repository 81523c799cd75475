package wechat

import (
	"errors"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/heraldhq/herald/retry"
)

// ErrNoToken is returned by a [TokenStore] holding no token for an app.
var ErrNoToken = errors.New("no access token stored")

// APIError is an answer from WeChat that is not a success: a non-zero
// errcode, or an HTTP status other than 200 (then Code is 0).
type APIError struct {
	HTTPStatus int
	Code       int
	// Message is WeChat's errmsg byte for byte, rid included (or the
	// status and the start of the body for an HTTP error). Should WeChat
	// ever echo the access token or the secret, it is replaced.
	Message string
	// Field is the template field a 47003 names (data.thing1.value), or
	// empty.
	Field string
}

var _ retry.Detailer = (*APIError)(nil)

func (e *APIError) Error() string {
	if e.Code == 0 && e.HTTPStatus != 0 {
		return "http " + strconv.Itoa(e.HTTPStatus) + ": " + e.Message
	}
	return "errcode " + strconv.Itoa(e.Code) + ": " + e.Message
}

// Is reports whether target is an *APIError with the same errcode, so
// errors.Is(err, &APIError{Code: 43101}) matches any 43101 however wrapped.
// A target with an HTTPStatus must match that status too.
func (e *APIError) Is(target error) bool {
	t, ok := target.(*APIError)
	if !ok {
		return false
	}
	return t.Code == e.Code && (t.HTTPStatus == 0 || t.HTTPStatus == e.HTTPStatus)
}

// Detail is the errcode as a decimal string (empty for an HTTP error), the
// errmsg unchanged and the field.
func (e *APIError) Detail() retry.Detail {
	d := retry.Detail{Message: e.Message, Field: e.Field}
	if e.Code != 0 {
		d.Code = strconv.Itoa(e.Code)
	}
	return d
}

// fieldRE finds the template field named by a 47003 errmsg (platform-apis
// A.3); the errmsg may name none.
var fieldRE = regexp.MustCompile(`data\.([a-z_]+\d+)\.value`)

// extractField returns "data.<key>.value" from a 47003 errmsg, or "".
func extractField(msg string) string {
	return fieldRE.FindString(msg)
}

// transportError is a failed HTTP exchange whose text has been stripped of
// secrets. net/http's *url.Error prints the full URL, access_token
// included, so the URL is never part of the text.
type transportError struct {
	msg string
	err error
}

func (e *transportError) Error() string { return e.msg }

// Unwrap gives the cause without the URL (for timeouts, context errors and
// net.Error checks).
func (e *transportError) Unwrap() error { return e.err }

// redact rebuilds a transport error so that its text names the operation
// and endpoint but never the query string, and removes every secret from
// what remains.
func redact(err error, endpoint string, secrets ...string) error {
	if err == nil {
		return nil
	}
	cause := err
	op := ""
	var ue *url.Error
	if errors.As(err, &ue) {
		cause, op = ue.Err, ue.Op+" "
	}
	return &transportError{msg: op + endpoint + ": " + scrub(cause.Error(), secrets...), err: cause}
}

// scrub replaces every non-empty secret in s.
func scrub(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "<redacted>")
		}
	}
	return s
}
