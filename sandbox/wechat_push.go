package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/providers/wechat/push"
)

// Development push settings, shared with herald dev: a receiver configured
// with them takes the sandbox's pushes.
const (
	DevPushToken      = "sandboxPushToken"
	DevEncodingAESKey = "sandboxEncodingAESKey0123456789abcdefghijkl"
	// DevOriginalID is the ToUserName of the sandbox's pushes.
	DevOriginalID = "gh_sandbox00001"
)

// Push defaults and bounds.
const (
	// DefaultPushRetryWait is how long a push waits before its next try.
	DefaultPushRetryWait = time.Second
	// pushTries is how often a push is tried, as WeChat does.
	pushTries = 3
	// pushTimeout bounds one try: WeChat drops the connection after 5 s.
	pushTimeout = 5 * time.Second
	// maxPushQueue bounds the pushes waiting; more are dropped (counted).
	maxPushQueue = 10000
	// pushWorkers deliver pushes concurrently.
	pushWorkers = 4
	// maxTemplates bounds the templates of one subscribe call.
	maxTemplates = 20
)

// The asynchronous failure the sandbox reports for asyncfail… recipients.
// WeChat does not document its non-zero sent-event codes; these are made up.
const (
	asyncFailPrefix = "asyncfail"
	asyncFailCode   = "10005"
	asyncFailStatus = "fail:user block"
)

// PushTarget is where and how the sandbox pushes one app's subscription
// events, as WeChat's "message push" console settings say.
type PushTarget struct {
	// URL is the receiver's push URL for the app, e.g.
	// http://127.0.0.1:8081/wechat/default.
	URL string
	// Token signs every push.
	Token string
	// EncodingAESKey encrypts pushes in compatible and safe mode.
	EncodingAESKey string
	// Mode is push.ModePlain (default), push.ModeCompatible or
	// push.ModeSafe.
	Mode push.Mode
	// Format is push.FormatXML (default) or push.FormatJSON.
	Format push.Format
}

// pusher delivers pushes in the background: a bounded queue, a few
// workers, up to pushTries tries each, stopped by close.
type pusher struct {
	now     func() time.Time
	wait    time.Duration
	client  *http.Client
	targets map[string]*target // appid -> target; fixed after New

	mu    sync.Mutex
	queue []pending
	wake  chan struct{} // size 1: a coalescing wake-up

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	delivered, failed, dropped, retries atomic.Int64
}

type target struct {
	url    string
	sealer *push.Sealer
}

type pending struct {
	appID string
	msg   push.Message
}

func newPusher(opts Options, now func() time.Time) (*pusher, error) {
	p := &pusher{
		now:     now,
		wait:    opts.PushRetryWait,
		client:  &http.Client{Timeout: pushTimeout},
		targets: make(map[string]*target, len(opts.WeChatPush)),
		wake:    make(chan struct{}, 1),
	}
	if p.wait <= 0 {
		p.wait = DefaultPushRetryWait
	}
	for appID, t := range opts.WeChatPush {
		s := &push.Sealer{AppID: appID, Token: t.Token, Mode: t.Mode, Format: t.Format}
		if s.Mode == "" {
			s.Mode = push.ModePlain
		}
		if s.Format == "" {
			s.Format = push.FormatXML
		}
		switch {
		case t.URL == "" || t.Token == "":
			return nil, fmt.Errorf("sandbox push %s: url and token are required", appID)
		case s.Mode != push.ModePlain && s.Mode != push.ModeCompatible && s.Mode != push.ModeSafe:
			return nil, fmt.Errorf("sandbox push %s: mode %q is not plain, compatible or safe", appID, t.Mode)
		case s.Format != push.FormatXML && s.Format != push.FormatJSON:
			return nil, fmt.Errorf("sandbox push %s: format %q is not xml or json", appID, t.Format)
		case s.Mode != push.ModePlain:
			k, err := push.ParseKey(t.EncodingAESKey)
			if err != nil {
				return nil, fmt.Errorf("sandbox push %s: %w", appID, err)
			}
			s.Key = k
		}
		p.targets[appID] = &target{url: t.URL, sealer: s}
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if len(p.targets) > 0 {
		for range pushWorkers {
			p.wg.Go(p.run)
		}
	}
	return p, nil
}

// enqueue queues m for appID's receiver; it reports false when appID has
// none. A full queue drops the push, as an overloaded platform might.
func (p *pusher) enqueue(appID string, m push.Message) bool {
	if _, ok := p.targets[appID]; !ok {
		return false
	}
	p.mu.Lock()
	if len(p.queue) >= maxPushQueue || p.ctx.Err() != nil {
		p.mu.Unlock()
		p.dropped.Add(1)
		return true
	}
	p.queue = append(p.queue, pending{appID, m})
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return true
}

func (p *pusher) next() (pending, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 {
		return pending{}, false
	}
	m := p.queue[0]
	p.queue = slices.Delete(p.queue, 0, 1)
	if len(p.queue) > 0 { // more for the other workers
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	return m, true
}

func (p *pusher) run() {
	for {
		m, ok := p.next()
		if !ok {
			select {
			case <-p.ctx.Done():
				return
			case <-p.wake:
				continue
			}
		}
		p.deliver(m)
	}
}

// deliver makes up to pushTries tries of one push, the same request each
// time, until the receiver answers success.
func (p *pusher) deliver(m pending) {
	t := p.targets[m.appID]
	q, body, err := t.sealer.Seal(m.msg, p.now())
	if err != nil {
		p.failed.Add(1)
		return
	}
	url := t.url + "?" + q.Encode()
	if strings.Contains(t.url, "?") {
		url = t.url + "&" + q.Encode()
	}
	for try := 1; ; try++ {
		if p.try(url, body) {
			p.delivered.Add(1)
			return
		}
		if try == pushTries || p.ctx.Err() != nil {
			p.failed.Add(1)
			return
		}
		select {
		case <-p.ctx.Done():
			p.failed.Add(1)
			return
		case <-time.After(p.wait):
			p.retries.Add(1)
		}
	}
}

// try posts one push; WeChat takes "success" or an empty body.
func (p *pusher) try(url string, body []byte) bool {
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err != nil || resp.StatusCode != http.StatusOK {
		return false
	}
	a := strings.TrimSpace(string(answer))
	return a == "success" || a == ""
}

// close stops the workers; pushes not yet made are dropped.
func (p *pusher) close() {
	p.cancel()
	p.wg.Wait()
	p.mu.Lock()
	p.dropped.Add(int64(len(p.queue)))
	p.queue = nil
	p.mu.Unlock()
}

// grants are the one-time grants of (appid, openid, template), as WeChat
// keeps them: an accept adds one, a send takes one, a rejection from the
// settings (change event) takes them all.
type grants struct {
	mu sync.Mutex
	n  map[grantKey]int
}

type grantKey struct{ appID, openID, template string }

func (g *grants) add(k grantKey) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n[k]++
	return g.n[k]
}

func (g *grants) clear(k grantKey) {
	g.mu.Lock()
	delete(g.n, k)
	g.mu.Unlock()
}

func (g *grants) count(k grantKey) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n[k]
}

// take spends one grant; false when there is none.
func (g *grants) take(k grantKey) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n[k] == 0 {
		return false
	}
	if g.n[k]--; g.n[k] == 0 {
		delete(g.n, k)
	}
	return true
}

// subscribeAnswer is the answer of the subscribe and change controls.
type subscribeAnswer struct {
	AppID     string         `json:"appid"`
	OpenID    string         `json:"openid"`
	Event     string         `json:"event"`
	Status    string         `json:"status"`
	Templates []string       `json:"templates"`
	Pushed    bool           `json:"pushed"`
	Grants    map[string]int `json:"grants,omitempty"`
}

// userAction reads the appid, openid and templates of a control call, or
// answers 400 or 404.
func (w *wechatAPI) userAction(rw http.ResponseWriter, r *http.Request) (appID, openID string, templates []string, ok bool) {
	q := r.URL.Query()
	appID, openID, templates = q.Get("appid"), q.Get("openid"), q["template"]
	if appID == "" && len(w.apps) == 1 {
		for id := range w.apps {
			appID = id
		}
	}
	switch _, known := w.apps[appID]; {
	case !known:
		http.Error(rw, "unknown appid "+strconv.Quote(appID), http.StatusNotFound)
	case openID == "":
		http.Error(rw, "openid is required", http.StatusBadRequest)
	case len(templates) == 0 || len(templates) > maxTemplates || slices.Contains(templates, ""):
		http.Error(rw, fmt.Sprintf("1 to %d template parameters are required", maxTemplates), http.StatusBadRequest)
	default:
		return appID, openID, templates, true
	}
	return "", "", nil, false
}

// handleSubscribe acts out a user answering the subscription popup:
// accept adds a grant per template, and a popup event is pushed.
func (w *wechatAPI) handleSubscribe(rw http.ResponseWriter, r *http.Request) {
	appID, openID, templates, ok := w.userAction(rw, r)
	if !ok {
		return
	}
	status := r.URL.Query().Get("status")
	if status == "" {
		status = "accept"
	}
	if status != "accept" && status != "reject" {
		http.Error(rw, "status must be accept or reject", http.StatusBadRequest)
		return
	}
	a := subscribeAnswer{AppID: appID, OpenID: openID, Event: push.EventPopup, Status: status, Templates: templates}
	if w.grants != nil {
		a.Grants = make(map[string]int, len(templates))
		for _, tpl := range templates {
			k := grantKey{appID, openID, tpl}
			if status == "accept" {
				w.grants.add(k)
			}
			a.Grants[tpl] = w.grants.count(k)
		}
	}
	a.Pushed = w.pushEvent(appID, openID, push.EventPopup, templates, func(tpl string) push.Item {
		return push.Item{TemplateID: tpl, SubscribeStatus: status, PopupScene: "0"}
	})
	writeJSON(rw, http.StatusOK, a)
}

// handleChange acts out a user turning templates off from a message card
// or the settings: their grants are gone, and a change event is pushed.
func (w *wechatAPI) handleChange(rw http.ResponseWriter, r *http.Request) {
	appID, openID, templates, ok := w.userAction(rw, r)
	if !ok {
		return
	}
	a := subscribeAnswer{AppID: appID, OpenID: openID, Event: push.EventChange, Status: "reject", Templates: templates}
	if w.grants != nil {
		a.Grants = make(map[string]int, len(templates))
		for _, tpl := range templates {
			w.grants.clear(grantKey{appID, openID, tpl})
			a.Grants[tpl] = 0
		}
	}
	a.Pushed = w.pushEvent(appID, openID, push.EventChange, templates, func(tpl string) push.Item {
		return push.Item{TemplateID: tpl, SubscribeStatus: "reject"}
	})
	writeJSON(rw, http.StatusOK, a)
}

// handleGrants answers the grants left of an openid's templates.
func (w *wechatAPI) handleGrants(rw http.ResponseWriter, r *http.Request) {
	appID, openID, templates, ok := w.userAction(rw, r)
	if !ok {
		return
	}
	if w.grants == nil {
		http.Error(rw, "grants are off (herald sandbox --grants)", http.StatusNotFound)
		return
	}
	out := make(map[string]int, len(templates))
	for _, tpl := range templates {
		out[tpl] = w.grants.count(grantKey{appID, openID, tpl})
	}
	writeJSON(rw, http.StatusOK, map[string]any{"appid": appID, "openid": openID, "grants": out})
}

// pushEvent queues one push of event with an item per template; it reports
// whether appID has a receiver to push to.
func (w *wechatAPI) pushEvent(appID, openID, event string, templates []string, item func(string) push.Item) bool {
	m := push.Message{ToUserName: DevOriginalID, FromUserName: openID, CreateTime: w.s.now().Unix(),
		MsgType: push.MsgTypeEvent, Event: event}
	for _, tpl := range templates {
		m.Items = append(m.Items, item(tpl))
	}
	return w.pusher.enqueue(appID, m)
}

// pushSent queues the sent event of an accepted send: success, or the
// scripted asynchronous failure for asyncfail… recipients.
func (w *wechatAPI) pushSent(appID, toUser, template string, msgID int64) {
	if _, ok := w.pusher.targets[appID]; !ok {
		return // no pushes: the send's success path stays as cheap as it was
	}
	it := push.Item{TemplateID: template, MsgID: msgID, ErrorCode: "0", ErrorStatus: "success"}
	if strings.HasPrefix(toUser, asyncFailPrefix) {
		it.ErrorCode, it.ErrorStatus = asyncFailCode, asyncFailStatus
	}
	w.pusher.enqueue(appID, push.Message{ToUserName: DevOriginalID, FromUserName: toUser, CreateTime: w.s.now().Unix(),
		MsgType: push.MsgTypeEvent, Event: push.EventSent, Items: []push.Item{it}})
}
