package config_test

import (
	"strings"
	"testing"

	"github.com/heraldhq/herald/config"
)

func TestPrintDefault(t *testing.T) {
	t.Parallel()
	want := `nats:
  url: nats://127.0.0.1:4222
  creds_file: ""
  nkey_seed_file: ""
  user: ""
  password: ""
  password_file: ""
  token: ""
  token_file: ""
  tls:
    ca_file: ""
    cert_file: ""
    key_file: ""
    server_name: ""
  stream: NOTIFY_SEND
  dead_stream: NOTIFY_DEAD
  events_stream: NOTIFY_EVENTS
  consumer: herald-worker
  replicas: 1
  duplicate_window: 2m
  dead_max_age: 14d
  dead_max_bytes: 1GiB
  events_max_age: 7d
  events_max_bytes: 2GiB
  max_ack_pending: 16384
  subscriptions_stream: NOTIFY_SUBSCRIPTIONS
  subscriptions_max_age: 30d
  subscriptions_max_bytes: 1GiB
redis:
  url: redis://127.0.0.1:6379/0
  username: ""
  password: ""
  password_file: ""
  tls:
    ca_file: ""
    cert_file: ""
    key_file: ""
    server_name: ""
  sentinel:
    master_name: ""
    username: ""
    password: ""
    password_file: ""
worker:
  instance: ""
  concurrency: 256
  max_attempts: 8
  ack_wait: 30s
  shutdown_grace: 25s
  http_addr: :8080
  request_timeout: 10s
  breaker:
    failures: 10
    cooldown: 30s
    max_hold: 5m
  receipt_wait: 2s
  max_pending_receipts: 100000
  metric_templates: []
receiver:
  http_addr: :8081
  path_prefix: /wechat/
subscriptions:
  mode: ""
  trust_counts: false
  status_ttl: 24h
  ledger_ttl: 180d
  consumer: herald-ledger
console:
  http_addr: 127.0.0.1:8090
  read_only: false
  basic_auth:
    user: ""
    password: ""
    password_file: ""
  trusted_user_header: ""
  replicas: []
retry:
  initial_interval: 1s
  max_interval: 5m
  multiplier: 2
  randomization: 0.2
dedup:
  ttl: 24h
rate_limits: []
apps: {}
`
	if got := printed(t, config.Default()); got != want {
		t.Errorf("Print(Default()):\n%s\nwant:\n%s", got, want)
	}
}

// TestPrintReadsBack loads what Print wrote and gets the same
// configuration, for one without secrets.
func TestPrintReadsBack(t *testing.T) {
	t.Parallel()
	c, err := config.Load("testdata/embedded.good.yaml", []string{
		"HERALD_RATE_LIMITS_0_APP=shop",
		"HERALD_RATE_LIMITS_0_TEMPLATE_ID=2021",
		"HERALD_RATE_LIMITS_0_PER_SECOND=0.5",
		"HERALD_RATE_LIMITS_0_BURST=1",
		"HERALD_NATS_EVENTS_MAX_AGE=36h",
		"HERALD_NATS_DEAD_MAX_BYTES=500MB",
		"HERALD_NATS_EVENTS_MAX_BYTES=0",
		"HERALD_NATS_SUBSCRIPTIONS_MAX_BYTES=1536MiB",
	})
	if err != nil {
		t.Fatal(err)
	}
	back, err := config.Load(writeConfig(t, printed(t, c)), nil)
	if err != nil {
		t.Fatal(err)
	}
	requireEqual(t, back, c)
}

// TestPrintMasksSecrets checks that Print shows where a secret is set but
// never its value, while Reveal still returns it.
func TestPrintMasksSecrets(t *testing.T) {
	t.Parallel()
	const (
		wechat   = "wechat-s3cret-value"
		redis    = "redis-pa55word"
		natsUser = "nats-t0ken"
	)
	c, err := config.Load("testdata/contract.good.yaml", []string{
		"HERALD_APPS_DEFAULT_WECHAT_APP_SECRET=" + wechat,
		"HERALD_REDIS_URL=redis://herald:" + redis + "@redis.internal:6379/0",
		"HERALD_NATS_URL=nats://" + natsUser + "@nats-0:4222,nats-1:4222",
	})
	if err != nil {
		t.Fatal(err)
	}
	privateKey := readFixture(t, "secrets/app_private_key.pem")
	revealed := []string{
		c.Apps["default"].WeChat.AppSecret.Reveal(),
		c.Apps["default"].Alipay.PrivateKey.Reveal(),
	}
	if revealed[0] != wechat || revealed[1] != privateKey {
		t.Fatalf("Reveal = %q, want the secrets loaded", revealed)
	}

	out := printed(t, c)
	for _, secret := range []string{wechat, redis, natsUser, privateKey, "BEGIN PRIVATE KEY"} {
		if strings.Contains(out, secret) {
			t.Errorf("Print output contains %q:\n%s", secret, out)
		}
	}
	for _, shown := range []string{
		"app_secret: <secret>",
		"private_key: <secret>",
		"private_key_file: testdata/secrets/app_private_key.pem",
		"url: redis://herald:xxxxx@redis.internal:6379/0",
		"url: nats://xxxxx@nats-0:4222,nats-1:4222",
	} {
		if !strings.Contains(out, shown) {
			t.Errorf("Print output lacks %q:\n%s", shown, out)
		}
	}
}

func TestPrintShowsUnsetSecret(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.Apps = map[string]config.App{"default": {WeChat: &config.WeChatApp{AppID: "wx1"}}}
	if out, want := printed(t, c), `app_secret: ""`; !strings.Contains(out, want) {
		t.Errorf("Print output lacks %q:\n%s", want, out)
	}
}
