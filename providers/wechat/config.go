package wechat

import (
	"errors"
	"fmt"
	"time"

	"github.com/heraldhq/herald/internal/httpclient"
)

// Token endpoints. See platform-apis A.4: both fetch in normal mode; they are
// isolated from each other, and /cgi-bin/token invalidates the previous
// token on every call, which makes it a poor fit for a fleet.
const (
	// EndpointStableToken is POST /cgi-bin/stable_token (the default).
	EndpointStableToken = "stable_token"
	// EndpointToken is GET /cgi-bin/token.
	EndpointToken = "token"
)

// DefaultBaseURL is the WeChat API.
const DefaultBaseURL = "https://api.weixin.qq.com"

// Config is one WeChat app's settings.
type Config struct {
	// Name is the app's name in herald's config (the jobs' app field), the
	// app label of herald_token_refreshes_total as of every other metric;
	// default AppID.
	Name string
	// AppID and AppSecret are the mini-program's credentials; both required.
	AppID     string
	AppSecret string
	// BaseURL is the API root; default [DefaultBaseURL].
	BaseURL string
	// TokenEndpoint is [EndpointStableToken] (default) or [EndpointToken].
	TokenEndpoint string
	// Timeout bounds each HTTP call; default 10s.
	Timeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = c.AppID
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.TokenEndpoint == "" {
		c.TokenEndpoint = EndpointStableToken
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.AppID == "" {
		errs = append(errs, errors.New("app_id is required"))
	}
	if c.AppSecret == "" {
		errs = append(errs, errors.New("app_secret is required"))
	}
	if err := httpclient.CheckURL(c.BaseURL); err != nil {
		errs = append(errs, fmt.Errorf("base_url %q: %w", c.BaseURL, err))
	}
	switch c.TokenEndpoint {
	case EndpointStableToken, EndpointToken:
	default:
		errs = append(errs, fmt.Errorf("token_endpoint %q is not %s or %s", c.TokenEndpoint, EndpointStableToken, EndpointToken))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// String hides the secret, so printing a Config cannot leak it.
func (c Config) String() string {
	secret := ""
	if c.AppSecret != "" {
		secret = "<secret>"
	}
	return fmt.Sprintf("{AppID:%s AppSecret:%s BaseURL:%s TokenEndpoint:%s Timeout:%s}",
		c.AppID, secret, c.BaseURL, c.TokenEndpoint, c.Timeout)
}

// GoString hides the secret from %#v too.
func (c Config) GoString() string { return "wechat.Config" + c.String() }
