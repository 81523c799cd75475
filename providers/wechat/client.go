package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/internal/httpclient"
	"github.com/heraldhq/herald/producer/job"
)

// API paths, relative to Config.BaseURL.
const (
	sendPath        = "/cgi-bin/message/subscribe/send"
	stableTokenPath = "/cgi-bin/stable_token"
	tokenPath       = "/cgi-bin/token"
)

// maxBody caps how much of an answer is read; WeChat's are tiny.
const maxBody = 64 << 10

// Send defaults (platform-apis A.1: both are sent, with these defaults).
const (
	defaultState = "formal"
	defaultLang  = "zh_CN"
)

// Client sends subscription messages for one WeChat app. It is safe for
// concurrent use.
type Client struct {
	cfg       Config
	hc        *http.Client
	sendURL   string
	tokens    *tokenSource
	now       func() time.Time
	jitter    func(n time.Duration) time.Duration // in [0, n)
	refreshes *prometheus.CounterVec              // nil without WithRegisterer
}

// Option configures a [Client] beyond its [Config].
type Option interface {
	apply(*Client) error
}

type optionFunc func(*Client) error

func (f optionFunc) apply(c *Client) error { return f(c) }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *Client) error {
		if now == nil {
			return errors.New("nil clock")
		}
		c.now = now
		return nil
	})
}

// WithRegisterer counts token fetches in
// herald_token_refreshes_total{platform,app,result} on reg, app being
// [Config.Name]. Clients of
// several apps may share one registerer.
func WithRegisterer(reg prometheus.Registerer) Option {
	return optionFunc(func(c *Client) error {
		cv := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_token_refreshes_total",
			Help: "Access tokens fetched from the platform's token endpoint, by result (ok, error).",
		}, []string{"platform", "app", "result"})
		if err := reg.Register(cv); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return fmt.Errorf("register metrics: %w", err)
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return fmt.Errorf("register metrics: %w", err)
			}
			cv = existing
		}
		c.refreshes = cv
		return nil
	})
}

// New returns a client for cfg's app. tokens is shared by every replica
// (nil: a private [MemoryTokens]). hc nil gets [httpclient.New]'s client,
// with a connection pool sized for hundreds of calls in flight; every call
// is bounded by cfg.Timeout through its context. No client follows a
// redirect here (see [httpclient.NoRedirects]): a 3xx is a transient
// failure.
func New(cfg Config, tokens TokenStore, hc *http.Client, opts ...Option) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("wechat config: %w", err)
	}
	if tokens == nil {
		tokens = NewMemoryTokens()
	}
	if hc == nil {
		hc = httpclient.New()
	}
	// Whatever client it is given, a provider follows no redirect.
	hc = httpclient.NoRedirects(hc)
	base := strings.TrimRight(cfg.BaseURL, "/")
	c := &Client{
		cfg:     cfg,
		hc:      hc,
		sendURL: base + sendPath + "?access_token=",
		now:     time.Now,
		jitter:  func(n time.Duration) time.Duration { return rand.N(n) },
	}
	for _, o := range opts {
		if err := o.apply(c); err != nil {
			return nil, fmt.Errorf("wechat option: %w", err)
		}
	}
	if c.refreshes != nil {
		for _, r := range []string{"ok", "error"} {
			c.refreshes.WithLabelValues(job.WeChat, cfg.Name, r)
		}
	}
	c.tokens = &tokenSource{
		appID:   cfg.AppID,
		store:   tokens,
		fetch:   c.fetchToken,
		now:     c.now,
		lockTTL: max(2*cfg.Timeout, 5*time.Second),
	}
	return c, nil
}

// AppID is the WeChat appid the client sends for.
func (c *Client) AppID() string { return c.cfg.AppID }

// Warm gets an access token, so the first send need not wait for one.
// It implements worker.Warmer.
func (c *Client) Warm(ctx context.Context) error {
	_, err := c.tokens.get(ctx)
	return err
}

// sendRequest is the subscribeMessage.send body (platform-apis A.1).
type sendRequest struct {
	ToUser           string               `json:"touser"`
	TemplateID       string               `json:"template_id"`
	Page             string               `json:"page,omitempty"`
	Data             map[string]job.Value `json:"data"`
	MiniprogramState string               `json:"miniprogram_state"`
	Lang             string               `json:"lang"`
}

// Send posts j to WeChat. The error, if any, carries its decision (see
// classify.go): a plain error is transient. When WeChat rejects the access
// token (40001, 40014, 42001), the token is invalidated where it is still
// the current one, a token is got again and the call is made once more;
// a second rejection is transient.
func (c *Client) Send(ctx context.Context, j job.Job) (job.Result, error) {
	req := sendRequest{
		ToUser:           j.ToUser,
		TemplateID:       j.TemplateID,
		Page:             j.Page,
		Data:             j.Data,
		MiniprogramState: defaultState,
		Lang:             defaultLang,
	}
	if o := j.WeChat; o != nil {
		if o.MiniprogramState != "" {
			req.MiniprogramState = o.MiniprogramState
		}
		if o.Lang != "" {
			req.Lang = o.Lang
		}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return job.Result{}, fmt.Errorf("wechat send %s: encode: %w", j.TemplateID, err)
	}
	res, err := c.sendWithToken(ctx, body)
	if err != nil {
		return job.Result{}, fmt.Errorf("wechat send %s: %w", j.TemplateID, err)
	}
	return res, nil
}

func (c *Client) sendWithToken(ctx context.Context, body []byte) (job.Result, error) {
	token, err := c.tokens.get(ctx)
	if err != nil {
		return job.Result{}, err
	}
	res, err := c.post(ctx, token, body)
	var ae *APIError
	if errors.As(err, &ae) && isTokenRejected(ae.Code) {
		if err := c.tokens.invalidate(ctx, token); err != nil {
			return job.Result{}, err
		}
		if token, err = c.tokens.get(ctx); err != nil {
			return job.Result{}, err
		}
		res, err = c.post(ctx, token, body)
	}
	if errors.As(err, &ae) {
		return job.Result{}, classifySend(ae, c.now(), c.jitter)
	}
	return res, err // nil, or a transport error: transient
}

// post makes one send call with token.
func (c *Client) post(ctx context.Context, token string, body []byte) (job.Result, error) {
	ctx, cancel := httpclient.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.sendURL+url.QueryEscape(token), bytes.NewReader(body))
	if err != nil {
		return job.Result{}, redact(err, sendPath, token, c.cfg.AppSecret)
	}
	req.Header.Set("Content-Type", "application/json")
	raw, status, err := c.do(req)
	if err != nil {
		return job.Result{}, redact(err, sendPath, token, c.cfg.AppSecret)
	}
	if status != http.StatusOK {
		return job.Result{}, httpError(status, raw, token, c.cfg.AppSecret)
	}
	r, err := parseSendResponse(raw)
	if err != nil {
		return job.Result{}, fmt.Errorf("decode answer: %w", err)
	}
	if r.ErrCode != codeOK {
		e := &APIError{HTTPStatus: status, Code: r.ErrCode, Message: scrub(r.ErrMsg, token, c.cfg.AppSecret)}
		if e.Code == codeBadData {
			e.Field = extractField(r.ErrMsg)
		}
		return job.Result{}, e
	}
	return job.Result{MsgID: r.MsgID}, nil
}

// do runs req and reads at most maxBody of the answer. A redirect is an
// error: it is never followed.
func (c *Client) do(req *http.Request) ([]byte, int, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if err := httpclient.Redirected(resp); err != nil {
		return nil, 0, err
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, 0, err
	}
	return raw, resp.StatusCode, nil
}

// httpError is a non-200 answer; the outcome is unknown, so it is
// transient.
func httpError(status int, raw []byte, secrets ...string) *APIError {
	const snippet = 256
	if len(raw) > snippet {
		raw = raw[:snippet]
	}
	msg := "HTTP " + strconv.Itoa(status) + " " + http.StatusText(status)
	if b := strings.TrimSpace(string(raw)); b != "" {
		msg += ": " + scrub(b, secrets...)
	}
	return &APIError{HTTPStatus: status, Message: msg}
}

// sendResponse is the part of a send answer herald uses.
type sendResponse struct {
	ErrCode int
	ErrMsg  string
	MsgID   string // decimal, as WeChat sent it
}

// parseSendResponse decodes a send answer. An answer without errcode is an
// error. The msgid is decoded as an int64 from its literal (never through a
// float64, which would round a 19-digit id) and returned in decimal; a
// success whose msgid is not an int64 keeps the literal as sent rather
// than turning an accepted message into a failure.
func parseSendResponse(b []byte) (sendResponse, error) {
	var w struct {
		ErrCode *int            `json:"errcode"`
		ErrMsg  string          `json:"errmsg"`
		MsgID   json.RawMessage `json:"msgid"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return sendResponse{}, err
	}
	if w.ErrCode == nil {
		return sendResponse{}, errors.New("answer has no errcode")
	}
	r := sendResponse{ErrCode: *w.ErrCode, ErrMsg: w.ErrMsg}
	if r.ErrCode == codeOK {
		r.MsgID = decodeMsgID(w.MsgID)
	}
	return r, nil
}

func decodeMsgID(raw json.RawMessage) string {
	s := string(bytes.TrimSpace(raw))
	switch {
	case s == "" || s == "null":
		return ""
	case s[0] == '"':
		var str string
		if json.Unmarshal(raw, &str) == nil {
			return str
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return strconv.FormatInt(n, 10)
	}
	return s
}

// stableTokenRequest is the /cgi-bin/stable_token body; force_refresh is
// always false (platform-apis A.4: forcing is global and scarce).
type stableTokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// maxExpiresIn caps a token lifetime WeChat could not mean.
const maxExpiresIn = 24 * time.Hour

// fetchToken gets a token from the configured endpoint and counts it.
func (c *Client) fetchToken(ctx context.Context) (Token, error) {
	t, err := c.fetchTokenOnce(ctx)
	if c.refreshes != nil {
		result := "ok"
		if err != nil {
			result = "error"
		}
		c.refreshes.WithLabelValues(job.WeChat, c.cfg.Name, result).Inc()
	}
	if err != nil {
		return Token{}, fmt.Errorf("wechat token %s: %w", c.cfg.AppID, err)
	}
	return t, nil
}

func (c *Client) fetchTokenOnce(ctx context.Context) (Token, error) {
	ctx, cancel := httpclient.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	base := strings.TrimRight(c.cfg.BaseURL, "/")
	path := stableTokenPath
	var req *http.Request
	var err error
	if c.cfg.TokenEndpoint == EndpointToken {
		path = tokenPath
		q := url.Values{"grant_type": {"client_credential"}, "appid": {c.cfg.AppID}, "secret": {c.cfg.AppSecret}}
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, base+path+"?"+q.Encode(), nil)
	} else {
		body, merr := json.Marshal(stableTokenRequest{
			GrantType: "client_credential", AppID: c.cfg.AppID, Secret: c.cfg.AppSecret,
		})
		if merr != nil {
			return Token{}, merr
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
		if req != nil {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	if err != nil {
		return Token{}, redact(err, path, c.cfg.AppSecret)
	}
	started := c.now()
	raw, status, err := c.do(req)
	if err != nil {
		return Token{}, redact(err, path, c.cfg.AppSecret)
	}
	if status != http.StatusOK {
		return Token{}, httpError(status, raw, c.cfg.AppSecret)
	}
	var w struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		ErrCode     int    `json:"errcode"`
		ErrMsg      string `json:"errmsg"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return Token{}, fmt.Errorf("decode answer: %w", err)
	}
	if w.ErrCode != codeOK {
		return Token{}, classifyToken(&APIError{HTTPStatus: status, Code: w.ErrCode, Message: scrub(w.ErrMsg, c.cfg.AppSecret)}, c.now())
	}
	if w.AccessToken == "" || w.ExpiresIn <= 0 {
		return Token{}, errors.New("answer has no access_token or expires_in")
	}
	expiresIn := maxExpiresIn
	if w.ExpiresIn < int64(maxExpiresIn/time.Second) {
		expiresIn = time.Duration(w.ExpiresIn) * time.Second
	}
	return newToken(w.AccessToken, expiresIn, started), nil
}
