package sandbox

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
)

// Relation values the sandbox uses by default. Alipay does not document the
// value sets of subscribe.query (platform-apis B.5); these are the ones an
// older Alipay SDK model describes: subscribe_state "1" subscribed and "0"
// refused, subscribe_type "onetime" or "longterm", keep_state "0" (keep
// subscribing) or "1" (keep refusing). The sandbox reports whatever it is
// told.
const (
	AlipayStateSubscribed = "1"
	AlipayStateRefused    = "0"
	AlipayOneTime         = "onetime"
	AlipayLongTerm        = "longterm"
)

// Limits of the subscription query and its control endpoint.
const (
	// aliMaxQueryTemplates is template_id_list's limit (platform-apis B.5),
	// and the subscribe control's, as my.requestSubscribeMessage takes at
	// most 3 templates.
	aliMaxQueryTemplates = 3
	// aliMaxField bounds every value the subscribe control keeps.
	aliMaxField = 128
)

// AlipayRelation is a user's subscription to one template as
// subscribe.query reports it: one of subscribe_relations.
type AlipayRelation struct {
	TemplateID     string `json:"template_id"`
	SubscribeState string `json:"subscribe_state"`
	SubscribeType  string `json:"subscribe_type,omitempty"`
	KeepState      string `json:"keep_state,omitempty"`
	Show           bool   `json:"show"`
}

// aliSubs are the relations the query reports, per (app_id, user,
// template), and, with Options.Grants, the one-time grants behind them.
type aliSubs struct {
	grants bool // never changes after New

	mu sync.Mutex
	m  map[aliSubKey]*aliSub
}

type aliSubKey struct{ appID, user, template string }

type aliSub struct {
	rel    AlipayRelation
	grants int // with Options.Grants: one-time grants left
}

func newAliSubs(grants bool) *aliSubs {
	return &aliSubs{grants: grants, m: make(map[aliSubKey]*aliSub)}
}

// set records rel and returns the grants left. With grants kept, a
// subscribed one-time relation adds a grant (they accumulate, as Alipay's
// do, platform-apis B.5); any other relation has none.
func (s *aliSubs) set(appID, user string, rel AlipayRelation) int {
	k := aliSubKey{appID, user, rel.TemplateID}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.m[k]
	if sub == nil {
		sub = &aliSub{}
		s.m[k] = sub
	}
	sub.rel = rel
	if s.grants && rel.SubscribeState == AlipayStateSubscribed && rel.SubscribeType == AlipayOneTime {
		sub.grants++
	} else {
		sub.grants = 0
	}
	return sub.grants
}

// use takes one grant of an accepted send, with grants kept; the relation
// goes with the last one. Alipay does not say what it reports then; the
// sandbox reports nothing, as for a user who never subscribed.
func (s *aliSubs) use(k aliSubKey) {
	if !s.grants {
		return // the send's success path stays as cheap as it was
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.m[k]
	if sub == nil || sub.grants == 0 {
		return
	}
	if sub.grants--; sub.grants == 0 {
		delete(s.m, k)
	}
}

func (s *aliSubs) count(k aliSubKey) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sub := s.m[k]; sub != nil {
		return sub.grants
	}
	return 0
}

// relations are user's relations to templates, in their order, leaving
// out those never set.
func (s *aliSubs) relations(appID, user string, templates []string) []AlipayRelation {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []AlipayRelation
	for _, tpl := range templates {
		if sub := s.m[aliSubKey{appID, user, tpl}]; sub != nil {
			out = append(out, sub.rel)
		}
	}
	return out
}

// SetAlipayRelation records user's relation to rel.TemplateID in appID's
// app, which subscribe.query reports from then on (POST
// /sandbox/alipay/subscribe does the same). It returns the one-time grants
// left: with Options.Grants, a relation with subscribe_state
// [AlipayStateSubscribed] and subscribe_type [AlipayOneTime] adds one, and
// every accepted send to that user and template takes one, the relation
// going with the last; without, 0.
func (s *Server) SetAlipayRelation(appID, user string, rel AlipayRelation) int {
	return s.alipay.subs.set(appID, user, rel)
}

// AlipayGrants returns the one-time grants left of user's relation to
// template in appID's app (with Options.Grants; otherwise 0).
func (s *Server) AlipayGrants(appID, user, template string) int {
	return s.alipay.subs.count(aliSubKey{appID, user, template})
}

// aliQueryRequest is subscribe.query's biz_content.
type aliQueryRequest struct {
	UserID    string          `json:"user_id"`
	OpenID    string          `json:"open_id"`
	Templates json.RawMessage `json:"template_id_list"`
}

// aliQueryBody is subscribe.query's success. Field order is Alipay's SDK
// model's.
type aliQueryBody struct {
	Code          string           `json:"code"`
	Msg           string           `json:"msg"`
	ShowComponent bool             `json:"show_component"`
	Relations     []AlipayRelation `json:"subscribe_relations,omitempty"`
}

// query checks biz_content and answers the relations held, under the
// query's response key. show_component is true when some template asked
// about is not subscribed (no relation, or a subscribe_state other than
// "1"): the sandbox's own rule, as Alipay does not document its.
func (a *alipayAPI) query(rw http.ResponseWriter, key *rsa.PrivateKey, params map[string]string) {
	fail := a.failer(rw, key, aliQueryKey)
	var req aliQueryRequest
	if !bizContent(params, &req, fail) {
		return
	}
	user := req.OpenID
	switch {
	case req.OpenID != "" && req.UserID != "":
		fail("40002", "isv.invalid-parameter", "open_id与user_id不能同时传入")
		return
	case req.OpenID == "" && req.UserID == "":
		fail("40001", "isv.missing-user-id", "缺少open_id或user_id")
		return
	case req.OpenID == "":
		user = req.UserID
	}
	var templates []string
	if len(req.Templates) == 0 || string(req.Templates) == "null" {
		fail("40001", "isv.missing-template-id-list", "缺少template_id_list")
		return
	}
	if err := json.Unmarshal(req.Templates, &templates); err != nil {
		fail("40002", "isv.invalid-parameter", "template_id_list必须是字符串数组")
		return
	}
	switch {
	case len(templates) == 0:
		fail("40001", "isv.missing-template-id-list", "缺少template_id_list")
		return
	case len(templates) > aliMaxQueryTemplates:
		fail("40002", "isv.invalid-parameter", "template_id_list最多3个")
		return
	case slices.Contains(templates, ""):
		fail("40002", "isv.invalid-parameter", "template_id不能为空")
		return
	}
	rels := a.subs.relations(params["app_id"], user, templates)
	body := aliQueryBody{Code: "10000", Msg: "Success", ShowComponent: len(rels) < len(templates), Relations: rels}
	for _, r := range rels {
		if r.SubscribeState != AlipayStateSubscribed {
			body.ShowComponent = true
		}
	}
	if sc, ok := a.script(user); ok {
		if sc.badSign {
			a.write(rw, key, aliQueryKey, body, true)
			return
		}
		a.write(rw, key, aliQueryKey, sc.body, false)
		return
	}
	a.write(rw, key, aliQueryKey, body, false)
}

// aliSubscribeAnswer is the answer of POST /sandbox/alipay/subscribe.
type aliSubscribeAnswer struct {
	AppID     string           `json:"app_id"`
	User      string           `json:"user"`
	Relations []AlipayRelation `json:"relations"`
	Grants    map[string]int   `json:"grants,omitempty"`
}

// handleSubscribe sets a user's relations to 1 to 3 templates:
// app_id (may be left out when one app is configured), user, template
// (repeatable), state (the subscribe_state, default "1"),
// subscribe_type (default "onetime"), keep_state (default none) and show
// (default true).
func (a *alipayAPI) handleSubscribe(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	appID, user, templates := q.Get("app_id"), q.Get("user"), q["template"]
	if appID == "" && len(a.apps) == 1 {
		for id := range a.apps {
			appID = id
		}
	}
	rel := AlipayRelation{SubscribeState: AlipayStateSubscribed, SubscribeType: AlipayOneTime, KeepState: q.Get("keep_state"), Show: true}
	if q.Has("state") {
		rel.SubscribeState = q.Get("state")
	}
	if q.Has("subscribe_type") {
		rel.SubscribeType = q.Get("subscribe_type")
	}
	badShow := false
	if q.Has("show") {
		show, err := strconv.ParseBool(q.Get("show"))
		badShow = err != nil
		rel.Show = show
	}
	long := len(appID) > aliMaxField || len(user) > aliMaxField || len(rel.SubscribeState) > aliMaxField ||
		len(rel.SubscribeType) > aliMaxField || len(rel.KeepState) > aliMaxField
	for _, tpl := range templates {
		long = long || len(tpl) > aliMaxField
	}
	_, known := a.apps[appID]
	switch {
	case !known:
		http.Error(rw, "unknown app_id "+strconv.Quote(appID), http.StatusNotFound)
		return
	case user == "":
		http.Error(rw, "user is required", http.StatusBadRequest)
		return
	case len(templates) == 0 || len(templates) > aliMaxQueryTemplates || slices.Contains(templates, ""):
		http.Error(rw, fmt.Sprintf("1 to %d template parameters are required", aliMaxQueryTemplates), http.StatusBadRequest)
		return
	case rel.SubscribeState == "":
		http.Error(rw, "state must not be empty", http.StatusBadRequest)
		return
	case long:
		http.Error(rw, fmt.Sprintf("values are limited to %d bytes", aliMaxField), http.StatusBadRequest)
		return
	case badShow:
		http.Error(rw, "show must be true or false", http.StatusBadRequest)
		return
	}
	ans := aliSubscribeAnswer{AppID: appID, User: user}
	if a.subs.grants {
		ans.Grants = make(map[string]int, len(templates))
	}
	for _, tpl := range templates {
		rel.TemplateID = tpl
		n := a.subs.set(appID, user, rel)
		ans.Relations = append(ans.Relations, rel)
		if ans.Grants != nil {
			ans.Grants[tpl] = n
		}
	}
	writeJSON(rw, http.StatusOK, ans)
}
