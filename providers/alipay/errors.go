package alipay

import (
	"errors"

	"github.com/heraldhq/herald/retry"
)

// Answers herald does not believe. Both are transient: the outcome of the
// call is unknown, so the job is retried and never counted as delivered.
var (
	// ErrBadSignature is wrapped when an answer's sign does not verify with
	// any configured Alipay public key: it was altered, forged, or signed
	// with a key herald does not know (check alipay_public_key).
	ErrBadSignature = errors.New("answer signature does not verify with the alipay public key")
	// ErrUnsigned is wrapped when an answer that would end the job (a
	// success or a business failure) carries no sign.
	ErrUnsigned = errors.New("answer is not signed")
)

// ErrQuery is wrapped when [Client.QuerySubscriptions] is asked what
// Alipay would refuse: no user, no template, more than
// [MaxQueryTemplates], or an empty template id. No call is made.
var ErrQuery = errors.New("bad subscription query")

// APIError is an answer from Alipay whose code is not 10000 (Success). It
// implements retry.Detailer: the dead letter's code is SubCode where there
// is one, else Code, and its message is SubMsg (else Msg) unchanged.
type APIError struct {
	Code    string // gateway code: 20000, 40004…
	Msg     string // gateway message: "Business Failed"…
	SubCode string // e.g. isv.invalid-signature, USER_TEMPLATE_ILLEGAL
	SubMsg  string // Alipay's explanation
}

var _ retry.Detailer = (*APIError)(nil)

func (e *APIError) Error() string {
	s := "code " + e.Code
	if e.SubCode != "" {
		s += " " + e.SubCode
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.SubMsg != "" {
		s += ": " + e.SubMsg
	}
	return s
}

// Is reports whether target is an *APIError with the same Code and, when
// target has one, the same SubCode, so
// errors.Is(err, &APIError{Code: "40004", SubCode: "USER_TEMPLATE_ILLEGAL"})
// matches that answer however wrapped.
func (e *APIError) Is(target error) bool {
	t, ok := target.(*APIError)
	if !ok {
		return false
	}
	return t.Code == e.Code && (t.SubCode == "" || t.SubCode == e.SubCode)
}

// Detail is the sub_code (or code) and the sub_msg (or msg), unchanged.
func (e *APIError) Detail() retry.Detail {
	d := retry.Detail{Code: e.Code, Message: e.Msg}
	if e.SubCode != "" {
		d.Code = e.SubCode
	}
	if e.SubMsg != "" {
		d.Message = e.SubMsg
	}
	return d
}

// ValueError is a job Alipay would reject, found before any call: a
// template value over 50 characters or empty, a data string over 2048
// bytes, a page over 128 characters. It implements retry.Detailer with an
// empty Code, because no platform call was made.
type ValueError struct {
	Field   string // data.<keyword>.value, data, page or template_id
	Message string // names the field and the rule it breaks
}

var _ retry.Detailer = (*ValueError)(nil)

func (e *ValueError) Error() string { return e.Message }

// Detail reports the field and the rule it breaks.
func (e *ValueError) Detail() retry.Detail {
	return retry.Detail{Message: e.Message, Field: e.Field}
}
