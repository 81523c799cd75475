// Package job is the wire contract shared by producers and the worker: the
// job producers publish, the dead letter operators inspect, the delivery
// receipt, the subscription and delivery status events of the receiving
// half, the subjects and the headers. It depends on the standard library
// only, so any service can import it without pulling in herald's runtime.
package job

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Platforms herald delivers to. A job's platform is also the last token of
// the subject it is published on.
const (
	WeChat = "wechat"
	Alipay = "alipay"
)

// DefaultApp is the app a job uses when it names none.
const DefaultApp = "default"

// MaxSize is the largest job herald accepts, in bytes.
const MaxSize = 64 << 10

// MaxIDLen is the longest idempotency key, in characters.
const MaxIDLen = 128

// Job is one message to deliver. See docs/contract.md for the field rules.
type Job struct {
	ID         string           `json:"id"`
	Platform   string           `json:"platform"`
	App        string           `json:"app,omitempty"`
	TemplateID string           `json:"template_id"`
	ToUser     string           `json:"to_user"`
	Page       string           `json:"page,omitempty"`
	Data       map[string]Value `json:"data"`
	WeChat     *WeChatOptions   `json:"wechat,omitempty"`
	NotAfter   *time.Time       `json:"not_after,omitempty"`
}

// Value is one template keyword's value.
type Value struct {
	Value string `json:"value"`
}

// WeChatOptions are the WeChat-only send options.
type WeChatOptions struct {
	MiniprogramState string `json:"miniprogram_state,omitempty"`
	Lang             string `json:"lang,omitempty"`
}

// Result is what a platform answered to an accepted send.
type Result struct {
	// MsgID is the platform's message id, empty where it gives none.
	MsgID string
}

// ErrMalformed is wrapped by every error [Decode] and [Job.Validate] return.
var ErrMalformed = errors.New("malformed job")

// Decode parses and validates a job published on a subject whose last token
// is platform. Pass an empty platform to skip that check. Every error wraps
// [ErrMalformed] and names what is wrong.
func Decode(data []byte, platform string) (Job, error) {
	var j Job
	if len(data) > MaxSize {
		return j, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(data), MaxSize)
	}
	if !utf8.Valid(data) {
		return j, fmt.Errorf("%w: not valid UTF-8", ErrMalformed)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return j, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if err := json.Unmarshal(trimmed, &j); err != nil {
		return j, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if j.App == "" {
		j.App = DefaultApp
	}
	if err := j.Validate(platform); err != nil {
		return j, err
	}
	return j, nil
}

// Validate checks the contract's rules. platform, when not empty, is the
// platform named by the subject the job arrived on.
func (j *Job) Validate(platform string) error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	switch n := utf8.RuneCountInString(j.ID); {
	case n == 0:
		add("id is required")
	case n > MaxIDLen:
		add("id has %d characters, limit %d", n, MaxIDLen)
	}
	switch j.Platform {
	case WeChat, Alipay:
	case "":
		add("platform is required")
	default:
		add("platform %q is not wechat or alipay", j.Platform)
	}
	if platform != "" && j.Platform != "" && j.Platform != platform {
		add("platform %q does not match subject platform %q", j.Platform, platform)
	}
	if strings.TrimSpace(j.TemplateID) == "" {
		add("template_id is required")
	}
	if strings.TrimSpace(j.ToUser) == "" {
		add("to_user is required")
	}
	if len(j.Data) == 0 {
		add("data is required")
	}
	for k := range j.Data {
		if k == "" {
			add("data has an empty keyword")
		}
	}
	if w := j.WeChat; w != nil {
		switch w.MiniprogramState {
		case "", "developer", "trial", "formal":
		default:
			add("wechat.miniprogram_state %q is not developer, trial or formal", w.MiniprogramState)
		}
		switch w.Lang {
		case "", "zh_CN", "en_US", "zh_HK", "zh_TW":
		default:
			add("wechat.lang %q is not zh_CN, en_US, zh_HK or zh_TW", w.Lang)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrMalformed, strings.Join(problems, "; "))
	}
	return nil
}

// Expired reports whether the job's deadline has passed at now.
func (j *Job) Expired(now time.Time) bool {
	return j.NotAfter != nil && now.After(*j.NotAfter)
}

// Key is the job's idempotency key: (platform, app, id).
func (j *Job) Key() string {
	return j.Platform + ":" + j.App + ":" + j.ID
}
