package wechat

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/heraldhq/herald/retry"
)

func BenchmarkClassifySend(b *testing.B) {
	now := time.Now()
	jitter := func(time.Duration) time.Duration { return 0 }
	answers := []*APIError{
		{HTTPStatus: 200, Code: codeSystemBusy, Message: "system error"},
		{HTTPStatus: 200, Code: codeUserRefused, Message: "user refuse to accept the msg"},
		{HTTPStatus: 200, Code: codeInvalidToken, Message: "invalid credential"},
		{HTTPStatus: 200, Code: codeInvalidTemplate, Message: "invalid template_id"},
		{HTTPStatus: 503, Message: "HTTP 503 Service Unavailable"},
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		err := classifySend(answers[i%len(answers)], now, jitter)
		if retry.Decide(err).Action == 0 && err == nil {
			b.Fatal("no decision")
		}
		i++
	}
}

func BenchmarkParseSendResponse(b *testing.B) {
	raw := []byte(`{"errcode":0,"errmsg":"ok","msgid":2345678901234567890}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseSendResponse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenGet is the hot path of every send: the local copy of a
// token that is not due for refresh.
func BenchmarkTokenGet(b *testing.B) {
	tokens := NewMemoryTokens()
	c, err := New(Config{AppID: "wx0123456789abcdef", AppSecret: "secret", BaseURL: "http://127.0.0.1:1"}, tokens, nil)
	if err != nil {
		b.Fatal(err)
	}
	c.tokens.fetch = func(context.Context) (Token, error) {
		return newToken("token-value", 2*time.Hour, time.Now()), nil
	}
	ctx := context.Background()
	if _, err := c.tokens.get(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if tok, err := c.tokens.get(ctx); err != nil || tok == "" {
				b.Error(errors.Join(err, errors.New("no token")))
				return
			}
		}
	})
}
