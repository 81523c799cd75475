package alipay

import (
	"errors"
	"testing"

	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/retry"
)

func isPermanent(err error, reason string) bool {
	d := retry.Decide(err)
	return d.Action == retry.DeadLetter && d.Reason == reason
}

// decision is what a test expects retry.Decide to make of an error.
type decision struct {
	Action retry.Action
	Reason string
	Limit  int
}

func decide(err error) decision {
	d := retry.Decide(err)
	return decision{Action: d.Action, Reason: d.Reason, Limit: d.Limit}
}

var (
	wantRetry  = decision{Action: retry.Retry}
	wantPause  = decision{Action: retry.Pause}
	wantLimits = decision{Action: retry.Retry, Reason: job.ReasonPlatformRejected, Limit: unknownCodeMaxAttempts}
)

func dead(reason string) decision { return decision{Action: retry.DeadLetter, Reason: reason} }

// TestClassify has one row per ALI row of platform-apis C.1 (the
// transport rows are in TestSendTransientFailures), plus the rows herald
// adds for codes C.1 does not name.
func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		give APIError
		want decision
	}{
		{"20000 unavailable", APIError{Code: "20000", Msg: "Service Currently Unavailable", SubCode: "isp.unknow-error"}, wantRetry},
		{"20001 app_auth_token", APIError{Code: "20001", Msg: "Insufficient Token Permissions", SubCode: "aop.invalid-app-auth-token"}, wantPause},
		{"40001 missing argument", APIError{Code: "40001", Msg: "Missing Required Arguments", SubCode: "isv.missing-method"}, dead(job.ReasonPlatformRejected)},
		{"40002 invalid-signature", APIError{Code: "40002", Msg: "Invalid Arguments", SubCode: "isv.invalid-signature"}, wantPause},
		{"40002 invalid-app-id", APIError{Code: "40002", Msg: "Invalid Arguments", SubCode: "isv.invalid-app-id"}, wantPause},
		{"40002 invalid-timestamp", APIError{Code: "40002", Msg: "Invalid Arguments", SubCode: "isv.invalid-timestamp"}, wantPause},
		{"40003 conditions", APIError{Code: "40003", Msg: "Insufficient Conditions", SubCode: "isv.invalid-auth-relations"}, wantPause},
		{"40006 permissions", APIError{Code: "40006", Msg: "Insufficient Permissions", SubCode: "isv.insufficient-isv-permissions"}, wantPause},
		{"40004 USER_TEMPLATE_ILLEGAL", APIError{Code: "40004", Msg: "Business Failed", SubCode: "USER_TEMPLATE_ILLEGAL"}, dead(job.ReasonInvalidTemplate)},
		{"40004 USER_TEMPLATE_LACK_KEYWORD", APIError{Code: "40004", Msg: "Business Failed", SubCode: "USER_TEMPLATE_LACK_KEYWORD"}, dead(job.ReasonInvalidTemplateData)},
		{"40004 USER_KEYWORD_LENGTH_ERROR", APIError{Code: "40004", Msg: "Business Failed", SubCode: "USER_KEYWORD_LENGTH_ERROR"}, dead(job.ReasonInvalidTemplateData)},
		{"40004 FORM_ID_NOT_MATCH_APPID", APIError{Code: "40004", Msg: "Business Failed", SubCode: "FORM_ID_NOT_MATCH_APPID"}, dead(job.ReasonPlatformRejected)},
		{"40004 FORM_ID_OVER_TIME", APIError{Code: "40004", Msg: "Business Failed", SubCode: "FORM_ID_OVER_TIME"}, dead(job.ReasonPlatformRejected)},
		{"40004 TRADE_NO_NOT_MATCH_USERID", APIError{Code: "40004", Msg: "Business Failed", SubCode: "TRADE_NO_NOT_MATCH_USERID"}, dead(job.ReasonPlatformRejected)},
		{"40004 other", APIError{Code: "40004", Msg: "Business Failed", SubCode: "SOMETHING_NEW"}, dead(job.ReasonPlatformRejected)},
		// Not in C.1.
		{"40002 other sub_code", APIError{Code: "40002", Msg: "Invalid Arguments", SubCode: "isv.invalid-parameter"}, wantLimits},
		{"unknown code", APIError{Code: "99999", Msg: "?"}, wantLimits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.give
			err := classify(&e)
			if got := decide(err); got != tt.want {
				t.Fatalf("classify(%v) = %+v, want %+v", &e, got, tt.want)
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae != &e {
				t.Fatalf("classify lost the APIError: %v", err)
			}
		})
	}
}

func TestAPIErrorDetailAndIs(t *testing.T) {
	tests := []struct {
		name string
		give APIError
		want retry.Detail
	}{
		{"sub_code and sub_msg win", APIError{Code: "40004", Msg: "Business Failed", SubCode: "USER_TEMPLATE_LACK_KEYWORD", SubMsg: "模板缺少关键词"},
			retry.Detail{Code: "USER_TEMPLATE_LACK_KEYWORD", Message: "模板缺少关键词"}},
		{"code and msg without them", APIError{Code: "20000", Msg: "Service Currently Unavailable"},
			retry.Detail{Code: "20000", Message: "Service Currently Unavailable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.give
			if got := retry.Decide(classify(&e)).Detail; got != tt.want {
				t.Fatalf("detail = %+v, want %+v", got, tt.want)
			}
		})
	}
	err := classify(&APIError{Code: "40004", SubCode: "USER_TEMPLATE_ILLEGAL"})
	if !errors.Is(err, &APIError{Code: "40004"}) || !errors.Is(err, &APIError{Code: "40004", SubCode: "USER_TEMPLATE_ILLEGAL"}) {
		t.Fatal("errors.Is does not match by code and sub_code")
	}
	if errors.Is(err, &APIError{Code: "40004", SubCode: "FORM_ID_OVER_TIME"}) || errors.Is(err, &APIError{Code: "20000"}) {
		t.Fatal("errors.Is matches another answer")
	}
}
