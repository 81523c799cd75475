package sandbox

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testOtherAlipayKeys plays an app key the gateway does not know.
var testOtherAlipayKeys = sync.OnceValues(NewAlipayKeys)

// aliQueryParams is a signed subscribe.query request with biz_content biz.
func (b *testBundle) aliQueryParams(t *testing.T, k AlipayKeys, biz string) url.Values {
	t.Helper()
	p := url.Values{
		"app_id":      {testAlipayApp},
		"method":      {AlipayQueryMethod},
		"format":      {"JSON"},
		"charset":     {"utf-8"},
		"sign_type":   {"RSA2"},
		"timestamp":   {b.clock.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01-02 15:04:05")},
		"version":     {"1.0"},
		"biz_content": {biz},
	}
	p.Set("sign", testSign(t, k.AppPrivateKey, p))
	return p
}

// queryBiz is the biz_content asking about openID's templates.
func queryBiz(openID string, templates ...string) string {
	b, _ := json.Marshal(map[string]any{"open_id": openID, "template_id_list": templates})
	return string(b)
}

// queryAnswer is a query answer's success fields.
type queryAnswer struct {
	ShowComponent *bool            `json:"show_component"`
	Relations     []AlipayRelation `json:"subscribe_relations"`
}

// queryOf decodes a's raw response value as a query success.
func queryOf(t *testing.T, a aliAnswer) queryAnswer {
	t.Helper()
	var q queryAnswer
	if err := json.Unmarshal(a.Raw, &q); err != nil {
		t.Fatalf("answer %s: %v", a.Text, err)
	}
	return q
}

// aliSubscribe calls the subscribe control and decodes its answer.
func (b *testBundle) aliSubscribe(t *testing.T, query string) aliSubscribeAnswer {
	t.Helper()
	resp, err := b.http.Client().Post(b.http.URL+"/sandbox/alipay/subscribe?"+query, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a aliSubscribeAnswer
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&a) != nil {
		t.Fatalf("POST /sandbox/alipay/subscribe?%s: %s", query, resp.Status)
	}
	return a
}

func TestAlipayQueryAnswersTheRelationsHeld(t *testing.T) {
	b, k := alipaySetup(t)
	set := b.aliSubscribe(t, "user=o-1&template=T1&keep_state=0")
	if set.AppID != testAlipayApp || set.User != "o-1" || set.Grants != nil ||
		!slices.Equal(set.Relations, []AlipayRelation{{TemplateID: "T1", SubscribeState: "1", SubscribeType: "onetime", KeepState: "0", Show: true}}) {
		t.Fatalf("subscribe answered %+v", set)
	}
	b.aliSubscribe(t, "app_id="+testAlipayApp+"&user=o-1&template=T2&state=0&subscribe_type=longterm&show=false")
	b.srv.SetAlipayRelation(testAlipayApp, "o-2", AlipayRelation{TemplateID: "T1", SubscribeState: "1"})

	a := b.alipay(t, b.aliQueryParams(t, k, queryBiz("o-1", "T3", "T2", "T1")))
	if a.Member != aliQueryKey || a.Body.Code != "10000" || a.Body.Msg != "Success" || !a.verified(t, k) {
		t.Fatalf("answer %s, want a signed success", a.Text)
	}
	q := queryOf(t, a)
	want := []AlipayRelation{
		{TemplateID: "T2", SubscribeState: "0", SubscribeType: "longterm"},
		{TemplateID: "T1", SubscribeState: "1", SubscribeType: "onetime", KeepState: "0", Show: true},
	}
	if q.ShowComponent == nil || !*q.ShowComponent || !slices.Equal(q.Relations, want) {
		t.Fatalf("answer %s, want T3 left out, then T2 and T1, show_component true", a.Text)
	}
	// Every template subscribed: no component to show.
	if q := queryOf(t, b.alipay(t, b.aliQueryParams(t, k, queryBiz("o-1", "T1")))); *q.ShowComponent || len(q.Relations) != 1 {
		t.Fatalf("query of T1 = %+v", q)
	}
	// A user_id is a user like an open_id; a user never subscribed has no
	// relations, and no list.
	a = b.alipay(t, b.aliQueryParams(t, k, `{"user_id":"o-2","template_id_list":["T1"]}`))
	if q := queryOf(t, a); len(q.Relations) != 1 || q.Relations[0].TemplateID != "T1" {
		t.Fatalf("query by user_id: %s", a.Text)
	}
	a = b.alipay(t, b.aliQueryParams(t, k, queryBiz("nobody", "T1")))
	if a.Body.Code != "10000" || strings.Contains(a.Text, "subscribe_relations") || !a.verified(t, k) {
		t.Fatalf("query of a user never subscribed: %s", a.Text)
	}
	if st := b.srv.Stats()["alipay"]; st.QueryCalls != 4 || st.SendCalls != 0 || st.Accepted != 0 {
		t.Fatalf("stats = %+v, want 4 queries and no send", st)
	}
}

func TestAlipayQueryRejects(t *testing.T) {
	b, k := alipaySetup(t)
	other, err := testOtherAlipayKeys()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		give       url.Values
		wantMember string
		wantCode   string
		wantSub    string
	}{
		{"signed with another key", func() url.Values {
			p := b.aliQueryParams(t, k, queryBiz("o-1", "T1"))
			p.Del("sign")
			p.Set("sign", testSign(t, other.AppPrivateKey, p))
			return p
		}(), aliErrorKey, "40002", "isv.invalid-signature"},
		{"no biz_content", b.aliQueryParams(t, k, ""), aliQueryKey, "40001", "isv.missing-biz-content"},
		{"biz_content not JSON", b.aliQueryParams(t, k, "{"), aliQueryKey, "40002", "isv.invalid-parameter"},
		{"open_id and user_id", b.aliQueryParams(t, k, `{"open_id":"o","user_id":"2088","template_id_list":["T"]}`),
			aliQueryKey, "40002", "isv.invalid-parameter"},
		{"no user", b.aliQueryParams(t, k, `{"template_id_list":["T"]}`), aliQueryKey, "40001", "isv.missing-user-id"},
		{"no list", b.aliQueryParams(t, k, `{"open_id":"o"}`), aliQueryKey, "40001", "isv.missing-template-id-list"},
		{"empty list", b.aliQueryParams(t, k, queryBiz("o")), aliQueryKey, "40001", "isv.missing-template-id-list"},
		{"four templates", b.aliQueryParams(t, k, queryBiz("o", "T1", "T2", "T3", "T4")), aliQueryKey, "40002", "isv.invalid-parameter"},
		{"empty template id", b.aliQueryParams(t, k, queryBiz("o", "T1", "")), aliQueryKey, "40002", "isv.invalid-parameter"},
		{"list of numbers", b.aliQueryParams(t, k, `{"open_id":"o","template_id_list":[1]}`), aliQueryKey, "40002", "isv.invalid-parameter"},
		{"scripted unavailable", b.aliQueryParams(t, k, queryBiz("unavailable-1", "T1")), aliQueryKey, "20000", "isp.unknow-error"},
		{"scripted business failure", b.aliQueryParams(t, k, queryBiz("illegal-1", "T1")), aliQueryKey, "40004", "USER_TEMPLATE_ILLEGAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := b.alipay(t, tt.give)
			if a.Member != tt.wantMember || a.Body.Code != tt.wantCode || a.Body.SubCode != tt.wantSub || !a.verified(t, k) {
				t.Fatalf("answer %s, want %s %s %s, signed", a.Text, tt.wantMember, tt.wantCode, tt.wantSub)
			}
		})
	}
}

func TestAlipayQueryBadSignAnswerDoesNotVerify(t *testing.T) {
	b, k := alipaySetup(t)
	b.srv.SetAlipayRelation(testAlipayApp, "badsign-1", AlipayRelation{TemplateID: "T1", SubscribeState: "1"})
	a := b.alipay(t, b.aliQueryParams(t, k, queryBiz("badsign-1", "T1")))
	if a.Member != aliQueryKey || a.Body.Code != "10000" || a.Sign == "" || len(queryOf(t, a).Relations) != 1 {
		t.Fatalf("answer %s, want a signed-looking success with the relation", a.Text)
	}
	if a.verified(t, k) {
		t.Fatal("badsign answer verifies")
	}
}

// With Options.Grants a subscribed one-time relation holds grants that
// accepted sends use up; the relation goes with the last.
func TestAlipayGrantsUsedBySends(t *testing.T) {
	k := alipayKeys(t)
	opts := k.Options(testAlipayApp)
	opts.Grants = true
	b := setup(t, opts)
	send := func(to string) {
		t.Helper()
		if a := b.alipay(t, b.aliParams(t, k, to, map[string]string{"keyword1": "v"})); a.Body.Code != "10000" {
			t.Fatalf("send: %s", a.Text)
		}
	}
	if a := b.aliSubscribe(t, "user=o-1&template=tpl-1"); a.Grants["tpl-1"] != 1 {
		t.Fatalf("first subscribe: %+v", a)
	}
	if a := b.aliSubscribe(t, "user=o-1&template=tpl-1"); a.Grants["tpl-1"] != 2 {
		t.Fatalf("second subscribe: %+v, want grants to accumulate", a)
	}
	if a := b.aliSubscribe(t, "user=o-2&template=tpl-1&subscribe_type=longterm"); a.Grants["tpl-1"] != 0 {
		t.Fatalf("long-term subscribe: %+v, want no grant", a)
	}
	send("o-1")
	if n := b.srv.AlipayGrants(testAlipayApp, "o-1", "tpl-1"); n != 1 {
		t.Fatalf("grants after a send = %d, want 1", n)
	}
	if q := queryOf(t, b.alipay(t, b.aliQueryParams(t, k, queryBiz("o-1", "tpl-1")))); len(q.Relations) != 1 {
		t.Fatalf("relation gone with a grant left: %+v", q)
	}
	send("o-1")
	if q := queryOf(t, b.alipay(t, b.aliQueryParams(t, k, queryBiz("o-1", "tpl-1")))); len(q.Relations) != 0 || !*q.ShowComponent {
		t.Fatalf("relation still reported with no grant left: %+v", q)
	}
	// Sends are never refused for want of a grant, and a long-term
	// relation stays.
	send("o-1")
	send("o-2")
	send("o-2")
	if q := queryOf(t, b.alipay(t, b.aliQueryParams(t, k, queryBiz("o-2", "tpl-1")))); len(q.Relations) != 1 || q.Relations[0].SubscribeType != AlipayLongTerm {
		t.Fatalf("long-term relation after sends: %+v", q)
	}
	if n := b.srv.Stats()["alipay"].Accepted; n != 5 {
		t.Fatalf("accepted %d, want 5", n)
	}
}

// Without Options.Grants sends leave the relations alone.
func TestAlipaySendsKeepRelationsWithoutGrants(t *testing.T) {
	b, k := alipaySetup(t)
	if n := b.srv.SetAlipayRelation(testAlipayApp, "o-1", AlipayRelation{TemplateID: "tpl-1", SubscribeState: "1", SubscribeType: AlipayOneTime}); n != 0 {
		t.Fatalf("grants %d without Options.Grants", n)
	}
	for range 2 {
		if a := b.alipay(t, b.aliParams(t, k, "o-1", map[string]string{"keyword1": "v"})); a.Body.Code != "10000" {
			t.Fatalf("send: %s", a.Text)
		}
	}
	if q := queryOf(t, b.alipay(t, b.aliQueryParams(t, k, queryBiz("o-1", "tpl-1")))); len(q.Relations) != 1 {
		t.Fatalf("relation after sends: %+v", q)
	}
}

func TestAlipaySubscribeControlChecksItsParameters(t *testing.T) {
	b, _ := alipaySetup(t)
	long := strings.Repeat("x", aliMaxField+1)
	tests := []struct {
		give string
		want int
	}{
		{"app_id=2021999&user=o&template=T", http.StatusNotFound},
		{"template=T", http.StatusBadRequest},
		{"user=o", http.StatusBadRequest},
		{"user=o&template=T1&template=T2&template=T3&template=T4", http.StatusBadRequest},
		{"user=o&template=", http.StatusBadRequest},
		{"user=o&template=T&state=", http.StatusBadRequest},
		{"user=o&template=T&show=maybe", http.StatusBadRequest},
		{"user=" + long + "&template=T", http.StatusBadRequest},
		{"user=o&template=" + long, http.StatusBadRequest},
		{"user=o&template=T&keep_state=" + long, http.StatusBadRequest},
	}
	for _, tt := range tests {
		resp, err := b.http.Client().Post(b.http.URL+"/sandbox/alipay/subscribe?"+tt.give, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("subscribe?%s: %s, want %d", tt.give, resp.Status, tt.want)
		}
	}
}

func TestAlipaySubscribeIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"doc.go": string(doc), "AlipayScriptsHelp": AlipayScriptsHelp()} {
		for _, want := range []string{"/sandbox/alipay/subscribe", AlipayQueryMethod} {
			if !strings.Contains(text, want) {
				t.Errorf("%s does not mention %s", what, want)
			}
		}
	}
}
