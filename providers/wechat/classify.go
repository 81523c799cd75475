package wechat

import (
	"time"

	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/retry"
)

// This file is the WeChat half of platform-apis.md table C.1: every errcode
// herald knows maps to one retry decision here, and nowhere else.

// Send errcodes (platform-apis A.2).
const (
	codeOK               = 0
	codeSystemBusy       = -1
	codeInvalidToken     = 40001 // invalid credential / not latest
	codeBadAccessToken   = 40014
	codeTokenExpired     = 42001
	codeTokenMissing     = 41001
	codeInvalidOpenID    = 40003
	codeInvalidTemplate  = 40037
	codeInvalidPage      = 41030
	codeUserRefused      = 43101
	codeConcurrentOpenID = 43108
	codeDailyQuota       = 45009
	codeMinuteQuota      = 45011
	codeSensitive        = 45168
	codeBadJSON          = 47001
	codeBadData          = 47003
	codeUnauthorized     = 48001
	codeNoPermissionSet  = 61007
)

// Token-endpoint errcodes (platform-apis A.2, "Token-endpoint errors").
const (
	codeBadGrantType     = 40002
	codeBadAppID         = 40013
	codeBadSecret        = 40125
	codeSecretFrozen     = 40243
	codeAppIDMissing     = 41002
	codeSecretMissing    = 41004
	codeIPNotWhitelisted = 40164
	codeIPPending        = 89501
	codeIPNeedsAdmin     = 89503
	codeIPBlockedOneDay  = 89506
	codeIPBlockedOneHour = 89507
)

const (
	// 43108: retry after busyMin plus up to busySpread of jitter (1-5 s).
	busyMin    = time.Second
	busySpread = 4 * time.Second
	// 45011: hold the app at least this long.
	minuteQuota = 60 * time.Second
	// Unknown errcodes: this many attempts, then platform_rejected.
	unknownCodeMaxAttempts = 3
)

// shanghai is China Standard Time. China has kept UTC+8 without daylight
// saving since 1991, so a fixed zone is exact and needs no tzdata.
var shanghai = time.FixedZone("CST", 8*60*60)

// untilShanghaiMidnight is how long from now until the next 00:00 in
// Asia/Shanghai, when WeChat's daily quotas reset.
func untilShanghaiMidnight(now time.Time) time.Duration {
	t := now.In(shanghai)
	next := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, shanghai)
	return next.Sub(now)
}

// isTokenRejected reports the errcodes that mean "this access token is no
// good": the caller invalidates it, gets a token again and calls once more.
func isTokenRejected(code int) bool {
	switch code {
	case codeInvalidToken, codeBadAccessToken, codeTokenExpired:
		return true
	}
	return false
}

// classifySend wraps a send answer with its decision. jitter(n) returns a
// duration in [0, n); now is the current time. A second token rejection
// (after the one refresh) reaches here and is transient.
func classifySend(e *APIError, now time.Time, jitter func(time.Duration) time.Duration) error {
	if e.Code == codeOK {
		// An HTTP error: the outcome is unknown, retry with backoff.
		return e
	}
	switch e.Code {
	case codeSystemBusy, codeInvalidToken, codeBadAccessToken, codeTokenExpired:
		return e
	case codeInvalidOpenID:
		return retry.Permanent(job.ReasonInvalidRecipient, e)
	case codeInvalidTemplate:
		// Every job of a template that does not exist fails: tell someone.
		return retry.Alert(retry.Permanent(job.ReasonInvalidTemplate, e))
	case codeInvalidPage:
		return retry.Permanent(job.ReasonInvalidPage, e)
	case codeUserRefused:
		return retry.Permanent(job.ReasonUserRefused, e)
	case codeConcurrentOpenID:
		return retry.After(busyMin+jitter(busySpread), e)
	case codeDailyQuota:
		return retry.Throttled(untilShanghaiMidnight(now), e)
	case codeMinuteQuota:
		return retry.Throttled(minuteQuota, e)
	case codeSensitive:
		return retry.Permanent(job.ReasonSensitiveContent, e)
	case codeBadJSON:
		// herald built a body WeChat cannot parse: a bug.
		return retry.Alert(retry.Permanent(job.ReasonPlatformRejected, e))
	case codeBadData:
		return retry.Permanent(job.ReasonInvalidTemplateData, e)
	case codeUnauthorized, codeNoPermissionSet, codeTokenMissing:
		return retry.Paused(0, e)
	}
	return retry.Limited(unknownCodeMaxAttempts, job.ReasonPlatformRejected, e)
}

// classifyToken wraps a token-endpoint answer with its decision. Bad
// credentials and IP whitelisting concern the whole app, so they pause it.
func classifyToken(e *APIError, now time.Time) error {
	switch e.Code {
	case codeBadGrantType, codeBadAppID, codeBadSecret, codeSecretFrozen,
		codeAppIDMissing, codeSecretMissing,
		codeIPNotWhitelisted, codeIPPending, codeIPNeedsAdmin:
		return retry.Paused(0, e)
	case codeIPBlockedOneDay:
		return retry.Paused(24*time.Hour, e)
	case codeIPBlockedOneHour:
		return retry.Paused(time.Hour, e)
	case codeDailyQuota:
		return retry.Throttled(untilShanghaiMidnight(now), e)
	}
	return e
}
