package push

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/internal/text"
)

// DefaultMaxSkew is how far a push's timestamp may be from the receiver's
// clock, either way.
const DefaultMaxSkew = 5 * time.Minute

// MaxEchoLen bounds the echostr a URL check may ask to be echoed. WeChat's
// are about 20 digits.
const MaxEchoLen = 128

// Config is one app's push settings, from the console.
type Config struct {
	// AppID is the mini-program's appid; an encrypted push must carry it.
	AppID string
	// Token signs every push. Required.
	Token string
	// EncodingAESKey decrypts compatible and safe mode pushes. Empty: the
	// app takes plaintext pushes only; set: encrypted ones only.
	EncodingAESKey string
	// PreviousEncodingAESKey is tried when EncodingAESKey does not
	// decrypt a push (or finds another appid): key rotation.
	PreviousEncodingAESKey string
	// MaxSkew bounds the timestamp's distance from now; default
	// [DefaultMaxSkew].
	MaxSkew time.Duration
}

// Verifier checks and opens one app's pushes. It is safe for concurrent
// use.
type Verifier struct {
	appID string
	token string
	keys  []*Key // current first; none in plaintext mode
	skew  time.Duration
}

// NewVerifier checks cfg and prepares its keys. Errors never quote a
// secret.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Token == "" {
		return nil, errors.New("push: token is required")
	}
	v := &Verifier{appID: cfg.AppID, token: cfg.Token, skew: cfg.MaxSkew}
	if v.skew <= 0 {
		v.skew = DefaultMaxSkew
	}
	if cfg.EncodingAESKey == "" && cfg.PreviousEncodingAESKey != "" {
		return nil, errors.New("push: previous encoding aes key without a current one")
	}
	for _, s := range []string{cfg.EncodingAESKey, cfg.PreviousEncodingAESKey} {
		if s == "" {
			continue
		}
		k, err := ParseKey(s)
		if err != nil {
			return nil, fmt.Errorf("push: %w", err)
		}
		v.keys = append(v.keys, k)
	}
	if len(v.keys) > 0 && cfg.AppID == "" {
		return nil, errors.New("push: appid is required to check encrypted pushes")
	}
	return v, nil
}

// Encrypted reports whether the app takes encrypted (compatible or safe
// mode) pushes, rather than plaintext ones.
func (v *Verifier) Encrypted() bool { return len(v.keys) > 0 }

// CheckQuery checks what a request carries in its query: signature over
// the token, timestamp and nonce, and the timestamp within the allowed
// skew of now. It reads no body, so a caller can refuse a forged request
// before reading one.
func (v *Verifier) CheckQuery(q url.Values, now time.Time) error {
	ts, nonce := q.Get("timestamp"), q.Get("nonce")
	if !validSignature(q.Get("signature"), v.token, ts, nonce) {
		return ErrSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp is not a number", ErrStale)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > v.skew || d < -v.skew {
		return fmt.Errorf("%w: %s off", ErrStale, d.Round(time.Second))
	}
	return nil
}

// CheckURL answers the console's URL check: a GET whose signature and
// timestamp hold gets its echostr back.
func (v *Verifier) CheckURL(q url.Values, now time.Time) (echostr string, err error) {
	if err := v.CheckQuery(q, now); err != nil {
		return "", err
	}
	echo := q.Get("echostr")
	if echo == "" || len(echo) > MaxEchoLen {
		return "", fmt.Errorf("%w: echostr missing or over %d bytes", ErrMalformed, MaxEchoLen)
	}
	return echo, nil
}

// Open checks a push and decodes its message: [Verifier.CheckQuery], the
// mode, then in AES mode msg_signature over Encrypt, the decryption (with
// the previous key when the current one fails) and the appid, then
// [Parse]. The caller bounds body's size.
func (v *Verifier) Open(q url.Values, body []byte, now time.Time) (Message, error) {
	if err := v.CheckQuery(q, now); err != nil {
		return Message{}, err
	}
	var encrypted bool
	switch et := q.Get("encrypt_type"); et {
	case "", "raw":
	case "aes":
		encrypted = true
	default:
		return Message{}, fmt.Errorf("%w: encrypt_type %q", ErrMode, text.Truncate(et, 16))
	}
	switch {
	case encrypted && !v.Encrypted():
		return Message{}, fmt.Errorf("%w: an encrypted push, and the app has no encoding_aes_key", ErrMode)
	case !encrypted && v.Encrypted():
		return Message{}, fmt.Errorf("%w: a plaintext push, and the app takes encrypted ones only", ErrMode)
	case !encrypted:
		return Parse(body)
	}
	enc, err := envelope(body)
	if err != nil {
		return Message{}, err
	}
	if !validSignature(q.Get("msg_signature"), v.token, q.Get("timestamp"), q.Get("nonce"), enc) {
		return Message{}, ErrMsgSignature
	}
	inner, err := v.decrypt(enc)
	if err != nil {
		return Message{}, err
	}
	return Parse(inner)
}

// decrypt tries each key in turn and returns the first message that
// decrypts and names the app, else the current key's error.
func (v *Verifier) decrypt(enc string) ([]byte, error) {
	var first error
	for _, k := range v.keys {
		msg, appID, err := k.Decrypt(enc)
		switch {
		case errors.Is(err, ErrMalformed):
			return nil, err // the same for every key
		case err == nil && appID != v.appID:
			err = fmt.Errorf("%w: the push names another app", ErrAppID)
		case err == nil:
			return msg, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// envelope returns the Encrypt field of an AES-mode body, XML or JSON.
func envelope(body []byte) (string, error) {
	body = bytes.TrimLeft(body, " \t\r\n\ufeff")
	var enc string
	switch {
	case len(body) == 0:
		return "", fmt.Errorf("%w: empty body", ErrMalformed)
	case body[0] == '<':
		var x struct {
			Encrypt string `xml:"Encrypt"`
		}
		if err := xml.Unmarshal(body, &x); err != nil {
			return "", fmt.Errorf("%w: xml: %v", ErrMalformed, err)
		}
		enc = x.Encrypt
	case body[0] == '{':
		var j struct {
			Encrypt string `json:"Encrypt"`
		}
		if err := json.Unmarshal(body, &j); err != nil {
			return "", fmt.Errorf("%w: json: %v", ErrMalformed, err)
		}
		enc = j.Encrypt
	default:
		return "", fmt.Errorf("%w: neither XML nor a JSON object", ErrMalformed)
	}
	if enc = strings.TrimSpace(enc); enc == "" {
		return "", fmt.Errorf("%w: no Encrypt in an encrypted push", ErrMalformed)
	}
	return enc, nil
}
