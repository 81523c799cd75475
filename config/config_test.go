package config_test

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/config"
)

// wechatSecret is what HERALD_APPS_DEFAULT_WECHAT_APP_SECRET carries in
// tests that need the contract example to load.
const wechatSecret = "wechat-secret-from-env"

func TestGoodConfigs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give    string
		environ []string
	}{
		{give: "console.good.yaml"},
		{give: "contract.good.yaml", environ: []string{"HERALD_APPS_DEFAULT_WECHAT_APP_SECRET=" + wechatSecret}},
		{give: "embedded.good.yaml"},
		{give: "empty.good.yaml"},
		{give: "insecure.good.yaml"},
		{give: "links.good.yaml"},
		{give: "minimal.good.yaml"},
		{give: "operators.good.yaml"},
		{give: "receiver.good.yaml"},
	}
	requireListed(t, "*.good.yaml", func(yield func(string) bool) {
		for _, tt := range tests {
			if !yield(tt.give) {
				return
			}
		}
	})
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Parallel()
			if _, err := config.Load(filepath.Join("testdata", tt.give), tt.environ); err != nil {
				t.Fatalf("Load: %v", err)
			}
		})
	}
}

// TestBadConfigs checks that each bad file fails and that the error names
// every bad key in it.
func TestBadConfigs(t *testing.T) {
	t.Parallel()
	expectedErrors := []struct {
		filename string
		errMsg   string
	}{
		{"alias-loop.bad.yaml", "apps.default: alias apps refers to itself (line 2)"},
		{"apps.bad.yaml", "apps.default.wechat.app_id: required"},
		{"apps.bad.yaml", "apps.default.wechat.base_url: scheme must be https or http"},
		{"apps.bad.yaml", "apps.default.wechat.token_endpoint: must be stable_token or token"},
		{"apps.bad.yaml", "apps.shop.alipay.private_key: required (inline, private_key_file or HERALD_APPS_SHOP_ALIPAY_PRIVATE_KEY)"},
		{"apps.bad.yaml", "apps.shop.alipay.alipay_public_key: required"},
		{"apps.bad.yaml", "apps.shop.alipay.gateway: required"},
		{"apps.bad.yaml", "apps.shop.alipay.recipient: must be open_id or user_id"},
		{"apps.bad.yaml", "apps.bare: needs wechat, alipay or both"},
		{"apps.bad.yaml", "apps.nothing: needs wechat, alipay or both"},
		{"console.bad.yaml", "console.http_addr: must be host:port such as 127.0.0.1:8090"},
		{"console.bad.yaml", `console.read_only: want true or false, not "maybe" (line 3)`},
		{"console.bad.yaml", "console.basic_auth.password: required with console.basic_auth.user (inline, password_file or HERALD_CONSOLE_BASIC_AUTH_PASSWORD)"},
		{"console.bad.yaml", "console.basic_auth.user: must not contain ':', which basic authentication cannot carry"},
		{"console.bad.yaml", "console.trusted_user_header: must be a header name such as X-Forwarded-User"},
		{"console.bad.yaml", "console.replicas[0]: scheme must be https or http"},
		{"console.bad.yaml", "console.replicas[1]: must be a base URL such as http://herald-worker-0:8080, without credentials, query or fragment"},
		{"console.bad.yaml", "console.replicas[2]: must be a base URL"},
		{"documents.bad.yaml", "the file must hold one YAML document"},
		{"duplicate-keys.bad.yaml", "worker.concurrency: duplicate key (line 3)"},
		{"duplicate-keys.bad.yaml", "apps.shop: duplicate key (line 6)"},
		{"insecure.bad.yaml", "apps.default.wechat.base_url: plain http to a host other than loopback would carry secrets unencrypted: use https, or set apps.default.wechat.allow_insecure: true"},
		{"insecure.bad.yaml", "apps.shop.alipay.gateway: plain http to a host other than loopback would carry secrets unencrypted: use https, or set apps.shop.alipay.allow_insecure: true"},
		{"insecure.bad.yaml", `apps.maybe.wechat.allow_insecure: want true or false, not "yes" (line 19)`},
		{"links-nats.bad.yaml", "nats: set only one of nats.creds_file, nats.user, nats.token: each is a way to authenticate"},
		{"links-nats.bad.yaml", "nats.password: required with nats.user (inline, password_file or HERALD_NATS_PASSWORD)"},
		{"links-nats.bad.yaml", "nats.url: holds credentials, and so do nats.nkey_seed_file, nats.user or nats.token: give them in one place"},
		{"links-nats.bad.yaml", "nats.tls.key_file: required with nats.tls.cert_file"},
		{"links-redis.bad.yaml", "redis.password: required with redis.username (inline, password_file or HERALD_REDIS_PASSWORD)"},
		{"links-redis.bad.yaml", "redis.url: holds credentials, and so do redis.username or redis.password: give them in one place"},
		{"links-redis.bad.yaml", "redis.tls.cert_file: required with redis.tls.key_file"},
		{"links-redis.bad.yaml", "redis.tls: set, but redis.url does not use TLS: use rediss://, rediss+sentinel:// or rediss+cluster://"},
		{"links-redis.bad.yaml", "redis.sentinel: set, but redis.url is not a redis+sentinel:// url"},
		{"nats-same.bad.yaml", "nats.url: host required"},
		{"nats-same.bad.yaml", "nats.dead_stream: must differ from nats.stream"},
		{"nats.bad.yaml", "nats.url: scheme must be nats, tls, ws or wss"},
		{"nats.bad.yaml", "nats.stream: required"},
		{"nats.bad.yaml", "nats.dead_stream: must not contain white space, '.', '*', '>', '/' or '\\'"},
		{"nats.bad.yaml", "nats.consumer: required"},
		{"nats.bad.yaml", "nats.replicas: must be 1 to 5"},
		{"nats.bad.yaml", "nats.duplicate_window: must be positive"},
		{"nats.bad.yaml", "nats.events_max_age: must not be negative"},
		{"nats.bad.yaml", "nats.max_ack_pending: must be at least 1"},
		{"push.bad.yaml", "receiver.path_prefix: may hold letters, digits and - . _ ~ / only"},
		{"push.bad.yaml", "apps.short.wechat.push.token: must be 3 to 32 letters and digits, as the WeChat console allows"},
		{"push.bad.yaml", "apps.short.wechat.push.encoding_aes_key: must be 43 letters and digits, as the WeChat console gives it"},
		{"push.bad.yaml", "apps.keyless.wechat.push.token: required with apps.keyless.wechat.push.encoding_aes_key (inline, token_file or HERALD_APPS_KEYLESS_WECHAT_PUSH_TOKEN)"},
		{"push.bad.yaml", "apps.keyless.wechat.push.previous_encoding_aes_key: must be 43 letters and digits"},
		{"push.bad.yaml", "apps.orphan.wechat.push.encoding_aes_key: required with apps.orphan.wechat.push.previous_encoding_aes_key"},
		{"push.bad.yaml", "apps.both.wechat.push.token: set only one of token and token_file"},
		{"rate-limits.bad.yaml", "rate_limits[1].per_second: must be positive"},
		{"rate-limits.bad.yaml", "rate_limits[2].platform: must be wechat, alipay or *"},
		{"rate-limits.bad.yaml", "rate_limits[2].burst: must be at least 1"},
		{"rate-limits.bad.yaml", "rate_limits[3]: same platform, app and template_id as rate_limits[0]"},
		{"redis-cluster.bad.yaml", "redis.url: a cluster has database 0 only"},
		{"receiver.bad.yaml", "nats.subscriptions_stream: must differ from nats.stream, nats.dead_stream and nats.events_stream"},
		{"receiver.bad.yaml", "nats.subscriptions_max_age: must be at least 10m, the stream's duplicate window (or 0)"},
		{"receiver.bad.yaml", "receiver.http_addr: must be host:port such as :8081"},
		{"receiver.bad.yaml", "receiver.path_prefix: must start and end with / around a name, such as /wechat/"},
		{"redis-db.bad.yaml", "redis.url: path must be a database number such as /0"},
		{"redis-sentinel.bad.yaml", "redis.url: host required in every address of the list"},
		{"redis.bad.yaml", "redis.url: scheme must be redis, rediss or unix"},
		{"retry.bad.yaml", "retry.initial_interval: must be positive"},
		{"retry.bad.yaml", "retry.max_interval: must not be shorter than retry.initial_interval"},
		{"retry.bad.yaml", "retry.multiplier: must be at least 1"},
		{"retry.bad.yaml", "retry.randomization: must be at least 0 and below 1"},
		{"retry.bad.yaml", "dedup.ttl: must be positive"},
		{"secret-file.bad.yaml", "apps.default.wechat.app_secret_file: open testdata/secrets/does-not-exist: no such file or directory"},
		{"secret-file.bad.yaml", "apps.default.alipay.private_key: set only one of private_key and private_key_file"},
		{"secret-file.bad.yaml", "apps.default.alipay.alipay_public_key_file: testdata/secrets/empty is empty"},
		{"streams.bad.yaml", "nats.dead_max_bytes: must be at least 1MiB (or 0 for no limit)"},
		{"streams.bad.yaml", `nats.events_max_bytes: want a size such as 512MiB, 2GiB or 1000000, not "lots" (line 3)`},
		{"streams.bad.yaml", `nats.subscriptions_max_bytes: want a size such as 512MiB, 2GiB or 1000000, not "-1" (line 4)`},
		{"syntax.bad.yaml", "yaml: line 2: did not find expected key"},
		{"timeout.bad.yaml", "worker.http_addr: required"},
		{"timeout.bad.yaml", "worker.request_timeout: must be shorter than worker.ack_wait (30s)"},
		{"top-level.bad.yaml", "(top level): want a mapping of keys, not a list (line 1)"},
		{"types.bad.yaml", `nats.replicas: want a whole number, not "three" (line 2)`},
		{"types.bad.yaml", "nats.stream: want a single value, not a list (line 3)"},
		{"types.bad.yaml", `worker.concurrency: want a whole number, not "1.5" (line 5)`},
		{"types.bad.yaml", `worker.ack_wait: want a duration such as 30s, 5m or 14d, not "30" (line 6)`},
		{"types.bad.yaml", `worker.shutdown_grace: want a duration such as 30s, 5m or 14d, not "soon" (line 7)`},
		{"types.bad.yaml", `retry.multiplier: want a number, not "fast" (line 9)`},
		{"types.bad.yaml", `retry.randomization: want a number, not ".nan" (line 10)`},
		{"types.bad.yaml", "dedup: want a mapping of keys, not a single value (line 11)"},
		{"types.bad.yaml", "rate_limits: want a list, not a mapping (line 13)"},
		{"types.bad.yaml", "apps: want a mapping of names, not a list (line 15)"},
		{"unknown-keys.bad.yaml", "natz: unknown key (line 1)"},
		{"unknown-keys.bad.yaml", "worker.concurency: unknown key (line 4)"},
		{"unknown-keys.bad.yaml", "apps.default.wechat.appsecret: unknown key (line 10)"},
		{"unknown-keys.bad.yaml", "apps.default.sms: unknown key (line 11)"},
		{"worker.bad.yaml", "worker.concurrency: must be at least 1"},
		{"worker.bad.yaml", "worker.max_attempts: must be at least 1"},
		{"worker.bad.yaml", "worker.ack_wait: must be positive"},
		{"worker.bad.yaml", "worker.shutdown_grace: must be positive"},
		{"worker.bad.yaml", "worker.http_addr: must be host:port such as :8080"},
		{"worker.bad.yaml", "worker.request_timeout: must be positive"},
		{"worker.bad.yaml", "worker.breaker.failures: must be at least 1"},
		{"worker.bad.yaml", "worker.breaker.max_hold: must be at least worker.breaker.cooldown (1m0s)"},
	}
	requireListed(t, "*.bad.yaml", func(yield func(string) bool) {
		for _, tt := range expectedErrors {
			if !yield(tt.filename) {
				return
			}
		}
	})
	for _, tt := range expectedErrors {
		t.Run(tt.filename, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", tt.filename)
			c, err := config.Load(path, nil)
			if err == nil {
				t.Fatalf("Load(%s) = %+v, want an error", path, c)
			}
			if !strings.Contains(err.Error(), tt.errMsg) {
				t.Errorf("Load(%s) error:\n%v\nwant it to contain %q", path, err, tt.errMsg)
			}
		})
	}
}

// requireListed fails t unless the names cover every testdata file
// matching pattern, so that no fixture goes untested.
func requireListed(t *testing.T, pattern string, names iter.Seq[string]) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil {
		t.Fatal(err)
	}
	listed := slices.Collect(names)
	for _, f := range files {
		if !slices.Contains(listed, filepath.Base(f)) {
			t.Errorf("%s is not in the test table", f)
		}
	}
}

// TestContractExample loads the example of contract.md section 4 and checks
// every value it gives, and every default it leaves.
func TestContractExample(t *testing.T) {
	t.Parallel()
	got, err := config.Load("testdata/contract.good.yaml", []string{"HERALD_APPS_DEFAULT_WECHAT_APP_SECRET=" + wechatSecret})
	if err != nil {
		t.Fatal(err)
	}
	want := &config.Config{
		NATS: config.NATS{
			URL:             "nats://127.0.0.1:4222",
			Stream:          "NOTIFY_SEND",
			DeadStream:      "NOTIFY_DEAD",
			EventsStream:    "NOTIFY_EVENTS",
			Consumer:        "herald-worker",
			Replicas:        1,
			DuplicateWindow: 2 * time.Minute,
			DeadMaxAge:      14 * 24 * time.Hour,
			DeadMaxBytes:    1 << 30,
			EventsMaxAge:    7 * 24 * time.Hour,
			EventsMaxBytes:  2 << 30,
			MaxAckPending:   16384,

			SubscriptionsStream:   "NOTIFY_SUBSCRIPTIONS",
			SubscriptionsMaxAge:   30 * 24 * time.Hour,
			SubscriptionsMaxBytes: 1 << 30,
		},
		Redis: config.Redis{URL: "redis://127.0.0.1:6379/0"},
		Worker: config.Worker{
			Concurrency:    256,
			MaxAttempts:    8,
			AckWait:        30 * time.Second,
			ShutdownGrace:  25 * time.Second,
			HTTPAddr:       ":8080",
			RequestTimeout: 10 * time.Second,
			Breaker:        config.Breaker{Failures: 10, Cooldown: 30 * time.Second, MaxHold: 5 * time.Minute},

			ReceiptWait:        2 * time.Second,
			MaxPendingReceipts: 100_000,
		},
		Receiver: config.Receiver{HTTPAddr: ":8081", PathPrefix: "/wechat/"},
		Subscriptions: config.Subscriptions{
			StatusTTL: 24 * time.Hour, LedgerTTL: 180 * 24 * time.Hour, Consumer: "herald-ledger",
		},
		Console: config.Console{HTTPAddr: "127.0.0.1:8090"},
		Retry: config.Retry{
			InitialInterval: time.Second,
			MaxInterval:     5 * time.Minute,
			Multiplier:      2,
			Randomization:   0.2,
		},
		Dedup: config.Dedup{TTL: 24 * time.Hour},
		RateLimits: []config.RateLimit{
			{Platform: "wechat", App: "*", TemplateID: "*", PerSecond: 200, Burst: 50},
			{Platform: "wechat", App: "default", TemplateID: "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc", PerSecond: 20, Burst: 5},
		},
		Apps: map[string]config.App{
			"default": {
				WeChat: &config.WeChatApp{
					AppID:         "wx0123456789abcdef",
					AppSecret:     wechatSecret,
					BaseURL:       "https://api.weixin.qq.com",
					TokenEndpoint: "stable_token",
				},
				Alipay: &config.AlipayApp{
					AppID:               "2021000000000000",
					PrivateKey:          config.Secret(readFixture(t, "secrets/app_private_key.pem")),
					PrivateKeyFile:      "testdata/secrets/app_private_key.pem",
					AlipayPublicKey:     readFixture(t, "secrets/alipay_public_key.pem"),
					AlipayPublicKeyFile: "testdata/secrets/alipay_public_key.pem",
					Gateway:             "https://openapi.alipay.com/gateway.do",
					Recipient:           "open_id",
				},
			},
		},
	}
	requireEqual(t, got, want)
}

func TestLoadWithoutFileIsDefault(t *testing.T) {
	t.Parallel()
	got, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	requireEqual(t, got, config.Default())
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := config.Load("testdata/missing.yaml", nil)
	want := "read config: open testdata/missing.yaml: no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("Load error = %v, want %q", err, want)
	}
}

func TestLoadReportsOneProblemPerLine(t *testing.T) {
	t.Parallel()
	_, err := config.Load("testdata/retry.bad.yaml", nil)
	want := `config testdata/retry.bad.yaml: 5 problems:
  retry.initial_interval: must be positive
  retry.max_interval: must not be shorter than retry.initial_interval
  retry.multiplier: must be at least 1
  retry.randomization: must be at least 0 and below 1
  dedup.ttl: must be positive`
	if err == nil || err.Error() != want {
		t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
	}
}

func TestConfigPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		giveFlag string
		giveEnv  []string
		want     string
	}{
		{name: "flag wins", giveFlag: "a.yaml", giveEnv: []string{"HERALD_CONFIG=b.yaml"}, want: "a.yaml"},
		{name: "environment", giveEnv: []string{"HOME=/root", "HERALD_CONFIG=b.yaml"}, want: "b.yaml"},
		{name: "later entry wins", giveEnv: []string{"HERALD_CONFIG=b.yaml", "HERALD_CONFIG=c.yaml"}, want: "c.yaml"},
		{name: "neither", giveEnv: []string{"HERALD_CONFIGURED=b.yaml"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := config.ConfigPath(tt.giveFlag, tt.giveEnv); got != tt.want {
				t.Errorf("ConfigPath(%q, %q) = %q, want %q", tt.giveFlag, tt.giveEnv, got, tt.want)
			}
		})
	}
}

// readFixture returns a testdata file's contents as the loader stores them.
func readFixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// requireEqual compares two configurations, printing both (secrets
// masked) when they differ.
func requireEqual(t *testing.T, got, want *config.Config) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("config differs\ngot:\n%s\nwant:\n%s", printed(t, got), printed(t, want))
	}
}

func printed(t *testing.T, c *config.Config) string {
	t.Helper()
	var b strings.Builder
	if err := c.Print(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestOperatorsFile checks the ways operators write values: days, quoted
// numbers, empty sections, anchors and merge keys.
func TestOperatorsFile(t *testing.T) {
	t.Parallel()
	c, err := config.Load("testdata/operators.good.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		give any
		want any
	}{
		{name: "days", give: c.NATS.DeadMaxAge, want: 30 * 24 * time.Hour},
		{name: "fraction of days", give: c.NATS.EventsMaxAge, want: 36 * time.Hour},
		{name: "days and hours", give: c.Worker.ShutdownGrace, want: 25 * time.Hour},
		{name: "quoted number", give: c.NATS.MaxAckPending, want: 4096},
		{name: "several servers", give: c.NATS.URL, want: "nats://nats-0.nats:4222, nats://nats-1.nats:4222,nats-2.nats:4222"},
		{name: "empty section keeps defaults", give: c.Retry, want: config.Default().Retry},
		{name: "untouched key keeps its default", give: c.Worker.MaxAttempts, want: 8},
		{name: "missing selectors become wildcards", give: c.RateLimits[0], want: config.RateLimit{Platform: "alipay", App: "*", TemplateID: "*", PerSecond: 10.5, Burst: 3}},
		{name: "merged platform", give: *c.Apps["shop"].WeChat, want: *c.Apps["base"].WeChat},
		{name: "merged app keeps its own keys", give: c.Apps["shop"].Alipay.Recipient, want: "user_id"},
		{name: "merged fields under an own key", give: c.Apps["mall"].WeChat.AppID, want: "wx0000000000000002"},
		{name: "merged fields keep the rest", give: c.Apps["mall"].WeChat.TokenEndpoint, want: "token"},
		{name: "inline secret", give: c.Apps["mall"].WeChat.AppSecret.Reveal(), want: "inline-secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !reflect.DeepEqual(tt.give, tt.want) {
				t.Errorf("got %#v, want %#v", tt.give, tt.want)
			}
		})
	}
}

// TestReceiverFile checks the receiver's settings and each app's push
// secrets, read from files and inline.
func TestReceiverFile(t *testing.T) {
	t.Parallel()
	c, err := config.Load("testdata/receiver.good.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		give any
		want any
	}{
		{name: "listen address", give: c.Receiver.HTTPAddr, want: "127.0.0.1:9081"},
		{name: "path prefix", give: c.Receiver.PathPrefix, want: "/hooks/wechat/"},
		{name: "stream", give: c.NATS.SubscriptionsStream, want: "WECHAT_SUBSCRIPTIONS"},
		{name: "max age", give: c.NATS.SubscriptionsMaxAge, want: 90 * 24 * time.Hour},
		{name: "token from a file", give: c.Apps["default"].WeChat.Push.Token.Reveal(), want: readFixture(t, "secrets/wechat_push_token")},
		{name: "key from a file", give: c.Apps["default"].WeChat.Push.EncodingAESKey.Reveal(), want: readFixture(t, "secrets/wechat_encoding_aes_key")},
		{name: "previous key inline", give: c.Apps["default"].WeChat.Push.PreviousEncodingAESKey.Reveal(), want: "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"},
		{name: "plaintext app", give: c.Apps["plain"].WeChat.Push, want: config.WeChatPush{Token: "plainToken"}},
		{name: "app without push", give: c.Apps["sender"].WeChat.Push, want: config.WeChatPush{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !reflect.DeepEqual(tt.give, tt.want) {
				t.Errorf("got %#v, want %#v", tt.give, tt.want)
			}
		})
	}
}

// TestConsoleFile checks the console's settings, its password read from a
// file, and that the default listens on loopback.
func TestConsoleFile(t *testing.T) {
	t.Parallel()
	c, err := config.Load("testdata/console.good.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		give any
		want any
	}{
		{name: "listen address", give: c.Console.HTTPAddr, want: "0.0.0.0:9090"},
		{name: "read only", give: c.Console.ReadOnly, want: true},
		{name: "user", give: c.Console.BasicAuth.User, want: "ops"},
		{name: "password from a file", give: c.Console.BasicAuth.Password.Reveal(), want: readFixture(t, "secrets/console_password")},
		{name: "trusted header", give: c.Console.TrustedUserHeader, want: "X-Forwarded-User"},
		{name: "replicas", give: c.Console.Replicas, want: []string{"http://herald-worker-0:8080", "https://receiver.example.com"}},
		{name: "default listens on loopback", give: config.Default().Console, want: config.Console{HTTPAddr: "127.0.0.1:8090"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !reflect.DeepEqual(tt.give, tt.want) {
				t.Errorf("got %#v, want %#v", tt.give, tt.want)
			}
		})
	}
}

// TestValidate checks a configuration built in code, as commands that do
// not read a file build one.
func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give func(*config.Config)
		want string
	}{
		{name: "default", give: func(*config.Config) {}, want: ""},
		{name: "no apps", give: func(c *config.Config) { c.Apps = map[string]config.App{} }, want: ""},
		{
			name: "unix socket redis",
			give: func(c *config.Config) { c.Redis.URL = "unix:///run/redis.sock" },
			want: "",
		},
		{
			name: "unix socket without a path",
			give: func(c *config.Config) { c.Redis.URL = "unix://" },
			want: "redis.url: socket path required, unix:///path/to/redis.sock",
		},
		{
			name: "redis without a host",
			give: func(c *config.Config) { c.Redis.URL = "redis:///0" },
			want: "redis.url: host required",
		},
		{
			name: "base url without a host",
			give: func(c *config.Config) {
				c.Apps = map[string]config.App{"default": {WeChat: &config.WeChatApp{
					AppID: "wx1", AppSecret: "s", BaseURL: "https://", TokenEndpoint: config.TokenEndpointStable,
				}}}
			},
			want: "apps.default.wechat.base_url: host required",
		},
		{
			name: "base url that does not parse",
			give: func(c *config.Config) {
				c.Apps = map[string]config.App{"default": {WeChat: &config.WeChatApp{
					AppID: "wx1", AppSecret: "s", BaseURL: "https://%zz", TokenEndpoint: config.TokenEndpointStable,
				}}}
			},
			want: "apps.default.wechat.base_url: not a valid URL",
		},
		{
			name: "duplicate window longer than the dead letters live",
			give: func(c *config.Config) { c.NATS.DeadMaxAge = time.Minute },
			want: "nats.dead_max_age: must not be shorter than nats.duplicate_window",
		},
		{
			name: "every problem at once",
			give: func(c *config.Config) { c.Worker.Concurrency = 0; c.Dedup.TTL = 0 },
			want: "worker.concurrency: must be at least 1\ndedup.ttl: must be positive",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			tt.give(c)
			if got := errorText(c.Validate()); got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestLoadErrorUnwraps checks that Load's error holds each problem, for
// errors.Is and errors.As.
func TestLoadErrorUnwraps(t *testing.T) {
	t.Parallel()
	_, err := config.Load("testdata/secret-file.bad.yaml", nil)
	var notFound *fs.PathError
	if !errors.As(err, &notFound) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load error %v does not unwrap to the missing file", err)
	}
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// The contract's example with short timeouts starts: defaults the user did
// not set give way to the values they did, and only two values the user
// set can contradict each other.
func TestDefaultsYieldToWhatTheUserSet(t *testing.T) {
	t.Parallel()
	secret := "HERALD_APPS_DEFAULT_WECHAT_APP_SECRET=" + wechatSecret
	tests := []struct {
		name    string
		file    string // default contract.good.yaml
		give    []string
		want    func(*config.Config) string // "" when the config is as wanted
		wantErr string
	}{
		{
			name: "short ack wait",
			give: []string{"HERALD_WORKER_ACK_WAIT=5s"},
			want: func(c *config.Config) string {
				if c.Worker.AckWait != 5*time.Second || c.Worker.RequestTimeout >= c.Worker.AckWait || c.Worker.RequestTimeout <= 0 {
					return fmt.Sprintf("ack_wait %v, request_timeout %v", c.Worker.AckWait, c.Worker.RequestTimeout)
				}
				return ""
			},
		},
		{
			name: "long breaker cooldown",
			give: []string{"HERALD_WORKER_BREAKER_COOLDOWN=10m"},
			want: func(c *config.Config) string {
				if c.Worker.Breaker.MaxHold != 10*time.Minute {
					return fmt.Sprintf("max_hold %v, want the cooldown 10m", c.Worker.Breaker.MaxHold)
				}
				return ""
			},
		},
		{
			name: "short breaker max hold",
			give: []string{"HERALD_WORKER_BREAKER_MAX_HOLD=5s"},
			want: func(c *config.Config) string {
				if c.Worker.Breaker.Cooldown != 5*time.Second {
					return fmt.Sprintf("cooldown %v, want the max hold 5s", c.Worker.Breaker.Cooldown)
				}
				return ""
			},
		},
		{
			name: "short retry ceiling",
			file: "minimal.good.yaml",
			give: []string{"HERALD_RETRY_MAX_INTERVAL=500ms"},
			want: func(c *config.Config) string {
				if c.Retry.InitialInterval != 500*time.Millisecond {
					return fmt.Sprintf("initial_interval %v, want 500ms", c.Retry.InitialInterval)
				}
				return ""
			},
		},
		{
			name: "short dead-letter age",
			give: []string{"HERALD_NATS_DEAD_MAX_AGE=1m"},
			want: func(c *config.Config) string {
				if c.NATS.DuplicateWindow != time.Minute {
					return fmt.Sprintf("duplicate_window %v, want 1m", c.NATS.DuplicateWindow)
				}
				return ""
			},
		},
		{
			name:    "both set, contradicting",
			give:    []string{"HERALD_WORKER_ACK_WAIT=5s", "HERALD_WORKER_REQUEST_TIMEOUT=10s"},
			wantErr: "worker.request_timeout: must be shorter than worker.ack_wait (5s)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file := cmp.Or(tt.file, "contract.good.yaml")
			c, err := config.Load("testdata/"+file, append(tt.give, secret))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if msg := tt.want(c); msg != "" {
				t.Fatal(msg)
			}
		})
	}
}

// allow_insecure lets a plain http platform URL through, and InsecureURLs
// names it for the worker's warning; loopback needs neither.
func TestInsecureURLs(t *testing.T) {
	t.Parallel()
	c, err := config.Load("testdata/insecure.good.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.InsecureURLs(), []string{"apps.proxied.wechat.base_url"}; !slices.Equal(got, want) {
		t.Errorf("InsecureURLs() = %v, want %v", got, want)
	}
	if !c.Apps["proxied"].WeChat.AllowInsecure || c.Apps["proxied"].Alipay.AllowInsecure {
		t.Errorf("allow_insecure read as %+v", c.Apps["proxied"])
	}
	_, err = config.Load("testdata/insecure.good.yaml", []string{"HERALD_APPS_PROXIED_WECHAT_ALLOW_INSECURE=false"})
	if err == nil || !strings.Contains(err.Error(), "apps.proxied.wechat.base_url: plain http") {
		t.Errorf("allow_insecure turned off from the environment: %v", err)
	}
	c, err = config.Load("", []string{"HERALD_APPS_X_ALIPAY_APP_ID=1", "HERALD_APPS_X_ALIPAY_PRIVATE_KEY=k",
		"HERALD_APPS_X_ALIPAY_ALIPAY_PUBLIC_KEY=p", "HERALD_APPS_X_ALIPAY_GATEWAY=http://gw.example",
		"HERALD_APPS_X_ALIPAY_ALLOW_INSECURE=true"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.InsecureURLs(); !slices.Equal(got, []string{"apps.x.alipay.gateway"}) {
		t.Errorf("InsecureURLs() = %v", got)
	}
}
