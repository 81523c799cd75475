package alipay

import (
	"errors"
	"strings"
	"testing"
)

func TestExtractResponse(t *testing.T) {
	const key = responseKey
	tests := []struct {
		name      string
		give      string
		want      string
		wantFound bool
		wantErr   bool
	}{
		{
			name:      "alipay's layout",
			give:      `{"` + key + `":{"code":"10000","msg":"Success"},"sign":"abc"}`,
			want:      `{"code":"10000","msg":"Success"}`,
			wantFound: true,
		},
		{
			name:      "sign first, spaces kept byte for byte",
			give:      "{ \"sign\" : \"x\" ,\n\t\"" + key + "\" :  { \"code\" : \"10000\" , \"msg\":\"a}b\\\"{\" }  }",
			want:      `{ "code" : "10000" , "msg":"a}b\"{" }`,
			wantFound: true,
		},
		{
			name:      "escapes and unicode kept raw",
			give:      `{"` + key + `":{"sub_msg":"\u003c\/ \\\" 你好","nested":{"a":[1,{"b":"}"}]}},"sign":"s"}`,
			want:      `{"sub_msg":"\u003c\/ \\\" 你好","nested":{"a":[1,{"b":"}"}]}}`,
			wantFound: true,
		},
		{
			name:      "the key inside a string value is not a member",
			give:      `{"decoy":"\"` + key + `\":{\"code\":\"10000\"}","` + key + `":{"code":"40004"}}`,
			want:      `{"code":"40004"}`,
			wantFound: true,
		},
		{
			name:      "the key nested in another member is not a member",
			give:      `{"other":{"` + key + `":{"code":"10000"}},"` + key + `":{"code":"20000"}}`,
			want:      `{"code":"20000"}`,
			wantFound: true,
		},
		{
			name:      "first of duplicate members",
			give:      `{"` + key + `":{"code":"40004"},"` + key + `":{"code":"10000"}}`,
			want:      `{"code":"40004"}`,
			wantFound: true,
		},
		{
			name:      "escaped key spelling",
			give:      `{"alipay_open_app_mini_templatemessage_send_respons\u0065":{"code":"10000"}}`,
			want:      `{"code":"10000"}`,
			wantFound: true,
		},
		{name: "absent", give: `{"error_response":{"code":"40002"}}`},
		{name: "empty object", give: ` {} `},
		{name: "value not an object", give: `{"` + key + `":"10000","sign":"x"}`},
		{name: "not an object", give: `[{"` + key + `":{}}]`, wantErr: true},
		{name: "empty body", give: ``, wantErr: true},
		{name: "html error page", give: `<html>502 Bad Gateway</html>`, wantErr: true},
		{name: "unbalanced value", give: `{"` + key + `":{"code":"10000"`, wantErr: true},
		{name: "unterminated string", give: `{"` + key + `":{"code":"10000}}`, wantErr: true},
		{name: "missing colon", give: `{"` + key + `" {"code":"10000"}}`, wantErr: true},
		{name: "garbage after a member", give: `{"a":1 x "` + key + `":{}}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found, err := extractResponse([]byte(tt.give), key)
			if (err != nil) != tt.wantErr || found != tt.wantFound || string(got) != tt.want {
				t.Fatalf("extractResponse = %q, %v, %v; want %q, %v, error %v", got, found, err, tt.want, tt.wantFound, tt.wantErr)
			}
		})
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name     string
		give     string
		wantKey  string
		wantRaw  string
		wantSign string
		wantBody responseBody
		wantErr  bool
	}{
		{
			name:     "method response",
			give:     `{"` + responseKey + `":{"code":"40004","msg":"Business Failed","sub_code":"USER_TEMPLATE_ILLEGAL","sub_msg":"模板不合法"},"sign":"c2ln"}`,
			wantKey:  responseKey,
			wantRaw:  `{"code":"40004","msg":"Business Failed","sub_code":"USER_TEMPLATE_ILLEGAL","sub_msg":"模板不合法"}`,
			wantSign: "c2ln",
			wantBody: responseBody{Code: "40004", Msg: "Business Failed", SubCode: "USER_TEMPLATE_ILLEGAL", SubMsg: "模板不合法"},
		},
		{
			name:     "unsigned gateway error",
			give:     `{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id","sub_msg":"无效的AppID参数"}}`,
			wantKey:  errorKey,
			wantRaw:  `{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id","sub_msg":"无效的AppID参数"}`,
			wantBody: responseBody{Code: "40002", Msg: "Invalid Arguments", SubCode: "isv.invalid-app-id", SubMsg: "无效的AppID参数"},
		},
		{
			name:     "fields come from the extracted bytes, not a later duplicate",
			give:     `{"` + responseKey + `":{"code":"40004","msg":"m"},"` + responseKey + `":{"code":"10000"},"sign":"s"}`,
			wantKey:  responseKey,
			wantRaw:  `{"code":"40004","msg":"m"}`,
			wantSign: "s",
			wantBody: responseBody{Code: "40004", Msg: "m"},
		},
		{name: "neither member", give: `{"sign":"x"}`, wantErr: true},
		{name: "no code", give: `{"` + responseKey + `":{"msg":"Success"},"sign":"x"}`, wantErr: true},
		{name: "numeric code", give: `{"` + responseKey + `":{"code":10000},"sign":"x"}`, wantErr: true},
		{name: "sign not a string", give: `{"` + responseKey + `":{"code":"10000"},"sign":1}`, wantErr: true},
		{name: "invalid JSON after the member", give: `{"` + responseKey + `":{"code":"10000"},"sign":"x",}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := parseResponse([]byte(tt.give), responseKey)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseResponse = %+v, want an error", a)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.key != tt.wantKey || string(a.raw) != tt.wantRaw || a.sign != tt.wantSign || a.body != tt.wantBody {
				t.Fatalf("parseResponse = key %s raw %s sign %q body %+v", a.key, a.raw, a.sign, a.body)
			}
		})
	}
}

func TestExtractResponseDepthIsBounded(t *testing.T) {
	deep := `{"` + responseKey + `":`
	for range 10000 {
		deep += `{"a":`
	}
	if _, _, err := extractResponse([]byte(deep), responseKey); !errors.Is(err, errScan) {
		t.Fatalf("err = %v, want errScan", err)
	}
}

// A method's answer comes under its name with dots turned into
// underscores, then _response.
func TestResponseKeysFollowTheMethodNames(t *testing.T) {
	for method, key := range map[string]string{Method: responseKey, QueryMethod: queryResponseKey} {
		if want := strings.ReplaceAll(method, ".", "_") + "_response"; key != want {
			t.Errorf("response key of %s = %s, want %s", method, key, want)
		}
	}
}
