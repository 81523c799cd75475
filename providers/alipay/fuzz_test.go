package alipay

import (
	"bytes"
	"encoding/json"
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
