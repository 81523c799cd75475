package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/heraldhq/herald/config"
)

func TestSecretRendering(t *testing.T) {
	t.Parallel()
	const value = "hunter2"
	s := config.Secret(value)
	var empty config.Secret
	app := config.WeChatApp{AppID: "wx1", AppSecret: s, Push: config.WeChatPush{Token: s}}
	tests := []struct {
		name string
		give string
		want string
	}{
		{name: "String", give: s.String(), want: "<secret>"},
		{name: "%v", give: fmt.Sprintf("%v", s), want: "<secret>"},
		{name: "%+v", give: fmt.Sprintf("%+v", s), want: "<secret>"},
		{name: "%s", give: fmt.Sprintf("%s", s), want: "<secret>"},
		{name: "%q", give: fmt.Sprintf("%q", s), want: `"<secret>"`},
		{name: "%x", give: fmt.Sprintf("%x", s), want: fmt.Sprintf("%x", "<secret>")},
		{name: "%10s", give: fmt.Sprintf("%10s", s), want: "  <secret>"},
		{name: "%#v", give: fmt.Sprintf("%#v", s), want: `"<secret>"`},
		{name: "GoString", give: s.GoString(), want: `"<secret>"`},
		{name: "%+v of a struct", give: fmt.Sprintf("%+v", app), want: "{AppID:wx1 AppSecret:<secret> AppSecretFile: BaseURL: AllowInsecure:false TokenEndpoint: " +
			"Push:{Token:<secret> TokenFile: EncodingAESKey: EncodingAESKeyFile: PreviousEncodingAESKey: PreviousEncodingAESKeyFile:} LongTermTemplates:[]}"},
		{name: "%#v of a struct", give: fmt.Sprintf("%#v", app), want: `config.WeChatApp{AppID:"wx1", AppSecret:"<secret>", AppSecretFile:"", BaseURL:"", AllowInsecure:false, TokenEndpoint:"", ` +
			`Push:config.WeChatPush{Token:"<secret>", TokenFile:"", EncodingAESKey:"", EncodingAESKeyFile:"", PreviousEncodingAESKey:"", PreviousEncodingAESKeyFile:""}, LongTermTemplates:[]string(nil)}`},
		{name: "JSON", give: mustJSON(t, s), want: `"<secret>"`},
		{name: "JSON of a struct", give: mustJSON(t, struct{ S config.Secret }{s}), want: `{"S":"<secret>"}`},
		{name: "YAML", give: mustYAML(t, s), want: "<secret>\n"},
		{name: "YAML of a struct", give: mustYAML(t, app), want: "app_id: wx1\napp_secret: <secret>\napp_secret_file: \"\"\nbase_url: \"\"\nallow_insecure: false\ntoken_endpoint: \"\"\n" +
			"push:\n    token: <secret>\n    token_file: \"\"\n    encoding_aes_key: \"\"\n    encoding_aes_key_file: \"\"\n" +
			"    previous_encoding_aes_key: \"\"\n    previous_encoding_aes_key_file: \"\"\nlong_term_templates: []\n"},
		{name: "slog", give: slogLine(s), want: `{"level":"INFO","msg":"m","secret":"<secret>"}` + "\n"},
		{name: "text", give: mustText(t, s), want: "<secret>"},
		{name: "Reveal", give: s.Reveal(), want: value},
		{name: "empty String", give: empty.String(), want: ""},
		{name: "empty %q", give: fmt.Sprintf("%q", empty), want: `""`},
		{name: "empty JSON", give: mustJSON(t, empty), want: `""`},
		{name: "empty YAML", give: mustYAML(t, empty), want: "\"\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.give != tt.want {
				t.Errorf("got %q, want %q", tt.give, tt.want)
			}
		})
	}
}

// TestErrorsNeverHoldSecrets plants secrets through the environment in the
// places a bad configuration could echo them.
func TestErrorsNeverHoldSecrets(t *testing.T) {
	t.Parallel()
	const planted = "pl4nted-s3cret"
	tests := []struct {
		name    string
		give    []string
		wantErr string
	}{
		{
			name:    "redis URL that does not parse",
			give:    []string{"HERALD_REDIS_URL=redis://:" + planted + "%zz@127.0.0.1:6379/0"},
			wantErr: "redis.url: not a valid URL",
		},
		{
			name:    "redis URL with a bad port",
			give:    []string{"HERALD_REDIS_URL=redis://:" + planted + "@127.0.0.1:port/0"},
			wantErr: "redis.url: not a valid URL",
		},
		{
			name:    "redis URL with a bad scheme",
			give:    []string{"HERALD_REDIS_URL=http://:" + planted + "@127.0.0.1:6379/0"},
			wantErr: "redis.url: scheme must be redis, rediss or unix",
		},
		{
			name:    "redis cluster URL with an empty address",
			give:    []string{"HERALD_REDIS_URL=redis+cluster://:" + planted + "@n0:6379,,n2:6379"},
			wantErr: "redis.url: host required in every address of the list",
		},
		{
			name:    "redis sentinel URL with a password in its query",
			give:    []string{"HERALD_REDIS_URL=redis+sentinel://s0:26379?password=" + planted},
			wantErr: "redis.url: the sentinel and cluster forms take no query or fragment",
		},
		{
			name:    "NATS token in a bad URL",
			give:    []string{"HERALD_NATS_URL=nats://" + planted + "@:4222"},
			wantErr: "nats.url: host required",
		},
		{
			name:    "secret beside its file",
			give:    []string{"HERALD_APPS_DEFAULT_WECHAT_APP_SECRET=" + planted, "HERALD_APPS_DEFAULT_WECHAT_APP_SECRET_FILE=/run/secret"},
			wantErr: "apps.default.wechat.app_secret: set only one of app_secret and app_secret_file",
		},
		{
			name:    "secret of an incomplete app",
			give:    []string{"HERALD_APPS_SHOP_ALIPAY_PRIVATE_KEY=" + planted},
			wantErr: "apps.shop.alipay.app_id: required",
		},
		{
			name:    "push token of the wrong form",
			give:    []string{"HERALD_APPS_DEFAULT_WECHAT_PUSH_TOKEN=" + planted},
			wantErr: "apps.default.wechat.push.token: must be 3 to 32 letters and digits",
		},
		{
			name: "encoding aes key of the wrong form",
			give: []string{"HERALD_APPS_DEFAULT_WECHAT_PUSH_TOKEN=token", "HERALD_APPS_DEFAULT_WECHAT_PUSH_PREVIOUS_ENCODING_AES_KEY=" + planted,
				"HERALD_APPS_DEFAULT_WECHAT_PUSH_ENCODING_AES_KEY=" + planted},
			wantErr: "apps.default.wechat.push.previous_encoding_aes_key: must be 43 letters and digits",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(envBase, tt.give)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load error = %v, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), planted) {
				t.Errorf("Load error reveals the secret:\n%v", err)
			}
		})
	}
}

// mustJSON encodes v as a command's --json output does, without escaping
// < and > for HTML.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func mustYAML(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func slogLine(s config.Secret) string {
	var b bytes.Buffer
	h := slog.NewJSONHandler(&b, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
	slog.New(h).Info("m", "secret", s)
	return b.String()
}

func mustText(t *testing.T, s config.Secret) string {
	t.Helper()
	b, err := s.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
