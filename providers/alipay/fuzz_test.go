package alipay

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/heraldhq/herald/retry"
)

// FuzzExtractResponse holds the raw-bytes scanner to two properties: it
// never panics and only ever returns a '{…}' slice of the body; and for a
// body built around an encoded object, it returns exactly the encoded
// bytes, whatever decoys (the key inside a string, the key in a nested
// object) surround them.
func FuzzExtractResponse(f *testing.F) {
	for _, s := range []struct{ body, value string }{
		{`{"` + responseKey + `":{"code":"10000","msg":"Success"},"sign":"abc"}`, `{"code":"10000","msg":"Success"}`},
		{`{"error_response":{"code":"40002"}}`, `{"a":[1,2,{"b":null}],"c":"}\"{"}`},
		{`{"a":"\"` + responseKey + `\":{}","` + responseKey + `":{}}`, `{}`},
		{`{"` + responseKey + `":{"x":"\u00e9\\"}}`, `{"sub_msg":"模板\u003c\/ \\ \" \n"}`},
		{`[1]`, `[{"k":1}]`},
		{`{"` + responseKey + `":{`, `"str"`},
		{``, `{"deep":{"deeper":{"deepest":[[[[]]]]}}}`},
	} {
		f.Add([]byte(s.body), []byte(s.value))
	}
	f.Fuzz(func(t *testing.T, body, value []byte) {
		raw, found, err := extractResponse(body, responseKey)
		if found {
			if err != nil || len(raw) < 2 || raw[0] != '{' || raw[len(raw)-1] != '}' || !bytes.Contains(body, raw) {
				t.Fatalf("extractResponse(%q) = %q, %v", body, raw, err)
			}
		}

		if !json.Valid(value) {
			return
		}
		var v any
		if err := json.Unmarshal(value, &v); err != nil {
			t.Fatal(err)
		}
		obj, ok := v.(map[string]any)
		if !ok {
			obj = map[string]any{"value": v}
		}
		compact, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		indented, err := json.MarshalIndent(obj, " ", "\t")
		if err != nil {
			t.Fatal(err)
		}
		encodings := [][]byte{compact, indented}
		if ok {
			encodings = append(encodings, bytes.TrimSpace(value)) // the fuzzer's own bytes, as written
		}
		for _, enc := range encodings {
			decoy, err := json.Marshal(`"` + responseKey + `":` + string(enc))
			if err != nil {
				t.Fatal(err)
			}
			b := []byte(`{"decoy":` + string(decoy) + `, "nested" : {"` + responseKey + `":{"code":"10000"}},` +
				"\n\"" + responseKey + "\" : " + string(enc) + ` ,"sign":"x"}`)
			got, found, err := extractResponse(b, responseKey)
			if err != nil || !found || !bytes.Equal(got, enc) {
				t.Fatalf("extractResponse(%s)\n= %q, %v, %v\nwant %q", b, got, found, err, enc)
			}
		}
	})
}

// FuzzParseResponse: parsing and judging any body never panics, a parse
// failure is transient, and herald counts a job delivered only on a
// success whose sign verifies over the exact response bytes with the
// configured key.
func FuzzParseResponse(f *testing.F) {
	k := keys(f)
	success := `{"code":"10000","msg":"Success"}`
	for _, s := range []string{
		signedAnswer(f, k.GatewayPrivateKey, responseKey, success),
		signedAnswer(f, k.GatewayPrivateKey, responseKey, `{"code":"40004","msg":"Business Failed","sub_code":"USER_TEMPLATE_ILLEGAL","sub_msg":"模板不合法"}`),
		signedAnswer(f, k.GatewayPrivateKey, errorKey, `{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature"}`),
		`{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id","sub_msg":"无效的AppID参数"}}`,
		`{"` + responseKey + `":` + success + `}`,
		`{"` + responseKey + `":` + success + `,"sign":"AAAA"}`,
		`{"` + responseKey + `":{"code":10000},"sign":"x"}`,
		`<html>502</html>`,
	} {
		f.Add([]byte(s))
	}
	c := clientFor(f, "http://unused/gateway.do", nil)
	pubs, err := ParsePublicKeys(k.GatewayPublicKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := parseResponse(body, responseKey)
		if err != nil {
			return // Send reports it as a plain, transient error
		}
		if !bytes.Contains(body, a.raw) || !json.Valid(body) || !json.Valid(a.raw) {
			t.Fatalf("parseResponse(%q) accepted raw %q", body, a.raw)
		}
		err = c.judge(a)
		if err == nil {
			if a.key != responseKey || a.body.Code != codeSuccess || !verify(pubs, a.raw, a.sign) {
				t.Fatalf("delivered on %q", body)
			}
			return
		}
		if d := retry.Decide(err); d.Action == retry.DeadLetter && (a.sign == "" || !verify(pubs, a.raw, a.sign)) {
			t.Fatalf("dead-lettered on an unverified answer %q: %v", body, err)
		}
	})
}

// FuzzQueryAnswer: parsing, judging and decoding any body as a
// subscription query's answer never panics, and a result comes back only
// for a success under the query's member whose sign verifies over its
// exact bytes with the configured key, holding one relation per element
// of the subscribe_relations those bytes carry.
func FuzzQueryAnswer(f *testing.F) {
	k := keys(f)
	for _, s := range []string{
		signedAnswer(f, k.GatewayPrivateKey, queryResponseKey, `{"code":"10000","msg":"Success","show_component":true,"subscribe_relations":[{"template_id":"T1","subscribe_state":"1","subscribe_type":"onetime","keep_state":"0","show":true}]}`),
		signedAnswer(f, k.GatewayPrivateKey, queryResponseKey, `{"code":"10000","msg":"Success","show_component":"1","subscribe_relations":[{"template_id":2,"subscribe_state":null},{"show":{"x":1}}]}`),
		signedAnswer(f, k.GatewayPrivateKey, queryResponseKey, `{"code":"10000","msg":"Success"}`),
		signedAnswer(f, k.GatewayPrivateKey, queryResponseKey, `{"code":"40004","msg":"Business Failed","sub_code":"USER_TEMPLATE_ILLEGAL"}`),
		signedAnswer(f, k.GatewayPrivateKey, responseKey, `{"code":"10000","msg":"Success"}`),
		`{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id"}}`,
		`{"` + queryResponseKey + `":{"code":"10000","subscribe_relations":[{"template_id":"T1"}]}}`,
		`{"` + queryResponseKey + `":{"code":"10000"},"sign":"AAAA"}`,
	} {
		f.Add([]byte(s))
	}
	c := clientFor(f, "http://unused/gateway.do", nil)
	pubs, err := ParsePublicKeys(k.GatewayPublicKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := parseResponse(body, queryResponseKey)
		if err != nil {
			return
		}
		err = c.judgeQuery(a)
		var apiErr *APIError
		if errors.As(err, &apiErr) && !verify(pubs, a.raw, a.sign) {
			t.Fatalf("unverified answer %q returned as %v", body, err)
		}
		if err != nil {
			return
		}
		if a.key != queryResponseKey || a.body.Code != codeSuccess || !verify(pubs, a.raw, a.sign) {
			t.Fatalf("believed %q", body)
		}
		res, err := decodeQuery(a.raw)
		if err != nil {
			return
		}
		var generic struct {
			Relations []json.RawMessage `json:"subscribe_relations"`
		}
		if err := json.Unmarshal(a.raw, &generic); err != nil || len(generic.Relations) != len(res.Relations) {
			t.Fatalf("decodeQuery(%s) = %d relations, the bytes hold %d (%v)", a.raw, len(res.Relations), len(generic.Relations), err)
		}
	})
}

// FuzzDecodeQuery: any relation field that is a JSON string comes back
// unchanged, any number or boolean as its JSON text.
func FuzzDecodeQuery(f *testing.F) {
	f.Add("T1", "1", []byte(`1`), []byte(`true`))
	f.Add("模板\u00e9\n\"", "", []byte(`-0.5e-3`), []byte(`false`))
	f.Add("", "onetime", []byte(`null`), []byte(`"x"`))
	f.Fuzz(func(t *testing.T, template, state string, keep, show []byte) {
		keep, show = bytes.TrimSpace(keep), bytes.TrimSpace(show)
		if !json.Valid(keep) || !json.Valid(show) {
			return // one value each, or the body is another shape
		}
		tplJSON, _ := json.Marshal(template)
		stateJSON, _ := json.Marshal(state)
		raw := []byte(`{"code":"10000","subscribe_relations":[{"template_id":` + string(tplJSON) + `,"subscribe_state":` + string(stateJSON) +
			`,"keep_state":` + string(keep) + `,"show":` + string(show) + `}]}`)
		res, err := decodeQuery(raw)
		scalar := func(v []byte) (string, bool) {
			switch {
			case v[0] == '{' || v[0] == '[':
				return "", false
			case v[0] == '"':
				var s string
				_ = json.Unmarshal(v, &s)
				return s, true
			case string(v) == "null":
				return "", true
			}
			return string(v), true
		}
		wantKeep, okKeep := scalar(keep)
		wantShow, okShow := scalar(show)
		if !okKeep || !okShow {
			if err == nil {
				t.Fatalf("decodeQuery(%s) accepted an object or array field: %+v", raw, res)
			}
			return
		}
		if err != nil {
			t.Fatalf("decodeQuery(%s): %v", raw, err)
		}
		// json.Marshal makes invalid UTF-8 valid; compare with what it wrote.
		var wantTpl, wantState string
		_ = json.Unmarshal(tplJSON, &wantTpl)
		_ = json.Unmarshal(stateJSON, &wantState)
		want := Relation{TemplateID: wantTpl, SubscribeState: wantState, KeepState: wantKeep, Show: wantShow}
		if len(res.Relations) != 1 || res.Relations[0] != want {
			t.Fatalf("decodeQuery(%s) = %+v, want %+v", raw, res.Relations, want)
		}
	})
}
