package wechat

import (
	"errors"
	"testing"
	"time"

	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/retry"
)

// now is 2026-03-01 22:30 in Shanghai: 1h30m before the daily quotas reset.
var classifyNow = time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)

func noJitter(time.Duration) time.Duration { return 0 }

// TestClassifySend has one row per WX row of platform-apis C.1 that a send
// can answer.
func TestClassifySend(t *testing.T) {
	const untilMidnight = 90 * time.Minute
	tests := []struct {
		name string
		give int
		want retry.Decision
	}{
		{"-1 system busy: backoff", -1, retry.Decision{Action: retry.Retry}},
		{"40001 token: transient after the one refresh", 40001, retry.Decision{Action: retry.Retry}},
		{"40014 token: transient after the one refresh", 40014, retry.Decision{Action: retry.Retry}},
		{"42001 token: transient after the one refresh", 42001, retry.Decision{Action: retry.Retry}},
		{"40003 bad openid", 40003, retry.Decision{Action: retry.DeadLetter, Reason: job.ReasonInvalidRecipient}},
		{"40037 bad template", 40037, retry.Decision{Action: retry.DeadLetter, Reason: job.ReasonInvalidTemplate, Alert: true}},
		{"41030 bad page", 41030, retry.Decision{Action: retry.DeadLetter, Reason: job.ReasonInvalidPage}},
		{"43101 user refused", 43101, retry.Decision{Action: retry.DeadLetter, Reason: job.ReasonUserRefused}},
		{"43108 concurrent openid: 1-5 s", 43108, retry.Decision{Action: retry.Retry, Delay: time.Second}},
		{"45009 daily quota: until 00:00 Shanghai", 45009, retry.Decision{Action: retry.Throttle, Delay: untilMidnight}},
		{"45011 minute quota: 60 s", 45011, retry.Decision{Action: retry.Throttle, Delay: time.Minute}},
		{"45168 sensitive", 45168, retry.Decision{Action: retry.DeadLetter, Reason: job.ReasonSensitiveContent}},
		{"47001 malformed body", 47001, retry.Decision{Action: retry.DeadLetter, Reason: job.ReasonPlatformRejected, Alert: true}},
		{"47003 bad data", 47003, retry.Decision{Action: retry.DeadLetter, Reason: job.ReasonInvalidTemplateData}},
		{"48001 unauthorised: pause", 48001, retry.Decision{Action: retry.Pause}},
		{"61007 no permission set: pause", 61007, retry.Decision{Action: retry.Pause}},
		{"41001 token missing: pause", 41001, retry.Decision{Action: retry.Pause}},
		{"other: 3 attempts then platform_rejected", 99999,
			retry.Decision{Action: retry.Retry, Limit: 3, Reason: job.ReasonPlatformRejected}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &APIError{HTTPStatus: 200, Code: tt.give, Message: "msg rid: 1-2-3"}
			got := retry.Decide(classifySend(e, classifyNow, noJitter))
			tt.want.Detail = e.Detail()
			if got != tt.want {
				t.Fatalf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestClassifyToken has one row per token-endpoint row of C.1.
func TestClassifyToken(t *testing.T) {
	tests := []struct {
		name string
		give int
		want retry.Decision
	}{
		{"40013 bad appid", 40013, retry.Decision{Action: retry.Pause}},
		{"40125 bad secret", 40125, retry.Decision{Action: retry.Pause}},
		{"40243 secret frozen", 40243, retry.Decision{Action: retry.Pause}},
		{"41002 appid missing", 41002, retry.Decision{Action: retry.Pause}},
		{"41004 secret missing", 41004, retry.Decision{Action: retry.Pause}},
		{"40002 bad grant_type", 40002, retry.Decision{Action: retry.Pause}},
		{"40164 ip not whitelisted", 40164, retry.Decision{Action: retry.Pause}},
		{"89501 ip pending", 89501, retry.Decision{Action: retry.Pause}},
		{"89503 ip needs admin", 89503, retry.Decision{Action: retry.Pause}},
		{"89506 ip blocked 24 h", 89506, retry.Decision{Action: retry.Pause, Delay: 24 * time.Hour}},
		{"89507 ip blocked 1 h", 89507, retry.Decision{Action: retry.Pause, Delay: time.Hour}},
		{"45009 daily quota", 45009, retry.Decision{Action: retry.Throttle, Delay: 90 * time.Minute}},
		{"-1 busy: transient", -1, retry.Decision{Action: retry.Retry}},
		{"other: transient", 12345, retry.Decision{Action: retry.Retry}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &APIError{HTTPStatus: 200, Code: tt.give, Message: "msg"}
			got := retry.Decide(classifyToken(e, classifyNow))
			tt.want.Detail = e.Detail()
			if got != tt.want {
				t.Fatalf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestClassifyHTTPErrorIsTransient(t *testing.T) {
	e := httpError(503, []byte("<html>busy</html>"))
	got := retry.Decide(classifySend(e, classifyNow, noJitter))
	if got.Action != retry.Retry || got.Limit != 0 || got.Detail.Code != "" || got.Detail.Message != "HTTP 503 Service Unavailable: <html>busy</html>" {
		t.Fatalf("Decide(HTTP 503) = %+v", got)
	}
}

func TestBusyDelayStaysWithinOneToFiveSeconds(t *testing.T) {
	tests := []struct {
		name   string
		jitter func(time.Duration) time.Duration
		want   time.Duration
	}{
		{"least jitter", func(time.Duration) time.Duration { return 0 }, time.Second},
		{"most jitter", func(n time.Duration) time.Duration { return n - 1 }, 5*time.Second - 1},
	}
	for _, tt := range tests {
		got := retry.Decide(classifySend(&APIError{Code: 43108}, classifyNow, tt.jitter)).Delay
		if got != tt.want {
			t.Errorf("%s: delay %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestUntilShanghaiMidnight(t *testing.T) {
	tests := []struct {
		give time.Time
		want time.Duration
	}{
		{time.Date(2026, 3, 1, 15, 59, 0, 0, time.UTC), time.Minute},                     // 23:59 in Shanghai
		{time.Date(2026, 3, 1, 16, 0, 0, 0, time.UTC), 24 * time.Hour},                   // 00:00 in Shanghai
		{time.Date(2026, 12, 31, 16, 30, 0, 0, time.UTC), 23*time.Hour + 30*time.Minute}, // 00:30 on Jan 1
	}
	for _, tt := range tests {
		if got := untilShanghaiMidnight(tt.give); got != tt.want {
			t.Errorf("untilShanghaiMidnight(%v) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestAPIErrorMatchesByCode(t *testing.T) {
	err := retry.Permanent(job.ReasonUserRefused, &APIError{HTTPStatus: 200, Code: 43101, Message: "x"})
	if !errors.Is(err, &APIError{Code: 43101}) {
		t.Fatal("errors.Is by code failed through retry wrapping")
	}
	if errors.Is(err, &APIError{Code: 40003}) {
		t.Fatal("errors.Is matched another code")
	}
	if d := retry.Decide(err).Detail; d.Code != "43101" || d.Message != "x" {
		t.Fatalf("Detail = %+v", d)
	}
}
