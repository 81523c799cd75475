package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// WeChat token endpoints, as counted in [PlatformStats].TokenFetches.
const (
	WeChatTokenEndpoint       = "token"
	WeChatStableTokenEndpoint = "stable_token"
)

const (
	// tokenGrace is how long a token stays valid after /cgi-bin/token
	// issued its successor (platform-apis A.4).
	tokenGrace = 5 * time.Minute
	// maxRequest caps a request body.
	maxRequest = 1 << 20
)

// wechatAPI fakes the WeChat endpoints herald calls.
type wechatAPI struct {
	*platform
	s       *Server
	ttl     time.Duration
	scripts []wxScript
	rules   *wxRules
	pusher  *pusher // subscription events to the receivers
	grants  *grants // one-time grants; nil: not kept

	mu     sync.RWMutex
	apps   map[string]*wxApp
	tokens map[string]*wxToken // every token still worth an answer

	flakyMu sync.Mutex
	flaky   map[string]struct{} // flaky recipients that already failed once

	msgID  atomic.Int64
	ridSeq atomic.Uint32
}

type wxApp struct {
	id     string
	secret string
	stable *wxToken // current token of /cgi-bin/stable_token
	plain  *wxToken // current token of /cgi-bin/token
}

// wxToken is an issued token. Fields change under wechatAPI.mu.
type wxToken struct {
	value     string
	appID     string
	expiresAt time.Time
	revokeAt  time.Time // zero: never; afterwards answers 40001
}

func newWeChat(s *Server, opts Options) *wechatAPI {
	w := &wechatAPI{
		platform: newPlatform("wechat", WeChatTokenEndpoint, WeChatStableTokenEndpoint),
		s:        s,
		ttl:      opts.TokenTTL,
		scripts:  wechatScripts(),
		rules:    newWXRules(),
		apps:     make(map[string]*wxApp),
		tokens:   make(map[string]*wxToken),
		flaky:    make(map[string]struct{}),
	}
	p, err := newPusher(opts, func() time.Time { return s.now() })
	if err != nil {
		panic("sandbox: " + err.Error())
	}
	w.pusher = p
	if opts.Grants {
		w.grants = &grants{n: make(map[grantKey]int)}
	}
	apps := opts.WeChatApps
	if len(apps) == 0 {
		apps = map[string]string{DevWeChatAppID: DevWeChatSecret}
	}
	for id, secret := range apps {
		w.apps[id] = &wxApp{id: id, secret: secret}
	}
	// 19-digit message ids, as WeChat's can be: beyond float64 precision.
	w.msgID.Store(2_000_000_000_000_000_000 + mrand.Int64N(1_000_000_000_000_000_000))
	return w
}

func (w *wechatAPI) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /cgi-bin/token", w.handleToken)
	mux.HandleFunc("POST /cgi-bin/stable_token", w.handleStableToken)
	mux.HandleFunc("POST /cgi-bin/message/subscribe/send", w.handleSend)
	mux.HandleFunc("POST /sandbox/wechat/rotate", func(rw http.ResponseWriter, r *http.Request) {
		writeJSON(rw, http.StatusOK, map[string]int{"invalidated": w.rotate(r.URL.Query().Get("appid"))})
	})
	mux.HandleFunc("POST /sandbox/wechat/expire", func(rw http.ResponseWriter, r *http.Request) {
		writeJSON(rw, http.StatusOK, map[string]int{"expired": w.expire(r.URL.Query().Get("appid"))})
	})
	mux.HandleFunc("POST /sandbox/wechat/subscribe", w.handleSubscribe)
	mux.HandleFunc("POST /sandbox/wechat/change", w.handleChange)
	mux.HandleFunc("GET /sandbox/wechat/grants", w.handleGrants)
}

// rid is a request id in WeChat's form, <hex>-<hex>-<hex>.
func (w *wechatAPI) rid() string {
	return fmt.Sprintf("%08x-%08x-%08x", uint32(w.s.now().Unix()), mrand.Uint32(), w.ridSeq.Add(1))
}

// writeErr answers errcode with errmsg msg and a rid, as WeChat does.
func (w *wechatAPI) writeErr(rw http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}{code, msg + " rid: " + w.rid()})
	rw.Header().Set("Content-Type", "application/json; encoding=utf-8")
	_, _ = rw.Write(b)
}

// credentials checks an appid and secret; it returns the app or writes
// the error answer.
func (w *wechatAPI) credentials(rw http.ResponseWriter, grantType, appID, secret string) *wxApp {
	switch {
	case grantType != "client_credential":
		w.writeErr(rw, 40002, "invalid grant_type")
	case appID == "":
		w.writeErr(rw, 41002, "appid missing")
	case secret == "":
		w.writeErr(rw, 41004, "appsecret missing")
	default:
		app, ok := w.apps[appID] // apps never change after New
		switch {
		case !ok:
			w.writeErr(rw, 40013, "invalid appid")
		case app.secret != secret:
			w.writeErr(rw, 40125, "invalid appsecret")
		default:
			return app
		}
	}
	return nil
}

func (w *wechatAPI) handleToken(rw http.ResponseWriter, r *http.Request) {
	w.tokenFetches[WeChatTokenEndpoint].Add(1)
	q := r.URL.Query()
	app := w.credentials(rw, q.Get("grant_type"), q.Get("appid"), q.Get("secret"))
	if app == nil {
		return
	}
	now := w.s.now()
	w.mu.Lock()
	// Every fetch rotates: the previous token keeps working for 5 minutes.
	if prev := app.plain; prev != nil {
		if end := now.Add(tokenGrace); prev.revokeAt.IsZero() || end.Before(prev.revokeAt) {
			prev.revokeAt = end
		}
	}
	t := w.issue(app, now)
	app.plain = t
	w.mu.Unlock()
	writeToken(rw, t.value, w.ttl)
}

func (w *wechatAPI) handleStableToken(rw http.ResponseWriter, r *http.Request) {
	w.tokenFetches[WeChatStableTokenEndpoint].Add(1)
	var req struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequest))
	if err != nil || json.Unmarshal(body, &req) != nil {
		w.writeErr(rw, 47001, "data format error")
		return
	}
	app := w.credentials(rw, req.GrantType, req.AppID, req.Secret)
	if app == nil {
		return
	}
	now := w.s.now()
	// The stable token rotates this long before expiry, the old one staying
	// valid (5 minutes on WeChat; less for very short sandbox lifetimes).
	early := min(tokenGrace, w.ttl/2)
	w.mu.Lock()
	cur := app.stable
	switch {
	case req.ForceRefresh:
		if cur != nil {
			cur.revokeAt = now
		}
	case cur != nil && w.valid(cur, now) && cur.expiresAt.Sub(now) > early:
		left := cur.expiresAt.Sub(now)
		w.mu.Unlock()
		writeToken(rw, cur.value, left)
		return
	}
	t := w.issue(app, now)
	app.stable = t
	w.mu.Unlock()
	writeToken(rw, t.value, w.ttl)
}

// issue makes a new token; w.mu is held.
func (w *wechatAPI) issue(app *wxApp, now time.Time) *wxToken {
	for v, t := range w.tokens { // forget tokens long dead
		if now.Sub(t.expiresAt) > time.Hour || (!t.revokeAt.IsZero() && now.Sub(t.revokeAt) > time.Hour) {
			delete(w.tokens, v)
		}
	}
	var b [48]byte
	_, _ = rand.Read(b[:])
	t := &wxToken{value: "sbx_" + hex.EncodeToString(b[:]), appID: app.id, expiresAt: now.Add(w.ttl)}
	w.tokens[t.value] = t
	return t
}

// valid reports whether t still works at now; w.mu is held.
func (w *wechatAPI) valid(t *wxToken, now time.Time) bool {
	return now.Before(t.expiresAt) && (t.revokeAt.IsZero() || now.Before(t.revokeAt))
}

func writeToken(rw http.ResponseWriter, token string, left time.Duration) {
	secs := max(int64(left/time.Second), 1)
	rw.Header().Set("Content-Type", "application/json; encoding=utf-8")
	_, _ = fmt.Fprintf(rw, `{"access_token":%q,"expires_in":%d}`, token, secs)
}

// rotate revokes the current tokens of appID (all apps when empty).
func (w *wechatAPI) rotate(appID string) int {
	return w.eachLiveToken(appID, func(app *wxApp, t *wxToken, now time.Time) {
		t.revokeAt = now
		app.stable, app.plain = nil, nil
	})
}

// expire makes the current tokens of appID (all apps when empty) expire.
func (w *wechatAPI) expire(appID string) int {
	return w.eachLiveToken(appID, func(_ *wxApp, t *wxToken, now time.Time) { t.expiresAt = now })
}

// eachLiveToken calls fn, under the lock, for every still valid current
// token of appID (all apps when empty), and returns how many there were.
func (w *wechatAPI) eachLiveToken(appID string, fn func(app *wxApp, t *wxToken, now time.Time)) int {
	now := w.s.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for id, app := range w.apps {
		if appID != "" && id != appID {
			continue
		}
		for _, t := range []*wxToken{app.stable, app.plain} {
			if t != nil && w.valid(t, now) {
				fn(app, t, now)
				n++
			}
		}
	}
	return n
}

// checkToken returns the token's app, or the errcode and errmsg a send
// with it gets.
func (w *wechatAPI) checkToken(token string, now time.Time) (appID string, code int, msg string) {
	if token == "" {
		return "", 41001, "access_token missing"
	}
	w.mu.RLock()
	t, ok := w.tokens[token]
	var revoked, expired bool
	if ok {
		appID = t.appID
		revoked = !t.revokeAt.IsZero() && !now.Before(t.revokeAt)
		expired = !now.Before(t.expiresAt)
	}
	w.mu.RUnlock()
	switch {
	case !ok || revoked:
		return "", 40001, "invalid credential, access_token is invalid or not latest"
	case expired:
		return "", 42001, "access_token expired"
	}
	return appID, 0, ""
}

type wxValue struct {
	Value string `json:"value"`
}

// wxSendRequest is the subscribeMessage.send body.
type wxSendRequest struct {
	ToUser           string             `json:"touser"`
	TemplateID       string             `json:"template_id"`
	Page             string             `json:"page"`
	Data             map[string]wxValue `json:"data"`
	MiniprogramState string             `json:"miniprogram_state"`
	Lang             string             `json:"lang"`
}

func (w *wechatAPI) handleSend(rw http.ResponseWriter, r *http.Request) {
	w.sendCalls.Add(1)
	now := w.s.now()
	if w.inOutage(now) {
		http.Error(rw, "503 Service Temporarily Unavailable", http.StatusServiceUnavailable)
		return
	}
	delay(r.Context(), w.s.latency)
	appID, code, msg := w.checkToken(r.URL.Query().Get("access_token"), now)
	if code != 0 {
		w.writeErr(rw, code, msg)
		return
	}
	var req wxSendRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequest))
	if err != nil || json.Unmarshal(body, &req) != nil {
		w.writeErr(rw, 47001, "data format error")
		return
	}
	switch {
	case req.ToUser == "":
		w.writeErr(rw, 40003, "invalid openid")
		return
	case req.TemplateID == "" || strings.HasPrefix(req.TemplateID, "bad"):
		w.writeErr(rw, 40037, "invalid template_id")
		return
	case strings.HasPrefix(req.Page, "missing/"):
		w.writeErr(rw, 41030, "invalid page")
		return
	}
	if key, empty := w.rules.firstBadValue(req.Data); key != "" {
		what := "invalid"
		if empty {
			what = "is emtpy" // sic: WeChat's spelling
		}
		w.writeErr(rw, 47003, "argument invalid! data."+key+".value "+what)
		return
	}
	for _, sc := range w.scripts {
		if !strings.HasPrefix(req.ToUser, sc.prefix) {
			continue
		}
		if !w.play(rw, r, sc, req.ToUser) {
			return
		}
		break
	}
	if w.grants != nil && !w.grants.take(grantKey{appID, req.ToUser, req.TemplateID}) {
		w.writeErr(rw, 43101, "user refuse to accept the msg")
		return
	}
	n := w.msgID.Add(1)
	id := strconv.FormatInt(n, 10)
	w.accepted.Add(1)
	w.pushSent(appID, req.ToUser, req.TemplateID, n)
	if w.s.record {
		data := make(map[string]string, len(req.Data))
		for k, v := range req.Data {
			data[k] = v.Value
		}
		w.s.accept(Message{Platform: "wechat", AppID: appID, ToUser: req.ToUser, TemplateID: req.TemplateID,
			Page: req.Page, Data: data, MsgID: id})
	}
	rw.Header().Set("Content-Type", "application/json; encoding=utf-8")
	_, _ = io.WriteString(rw, `{"errcode":0,"errmsg":"ok","msgid":`+id+`}`)
}

// play acts out a scripted answer; it reports whether the send goes on to
// succeed.
func (w *wechatAPI) play(rw http.ResponseWriter, r *http.Request, sc wxScript, toUser string) bool {
	switch {
	case sc.status != 0:
		http.Error(rw, http.StatusText(sc.status), sc.status)
		return false
	case sc.extra > 0:
		delay(r.Context(), sc.extra)
		return true
	case sc.async:
		return true // the sent event carries the failure (pushSent)
	case sc.once:
		w.flakyMu.Lock()
		_, failed := w.flaky[toUser]
		w.flaky[toUser] = struct{}{}
		w.flakyMu.Unlock()
		if failed {
			return true
		}
	}
	w.writeErr(rw, sc.code, sc.msg)
	return false
}
