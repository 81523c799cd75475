package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/heraldhq/herald/internal/httpclient"
)

// Values with a meaning of their own in the configuration.
const (
	// Wildcard matches any platform, app or template in a [RateLimit].
	Wildcard = "*"

	// PlatformWeChat and PlatformAlipay are the platforms a [RateLimit]
	// may name; they are the last token of a job's subject.
	PlatformWeChat = "wechat"
	PlatformAlipay = "alipay"

	// TokenEndpointStable (the default) fetches WeChat access tokens from
	// /cgi-bin/stable_token, which several processes may call without
	// invalidating each other's tokens; TokenEndpointToken uses the older
	// /cgi-bin/token.
	TokenEndpointStable = "stable_token"
	TokenEndpointToken  = "token"

	// RecipientOpenID (the default) and RecipientUserID say which Alipay id
	// a job's to_user holds.
	RecipientOpenID = "open_id"
	RecipientUserID = "user_id"

	// DefaultWeChatBaseURL is the default [WeChatApp.BaseURL].
	DefaultWeChatBaseURL = "https://api.weixin.qq.com"
	// DefaultAlipayGateway is the default [AlipayApp.Gateway].
	DefaultAlipayGateway = "https://openapi.alipay.com/gateway.do"

	// EncodingAESKeyLen is the length of a WeChat EncodingAESKey: 43
	// letters and digits.
	EncodingAESKeyLen = 43
)

// EnvConfig names the environment variable that gives the config file's
// path when no --config flag does; see [ConfigPath].
const EnvConfig = "HERALD_CONFIG"

// Config is herald's whole configuration. The yaml keys are the contract
// (contract.md section 4); [Default] gives the defaults.
type Config struct {
	NATS     NATS     `yaml:"nats"`
	Redis    Redis    `yaml:"redis"`
	Worker   Worker   `yaml:"worker"`
	Receiver Receiver `yaml:"receiver"`
	// Subscriptions is the subscription ledger (contract sections 7, 8).
	Subscriptions Subscriptions `yaml:"subscriptions"`
	Console       Console       `yaml:"console"`
	Retry         Retry         `yaml:"retry"`
	Dedup         Dedup         `yaml:"dedup"`
	// RateLimits are shared by all replicas; see [Config.RateLimit] for
	// which rule applies to a job. None by default.
	RateLimits []RateLimit `yaml:"rate_limits"`
	// Apps are the configured mini-programs by name; a job's app field
	// (default "default") picks one. Empty is valid: every job is then
	// dead-lettered as unknown_app.
	Apps map[string]App `yaml:"apps"`
}

// NATS locates the JetStream server and names and sizes herald's streams.
type NATS struct {
	// URL is the server, or a comma-separated list of servers (nats://,
	// tls://, ws:// or wss://). Empty starts an embedded single-node
	// JetStream server. Default nats://127.0.0.1:4222.
	URL string `yaml:"url"`

	// How herald authenticates: at most one of CredsFile, NKeySeedFile,
	// User with Password, and Token, or credentials in URL; of these,
	// only CredsFile may be combined with URL credentials.

	// CredsFile is an optional NATS credentials file: a user JWT and its
	// nkey seed, as nsc writes it.
	CredsFile string `yaml:"creds_file"`
	// NKeySeedFile is a file holding a user nkey seed ("SU..."), for a
	// server that lists the user's public nkey.
	NKeySeedFile string `yaml:"nkey_seed_file"`
	// User and Password authenticate with a user name and password. The
	// password is a secret: inline, through PasswordFile or through
	// HERALD_NATS_PASSWORD.
	User         string `yaml:"user"`
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// Token authenticates with a token: inline, through TokenFile or
	// through HERALD_NATS_TOKEN.
	Token     Secret `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// TLS verifies the servers with a CA of its own and presents a client
	// certificate. Any of its keys makes TLS required, whatever the URL's
	// scheme.
	TLS TLS `yaml:"tls"`

	Stream       string `yaml:"stream"`        // default NOTIFY_SEND
	DeadStream   string `yaml:"dead_stream"`   // default NOTIFY_DEAD
	EventsStream string `yaml:"events_stream"` // default NOTIFY_EVENTS; empty: no delivery receipts
	Consumer     string `yaml:"consumer"`      // default herald-worker
	Replicas     int    `yaml:"replicas"`      // stream replicas, 1 to 5; default 1

	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id.
	// Default 2m.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// DeadMaxAge is how long dead letters are kept; 0 keeps them for ever.
	// Default 14 days.
	DeadMaxAge time.Duration `yaml:"dead_max_age"`
	// DeadMaxBytes bounds the dead-letter stream's size. When it is full
	// a new dead letter is refused (discard new): the worker keeps the job
	// queued with its decided dead letter and stores it once there is room,
	// so none is dropped. 0: no limit. Default 1GiB.
	DeadMaxBytes ByteSize `yaml:"dead_max_bytes"`
	// EventsMaxAge is how long delivery receipts are kept; 0 keeps them for
	// ever. Default 7 days.
	EventsMaxAge time.Duration `yaml:"events_max_age"`
	// EventsMaxBytes bounds the receipt stream's size: when it is full the
	// oldest receipts go (discard old). 0: no limit. Default 2GiB.
	EventsMaxBytes ByteSize `yaml:"events_max_bytes"`
	// MaxAckPending caps the jobs handed out and not yet acknowledged, over
	// all replicas. Default 16384.
	MaxAckPending int `yaml:"max_ack_pending"`
	// SubscriptionsStream keeps the subscription events herald receiver
	// stores. Default NOTIFY_SUBSCRIPTIONS.
	SubscriptionsStream string `yaml:"subscriptions_stream"`
	// SubscriptionsMaxAge is how long subscription events are kept; 0
	// keeps them for ever. Default 30 days.
	SubscriptionsMaxAge time.Duration `yaml:"subscriptions_max_age"`
	// SubscriptionsMaxBytes bounds the subscription event stream's size:
	// when it is full the oldest events go (discard old). 0: no limit.
	// Default 1GiB.
	SubscriptionsMaxBytes ByteSize `yaml:"subscriptions_max_bytes"`
}

// Redis locates the store shared by replicas for deduplication and rate
// limits.
type Redis struct {
	// URL is the store, in one of three forms; rediss in place of redis
	// turns TLS on in each:
	//
	//   - one server: redis://host:port/db, rediss://host:port/db or
	//     unix:///path/to/redis.sock;
	//   - Sentinel: redis+sentinel://host1:26379,host2:26379/db, the
	//     sentinels to ask for the master that Sentinel.MasterName names;
	//   - Redis Cluster: redis+cluster://host1:6379,host2:6379, some of the
	//     cluster's nodes (the client learns the others from them).
	//
	// Empty keeps deduplication and rate limits in process, which is
	// correct for one replica only. Default redis://127.0.0.1:6379/0.
	URL string `yaml:"url"`
	// Username and Password authenticate to the Redis servers (an ACL
	// user; Username empty for requirepass). The password is a secret:
	// inline, through PasswordFile or through HERALD_REDIS_PASSWORD. They
	// replace credentials in URL, which must then hold none.
	Username     string `yaml:"username"`
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// TLS verifies the servers with a CA of its own and presents a client
	// certificate; it needs a rediss URL.
	TLS TLS `yaml:"tls"`
	// Sentinel is what a redis+sentinel URL needs besides the sentinels'
	// addresses.
	Sentinel Sentinel `yaml:"sentinel"`
}

// Sentinel names the master a redis+sentinel [Redis.URL] asks the
// sentinels for, and how to authenticate to the sentinels themselves.
type Sentinel struct {
	// MasterName is the name the sentinels monitor the master under.
	// Required with a redis+sentinel URL, refused with any other.
	MasterName string `yaml:"master_name"`
	// Username and Password authenticate to the sentinels, where they
	// require it (requirepass or ACL in sentinel.conf); the password is a
	// secret like [Redis.Password], with HERALD_REDIS_SENTINEL_PASSWORD.
	Username     string `yaml:"username"`
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// TLS is a connection's TLS beyond the system's defaults. The files are
// PEM; relative paths in the config file are read from its directory.
type TLS struct {
	// CAFile holds the certificates that may sign the server's; empty
	// trusts the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate and its private key,
	// for servers that require one (mutual TLS); both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the server's certificate must hold, where it
	// differs from the host herald dials (an IP address, a proxy).
	ServerName string `yaml:"server_name"`
}

// IsZero reports whether t sets nothing.
func (t TLS) IsZero() bool { return t == TLS{} }

// Worker tunes one worker replica.
type Worker struct {
	// Instance names this replica in dead letters, receipts and logs.
	// Empty: the caller uses the host name.
	Instance string `yaml:"instance"`
	// Concurrency is the provider calls in flight per replica. Default 256.
	Concurrency int `yaml:"concurrency"`
	// MaxAttempts is the provider calls made for a job before it is
	// dead-lettered as retries_exhausted. Default 8.
	MaxAttempts int `yaml:"max_attempts"`
	// AckWait is how long JetStream waits for an acknowledgement before
	// redelivering. Default 30s.
	AckWait time.Duration `yaml:"ack_wait"`
	// ShutdownGrace is how long in-flight jobs may finish after SIGTERM.
	// Default 25s.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// HTTPAddr serves /metrics, /healthz and /readyz. Default ":8080".
	HTTPAddr string `yaml:"http_addr"`
	// RequestTimeout bounds one provider HTTP call; it must be shorter than
	// AckWait. Default 10s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// Breaker holds an app's jobs while its platform keeps failing.
	Breaker Breaker `yaml:"breaker"`
	// ReceiptWait is how long a delivered job waits, at most, for its
	// delivery receipt to be stored before it is acked anyway; the receipt
	// is then kept and retried in the background. Default 2s.
	ReceiptWait time.Duration `yaml:"receipt_wait"`
	// MaxPendingReceipts bounds the receipts a replica keeps for a retry
	// while the receipt stream is missing, full or unreachable; beyond it
	// they are given up and counted. Default 100000.
	MaxPendingReceipts int `yaml:"max_pending_receipts"`
	// MetricTemplates are template ids that label herald_jobs_total, beside
	// those the rate limits name; every other template counts as "other".
	MetricTemplates []string `yaml:"metric_templates"`
}

// Receiver tunes herald receiver, which serves the platforms' push URLs.
type Receiver struct {
	// HTTPAddr serves the push URLs, /metrics, /healthz and /readyz.
	// Default ":8081".
	HTTPAddr string `yaml:"http_addr"`
	// PathPrefix is where the WeChat push URLs hang: app "default" is
	// served at PathPrefix + "default". It starts and ends with "/".
	// Default "/wechat/".
	PathPrefix string `yaml:"path_prefix"`
}

// Console tunes herald console, the operators' web console.
type Console struct {
	// HTTPAddr is where the console listens. Default "127.0.0.1:8090":
	// loopback, so that nothing beyond the machine reaches it unless told.
	HTTPAddr string `yaml:"http_addr"`
	// ReadOnly shows everything and changes nothing: replay and purge are
	// refused.
	ReadOnly bool `yaml:"read_only"`
	// BasicAuth, when its user is set, requires HTTP basic authentication.
	BasicAuth BasicAuth `yaml:"basic_auth"`
	// TrustedUserHeader names the header an authenticating reverse proxy
	// sets to the signed-in user (X-Forwarded-User); when set, requests
	// without it are refused. The proxy must strip it from what clients
	// send.
	TrustedUserHeader string `yaml:"trusted_user_header"`
	// Replicas are base URLs of workers and receivers (http://worker-0:8080)
	// whose /readyz the overview shows.
	Replicas []string `yaml:"replicas"`
}

// BasicAuth is one user name and password. The password is a secret:
// inline, through PasswordFile or through
// HERALD_CONSOLE_BASIC_AUTH_PASSWORD.
type BasicAuth struct {
	User         string `yaml:"user"`
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// Breaker is the per-app circuit breaker: after Failures consecutive
// transient failures of one (platform, app) its jobs are held for Cooldown,
// then one probe job goes; each failed probe doubles the hold, up to
// MaxHold, and a delivered one lets the jobs flow again.
type Breaker struct {
	Failures int           `yaml:"failures"` // default 10
	Cooldown time.Duration `yaml:"cooldown"` // default 30s
	MaxHold  time.Duration `yaml:"max_hold"` // default 5m
}

// Retry is the backoff between attempts of a job that failed transiently.
type Retry struct {
	InitialInterval time.Duration `yaml:"initial_interval"` // default 1s
	MaxInterval     time.Duration `yaml:"max_interval"`     // default 5m
	Multiplier      float64       `yaml:"multiplier"`       // default 2
	Randomization   float64       `yaml:"randomization"`    // jitter in [0, 1); default 0.2
}

// Dedup configures at-most-once delivery per (platform, app, id).
type Dedup struct {
	TTL time.Duration `yaml:"ttl"` // default 24h
}

// RateLimit is one rate-limit rule. Platform, App and TemplateID are exact
// values or [Wildcard]; empty means [Wildcard] too.
type RateLimit struct {
	Platform   string  `yaml:"platform"`
	App        string  `yaml:"app"`
	TemplateID string  `yaml:"template_id"`
	PerSecond  float64 `yaml:"per_second"` // sustained rate, positive
	Burst      int     `yaml:"burst"`      // calls allowed at once, at least 1
}

// App is one mini-program's credentials on each platform it uses; at least
// one is required.
type App struct {
	WeChat *WeChatApp `yaml:"wechat"`
	Alipay *AlipayApp `yaml:"alipay"`
}

// WeChatApp is a WeChat mini-program's credentials.
type WeChatApp struct {
	AppID string `yaml:"app_id"`
	// AppSecret is required, given inline, through AppSecretFile, or
	// through HERALD_APPS_<APP>_WECHAT_APP_SECRET.
	AppSecret     Secret `yaml:"app_secret"`
	AppSecretFile string `yaml:"app_secret_file"`
	// BaseURL is the API's root. Default [DefaultWeChatBaseURL]. Plain
	// http is refused unless the host is loopback (the sandbox) or
	// AllowInsecure is set.
	BaseURL string `yaml:"base_url"`
	// AllowInsecure accepts a plain http BaseURL to a host other than
	// loopback: the secret and the access tokens then cross the network
	// unencrypted. The worker logs a warning at start. Default false.
	AllowInsecure bool `yaml:"allow_insecure"`
	// TokenEndpoint is [TokenEndpointStable] (default) or
	// [TokenEndpointToken].
	TokenEndpoint string `yaml:"token_endpoint"`
	// Push is the app's message push settings, for herald receiver.
	Push WeChatPush `yaml:"push"`
	// LongTermTemplates are the app's long-term subscription templates:
	// sending never takes a grant of theirs from the ledger.
	LongTermTemplates []string `yaml:"long_term_templates"`
}

// Subscription ledger modes ([Subscriptions.Mode]).
const (
	SubscriptionsOff     = "off"
	SubscriptionsObserve = "observe"
	SubscriptionsEnforce = "enforce"
)

// Subscriptions configures the subscription ledger the workers keep from
// the events herald receiver stores, and the delivery status they derive.
type Subscriptions struct {
	// Mode is SubscriptionsOff (no ledger, no consumer),
	// SubscriptionsObserve (the ledger is kept; a metric counts the jobs
	// enforce would skip) or SubscriptionsEnforce (a job for a user who
	// rejected the template or has no grant left is dead-lettered as
	// user_refused, code no_subscription, without a call). Default:
	// observe when some app has push settings, else off
	// ([Config.SubscriptionMode]).
	Mode string `yaml:"mode"`
	// TrustCounts makes enforce skip a granted user with no known grant
	// left, too. Default false: grants accumulate unseen (an accept whose
	// push was lost), so only the platform's 43101 is trusted.
	TrustCounts bool `yaml:"trust_counts"`
	// StatusTTL is how long a delivered job's message id is remembered for
	// its final result (the sent event) to be joined. Default 24h.
	StatusTTL time.Duration `yaml:"status_ttl"`
	// LedgerTTL is how long a user's ledger outlives its last change.
	// Default 180d.
	LedgerTTL time.Duration `yaml:"ledger_ttl"`
	// Consumer is the durable consumer the workers share on the
	// subscriptions stream. Default herald-ledger.
	Consumer string `yaml:"consumer"`
}

// SubscriptionMode is the ledger's mode: Subscriptions.Mode, or when it is
// empty, observe if some app has push settings and off otherwise.
func (c *Config) SubscriptionMode() string {
	if c.Subscriptions.Mode != "" {
		return c.Subscriptions.Mode
	}
	for _, app := range c.Apps {
		if app.WeChat != nil && app.WeChat.Push.Token != "" {
			return SubscriptionsObserve
		}
	}
	return SubscriptionsOff
}

// LongTerm reports whether templateID is one of app's long-term templates
// on platform.
func (c *Config) LongTerm(platform, app, templateID string) bool {
	a, ok := c.Apps[app]
	if !ok || platform != PlatformWeChat || a.WeChat == nil {
		return false
	}
	return slices.Contains(a.WeChat.LongTermTemplates, templateID)
}

// WeChatPush is what the mini-program's "message push" console settings
// give herald receiver. Each value is a secret: inline, through its *_file
// path, or through HERALD_APPS_<APP>_WECHAT_PUSH_<KEY>.
type WeChatPush struct {
	// Token signs every push. An app without one is not served (its push
	// URL answers 404).
	Token     Secret `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// EncodingAESKey (43 letters and digits) decrypts compatible and safe
	// mode pushes. With it the app accepts encrypted pushes only; without
	// it, plaintext pushes only.
	EncodingAESKey     Secret `yaml:"encoding_aes_key"`
	EncodingAESKeyFile string `yaml:"encoding_aes_key_file"`
	// PreviousEncodingAESKey is tried when EncodingAESKey fails, while a
	// new key is being rolled out.
	PreviousEncodingAESKey     Secret `yaml:"previous_encoding_aes_key"`
	PreviousEncodingAESKeyFile string `yaml:"previous_encoding_aes_key_file"`
}

// AlipayApp is an Alipay mini-program's credentials.
type AlipayApp struct {
	AppID string `yaml:"app_id"`
	// PrivateKey is the app's RSA private key, PEM (PKCS#1 or PKCS#8),
	// given inline, through PrivateKeyFile or the environment. Required.
	PrivateKey     Secret `yaml:"private_key"`
	PrivateKeyFile string `yaml:"private_key_file"`
	// AlipayPublicKey verifies Alipay's responses, PEM or bare base64.
	// Required.
	AlipayPublicKey     string `yaml:"alipay_public_key"`
	AlipayPublicKeyFile string `yaml:"alipay_public_key_file"`
	// Gateway is the OpenAPI endpoint. Default [DefaultAlipayGateway].
	// Plain http is refused unless the host is loopback (the sandbox) or
	// AllowInsecure is set.
	Gateway string `yaml:"gateway"`
	// AllowInsecure accepts a plain http Gateway to a host other than
	// loopback: signed requests and answers then cross the network
	// unencrypted. The worker logs a warning at start. Default false.
	AllowInsecure bool `yaml:"allow_insecure"`
	// Recipient is [RecipientOpenID] (default) or [RecipientUserID].
	Recipient string `yaml:"recipient"`
}

// InsecureURLs lists the platform URLs that allow_insecure lets through:
// plain http to a host other than loopback, by key
// ("apps.shop.wechat.base_url"), sorted.
func (c *Config) InsecureURLs() []string {
	var out []string
	for _, name := range sortedKeys(c.Apps) {
		app := c.Apps[name]
		if w := app.WeChat; w != nil && httpclient.Insecure(w.BaseURL) {
			out = append(out, "apps."+name+".wechat.base_url")
		}
		if a := app.Alipay; a != nil && httpclient.Insecure(a.Gateway) {
			out = append(out, "apps."+name+".alipay.gateway")
		}
	}
	return out
}

// Default returns the configuration used where neither the file nor the
// environment says otherwise.
func Default() *Config {
	return &Config{
		NATS: NATS{
			URL:             "nats://127.0.0.1:4222",
			Stream:          "NOTIFY_SEND",
			DeadStream:      "NOTIFY_DEAD",
			EventsStream:    "NOTIFY_EVENTS",
			Consumer:        "herald-worker",
			Replicas:        1,
			DuplicateWindow: 2 * time.Minute,
			DeadMaxAge:      14 * day,
			DeadMaxBytes:    1 << 30,
			EventsMaxAge:    7 * day,
			EventsMaxBytes:  2 << 30,
			MaxAckPending:   16384,

			SubscriptionsStream:   "NOTIFY_SUBSCRIPTIONS",
			SubscriptionsMaxAge:   30 * day,
			SubscriptionsMaxBytes: 1 << 30,
		},
		Redis: Redis{URL: "redis://127.0.0.1:6379/0"},
		Worker: Worker{
			Concurrency:    256,
			MaxAttempts:    8,
			AckWait:        30 * time.Second,
			ShutdownGrace:  25 * time.Second,
			HTTPAddr:       ":8080",
			RequestTimeout: 10 * time.Second,
			Breaker:        Breaker{Failures: 10, Cooldown: 30 * time.Second, MaxHold: 5 * time.Minute},

			ReceiptWait:        2 * time.Second,
			MaxPendingReceipts: 100_000,
		},
		Receiver: Receiver{HTTPAddr: ":8081", PathPrefix: "/wechat/"},
		Console:  Console{HTTPAddr: "127.0.0.1:8090"},
		Retry: Retry{
			InitialInterval: time.Second,
			MaxInterval:     5 * time.Minute,
			Multiplier:      2,
			Randomization:   0.2,
		},
		Dedup: Dedup{TTL: 24 * time.Hour},
		Subscriptions: Subscriptions{
			StatusTTL: 24 * time.Hour,
			LedgerTTL: 180 * day,
			Consumer:  "herald-ledger",
		},
	}
}

// setDefaults fills a WeChat app the file or environment has just created.
func (a *WeChatApp) setDefaults() {
	a.BaseURL = DefaultWeChatBaseURL
	a.TokenEndpoint = TokenEndpointStable
}

// setDefaults fills an Alipay app the file or environment has just created.
func (a *AlipayApp) setDefaults() {
	a.Gateway = DefaultAlipayGateway
	a.Recipient = RecipientOpenID
}

// ConfigPath is the config file to load: flag when it is set, else
// $HERALD_CONFIG from environ, else "" (defaults and environment only).
func ConfigPath(flag string, environ []string) string {
	if flag != "" {
		return flag
	}
	return LookupEnv(environ, EnvConfig)
}

// Load builds the configuration from defaults, the YAML file at path (none
// if path is empty), the HERALD_* variables in environ and the *_file
// secrets, and validates it; the package documentation gives the rules. It
// returns every problem found, each naming its key, and never a secret.
func Load(path string, environ []string) (*Config, error) {
	c := Default()
	var errs []error
	set := make(setKeys)
	source := "(environment)"
	if path != "" {
		source = path
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		errs = append(errs, decodeFile(c, data, set)...)
		c.resolveFiles(filepath.Dir(path))
	}
	errs = append(errs, applyEnv(c, environ, set)...)
	c.normalize()
	c.yieldDefaults(set)
	errs = append(errs, c.readSecretFiles(set)...)
	errs = append(errs, c.problems()...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("config %s: %w", source, problemList(errs))
	}
	return c, nil
}

// setKeys records the scalar keys the file or the environment set, by
// path ("worker.ack_wait"), with where each came from.
type setKeys map[string]string

// Where a key was set, in setKeys.
const (
	fromFile = "file"
	fromEnv  = "environment"
)

// yieldDefaults makes the defaults the user's own values would contradict
// give way: a default never overrules what the user set, and only two
// values the user set can contradict each other (the validation then says
// so). An unset worker.request_timeout, say, stays the default 10s below a
// worker.ack_wait of 30s or more, and becomes a third of a shorter one.
func (c *Config) yieldDefaults(set setKeys) {
	w, r, n := &c.Worker, &c.Retry, &c.NATS
	if set["worker.request_timeout"] == "" && w.AckWait > 0 {
		w.RequestTimeout = min(w.RequestTimeout, w.AckWait/3)
	}
	b := &w.Breaker
	if set["worker.breaker.max_hold"] == "" {
		b.MaxHold = max(b.MaxHold, b.Cooldown)
	} else if set["worker.breaker.cooldown"] == "" && b.MaxHold > 0 {
		b.Cooldown = min(b.Cooldown, b.MaxHold)
	}
	if set["retry.max_interval"] == "" {
		r.MaxInterval = max(r.MaxInterval, r.InitialInterval)
	} else if set["retry.initial_interval"] == "" && r.MaxInterval > 0 {
		r.InitialInterval = min(r.InitialInterval, r.MaxInterval)
	}
	// A stream's max age must cover its duplicate window (0 keeps for ever).
	for _, age := range []struct {
		key string
		v   *time.Duration
	}{{"nats.dead_max_age", &n.DeadMaxAge}, {"nats.events_max_age", &n.EventsMaxAge}} {
		switch {
		case *age.v <= 0:
		case set[age.key] == "":
			*age.v = max(*age.v, n.DuplicateWindow)
		case set["nats.duplicate_window"] == "":
			n.DuplicateWindow = min(n.DuplicateWindow, *age.v)
		}
	}
}

// decodeFile overlays the YAML document data onto c, recording in set the
// keys it gives.
func decodeFile(c *Config, data []byte, set setKeys) []error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file changes nothing
		}
		return []error{err}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return []error{errors.New("the file must hold one YAML document")}
	}
	d := &decoder{budget: maxNodes, set: set}
	d.decode(&doc, refValue(c), "")
	return d.errs
}

// resolveFiles makes the relative *_file paths that the config file gave
// relative to dir, the file's directory.
func (c *Config) resolveFiles(dir string) {
	join := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	for _, p := range []*string{
		&c.NATS.CredsFile, &c.NATS.NKeySeedFile, &c.NATS.PasswordFile, &c.NATS.TokenFile,
		&c.Redis.PasswordFile, &c.Redis.Sentinel.PasswordFile, &c.Console.BasicAuth.PasswordFile,
	} {
		join(p)
	}
	for _, t := range []*TLS{&c.NATS.TLS, &c.Redis.TLS} {
		join(&t.CAFile)
		join(&t.CertFile)
		join(&t.KeyFile)
	}
	for _, app := range c.Apps {
		if w := app.WeChat; w != nil {
			join(&w.AppSecretFile)
			join(&w.Push.TokenFile)
			join(&w.Push.EncodingAESKeyFile)
			join(&w.Push.PreviousEncodingAESKeyFile)
		}
		if a := app.Alipay; a != nil {
			join(&a.PrivateKeyFile)
			join(&a.AlipayPublicKeyFile)
		}
	}
}

// normalize spells empty rate-limit selectors as [Wildcard].
func (c *Config) normalize() {
	for i := range c.RateLimits {
		r := &c.RateLimits[i]
		for _, s := range []*string{&r.Platform, &r.App, &r.TemplateID} {
			if *s == "" {
				*s = Wildcard
			}
		}
	}
}

// readSecretFiles replaces each *_file with the file's trimmed contents.
// Where a secret and its file are both given, the environment overrides the
// file as it does for every key; given both in one place, they are an error.
func (c *Config) readSecretFiles(set setKeys) []error {
	var errs []error
	read := func(key, fileKey string, value *string, file string) {
		if file == "" {
			return
		}
		if *value != "" {
			switch {
			case set[key] == fromEnv && set[fileKey] != fromEnv:
				return // the secret from the environment wins
			case set[fileKey] == fromEnv && set[key] != fromEnv:
				// the file named in the environment wins
			default:
				errs = append(errs, fmt.Errorf("%s: set only one of %s and %s (both are given in the %s)",
					key, lastSegment(key), lastSegment(fileKey), cmp.Or(set[key], fromFile)))
				return
			}
		}
		data, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", fileKey, err))
			return
		}
		v := strings.TrimSpace(string(data))
		if v == "" {
			errs = append(errs, fmt.Errorf("%s: %s is empty", fileKey, file))
			return
		}
		*value = v
	}
	read("nats.password", "nats.password_file", (*string)(&c.NATS.Password), c.NATS.PasswordFile)
	read("nats.token", "nats.token_file", (*string)(&c.NATS.Token), c.NATS.TokenFile)
	read("redis.password", "redis.password_file", (*string)(&c.Redis.Password), c.Redis.PasswordFile)
	read("redis.sentinel.password", "redis.sentinel.password_file", (*string)(&c.Redis.Sentinel.Password), c.Redis.Sentinel.PasswordFile)
	read("console.basic_auth.password", "console.basic_auth.password_file", (*string)(&c.Console.BasicAuth.Password), c.Console.BasicAuth.PasswordFile)
	for _, name := range sortedKeys(c.Apps) {
		app := c.Apps[name]
		p := "apps." + name
		if w := app.WeChat; w != nil {
			read(p+".wechat.app_secret", p+".wechat.app_secret_file", (*string)(&w.AppSecret), w.AppSecretFile)
			k, push := p+".wechat.push.", &w.Push
			read(k+"token", k+"token_file", (*string)(&push.Token), push.TokenFile)
			read(k+"encoding_aes_key", k+"encoding_aes_key_file", (*string)(&push.EncodingAESKey), push.EncodingAESKeyFile)
			read(k+"previous_encoding_aes_key", k+"previous_encoding_aes_key_file",
				(*string)(&push.PreviousEncodingAESKey), push.PreviousEncodingAESKeyFile)
		}
		if a := app.Alipay; a != nil {
			read(p+".alipay.private_key", p+".alipay.private_key_file", (*string)(&a.PrivateKey), a.PrivateKeyFile)
			read(p+".alipay.alipay_public_key", p+".alipay.alipay_public_key_file", &a.AlipayPublicKey, a.AlipayPublicKeyFile)
		}
	}
	return errs
}

func lastSegment(key string) string {
	return key[strings.LastIndexByte(key, '.')+1:]
}

// problemList prints one problem per line, indented under the line that
// wraps it.
type problemList []error

func (p problemList) Error() string {
	if len(p) == 1 {
		return p[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(p))
	for _, err := range p {
		b.WriteString("\n  ")
		b.WriteString(strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	return b.String()
}

func (p problemList) Unwrap() []error { return p }
