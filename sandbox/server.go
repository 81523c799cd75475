package sandbox

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Development defaults, shared with herald dev.
const (
	// DevAddr is where herald sandbox listens by default.
	DevAddr = "127.0.0.1:9100"
	// DevWeChatAppID and DevWeChatSecret are the WeChat app the sandbox
	// knows when no other is configured.
	DevWeChatAppID  = "wx0123456789abcdef"
	DevWeChatSecret = "sandbox-secret"
)

// DefaultTokenTTL is the lifetime of a sandbox access token, as on WeChat.
const DefaultTokenTTL = 7200 * time.Second

// Options configure a [Server].
type Options struct {
	// Latency is added to every send call and Alipay query (not to token or
	// control calls).
	// It waits on a timer and burns no CPU.
	Latency time.Duration
	// WeChatApps maps appid to secret; empty means the dev app
	// ([DevWeChatAppID] with [DevWeChatSecret]).
	WeChatApps map[string]string
	// TokenTTL is an access token's lifetime; default [DefaultTokenTTL].
	TokenTTL time.Duration
	// Record keeps every accepted message for [Server.Accepted].
	Record bool
	// AlipayApps maps an Alipay app_id to the app's public key (PEM or
	// bare base64), which the gateway checks request signatures with.
	// Empty: every Alipay call answers isv.invalid-app-id.
	AlipayApps map[string]string
	// AlipayGatewayKey is the RSA private key (PEM, PKCS#1 or PKCS#8) the
	// Alipay gateway signs its answers with; herald verifies them with its
	// public half. Required with AlipayApps. [NewAlipayKeys] makes a
	// matching set.
	AlipayGatewayKey string

	// WeChatPush maps a WeChat appid to the receiver its subscription
	// events are pushed to: popup and change events from the control
	// endpoints, a sent event after every accepted send. Empty: no pushes.
	// Pushes leave in the background, each tried up to 3 times, as WeChat
	// does, until the receiver answers success; [Server.Close] stops them.
	WeChatPush map[string]PushTarget
	// PushRetryWait is the wait between tries of a push; default
	// [DefaultPushRetryWait].
	PushRetryWait time.Duration
	// Grants keeps one-time grants per (appid, openid, template) as WeChat
	// does: an accepted popup adds one, a send takes one, and a send with
	// none left answers 43101. Off: every send passes this check.
	// For Alipay it keeps a grant per subscribed one-time relation set
	// (see [Server.SetAlipayRelation]); an accepted send takes one, and
	// the relation goes with the last, but a send is never refused (Alipay
	// does not document that answer).
	Grants bool
}

// Validate reports what is wrong with the options [New] would panic on:
// the push targets.
func (o Options) Validate() error {
	p, err := newPusher(Options{WeChatPush: o.WeChatPush}, time.Now)
	if err != nil {
		return err
	}
	p.close()
	return nil
}

// Message is a send the sandbox accepted.
type Message struct {
	Platform   string            `json:"platform"`
	AppID      string            `json:"app_id"`
	ToUser     string            `json:"to_user"`
	TemplateID string            `json:"template_id"`
	Page       string            `json:"page,omitempty"`
	Data       map[string]string `json:"data"`
	MsgID      string            `json:"msgid"`
	// At is when the sandbox accepted the message.
	At time.Time `json:"at"`
}

// PlatformStats counts one platform's calls.
type PlatformStats struct {
	// TokenFetches counts calls to each token endpoint, answered or not
	// (WeChat: "token" and "stable_token").
	TokenFetches map[string]int64 `json:"token_fetches,omitempty"`
	// SendCalls counts send calls, whatever the answer. For Alipay, every
	// gateway call but subscribe.query.
	SendCalls int64 `json:"send_calls"`
	// QueryCalls counts Alipay's subscribe.query calls, whatever the
	// answer.
	QueryCalls int64 `json:"query_calls,omitempty"`
	// Accepted counts sends answered with success.
	Accepted int64 `json:"accepted"`
	// Pushes counts subscription event pushes the receiver answered
	// success; PushFailures those it did not after every try, PushRetries
	// the tries after a first, PushesDropped those never made (a full
	// queue, or Close). WeChat only, with Options.WeChatPush.
	Pushes        int64 `json:"pushes,omitempty"`
	PushFailures  int64 `json:"push_failures,omitempty"`
	PushRetries   int64 `json:"push_retries,omitempty"`
	PushesDropped int64 `json:"pushes_dropped,omitempty"`
}

// Stats maps a platform ("wechat") to its counters. It is also served as
// JSON on GET /sandbox/stats.
type Stats map[string]PlatformStats

// Server is a fake of the platforms' HTTP APIs. It is an http.Handler and
// safe for concurrent use. Routes:
//
//	/cgi-bin/...                     WeChat (see doc.go)
//	POST /gateway.do                 Alipay OpenAPI v2 (see doc.go)
//	GET  /sandbox/stats              Stats as JSON
//	GET  /sandbox/messages           accepted messages as JSON (with Record)
//	POST /sandbox/{platform}/outage?seconds=N
//	                                 every send answers HTTP 503 for N s; 0 ends it
//	POST /sandbox/wechat/rotate?appid=   invalidate the current tokens
//	POST /sandbox/wechat/expire?appid=   make the current tokens expire now
//	POST /sandbox/wechat/subscribe?appid=&openid=&template=&status=
//	                                 a user answers the popup (push, grants)
//	POST /sandbox/wechat/change?appid=&openid=&template=
//	                                 a user turns templates off (push, grants)
//	GET  /sandbox/wechat/grants?appid=&openid=&template=
//	                                 grants left (with Options.Grants)
//	POST /sandbox/alipay/subscribe?app_id=&user=&template=&state=
//	                                 the relations subscribe.query reports
type Server struct {
	mux       *http.ServeMux
	now       func() time.Time
	latency   time.Duration
	record    bool
	platforms map[string]*platform
	wechat    *wechatAPI
	alipay    *alipayAPI

	mu       sync.Mutex
	accepted []Message
}

var _ http.Handler = (*Server)(nil)

// api is one platform's fake: it embeds *platform and mounts its routes.
// A platform is a file of its own plus one s.add line in New; Alipay's
// gateway goes at /gateway.do.
type api interface {
	base() *platform
	routes(mux *http.ServeMux)
}

// platform is what every platform's fake shares: its counters and its
// outage switch.
type platform struct {
	name         string
	sendCalls    atomic.Int64
	accepted     atomic.Int64
	tokenFetches map[string]*atomic.Int64 // keys fixed at construction
	outageUntil  atomic.Int64             // unix nanoseconds
}

func newPlatform(name string, tokenEndpoints ...string) *platform {
	p := &platform{name: name, tokenFetches: make(map[string]*atomic.Int64)}
	for _, e := range tokenEndpoints {
		p.tokenFetches[e] = new(atomic.Int64)
	}
	return p
}

func (p *platform) base() *platform { return p }

func (p *platform) inOutage(now time.Time) bool { return now.UnixNano() < p.outageUntil.Load() }

// New returns a sandbox serving every platform. It panics on options
// [Options.Validate] refuses. With Options.WeChatPush, call
// [Server.Close] to stop the pushes.
func New(opts Options) *Server {
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = DefaultTokenTTL
	}
	s := &Server{
		mux:       http.NewServeMux(),
		now:       time.Now,
		latency:   opts.Latency,
		record:    opts.Record,
		platforms: make(map[string]*platform),
	}
	s.wechat = newWeChat(s, opts)
	s.add(s.wechat)
	s.alipay = newAlipay(s, opts)
	s.add(s.alipay)
	s.mux.HandleFunc("GET /sandbox/stats", s.handleStats)
	s.mux.HandleFunc("GET /sandbox/messages", s.handleMessages)
	s.mux.HandleFunc("POST /sandbox/{platform}/outage", s.handleOutage)
	return s
}

// add mounts a platform's routes and counts it in Stats.
func (s *Server) add(a api) {
	s.platforms[a.base().name] = a.base()
	a.routes(s.mux)
}

// Close stops the pushes in flight and drops those queued. The server
// still answers afterwards, pushing nothing.
func (s *Server) Close() { s.wechat.pusher.close() }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := make(Stats, len(s.platforms))
	for name, p := range s.platforms {
		ps := PlatformStats{SendCalls: p.sendCalls.Load(), Accepted: p.accepted.Load()}
		if len(p.tokenFetches) > 0 {
			ps.TokenFetches = make(map[string]int64, len(p.tokenFetches))
			for e, n := range p.tokenFetches {
				ps.TokenFetches[e] = n.Load()
			}
		}
		st[name] = ps
	}
	ps := st["wechat"]
	p := s.wechat.pusher
	ps.Pushes, ps.PushFailures, ps.PushRetries, ps.PushesDropped = p.delivered.Load(), p.failed.Load(), p.retries.Load(), p.dropped.Load()
	st["wechat"] = ps
	as := st["alipay"]
	as.QueryCalls = s.alipay.queryCalls.Load()
	st["alipay"] = as
	return st
}

// Accepted returns the messages accepted so far, oldest first (with
// Options.Record; otherwise none).
func (s *Server) Accepted() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.accepted)
}

// TakeAccepted returns the messages accepted so far, oldest first, like
// [Server.Accepted], and forgets them: a long-lived recording sandbox (the
// bench's, between phases) holds only what came after.
func (s *Server) TakeAccepted() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	msgs := s.accepted
	s.accepted = nil
	return msgs
}

// SetOutage makes every send of platform answer HTTP 503 for d; d <= 0
// ends an outage. It reports false for an unknown platform.
func (s *Server) SetOutage(platform string, d time.Duration) bool {
	p, ok := s.platforms[platform]
	if !ok {
		return false
	}
	until := int64(0)
	if d > 0 {
		until = s.now().Add(d).UnixNano()
	}
	p.outageUntil.Store(until)
	return true
}

// RotateWeChat invalidates the current access tokens of appID (every app
// when empty), as a force refresh elsewhere would. It returns how many
// tokens it invalidated.
func (s *Server) RotateWeChat(appID string) int { return s.wechat.rotate(appID) }

// ExpireWeChat makes the current access tokens of appID (every app when
// empty) expire now, so sends with them get 42001.
func (s *Server) ExpireWeChat(appID string) int { return s.wechat.expire(appID) }

func (s *Server) accept(m Message) {
	if !s.record {
		return
	}
	m.At = s.now()
	s.mu.Lock()
	s.accepted = append(s.accepted, m)
	s.mu.Unlock()
}

// delay waits d on a timer, or until the request is gone.
func delay(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Server) handleMessages(w http.ResponseWriter, _ *http.Request) {
	msgs := s.Accepted()
	if msgs == nil {
		msgs = []Message{}
	}
	writeJSON(w, http.StatusOK, msgs)
}

func (s *Server) handleOutage(w http.ResponseWriter, r *http.Request) {
	secs, err := strconv.ParseFloat(r.URL.Query().Get("seconds"), 64)
	if err != nil || secs < 0 {
		http.Error(w, "seconds must be a number >= 0", http.StatusBadRequest)
		return
	}
	name := r.PathValue("platform")
	if !s.SetOutage(name, time.Duration(secs*float64(time.Second))) {
		http.Error(w, "unknown platform "+strconv.Quote(name), http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"platform": name, "seconds": secs})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
