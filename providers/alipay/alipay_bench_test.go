package alipay

import (
	"testing"

	"github.com/heraldhq/herald/producer/job"
)

func benchClient(b *testing.B) *Client {
	b.Helper()
	k := keys(b)
	c, err := New(Config{
		AppID:           testAppID,
		PrivateKey:      k.AppPrivateKey,
		AlipayPublicKey: k.GatewayPublicKey,
		Gateway:         "http://127.0.0.1:1/gateway.do",
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func BenchmarkSign(b *testing.B) {
	c := benchClient(b)
	msg := []byte("app_id=2021000000000042&biz_content={...}&charset=utf-8&format=JSON&method=alipay.open.app.mini.templatemessage.send&sign_type=RSA2&timestamp=2026-11-23 12:00:00&version=1.0")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sign(c.key, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequest is everything a send does before the HTTP call:
// encoding the job and signing the form.
func BenchmarkRequest(b *testing.B) {
	c := benchClient(b)
	j := job.Job{
		ID: "order-42", Platform: job.Alipay, App: job.DefaultApp, TemplateID: "TPL-0001",
		ToUser: "2088102000000000", Page: "pages/index/index",
		Data: map[string]job.Value{"keyword1": {Value: "Shipped"}, "keyword2": {Value: "2026-11-23"}},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.request(j); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClassify(b *testing.B) {
	answers := []*APIError{
		{Code: codeUnavailable},
		{Code: codeInvalidArguments, SubCode: subInvalidSignature},
		{Code: codeBusinessFailed, SubCode: subTemplateIllegal},
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = classify(answers[i%len(answers)])
		i++
	}
}
