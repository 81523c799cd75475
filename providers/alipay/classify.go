package alipay

import (
	"strings"

	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/retry"
)

// This file is the Alipay half of platform-apis.md table C.1: every code
// and sub_code herald knows maps to one retry decision here, and nowhere
// else.

// Gateway codes (platform-apis B.3).
const (
	codeSuccess                 = "10000"
	codeUnavailable             = "20000"
	codeInsufficientToken       = "20001"
	codeMissingArguments        = "40001"
	codeInvalidArguments        = "40002"
	codeInsufficientConditions  = "40003"
	codeBusinessFailed          = "40004"
	codeInsufficientPermissions = "40006"
)

// sub_codes herald tells apart.
const (
	subInvalidSignature = "isv.invalid-signature"
	subInvalidAppID     = "isv.invalid-app-id"
	subInvalidTimestamp = "isv.invalid-timestamp"

	subTemplateIllegal     = "USER_TEMPLATE_ILLEGAL"
	subTemplateLackKeyword = "USER_TEMPLATE_LACK_KEYWORD"
	subKeywordLength       = "USER_KEYWORD_LENGTH_ERROR"
	subFormIDPrefix        = "FORM_ID_" // FORM_ID_NOT_MATCH_APPID, FORM_ID_OVER_TIME
	subTradeNoNotMatch     = "TRADE_NO_NOT_MATCH_USERID"
)

// unknownCodeMaxAttempts is how often a code outside the table (or a
// 40002 sub_code it does not name) is tried before the job is
// dead-lettered as platform_rejected.
const unknownCodeMaxAttempts = 3

// classify wraps a non-success answer with its decision (C.1, ALI rows).
// An answer concerning the app (its keys, app_id, clock, authorisation or
// permissions) pauses the app; one concerning the message dead-letters
// it; 20000 is transient.
func classify(e *APIError) error {
	switch e.Code {
	case codeUnavailable:
		return e
	case codeInsufficientToken, codeInsufficientConditions, codeInsufficientPermissions:
		return retry.Paused(0, e)
	case codeMissingArguments:
		// herald always sends every required argument: a bug.
		return retry.Permanent(job.ReasonPlatformRejected, e)
	case codeInvalidArguments:
		switch e.SubCode {
		case subInvalidSignature, subInvalidAppID:
			return retry.Paused(0, e)
		case subInvalidTimestamp:
			// Clock skew on this host: every job would fail alike.
			return retry.Paused(0, e)
		}
		return retry.Limited(unknownCodeMaxAttempts, job.ReasonPlatformRejected, e)
	case codeBusinessFailed:
		switch {
		case e.SubCode == subTemplateIllegal:
			return retry.Permanent(job.ReasonInvalidTemplate, e)
		case e.SubCode == subTemplateLackKeyword, e.SubCode == subKeywordLength:
			return retry.Permanent(job.ReasonInvalidTemplateData, e)
		case strings.HasPrefix(e.SubCode, subFormIDPrefix), e.SubCode == subTradeNoNotMatch:
			return retry.Permanent(job.ReasonPlatformRejected, e)
		}
		// Unknown business failures keep their raw sub_code in the dead
		// letter, so the table can grow.
		return retry.Permanent(job.ReasonPlatformRejected, e)
	}
	return retry.Limited(unknownCodeMaxAttempts, job.ReasonPlatformRejected, e)
}

// settles reports whether err, a classified answer, would end the job
// (dead letter, at once or after a few attempts) rather than hold or
// retry it. An answer that settles a job must be signed.
func settles(err error) bool {
	d := retry.Decide(err)
	return d.Action == retry.DeadLetter || (d.Action == retry.Retry && d.Limit > 0)
}
