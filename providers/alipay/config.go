package alipay

import (
	"errors"
	"fmt"
	"time"

	"github.com/heraldhq/herald/internal/httpclient"
)

// DefaultGateway is Alipay's OpenAPI v2 gateway.
const DefaultGateway = "https://openapi.alipay.com/gateway.do"

// Recipient kinds: which biz_content field a job's to_user goes in
// (platform-apis B.2).
const (
	// RecipientOpenID (the default) sends to_open_id, the per-app openid.
	RecipientOpenID = "open_id"
	// RecipientUserID sends to_user_id, the legacy 2088… user id.
	RecipientUserID = "user_id"
)

// Config is one Alipay app's settings.
type Config struct {
	// AppID is the mini-program's app_id; required.
	AppID string
	// PrivateKey is the app's RSA private key that signs requests: PKCS#1
	// or PKCS#8, PEM or bare base64 (see [ParsePrivateKey]). Required. It
	// never appears in an error or in String.
	PrivateKey string
	// AlipayPublicKey holds the Alipay public key or keys that answers are
	// verified with: one or more PEM blocks, or bare base64 keys separated
	// by commas (see [ParsePublicKeys]). An answer verifies if any key
	// accepts it, so during a key rotation both keys can be configured.
	// Required.
	AlipayPublicKey string
	// Gateway is the OpenAPI endpoint; default [DefaultGateway].
	Gateway string
	// Recipient is [RecipientOpenID] (default) or [RecipientUserID].
	Recipient string
	// Timeout bounds each HTTP call; default 10s.
	Timeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Gateway == "" {
		c.Gateway = DefaultGateway
	}
	if c.Recipient == "" {
		c.Recipient = RecipientOpenID
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
}

// Validate reports every problem with the configuration. It checks that
// the keys are present, not that they parse: [New] does that.
func (c Config) Validate() error {
	var errs []error
	if c.AppID == "" {
		errs = append(errs, errors.New("app_id is required"))
	}
	if c.PrivateKey == "" {
		errs = append(errs, errors.New("private_key is required"))
	}
	if c.AlipayPublicKey == "" {
		errs = append(errs, errors.New("alipay_public_key is required"))
	}
	if err := httpclient.CheckURL(c.Gateway); err != nil {
		errs = append(errs, fmt.Errorf("gateway: %w", err))
	}
	switch c.Recipient {
	case RecipientOpenID, RecipientUserID:
	default:
		errs = append(errs, fmt.Errorf("recipient %q is not %s or %s", c.Recipient, RecipientOpenID, RecipientUserID))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// String hides the private key, so printing a Config cannot leak it. The
// public keys are not secret but long; only whether they are set is shown.
func (c Config) String() string {
	return fmt.Sprintf("{AppID:%s PrivateKey:%s AlipayPublicKey:%s Gateway:%s Recipient:%s Timeout:%s}",
		c.AppID, mask(c.PrivateKey, "<secret>"), mask(c.AlipayPublicKey, "<set>"), c.Gateway, c.Recipient, c.Timeout)
}

// GoString hides the private key from %#v too.
func (c Config) GoString() string { return "alipay.Config" + c.String() }

// mask renders a set value as shown, an empty one as "".
func mask(s, shown string) string {
	if s == "" {
		return ""
	}
	return shown
}
