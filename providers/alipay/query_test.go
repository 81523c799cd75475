package alipay

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/heraldhq/herald/sandbox"
)

func TestQuerySubscriptionsThroughTheSandbox(t *testing.T) {
	b := setup(t, nil)
	b.sb.SetAlipayRelation(testAppID, "o-1", sandbox.AlipayRelation{TemplateID: "T1", SubscribeState: "1",
		SubscribeType: sandbox.AlipayOneTime, KeepState: "0", Show: true})
	b.sb.SetAlipayRelation(testAppID, "o-1", sandbox.AlipayRelation{TemplateID: "T2", SubscribeState: "0",
		SubscribeType: sandbox.AlipayLongTerm})
	b.sb.SetAlipayRelation(testAppID, "o-2", sandbox.AlipayRelation{TemplateID: "T3", SubscribeState: "1"})

	res, err := b.client.QuerySubscriptions(t.Context(), "o-1", []string{"T1", "T2", "T3"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Relation{
		{TemplateID: "T1", SubscribeState: "1", SubscribeType: "onetime", KeepState: "0", Show: "true"},
		{TemplateID: "T2", SubscribeState: "0", SubscribeType: "longterm", Show: "false"},
	}
	if !res.ShowComponent || !slices.Equal(res.Relations, want) {
		t.Fatalf("QuerySubscriptions = %+v, want %+v and show_component", res, want)
	}
	if _, ok := res.Relation("T3"); ok {
		t.Fatal("T3, never subscribed by o-1, has a relation")
	}
	if r, ok := res.Relation("T2"); !ok || r != want[1] {
		t.Fatalf("Relation(T2) = %+v, %v", r, ok)
	}
	// Every template subscribed; a user who never subscribed.
	if res, err := b.client.QuerySubscriptions(t.Context(), "o-1", []string{"T1"}); err != nil || res.ShowComponent || len(res.Relations) != 1 {
		t.Fatalf("query of T1 = %+v, %v", res, err)
	}
	if res, err := b.client.QuerySubscriptions(t.Context(), "nobody", []string{"T1"}); err != nil || !res.ShowComponent || len(res.Relations) != 0 || res.Relations == nil {
		t.Fatalf("query of a user never subscribed = %+v, %v; want no relation, an empty list", res, err)
	}
	if st := b.sb.Stats()["alipay"]; st.QueryCalls != 3 || st.SendCalls != 0 {
		t.Fatalf("sandbox counted %+v", st)
	}
}

// The user goes in open_id or user_id as Config.Recipient says, and the
// request carries the query method, signed over its parameters.
func TestQueryRequest(t *testing.T) {
	tests := []struct {
		give      string
		wantField string
		wantOther string
	}{
		{RecipientOpenID, "open_id", "user_id"},
		{RecipientUserID, "user_id", "open_id"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			srv, forms := fakeGateway(t, http.StatusOK, `{"sign":"x"}`)
			c := clientFor(t, srv.URL, func(c *Config) { c.Recipient = tt.give })
			if _, err := c.QuerySubscriptions(t.Context(), "2088000000000001", []string{"T1", "T2"}); err == nil {
				t.Fatal("an answer without the response member was believed")
			}
			form := <-forms
			var biz map[string]any
			if err := json.Unmarshal([]byte(first(form["biz_content"])), &biz); err != nil {
				t.Fatal(err)
			}
			list, _ := biz["template_id_list"].([]any)
			if biz[tt.wantField] != "2088000000000001" || biz[tt.wantOther] != nil || len(list) != 2 || list[0] != "T1" || list[1] != "T2" {
				t.Fatalf("biz_content %s", first(form["biz_content"]))
			}
			params := map[string]string{}
			for k, v := range form {
				params[k] = first(v)
			}
			pub, err := ParsePublicKeys(keys(t).AppPublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if params["method"] != QueryMethod || params["sign_type"] != "RSA2" || !verify(pub, []byte(canonical(params)), params["sign"]) {
				t.Fatalf("request %v is not a signed query", params)
			}
			// And the sandbox, which checks the signature, finds the user.
			b := setup(t, func(c *Config) { c.Recipient = tt.give })
			b.sb.SetAlipayRelation(testAppID, "2088000000000001", sandbox.AlipayRelation{TemplateID: "T1", SubscribeState: "1"})
			res, err := b.client.QuerySubscriptions(t.Context(), "2088000000000001", []string{"T1"})
			if err != nil || len(res.Relations) != 1 {
				t.Fatalf("QuerySubscriptions = %+v, %v", res, err)
			}
		})
	}
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func TestQueryRefusedBeforeAnyCall(t *testing.T) {
	b := setup(t, nil)
	tests := []struct {
		name      string
		user      string
		templates []string
		want      string
	}{
		{"four templates", "o-1", []string{"T1", "T2", "T3", "T4"}, "4 templates, Alipay answers at most 3"},
		{"no template", "o-1", nil, "no template"},
		{"empty template id", "o-1", []string{"T1", ""}, "template 2 is empty"},
		{"no user", "", []string{"T1"}, "no user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.client.QuerySubscriptions(t.Context(), tt.user, tt.templates)
			if !errors.Is(err, ErrQuery) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("QuerySubscriptions = %v, want ErrQuery saying %q", err, tt.want)
			}
		})
	}
	if st := b.sb.Stats()["alipay"]; st.QueryCalls != 0 || st.SendCalls != 0 {
		t.Fatalf("sandbox got calls: %+v", st)
	}
}

// A business failure Alipay signed is its *APIError; no other answer is.
func TestQueryBusinessErrorIsAPIError(t *testing.T) {
	b := setup(t, nil)
	tests := []struct {
		give    string
		want    APIError
		wantMsg string
	}{
		{"illegal-1", APIError{Code: "40004", SubCode: "USER_TEMPLATE_ILLEGAL"}, "模板不合法"},
		{"unavailable-1", APIError{Code: "20000", SubCode: "isp.unknow-error"}, "系统繁忙"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			_, err := b.client.QuerySubscriptions(t.Context(), tt.give, []string{"T1"})
			var apiErr *APIError
			if !errors.As(err, &apiErr) || !errors.Is(err, &tt.want) || apiErr.SubMsg != tt.wantMsg {
				t.Fatalf("QuerySubscriptions = %v, want %+v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "alipay subscribe query: ") {
				t.Fatalf("error %q is not wrapped", err)
			}
		})
	}
}

// TestQueryForgedAnswersAreNotBelieved: a query's answer is believed only
// when its sign verifies over the exact bytes of the query's response
// member with a configured key.
func TestQueryForgedAnswersAreNotBelieved(t *testing.T) {
	b := setup(t, nil)
	b.sb.SetAlipayRelation(testAppID, "badsign-1", sandbox.AlipayRelation{TemplateID: "T1", SubscribeState: "1"})
	_, err := b.client.QuerySubscriptions(t.Context(), "badsign-1", []string{"T1"})
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("sandbox's forged answer: %v, want ErrBadSignature", err)
	}
	for _, want := range []string{"signature does not verify", "not believed", `"10000"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// An app the gateway does not know gets an unsigned answer.
	unknown := setup(t, func(c *Config) { c.AppID = "2021999" })
	_, err = unknown.client.QuerySubscriptions(t.Context(), "o-1", []string{"T1"})
	var apiErr *APIError
	if !errors.Is(err, ErrUnsigned) || errors.As(err, &apiErr) || !strings.Contains(err.Error(), `"isv.invalid-app-id"`) {
		t.Fatalf("unsigned invalid-app-id: %v, want ErrUnsigned quoting the sub_code, no APIError", err)
	}

	k, other := keys(t), otherKeys(t)
	success := `{"code":"10000","msg":"Success","show_component":false,"subscribe_relations":[{"template_id":"T1","subscribe_state":"1","subscribe_type":"onetime","show":true}]}`
	genuine := signedAnswer(t, k.GatewayPrivateKey, queryResponseKey, success)
	srv, _ := fakeGateway(t, http.StatusOK, genuine)
	if res, err := clientFor(t, srv.URL, nil).QuerySubscriptions(t.Context(), "o-1", []string{"T1"}); err != nil || len(res.Relations) != 1 {
		t.Fatalf("genuine answer: %+v, %v", res, err)
	}
	tests := []struct {
		name    string
		give    string
		wantErr error // nil: any error
	}{
		{"signed with another key", signedAnswer(t, other.GatewayPrivateKey, queryResponseKey, success), ErrBadSignature},
		{"state changed", strings.Replace(genuine, `"subscribe_state":"1"`, `"subscribe_state":"0"`, 1), ErrBadSignature},
		{"a relation added", strings.Replace(genuine, `}]}`, `},{"template_id":"T2","subscribe_state":"1"}]}`, 1), ErrBadSignature},
		{"unsigned success", `{"` + queryResponseKey + `":` + success + `}`, ErrUnsigned},
		{"empty sign", `{"` + queryResponseKey + `":` + success + `,"sign":""}`, ErrUnsigned},
		{"sign not base64", `{"` + queryResponseKey + `":` + success + `,"sign":"!!!"}`, ErrBadSignature},
		{"unsigned business failure", `{"` + queryResponseKey + `":{"code":"40004","msg":"Business Failed","sub_code":"X"}}`, ErrUnsigned},
		{"signed success in error_response", signedAnswer(t, k.GatewayPrivateKey, errorKey, success), nil},
		{"signed success of the send method", signedAnswer(t, k.GatewayPrivateKey, responseKey, success), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeGateway(t, http.StatusOK, tt.give)
			res, err := clientFor(t, srv.URL, nil).QuerySubscriptions(t.Context(), "o-1", []string{"T1"})
			if err == nil {
				t.Fatalf("believed %+v", res)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("QuerySubscriptions = %v, want %v", err, tt.wantErr)
			}
			if errors.As(err, &apiErr) {
				t.Fatalf("an unbelieved answer came back as an APIError: %v", err)
			}
		})
	}
	// A later duplicate member cannot change what was verified.
	dup := strings.Replace(genuine, `,"sign"`, `,"`+queryResponseKey+`":{"code":"10000","subscribe_relations":[]},"sign"`, 1)
	srv, _ = fakeGateway(t, http.StatusOK, dup)
	if res, err := clientFor(t, srv.URL, nil).QuerySubscriptions(t.Context(), "o-1", []string{"T1"}); err != nil || len(res.Relations) != 1 {
		t.Fatalf("genuine answer with a later duplicate: %+v, %v", res, err)
	}
}

func TestQueryTransientFailures(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"HTTP 502", http.StatusBadGateway, "<html>bad gateway</html>", "http 502"},
		{"redirect, not followed", http.StatusTemporaryRedirect, "", "the platform answered 307"},
		{"not JSON", http.StatusOK, "<html>maintenance</html>", "unparsable answer"},
		{"no response member", http.StatusOK, `{"sign":"x"}`, "unparsable answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeGateway(t, tt.status, tt.body)
			_, err := clientFor(t, srv.URL, nil).QuerySubscriptions(t.Context(), "o-1", []string{"T1"})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "alipay subscribe query: ") {
				t.Fatalf("QuerySubscriptions = %v, want %q", err, tt.want)
			}
		})
	}
}

// Alipay documents the relation fields as strings but not their values:
// numbers and booleans are kept as their JSON text.
func TestDecodeQuery(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    QueryResult
		wantErr string
	}{
		{
			name: "strings",
			give: `{"code":"10000","show_component":true,"subscribe_relations":[{"template_id":"T1","subscribe_state":"1","subscribe_type":"onetime","keep_state":"0","show":"true"}]}`,
			want: QueryResult{ShowComponent: true, Relations: []Relation{{TemplateID: "T1", SubscribeState: "1", SubscribeType: "onetime", KeepState: "0", Show: "true"}}},
		},
		{
			name: "numbers, booleans and null",
			give: `{"code":"10000","show_component":"false","subscribe_relations":[{"template_id":"T1","subscribe_state":1,"subscribe_type":null,"keep_state":-1.5e3,"show":false},{"template_id":2}]}`,
			want: QueryResult{Relations: []Relation{{TemplateID: "T1", SubscribeState: "1", KeepState: "-1.5e3", Show: "false"}, {TemplateID: "2"}}},
		},
		{
			name: "show_component as a number, unknown fields ignored",
			give: `{"code":"10000","show_component":1,"new_field":{"a":[1]},"subscribe_relations":[{"template_id":"T1","extra":[]}]}`,
			want: QueryResult{ShowComponent: true, Relations: []Relation{{TemplateID: "T1"}}},
		},
		{
			name: "no list",
			give: `{"code":"10000","msg":"Success"}`,
			want: QueryResult{Relations: []Relation{}},
		},
		{name: "relation field an object", give: `{"subscribe_relations":[{"subscribe_state":{"a":1}}]}`, wantErr: "an object"},
		{name: "relation field an array", give: `{"subscribe_relations":[{"show":[true]}]}`, wantErr: "an array"},
		{name: "show_component not a boolean", give: `{"show_component":"maybe"}`, wantErr: "show_component is not a boolean"},
		{name: "relations not a list", give: `{"subscribe_relations":{"template_id":"T1"}}`, wantErr: "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeQuery([]byte(tt.give))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("decodeQuery = %+v, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.ShowComponent != tt.want.ShowComponent || !slices.Equal(got.Relations, tt.want.Relations) || got.Relations == nil {
				t.Fatalf("decodeQuery = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
