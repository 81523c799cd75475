package config_test

import (
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/config"
)

// envBase is the file the environment tests override: one WeChat app whose
// secret comes from secrets/wechat_app_secret.
const envBase = "testdata/minimal.good.yaml"

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give []string
		get  func(*config.Config) any
		want any
	}{
		{
			name: "nats url",
			give: []string{"HERALD_NATS_URL=nats://nats.internal:4222"},
			get:  func(c *config.Config) any { return c.NATS.URL },
			want: "nats://nats.internal:4222",
		},
		{
			name: "empty redis url selects in-process stores",
			give: []string{"HERALD_REDIS_URL="},
			get:  func(c *config.Config) any { return c.Redis.URL },
			want: "",
		},
		{
			name: "empty events stream switches receipts off",
			give: []string{"HERALD_NATS_EVENTS_STREAM="},
			get:  func(c *config.Config) any { return c.NATS.EventsStream },
			want: "",
		},
		{
			name: "secret over the file's secret file",
			give: []string{"HERALD_APPS_DEFAULT_WECHAT_APP_SECRET=from-env"},
			get:  func(c *config.Config) any { return c.Apps["default"].WeChat.AppSecret.Reveal() },
			want: "from-env",
		},
		{
			name: "duration",
			give: []string{"HERALD_WORKER_SHUTDOWN_GRACE=1m"},
			get:  func(c *config.Config) any { return c.Worker.ShutdownGrace },
			want: time.Minute,
		},
		{
			name: "nested mapping",
			give: []string{"HERALD_WORKER_BREAKER_MAX_HOLD=10m"},
			get:  func(c *config.Config) any { return c.Worker.Breaker.MaxHold },
			want: 10 * time.Minute,
		},
		{
			name: "duration in days",
			give: []string{"HERALD_NATS_DEAD_MAX_AGE=30d"},
			get:  func(c *config.Config) any { return c.NATS.DeadMaxAge },
			want: 30 * 24 * time.Hour,
		},
		{
			name: "whole number",
			give: []string{"HERALD_NATS_MAX_ACK_PENDING=100"},
			get:  func(c *config.Config) any { return c.NATS.MaxAckPending },
			want: 100,
		},
		{
			name: "number",
			give: []string{"HERALD_RETRY_MULTIPLIER=1.5"},
			get:  func(c *config.Config) any { return c.Retry.Multiplier },
			want: 1.5,
		},
		{
			name: "later entry wins",
			give: []string{"HERALD_WORKER_CONCURRENCY=1", "HERALD_WORKER_CONCURRENCY=2"},
			get:  func(c *config.Config) any { return c.Worker.Concurrency },
			want: 2,
		},
		{
			name: "other HERALD_ variables are not settings",
			give: []string{"HERALD_CONFIG=elsewhere.yaml", "HERALD_LOG_LEVEL=debug", "HOME=/root"},
			get:  func(c *config.Config) any { return c.Worker.Concurrency },
			want: 256,
		},
		{
			name: "app field",
			give: []string{"HERALD_APPS_DEFAULT_WECHAT_BASE_URL=http://127.0.0.1:9000"},
			get:  func(c *config.Config) any { return c.Apps["default"].WeChat.BaseURL },
			want: "http://127.0.0.1:9000",
		},
		{
			name: "secret from the file's _file",
			get:  func(c *config.Config) any { return c.Apps["default"].WeChat.AppSecret.Reveal() },
			want: "wechat-secret-from-file",
		},
		{
			name: "secret from the environment instead of the file",
			give: []string{"HERALD_APPS_DEFAULT_WECHAT_APP_SECRET_FILE=", "HERALD_APPS_DEFAULT_WECHAT_APP_SECRET=from-env"},
			get:  func(c *config.Config) any { return c.Apps["default"].WeChat.AppSecret.Reveal() },
			want: "from-env",
		},
		{
			name: "secret from an environment _file, relative to the working directory",
			give: []string{"HERALD_APPS_DEFAULT_WECHAT_APP_SECRET_FILE=testdata/secrets/app_private_key.pem"},
			get: func(c *config.Config) any {
				return strings.HasPrefix(c.Apps["default"].WeChat.AppSecret.Reveal(), "-----BEGIN PRIVATE KEY-----")
			},
			want: true,
		},
		{
			name: "app only in the environment",
			give: []string{"HERALD_APPS_SHOP_WECHAT_APP_ID=wx0000000000000009", "HERALD_APPS_SHOP_WECHAT_APP_SECRET=shop-secret"},
			get:  func(c *config.Config) any { return *c.Apps["shop"].WeChat },
			want: config.WeChatApp{
				AppID:         "wx0000000000000009",
				AppSecret:     "shop-secret",
				BaseURL:       config.DefaultWeChatBaseURL,
				TokenEndpoint: config.TokenEndpointStable,
			},
		},
		{
			name: "platform only in the environment",
			give: []string{
				"HERALD_APPS_DEFAULT_ALIPAY_APP_ID=2021000000000000",
				"HERALD_APPS_DEFAULT_ALIPAY_PRIVATE_KEY=private",
				"HERALD_APPS_DEFAULT_ALIPAY_ALIPAY_PUBLIC_KEY=public",
			},
			get: func(c *config.Config) any { return *c.Apps["default"].Alipay },
			want: config.AlipayApp{
				AppID:           "2021000000000000",
				PrivateKey:      "private",
				AlipayPublicKey: "public",
				Gateway:         config.DefaultAlipayGateway,
				Recipient:       config.RecipientOpenID,
			},
		},
		{
			name: "an empty value creates no app",
			give: []string{"HERALD_APPS_SHOP_WECHAT_APP_SECRET="},
			get:  func(c *config.Config) any { return slices.Sorted(maps.Keys(c.Apps)) },
			want: []string{"default"},
		},
		{
			name: "receiver address",
			give: []string{"HERALD_RECEIVER_HTTP_ADDR=:9091", "HERALD_RECEIVER_PATH_PREFIX=/push/"},
			get:  func(c *config.Config) any { return c.Receiver },
			want: config.Receiver{HTTPAddr: ":9091", PathPrefix: "/push/"},
		},
		{
			name: "console settings",
			give: []string{
				"HERALD_CONSOLE_HTTP_ADDR=127.0.0.1:9999", "HERALD_CONSOLE_READ_ONLY=true",
				"HERALD_CONSOLE_BASIC_AUTH_USER=ops", "HERALD_CONSOLE_BASIC_AUTH_PASSWORD=pw",
				"HERALD_CONSOLE_TRUSTED_USER_HEADER=X-Auth-Request-User",
			},
			get: func(c *config.Config) any { return c.Console },
			want: config.Console{
				HTTPAddr: "127.0.0.1:9999", ReadOnly: true,
				BasicAuth:         config.BasicAuth{User: "ops", Password: "pw"},
				TrustedUserHeader: "X-Auth-Request-User",
			},
		},
		{
			name: "subscriptions stream",
			give: []string{"HERALD_NATS_SUBSCRIPTIONS_STREAM=SUBS", "HERALD_NATS_SUBSCRIPTIONS_MAX_AGE=7d"},
			get:  func(c *config.Config) any { return []any{c.NATS.SubscriptionsStream, c.NATS.SubscriptionsMaxAge} },
			want: []any{"SUBS", 7 * 24 * time.Hour},
		},
		{
			name: "push settings nested under an app",
			give: []string{
				"HERALD_APPS_DEFAULT_WECHAT_PUSH_TOKEN=envToken",
				"HERALD_APPS_DEFAULT_WECHAT_PUSH_ENCODING_AES_KEY=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
				"HERALD_APPS_DEFAULT_WECHAT_PUSH_PREVIOUS_ENCODING_AES_KEY_FILE=testdata/secrets/wechat_encoding_aes_key",
			},
			get: func(c *config.Config) any { return c.Apps["default"].WeChat.Push },
			want: config.WeChatPush{
				Token:                      "envToken",
				EncodingAESKey:             "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
				PreviousEncodingAESKey:     "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
				PreviousEncodingAESKeyFile: "testdata/secrets/wechat_encoding_aes_key",
			},
		},
		{
			name: "push token file of an app only the environment names",
			give: []string{
				"HERALD_APPS_SHOP_WECHAT_APP_ID=wx1",
				"HERALD_APPS_SHOP_WECHAT_APP_SECRET=s",
				"HERALD_APPS_SHOP_WECHAT_PUSH_TOKEN_FILE=testdata/secrets/wechat_push_token",
			},
			get:  func(c *config.Config) any { return c.Apps["shop"].WeChat.Push.Token.Reveal() },
			want: "pushToken2024",
		},
		{
			name: "rate limit by index",
			give: []string{
				"HERALD_RATE_LIMITS_0_PLATFORM=wechat",
				"HERALD_RATE_LIMITS_0_TEMPLATE_ID=T1",
				"HERALD_RATE_LIMITS_0_PER_SECOND=7.5",
				"HERALD_RATE_LIMITS_0_BURST=3",
			},
			get:  func(c *config.Config) any { return c.RateLimits },
			want: []config.RateLimit{{Platform: "wechat", App: "*", TemplateID: "T1", PerSecond: 7.5, Burst: 3}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Load(envBase, tt.give)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := tt.get(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestEnvOverridesRateLimitOfFile(t *testing.T) {
	t.Parallel()
	c, err := config.Load("testdata/contract.good.yaml", []string{
		"HERALD_APPS_DEFAULT_WECHAT_APP_SECRET=" + wechatSecret,
		"HERALD_RATE_LIMITS_1_PER_SECOND=15",
		"HERALD_RATE_LIMITS_2_PLATFORM=alipay",
		"HERALD_RATE_LIMITS_2_PER_SECOND=30",
		"HERALD_RATE_LIMITS_2_BURST=10",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []config.RateLimit{
		{Platform: "wechat", App: "*", TemplateID: "*", PerSecond: 200, Burst: 50},
		{Platform: "wechat", App: "default", TemplateID: "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc", PerSecond: 15, Burst: 5},
		{Platform: "alipay", App: "*", TemplateID: "*", PerSecond: 30, Burst: 10},
	}
	if !reflect.DeepEqual(c.RateLimits, want) {
		t.Errorf("RateLimits = %+v, want %+v", c.RateLimits, want)
	}
}

// TestEnvAppNames checks how a variable finds an app whose name is not
// upper-case letters and digits.
func TestEnvAppNames(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, `
apps:
  shop-cn: {wechat: {app_id: wx1, app_secret: s}}
  Mall: {wechat: {app_id: wx2, app_secret: s}}
`)
	c, err := config.Load(path, []string{
		"HERALD_APPS_SHOP_CN_WECHAT_APP_ID=wx3",
		"HERALD_APPS_MALL_WECHAT_APP_ID=wx4",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.Apps["shop-cn"].WeChat.AppID, c.Apps["Mall"].WeChat.AppID}
	if want := []string{"wx3", "wx4"}; !slices.Equal(got, want) {
		t.Errorf("app ids = %q, want %q", got, want)
	}
}

func TestEnvAmbiguousAppName(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, `
apps:
  shop-cn: {wechat: {app_id: wx1, app_secret: s}}
  shop_cn: {wechat: {app_id: wx2, app_secret: s}}
`)
	_, err := config.Load(path, []string{"HERALD_APPS_SHOP_CN_WECHAT_APP_ID=wx3"})
	want := "HERALD_APPS_SHOP_CN_WECHAT_APP_ID: matches apps shop-cn, shop_cn; rename all but one"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Load error = %v, want it to contain %q", err, want)
	}
}

func TestEnvErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    []string
		wantErr string
	}{
		{
			name:    "misspelt setting",
			give:    []string{"HERALD_WORKER_CONCURENCY=10"},
			wantErr: "HERALD_WORKER_CONCURENCY: no such setting",
		},
		{
			// Shaped like a service link, but its value is not one.
			name:    "port setting that does not exist",
			give:    []string{"HERALD_WORKER_PORT=8080"},
			wantErr: "HERALD_WORKER_PORT: no such setting",
		},
		{
			name:    "service host that is not an address",
			give:    []string{"HERALD_NATS_SERVICE_HOST=nats.example"},
			wantErr: "HERALD_NATS_SERVICE_HOST: no such setting",
		},
		{
			name:    "not a whole number",
			give:    []string{"HERALD_WORKER_CONCURRENCY=many"},
			wantErr: `HERALD_WORKER_CONCURRENCY: worker.concurrency: want a whole number, not "many"`,
		},
		{
			name:    "duration without unit",
			give:    []string{"HERALD_WORKER_ACK_WAIT=30"},
			wantErr: `HERALD_WORKER_ACK_WAIT: worker.ack_wait: want a duration such as 30s, 5m or 14d, not "30"`,
		},
		{
			name:    "invalid value",
			give:    []string{"HERALD_WORKER_CONCURRENCY=0"},
			wantErr: "worker.concurrency: must be at least 1",
		},
		{
			name:    "misspelt receiver setting",
			give:    []string{"HERALD_RECEIVER_HTTP_ADR=:1"},
			wantErr: "HERALD_RECEIVER_HTTP_ADR: no such setting",
		},
		{
			name:    "misspelt console setting",
			give:    []string{"HERALD_CONSOLE_READONLY=true"},
			wantErr: "HERALD_CONSOLE_READONLY: no such setting",
		},
		{
			name:    "console flag not a bool",
			give:    []string{"HERALD_CONSOLE_READ_ONLY=yes"},
			wantErr: `HERALD_CONSOLE_READ_ONLY: console.read_only: want true or false, not "yes"`,
		},
		{
			name:    "misspelt push setting",
			give:    []string{"HERALD_APPS_DEFAULT_WECHAT_PUSH_TOKENS=abc"},
			wantErr: "HERALD_APPS_DEFAULT_WECHAT_PUSH_TOKENS: no such setting",
		},
		{
			name:    "bad push key through the environment",
			give:    []string{"HERALD_APPS_DEFAULT_WECHAT_PUSH_TOKEN=abc", "HERALD_APPS_DEFAULT_WECHAT_PUSH_ENCODING_AES_KEY=short"},
			wantErr: "apps.default.wechat.push.encoding_aes_key: must be 43 letters and digits",
		},
		{
			name:    "rate limit without index",
			give:    []string{"HERALD_RATE_LIMITS_X_BURST=1"},
			wantErr: "HERALD_RATE_LIMITS_X_BURST: no such setting",
		},
		{
			name:    "rate limit index with leading zero",
			give:    []string{"HERALD_RATE_LIMITS_01_BURST=1"},
			wantErr: "HERALD_RATE_LIMITS_01_BURST: no such setting",
		},
		{
			name:    "rate limit unknown field",
			give:    []string{"HERALD_RATE_LIMITS_0_BURSTS=1"},
			wantErr: "HERALD_RATE_LIMITS_0_BURSTS: no such setting",
		},
		{
			name:    "rate limit index too large",
			give:    []string{"HERALD_RATE_LIMITS_5000_BURST=1"},
			wantErr: "HERALD_RATE_LIMITS_5000_BURST: rate_limits[5000].burst: at most 1000 rate limits",
		},
		{
			name:    "rate limit index past the end leaves a gap",
			give:    []string{"HERALD_RATE_LIMITS_1_PER_SECOND=5", "HERALD_RATE_LIMITS_1_BURST=5"},
			wantErr: "rate_limits[0].per_second: must be positive",
		},
		{
			name:    "unknown platform",
			give:    []string{"HERALD_APPS_SHOP_SMS_APP_ID=x"},
			wantErr: "HERALD_APPS_SHOP_SMS_APP_ID: no such setting",
		},
		{
			name:    "no app name",
			give:    []string{"HERALD_APPS__WECHAT_APP_ID=x"},
			wantErr: "HERALD_APPS__WECHAT_APP_ID: no such setting",
		},
		{
			name:    "app only in the environment lacks its secret",
			give:    []string{"HERALD_APPS_SHOP_WECHAT_APP_ID=wx1"},
			wantErr: "apps.shop.wechat.app_secret: required (inline, app_secret_file or HERALD_APPS_SHOP_WECHAT_APP_SECRET)",
		},
		{
			name:    "secret file missing",
			give:    []string{"HERALD_APPS_DEFAULT_WECHAT_APP_SECRET_FILE=/nonexistent/secret"},
			wantErr: "apps.default.wechat.app_secret_file: open /nonexistent/secret: no such file or directory",
		},
		{
			name:    "secret and secret file both in the environment",
			give:    []string{"HERALD_APPS_DEFAULT_WECHAT_APP_SECRET=inline", "HERALD_APPS_DEFAULT_WECHAT_APP_SECRET_FILE=/run/secret"},
			wantErr: "apps.default.wechat.app_secret: set only one of app_secret and app_secret_file (both are given in the environment)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(envBase, tt.give)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Load error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// writeConfig writes a config file into a fresh directory.
func writeConfig(t testing.TB, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "herald.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The kubelet's service-link variables for Services named herald-worker,
// herald-nats and herald-redis-primary land in herald's prefix and its
// sections; they are not settings and do not stop the load.
func TestServiceLinksAreIgnored(t *testing.T) {
	t.Parallel()
	var environ []string
	for _, svc := range []string{"HERALD_WORKER", "HERALD_RECEIVER", "HERALD_NATS", "HERALD_REDIS_PRIMARY", "HERALD_APPS_DEFAULT"} {
		environ = append(environ,
			svc+"_SERVICE_HOST=10.96.0.7",
			svc+"_SERVICE_PORT=8080",
			svc+"_SERVICE_PORT_HTTP=8080",
			svc+"_PORT=tcp://10.96.0.7:8080",
			svc+"_PORT_8080_TCP=tcp://10.96.0.7:8080",
			svc+"_PORT_8080_TCP_PROTO=tcp",
			svc+"_PORT_8080_TCP_PORT=8080",
			svc+"_PORT_8080_TCP_ADDR=10.96.0.7",
			svc+"_PORT_53_UDP=udp://[fd00::7]:53",
		)
	}
	environ = append(environ, "HERALD_WORKER_CONCURRENCY=7")
	cfg, err := config.Load("", environ)
	if err != nil {
		t.Fatalf("Load with service links: %v", err)
	}
	if cfg.Worker.Concurrency != 7 {
		t.Fatalf("worker.concurrency = %d, want 7: real settings still apply", cfg.Worker.Concurrency)
	}
}
