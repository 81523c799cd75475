package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/internal/httpclient"
)

// Validate reports every problem with c at once, joined, each naming its
// key path: "worker.concurrency: must be at least 1". It does not read
// files: [Load] has read the *_file secrets before it validates.
func (c *Config) Validate() error {
	return errors.Join(c.problems()...)
}

// problems collects the errors Validate joins.
type problems []error

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

func (c *Config) problems() []error {
	var p problems
	c.NATS.validate(&p)
	c.Redis.validate(&p)
	c.Worker.validate(&p)
	c.Receiver.validate(&p)
	c.Subscriptions.validate(&p)
	c.Console.validate(&p)
	c.Retry.validate(&p)
	if c.Dedup.TTL <= 0 {
		p.add("dedup.ttl", "must be positive")
	}
	c.validateRateLimits(&p)
	for _, name := range sortedKeys(c.Apps) {
		c.Apps[name].validate(&p, "apps."+name)
	}
	return p
}

func (n *NATS) validate(p *problems) {
	validateNATSURL(p, "nats.url", n.URL)
	n.validateAuth(p)
	names := []struct {
		key, value string
		required   bool
	}{
		{"nats.stream", n.Stream, true},
		{"nats.dead_stream", n.DeadStream, true},
		{"nats.events_stream", n.EventsStream, false},
		{"nats.consumer", n.Consumer, true},
		{"nats.subscriptions_stream", n.SubscriptionsStream, true},
	}
	for _, s := range names {
		switch {
		case s.value == "" && s.required:
			p.add(s.key, "required")
		case strings.ContainsAny(s.value, " \t\r\n.*>/\\"):
			p.add(s.key, "must not contain white space, '.', '*', '>', '/' or '\\'")
		}
	}
	if n.Stream != "" && n.Stream == n.DeadStream {
		p.add("nats.dead_stream", "must differ from nats.stream")
	}
	if n.EventsStream != "" && (n.EventsStream == n.Stream || n.EventsStream == n.DeadStream) {
		p.add("nats.events_stream", "must differ from nats.stream and nats.dead_stream")
	}
	if n.Replicas < 1 || n.Replicas > 5 {
		p.add("nats.replicas", "must be 1 to 5")
	}
	if n.DuplicateWindow <= 0 {
		p.add("nats.duplicate_window", "must be positive")
	}
	// JetStream refuses a duplicate window longer than the stream's max age.
	if n.DeadMaxAge < 0 {
		p.add("nats.dead_max_age", "must not be negative (0 keeps dead letters for ever)")
	} else if n.DeadMaxAge > 0 && n.DuplicateWindow > n.DeadMaxAge {
		p.add("nats.dead_max_age", "must not be shorter than nats.duplicate_window")
	}
	if n.EventsMaxAge < 0 {
		p.add("nats.events_max_age", "must not be negative (0 keeps receipts for ever)")
	} else if n.EventsMaxAge > 0 && n.DuplicateWindow > n.EventsMaxAge {
		p.add("nats.events_max_age", "must not be shorter than nats.duplicate_window")
	}
	for _, b := range []struct {
		key string
		v   ByteSize
	}{{"nats.dead_max_bytes", n.DeadMaxBytes}, {"nats.events_max_bytes", n.EventsMaxBytes}, {"nats.subscriptions_max_bytes", n.SubscriptionsMaxBytes}} {
		if b.v != 0 && b.v < minStreamBytes {
			p.add(b.key, "must be at least 1MiB (or 0 for no limit): a dead letter alone may take 100KB")
		}
	}
	if n.MaxAckPending < 1 {
		p.add("nats.max_ack_pending", "must be at least 1")
	}
	if s := n.SubscriptionsStream; s != "" && (s == n.Stream || s == n.DeadStream || s == n.EventsStream) {
		p.add("nats.subscriptions_stream", "must differ from nats.stream, nats.dead_stream and nats.events_stream")
	}
	// The stream's duplicate window is fixed at 10 minutes, which JetStream
	// refuses above the max age.
	if n.SubscriptionsMaxAge < 0 {
		p.add("nats.subscriptions_max_age", "must not be negative (0 keeps events for ever)")
	} else if n.SubscriptionsMaxAge > 0 && n.SubscriptionsMaxAge < subscriptionsDuplicateWindow {
		p.add("nats.subscriptions_max_age", "must be at least 10m, the stream's duplicate window (or 0)")
	}
}

// minStreamBytes is the least max_bytes a stream may have.
const minStreamBytes = 1 << 20

// subscriptionsDuplicateWindow is producer.SubscriptionsDuplicateWindow;
// this package imports no runtime package.
const subscriptionsDuplicateWindow = 10 * time.Minute

func (w *Worker) validate(p *problems) {
	if w.Concurrency < 1 {
		p.add("worker.concurrency", "must be at least 1")
	}
	if w.MaxAttempts < 1 {
		p.add("worker.max_attempts", "must be at least 1")
	}
	if w.AckWait <= 0 {
		p.add("worker.ack_wait", "must be positive")
	}
	if w.ShutdownGrace <= 0 {
		p.add("worker.shutdown_grace", "must be positive")
	}
	validateAddr(p, "worker.http_addr", w.HTTPAddr, ":8080")
	// A provider call outliving AckWait would let JetStream redeliver a job
	// that is still being sent.
	switch {
	case w.RequestTimeout <= 0:
		p.add("worker.request_timeout", "must be positive")
	case w.AckWait > 0 && w.RequestTimeout >= w.AckWait:
		p.add("worker.request_timeout", "must be shorter than worker.ack_wait (%s)", w.AckWait)
	}
	if w.ReceiptWait <= 0 {
		p.add("worker.receipt_wait", "must be positive")
	}
	if w.MaxPendingReceipts < 1 {
		p.add("worker.max_pending_receipts", "must be at least 1")
	}
	for i, t := range w.MetricTemplates {
		if strings.TrimSpace(t) == "" {
			p.add(fmt.Sprintf("worker.metric_templates[%d]", i), "must not be empty")
		}
	}
	b := w.Breaker
	if b.Failures < 1 {
		p.add("worker.breaker.failures", "must be at least 1")
	}
	if b.Cooldown <= 0 {
		p.add("worker.breaker.cooldown", "must be positive")
	}
	if b.MaxHold < b.Cooldown {
		p.add("worker.breaker.max_hold", "must be at least worker.breaker.cooldown (%s)", b.Cooldown)
	}
}

func (r *Receiver) validate(p *problems) {
	validateAddr(p, "receiver.http_addr", r.HTTPAddr, ":8081")
	switch pp := r.PathPrefix; {
	case pp == "":
		p.add("receiver.path_prefix", "required, such as /wechat/")
	case len(pp) < 3 || pp[0] != '/' || pp[len(pp)-1] != '/':
		p.add("receiver.path_prefix", "must start and end with / around a name, such as /wechat/")
	case strings.Contains(pp, "//") || strings.Contains(pp, "/./") || strings.Contains(pp, "/../"):
		p.add("receiver.path_prefix", "must be a clean path, without //, /./ or /../")
	case strings.ContainsFunc(pp, func(r rune) bool { return !isPathRune(r) }):
		p.add("receiver.path_prefix", "may hold letters, digits and - . _ ~ / only")
	}
}

func (c *Console) validate(p *problems) {
	validateAddr(p, "console.http_addr", c.HTTPAddr, "127.0.0.1:8090")
	b := c.BasicAuth
	hasPassword := b.Password != "" || b.PasswordFile != ""
	if b.User == "" && hasPassword {
		p.add("console.basic_auth.user", "required with console.basic_auth.password")
	}
	if b.User != "" && !hasPassword {
		p.add("console.basic_auth.password", "required with console.basic_auth.user (inline, password_file or %s)",
			envName("console.basic_auth.password"))
	}
	if strings.ContainsRune(b.User, ':') {
		p.add("console.basic_auth.user", "must not contain ':', which basic authentication cannot carry")
	}
	if h := c.TrustedUserHeader; h != "" && !isHeaderName(h) {
		p.add("console.trusted_user_header", "must be a header name such as X-Forwarded-User")
	}
	for i, r := range c.Replicas {
		key := fmt.Sprintf("console.replicas[%d]", i)
		if err := httpclient.CheckURL(r); err != nil {
			p.add(key, "%s", err)
		} else if u, _ := url.Parse(r); u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			p.add(key, "must be a base URL such as http://herald-worker-0:8080, without credentials, query or fragment")
		}
	}
}

// isHeaderName reports whether s is an HTTP header name (an RFC 9110
// token).
func isHeaderName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func isPathRune(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("-._~/", r)
}

// validateAddr checks a listen address, host:port.
func validateAddr(p *problems, key, addr, example string) {
	if addr == "" {
		p.add(key, "required, host:port such as %s", example)
	} else if _, port, err := net.SplitHostPort(addr); err != nil || !validPort(port) {
		p.add(key, "must be host:port such as %s", example)
	}
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 65535
}

func (s *Subscriptions) validate(p *problems) {
	switch s.Mode {
	case "", SubscriptionsOff, SubscriptionsObserve, SubscriptionsEnforce:
	default:
		p.add("subscriptions.mode", "must be off, observe or enforce")
	}
	if s.StatusTTL <= 0 {
		p.add("subscriptions.status_ttl", "must be positive")
	}
	if s.LedgerTTL <= 0 {
		p.add("subscriptions.ledger_ttl", "must be positive")
	}
	if s.Consumer == "" {
		p.add("subscriptions.consumer", "required")
	} else if strings.ContainsAny(s.Consumer, " \t\r\n.*>/\\") {
		p.add("subscriptions.consumer", "must not contain white space, '.', '*', '>', '/' or '\\'")
	}
}

func (r *Retry) validate(p *problems) {
	if r.InitialInterval <= 0 {
		p.add("retry.initial_interval", "must be positive")
	}
	if r.MaxInterval < r.InitialInterval {
		p.add("retry.max_interval", "must not be shorter than retry.initial_interval")
	}
	if r.Multiplier < 1 || math.IsInf(r.Multiplier, 0) || math.IsNaN(r.Multiplier) {
		p.add("retry.multiplier", "must be at least 1")
	}
	if !(r.Randomization >= 0 && r.Randomization < 1) {
		p.add("retry.randomization", "must be at least 0 and below 1")
	}
}

func (c *Config) validateRateLimits(p *problems) {
	seen := make(map[[3]string]int, len(c.RateLimits))
	for i, r := range c.RateLimits {
		key := fmt.Sprintf("rate_limits[%d]", i)
		switch r.Platform {
		case "", Wildcard, PlatformWeChat, PlatformAlipay:
		default:
			p.add(key+".platform", "must be wechat, alipay or *")
		}
		if !(r.PerSecond > 0) || math.IsInf(r.PerSecond, 0) {
			p.add(key+".per_second", "must be positive")
		}
		if r.Burst < 1 {
			p.add(key+".burst", "must be at least 1")
		}
		sel := [3]string{wild(r.Platform), wild(r.App), wild(r.TemplateID)}
		if j, ok := seen[sel]; ok {
			p.add(key, "same platform, app and template_id as rate_limits[%d]", j)
			continue
		}
		seen[sel] = i
	}
}

func (a App) validate(p *problems, key string) {
	if a.WeChat == nil && a.Alipay == nil {
		p.add(key, "needs wechat, alipay or both")
	}
	if w := a.WeChat; w != nil {
		k := key + ".wechat"
		if w.AppID == "" {
			p.add(k+".app_id", "required")
		}
		if w.AppSecret == "" && w.AppSecretFile == "" {
			p.add(k+".app_secret", "required (inline, app_secret_file or %s)", envName(k+".app_secret"))
		}
		validateHTTPURL(p, k+".base_url", w.BaseURL, w.AllowInsecure)
		if w.TokenEndpoint != TokenEndpointStable && w.TokenEndpoint != TokenEndpointToken {
			p.add(k+".token_endpoint", "must be %s or %s", TokenEndpointStable, TokenEndpointToken)
		}
		w.Push.validate(p, k+".push")
	}
	if a := a.Alipay; a != nil {
		k := key + ".alipay"
		if a.AppID == "" {
			p.add(k+".app_id", "required")
		}
		if a.PrivateKey == "" && a.PrivateKeyFile == "" {
			p.add(k+".private_key", "required (inline, private_key_file or %s)", envName(k+".private_key"))
		}
		if a.AlipayPublicKey == "" && a.AlipayPublicKeyFile == "" {
			p.add(k+".alipay_public_key", "required (inline or alipay_public_key_file)")
		}
		validateHTTPURL(p, k+".gateway", a.Gateway, a.AllowInsecure)
		if a.Recipient != RecipientOpenID && a.Recipient != RecipientUserID {
			p.add(k+".recipient", "must be %s or %s", RecipientOpenID, RecipientUserID)
		}
	}
}

// validate checks push settings; the messages never quote a value, which
// is a secret.
func (w *WeChatPush) validate(p *problems, key string) {
	hasToken := w.Token != "" || w.TokenFile != ""
	hasKey := w.EncodingAESKey != "" || w.EncodingAESKeyFile != ""
	hasPrevious := w.PreviousEncodingAESKey != "" || w.PreviousEncodingAESKeyFile != ""
	if t := w.Token.Reveal(); t != "" && (len(t) < 3 || len(t) > 32 || !alnum(t)) {
		p.add(key+".token", "must be 3 to 32 letters and digits, as the WeChat console allows")
	}
	if hasKey && !hasToken {
		p.add(key+".token", "required with %s.encoding_aes_key (inline, token_file or %s)", key, envName(key+".token"))
	}
	if hasPrevious && !hasKey {
		p.add(key+".encoding_aes_key", "required with %s.previous_encoding_aes_key", key)
	}
	for _, k := range []struct {
		name  string
		value Secret
	}{{"encoding_aes_key", w.EncodingAESKey}, {"previous_encoding_aes_key", w.PreviousEncodingAESKey}} {
		if v := k.value.Reveal(); v != "" && (len(v) != EncodingAESKeyLen || !alnum(v)) {
			p.add(key+"."+k.name, "must be %d letters and digits, as the WeChat console gives it", EncodingAESKeyLen)
		}
	}
}

func alnum(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// envName is the variable that overrides key.
func envName(key string) string {
	return envPrefix + envSegment(key)
}

// The URL checks never quote the URL or url.Parse's error: either may hold
// a password.

// validateAuth checks how herald authenticates to NATS and verifies it.
func (n *NATS) validateAuth(p *problems) {
	var ways []string
	if n.CredsFile != "" {
		ways = append(ways, "nats.creds_file")
	}
	if n.NKeySeedFile != "" {
		ways = append(ways, "nats.nkey_seed_file")
	}
	userPass := n.User != "" || n.Password != "" || n.PasswordFile != ""
	if userPass {
		ways = append(ways, "nats.user")
	}
	token := n.Token != "" || n.TokenFile != ""
	if token {
		ways = append(ways, "nats.token")
	}
	if len(ways) > 1 {
		p.add("nats", "set only one of %s: each is a way to authenticate", strings.Join(ways, ", "))
	}
	if userPass {
		if n.User == "" {
			p.add("nats.user", "required with nats.password")
		}
		if n.Password == "" && n.PasswordFile == "" {
			p.add("nats.password", "required with nats.user (inline, password_file or %s)", envName("nats.password"))
		}
	}
	// nats.go prefers a URL's credentials to the options': refuse both,
	// rather than have one silently win. (creds_file beside them is
	// older, and stays allowed.) An empty URL starts an embedded server,
	// which takes neither credentials nor TLS: they stay unused there, so
	// that emptying nats.url in the environment works with any file.
	if (n.NKeySeedFile != "" || userPass || token) && natsURLHasAuth(n.URL) {
		p.add("nats.url", "holds credentials, and so do nats.nkey_seed_file, nats.user or nats.token: give them in one place")
	}
	validateTLS(p, "nats.tls", n.TLS)
	if !n.TLS.IsZero() {
		for s := range strings.SplitSeq(n.URL, ",") {
			if strings.HasPrefix(strings.TrimSpace(s), "ws://") {
				p.add("nats.tls", "set, but nats.url has a ws:// server: use wss:// for TLS")
				break
			}
		}
	}
}

// natsURLHasAuth reports whether a server of the list carries a user,
// password or token.
func natsURLHasAuth(list string) bool {
	for s := range strings.SplitSeq(list, ",") {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "://") {
			s = "nats://" + s
		}
		if u, err := url.Parse(s); err == nil && u.User != nil {
			return true
		}
	}
	return false
}

// validateTLS checks a TLS section; the files are read when connecting.
func validateTLS(p *problems, key string, t TLS) {
	if t.CertFile != "" && t.KeyFile == "" {
		p.add(key+".key_file", "required with %s.cert_file", key)
	}
	if t.KeyFile != "" && t.CertFile == "" {
		p.add(key+".cert_file", "required with %s.key_file", key)
	}
}

func (r *Redis) validate(p *problems) {
	if r.URL == "" {
		return // in-process stores: the other keys stay unused
	}
	u, err := ParseRedisURL(r.URL)
	if err != nil {
		p.add("redis.url", "%s", err)
		return
	}
	if r.Username != "" && r.Password == "" && r.PasswordFile == "" {
		p.add("redis.password", "required with redis.username (inline, password_file or %s)", envName("redis.password"))
	}
	if u.HasAuth && (r.Username != "" || r.Password != "" || r.PasswordFile != "") {
		p.add("redis.url", "holds credentials, and so do redis.username or redis.password: give them in one place")
	}
	validateTLS(p, "redis.tls", r.TLS)
	if !r.TLS.IsZero() && !u.TLS {
		p.add("redis.tls", "set, but redis.url does not use TLS: use rediss://, rediss+sentinel:// or rediss+cluster://")
	}
	s := r.Sentinel
	if u.Mode == RedisSentinel {
		if s.MasterName == "" {
			p.add("redis.sentinel.master_name", "required with a redis+sentinel url")
		}
		if s.Username != "" && s.Password == "" && s.PasswordFile == "" {
			p.add("redis.sentinel.password", "required with redis.sentinel.username (inline, password_file or %s)",
				envName("redis.sentinel.password"))
		}
	} else if s.MasterName != "" || s.Username != "" || s.Password != "" || s.PasswordFile != "" {
		p.add("redis.sentinel", "set, but redis.url is not a redis+sentinel:// url")
	}
}

func validateNATSURL(p *problems, key, list string) {
	if list == "" {
		return // embedded server
	}
	for s := range strings.SplitSeq(list, ",") {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "://") {
			s = "nats://" + s // as the NATS client reads it
		}
		u, err := url.Parse(s)
		switch {
		case err != nil:
			p.add(key, "not a valid URL")
		case u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss":
			p.add(key, "scheme must be nats, tls, ws or wss")
		case u.Hostname() == "":
			p.add(key, "host required")
		default:
			continue
		}
		return
	}
}

// validateHTTPURL checks a platform endpoint: https, or plain http to
// loopback (the sandbox), or to anywhere with allow_insecure, the key
// beside it.
func validateHTTPURL(p *problems, key, s string, allowInsecure bool) {
	switch {
	case s == "":
		p.add(key, "required")
	case httpclient.CheckURL(s) != nil:
		p.add(key, "%s", httpclient.CheckURL(s))
	case httpclient.Insecure(s) && !allowInsecure:
		p.add(key, "plain http to a host other than loopback would carry secrets unencrypted: use https, "+
			"or set %s: true", key[:strings.LastIndexByte(key, '.')+1]+"allow_insecure")
	}
}
