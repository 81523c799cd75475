package receiver

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/heraldhq/herald/internal/text"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/providers/wechat/push"
)

// DefaultWeChatPrefix is where WeChat apps' push URLs hang by default.
const DefaultWeChatPrefix = "/wechat/"

// WeChatAnswer is what a WeChat push is answered once stored.
const WeChatAnswer = "success"

// WeChat refusal reasons.
const (
	ReasonSignature    = "signature"     // 401: signature does not hold
	ReasonMsgSignature = "msg_signature" // 401: msg_signature does not hold
	ReasonStale        = "stale"         // 401: timestamp more than 5 minutes off
	ReasonMode         = "mode"          // 401: plaintext push to an encrypted app, or the reverse
	ReasonDecrypt      = "decrypt"       // 401: the keys do not decrypt Encrypt
	ReasonAppID        = "appid"         // 401: the push names another app
	ReasonMalformed    = "malformed"     // 400: the body or the message cannot be parsed
)

// WeChatApp is one app's push settings.
type WeChatApp struct {
	// Name is the app's name in the config: its URL's last segment and
	// its events' app.
	Name string
	push.Config
}

// weChat is WeChat's [Platform].
type weChat struct {
	prefix string
	apps   map[string]*push.Verifier
	names  []string
}

// NewWeChat returns WeChat's platform serving apps under prefix (default
// [DefaultWeChatPrefix]).
func NewWeChat(prefix string, apps []WeChatApp) (Platform, error) {
	if prefix == "" {
		prefix = DefaultWeChatPrefix
	}
	w := &weChat{prefix: prefix, apps: make(map[string]*push.Verifier, len(apps))}
	for _, a := range apps {
		if a.Name == "" {
			return nil, errors.New("wechat push: an app has no name")
		}
		if _, dup := w.apps[a.Name]; dup {
			return nil, fmt.Errorf("wechat push: app %s twice", a.Name)
		}
		v, err := push.NewVerifier(a.Config)
		if err != nil {
			return nil, fmt.Errorf("apps.%s.wechat.%w", a.Name, err)
		}
		w.apps[a.Name] = v
		w.names = append(w.names, a.Name)
	}
	slices.Sort(w.names)
	return w, nil
}

func (w *weChat) Name() string   { return job.WeChat }
func (w *weChat) Prefix() string { return w.prefix }
func (w *weChat) Apps() []string { return w.names }

func (w *weChat) Reasons() []string {
	return []string{ReasonSignature, ReasonMsgSignature, ReasonStale, ReasonMode, ReasonDecrypt, ReasonAppID, ReasonMalformed}
}

// Open answers the console's URL check (GET) and takes pushes (POST).
func (w *weChat) Open(r *http.Request, app string, now time.Time) (Push, error) {
	v := w.apps[app]
	q := r.URL.Query()
	if r.Method == http.MethodGet {
		echo, err := v.CheckURL(q, now)
		if err != nil {
			return Push{}, refusal(err)
		}
		return Push{Answer: echo}, nil
	}
	if err := v.CheckQuery(q, now); err != nil {
		return Push{}, refusal(err)
	}
	body, err := ReadBody(r)
	if err != nil {
		return Push{}, err
	}
	m, err := v.Open(q, body, now)
	if err != nil {
		return Push{}, refusal(err)
	}
	p, err := weChatEvents(m)
	if err != nil {
		return Push{}, refusal(err)
	}
	return p, nil
}

// refusal maps the push package's errors to answers.
func refusal(err error) *Refusal {
	for _, c := range []struct {
		err    error
		reason string
	}{
		{push.ErrSignature, ReasonSignature},
		{push.ErrMsgSignature, ReasonMsgSignature},
		{push.ErrStale, ReasonStale},
		{push.ErrMode, ReasonMode},
		{push.ErrDecrypt, ReasonDecrypt},
		{push.ErrAppID, ReasonAppID},
	} {
		if errors.Is(err, c.err) {
			return &Refusal{Status: http.StatusUnauthorized, Reason: c.reason, Err: err}
		}
	}
	return &Refusal{Status: http.StatusBadRequest, Reason: ReasonMalformed, Err: err}
}

// kinds maps WeChat's events to herald's.
var kinds = map[string]string{
	push.EventPopup:  job.EventPopup,
	push.EventChange: job.EventChange,
	push.EventSent:   job.EventSent,
}

// weChatEvents makes one event per List item of a subscription event; any
// other message is ignored. Errors wrap push.ErrMalformed.
func weChatEvents(m push.Message) (Push, error) {
	p := Push{Answer: WeChatAnswer}
	kind, ok := kinds[m.Event]
	switch {
	case m.MsgType != push.MsgTypeEvent:
		p.Ignored = IgnoredMessage
		return p, nil
	case !ok:
		p.Ignored = IgnoredEvent
		return p, nil
	case m.FromUserName == "":
		return p, fmt.Errorf("%w: %s without FromUserName", push.ErrMalformed, m.Event)
	case m.CreateTime <= 0:
		return p, fmt.Errorf("%w: %s without CreateTime", push.ErrMalformed, m.Event)
	case len(m.Items) == 0:
		return p, fmt.Errorf("%w: %s without List items", push.ErrMalformed, m.Event)
	}
	created := time.Unix(m.CreateTime, 0).UTC()
	for i, it := range m.Items {
		if it.TemplateID == "" {
			return p, fmt.Errorf("%w: item %d has no TemplateId", push.ErrMalformed, i)
		}
		e := job.SubscriptionEvent{Event: kind, ToUser: m.FromUserName, TemplateID: it.TemplateID, CreatedAt: created}
		switch kind {
		case job.EventSent:
			e.Status = job.StatusFailed
			if it.ErrorCode == "0" {
				e.Status = job.StatusSuccess
			}
			if it.MsgID != 0 {
				e.MsgID = strconv.FormatInt(it.MsgID, 10)
			}
			e.ErrorCode, e.ErrorStatus = it.ErrorCode, it.ErrorStatus
		default:
			if it.SubscribeStatus != job.StatusAccept && it.SubscribeStatus != job.StatusReject {
				return p, fmt.Errorf("%w: item %d: SubscribeStatusString %q is not accept or reject", push.ErrMalformed, i, text.Truncate(it.SubscribeStatus, 32))
			}
			e.Status = it.SubscribeStatus
			if kind == job.EventPopup {
				e.PopupScene = it.PopupScene
			}
		}
		p.Events = append(p.Events, e)
	}
	return p, nil
}
