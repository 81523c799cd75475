package alipay

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/internal/httpclient"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/retry"
)

// The OpenAPI methods herald calls.
const (
	// Method sends a subscription message.
	Method = "alipay.open.app.mini.templatemessage.send"
	// QueryMethod asks which templates a user subscribed to.
	QueryMethod = "alipay.open.app.messagetemplate.subscribe.query"
)

// Fixed common parameters (platform-apis B.1).
const (
	paramFormat   = "JSON"
	paramCharset  = "utf-8"
	paramSignType = "RSA2"
	paramVersion  = "1.0"
	// TimestampLayout is the timestamp parameter's format, in Asia/Shanghai.
	TimestampLayout = "2006-01-02 15:04:05"
)

// maxBody caps how much of an answer is read; Alipay's are small.
const maxBody = 64 << 10

// shanghai is China Standard Time. China has kept UTC+8 without daylight
// saving since 1991, so a fixed zone is exact and needs no tzdata.
var shanghai = time.FixedZone("CST", 8*60*60)

// Client sends subscription messages for one Alipay app. It is safe for
// concurrent use. Signing is stateless: every replica signs on its own.
type Client struct {
	cfg        Config
	hc         *http.Client
	key        *rsa.PrivateKey
	alipayKeys []*rsa.PublicKey
	toField    string // to_open_id or to_user_id
	userField  string // open_id or user_id
	now        func() time.Time
}

// Option configures a [Client] beyond its [Config].
type Option interface {
	apply(*Client) error
}

type optionFunc func(*Client) error

func (f optionFunc) apply(c *Client) error { return f(c) }

// WithClock replaces time.Now, which stamps requests, for tests.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *Client) error {
		if now == nil {
			return errors.New("nil clock")
		}
		c.now = now
		return nil
	})
}

// New returns a client for cfg's app, with its keys parsed. hc nil gets
// [httpclient.New]'s client; every call is bounded by cfg.Timeout through
// its context. No client follows a redirect here (see
// [httpclient.NoRedirects]): a 3xx is a transient failure.
func New(cfg Config, hc *http.Client, opts ...Option) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("alipay config: %w", err)
	}
	key, err := ParsePrivateKey(cfg.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("alipay config: %w", err)
	}
	pubs, err := ParsePublicKeys(cfg.AlipayPublicKey)
	if err != nil {
		return nil, fmt.Errorf("alipay config: alipay_public_key: %w", err)
	}
	if hc == nil {
		hc = httpclient.New()
	}
	// Whatever client it is given, a provider follows no redirect.
	hc = httpclient.NoRedirects(hc)
	c := &Client{
		cfg:        cfg,
		hc:         hc,
		key:        key,
		alipayKeys: pubs,
		toField:    "to_open_id",
		userField:  "open_id",
		now:        time.Now,
	}
	if cfg.Recipient == RecipientUserID {
		c.toField, c.userField = "to_user_id", "user_id"
	}
	for _, o := range opts {
		if err := o.apply(c); err != nil {
			return nil, fmt.Errorf("alipay option: %w", err)
		}
	}
	return c, nil
}

// AppID is the Alipay app_id the client sends for.
func (c *Client) AppID() string { return c.cfg.AppID }

// Send posts j to the gateway and believes the answer only once its
// signature verifies. The error, if any, carries its decision (see
// classify.go); a plain error is transient:
//
//   - a transport error, a timeout, an HTTP status other than 200 or an
//     answer that does not parse: the outcome is unknown;
//   - an answer whose sign does not verify ([ErrBadSignature]), or a
//     success or business failure without a sign ([ErrUnsigned]): the
//     answer is not believed, the outcome is unknown.
//
// Unsigned gateway errors (invalid-app-id carries no sign) are classified
// by code: they can hold the app or the job but never end the job.
func (c *Client) Send(ctx context.Context, j job.Job) (job.Result, error) {
	form, err := c.request(j)
	if err != nil {
		return job.Result{}, fmt.Errorf("alipay send %s: %w", j.TemplateID, err)
	}
	if err := c.post(ctx, form); err != nil {
		return job.Result{}, fmt.Errorf("alipay send %s: %w", j.TemplateID, err)
	}
	return job.Result{}, nil // Alipay returns no message id
}

// request builds the signed form for j.
func (c *Client) request(j job.Job) (url.Values, error) {
	data, err := encodeData(j.Data)
	if err != nil {
		return nil, fmt.Errorf("encode data: %w", err)
	}
	biz := map[string]string{
		c.toField:          j.ToUser,
		"user_template_id": j.TemplateID,
		"data":             string(data),
	}
	if j.Page != "" {
		biz["page"] = j.Page
	}
	bizJSON, err := encodeJSON(biz)
	if err != nil {
		return nil, fmt.Errorf("encode biz_content: %w", err)
	}
	return c.signedForm(Method, bizJSON)
}

// signedForm is the signed form of a call to method with biz_content
// bizJSON: the common parameters of platform-apis B.1 and their sign.
func (c *Client) signedForm(method string, bizJSON []byte) (url.Values, error) {
	params := map[string]string{
		"app_id":      c.cfg.AppID,
		"method":      method,
		"format":      paramFormat,
		"charset":     paramCharset,
		"sign_type":   paramSignType,
		"timestamp":   c.now().In(shanghai).Format(TimestampLayout),
		"version":     paramVersion,
		"biz_content": string(bizJSON),
	}
	sig, err := sign(c.key, []byte(canonical(params)))
	if err != nil {
		return nil, err
	}
	form := make(url.Values, len(params)+1)
	for k, v := range params {
		form.Set(k, v)
	}
	form.Set("sign", sig)
	return form, nil
}

// post makes the send call and judges the answer.
func (c *Client) post(ctx context.Context, form url.Values) error {
	a, err := c.call(ctx, form, responseKey)
	if err != nil {
		return err
	}
	return c.judge(a)
}

// call posts form to the gateway and parses the answer, whose response
// member is key (or error_response). It verifies nothing: the caller
// judges the answer. Every error leaves the outcome unknown.
func (c *Client) call(ctx context.Context, form url.Values, key string) (answer, error) {
	ctx, cancel := httpclient.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.Gateway, strings.NewReader(form.Encode()))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	if err := httpclient.Redirected(resp); err != nil {
		return answer{}, err // never followed: transient
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return answer{}, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return answer{}, httpError(resp.StatusCode, raw)
	}
	a, err := parseResponse(raw, key)
	if err != nil {
		return answer{}, fmt.Errorf("unparsable answer, outcome unknown: %w", err)
	}
	return a, nil
}

// judge verifies a parsed answer and classifies it: nil for a verified
// success.
func (c *Client) judge(a answer) error {
	signed := a.sign != ""
	if signed && !verify(c.alipayKeys, a.raw, a.sign) {
		return retry.Alert(fmt.Errorf("%w (%s claims code %s), outcome unknown", ErrBadSignature, a.key, a.body.Code))
	}
	if a.body.Code == codeSuccess {
		switch {
		case !signed:
			return retry.Alert(fmt.Errorf("%w: a success must be signed, outcome unknown", ErrUnsigned))
		case a.key != responseKey:
			return fmt.Errorf("%s with code %s, outcome unknown", a.key, a.body.Code)
		}
		return nil
	}
	e := &APIError{Code: a.body.Code, Msg: a.body.Msg, SubCode: a.body.SubCode, SubMsg: a.body.SubMsg}
	err := classify(e)
	if !signed && settles(err) {
		// Transient, keeping Alipay's words for a retries_exhausted dead
		// letter.
		return retry.Alert(fmt.Errorf("%w (%w), outcome unknown", ErrUnsigned, e))
	}
	return err
}

// httpError is a non-200 answer; v2 answers errors with 200, so the
// outcome is unknown and the error is transient.
func httpError(status int, raw []byte) error {
	const snippet = 256
	if len(raw) > snippet {
		raw = raw[:snippet]
	}
	msg := "http " + strconv.Itoa(status) + " " + http.StatusText(status)
	if b := strings.TrimSpace(string(raw)); b != "" {
		msg += ": " + b
	}
	return errors.New(msg)
}

// encodeData is the data parameter: the keywords as the JSON string
// {"keyword":{"value":"…"}}, keys sorted.
func encodeData(data map[string]job.Value) ([]byte, error) {
	if data == nil {
		data = map[string]job.Value{}
	}
	return encodeJSON(data)
}

// encodeJSON marshals v without escaping <, > and & (Alipay needs no
// HTML-safe JSON, and escapes would eat into the 2048-byte data limit).
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
