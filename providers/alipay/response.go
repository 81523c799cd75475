package alipay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Keys of a v2 answer (platform-apis B.3): a method's response member is
// its name with dots turned into underscores, then _response.
const (
	responseKey      = "alipay_open_app_mini_templatemessage_send_response"
	queryResponseKey = "alipay_open_app_messagetemplate_subscribe_query_response"
	errorKey         = "error_response"
	signKey          = "sign"
)

// maxDepth bounds nesting in an answer; Alipay's are two levels deep.
const maxDepth = 64

// errScan is returned for a body that is not the JSON object a v2 answer
// is.
var errScan = errors.New("answer is not a JSON object")

// extractResponse returns the exact bytes of the value of key at the top
// level of the JSON object body, from its '{' to its matching '}', without
// decoding and re-encoding them: they are what Alipay signed. It walks the
// top-level members, skipping other values (strings with their escapes,
// nested objects and arrays) so that a key-like text inside a string is
// never taken for a member. found is false when the object has no such
// member, or when its value is not an object; the first of duplicate keys
// wins. err reports a body that is not a well-formed object up to the
// member found.
func extractResponse(body []byte, key string) (raw []byte, found bool, err error) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, false, errScan
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		return nil, false, nil
	}
	for {
		if i >= len(body) || body[i] != '"' {
			return nil, false, errScan
		}
		kEnd, ok := skipString(body, i)
		if !ok {
			return nil, false, errScan
		}
		name := body[i:kEnd]
		i = skipSpace(body, kEnd)
		if i >= len(body) || body[i] != ':' {
			return nil, false, errScan
		}
		i = skipSpace(body, i+1)
		vStart := i
		vEnd, ok := skipValue(body, i, 0)
		if !ok {
			return nil, false, errScan
		}
		if keyIs(name, key) && body[vStart] == '{' {
			return body[vStart:vEnd], true, nil
		}
		i = skipSpace(body, vEnd)
		if i >= len(body) {
			return nil, false, errScan
		}
		switch body[i] {
		case ',':
			i = skipSpace(body, i+1)
		case '}':
			return nil, false, nil
		default:
			return nil, false, errScan
		}
	}
}

// keyIs reports whether the quoted JSON string q spells key. Keys with
// escapes are decoded first; Alipay sends none, but "\u0073ign" is sign.
func keyIs(q []byte, key string) bool {
	inner := q[1 : len(q)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner) == key
	}
	var s string
	return json.Unmarshal(q, &s) == nil && s == key
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i] ('"').
func skipString(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++ // the escaped byte; \uXXXX's digits are plain bytes
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// skipValue returns the index just past the value starting at b[i]. It
// checks the structure (balanced brackets outside strings) but not the
// literals, which the decoder checks later.
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		if depth >= maxDepth {
			return 0, false
		}
		return skipContainer(b, i, depth)
	}
	j := i
	for j < len(b) && !isSpace(b[j]) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ':' {
		if b[j] == '"' || b[j] == '{' || b[j] == '[' {
			return 0, false
		}
		j++
	}
	return j, j > i
}

// skipContainer returns the index just past the object or array starting
// at b[i].
func skipContainer(b []byte, i, depth int) (int, bool) {
	open := b[i]
	closer := byte('}')
	if open == '[' {
		closer = ']'
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == closer {
		return i + 1, true
	}
	for {
		if open == '{' {
			if i >= len(b) || b[i] != '"' {
				return 0, false
			}
			end, ok := skipString(b, i)
			if !ok {
				return 0, false
			}
			i = skipSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return 0, false
			}
			i = skipSpace(b, i+1)
		}
		end, ok := skipValue(b, i, depth+1)
		if !ok {
			return 0, false
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case closer:
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// answer is a parsed v2 answer.
type answer struct {
	// raw is the response value's bytes as sent: what the signature covers.
	raw []byte
	// key is the member raw came from (the method's response key or
	// errorKey).
	key string
	// sign is the signature, empty when the answer carries none.
	sign string
	// body is raw decoded.
	body responseBody
}

// responseBody is the response value's common fields (platform-apis B.3).
// A send's success carries no others; a query's carries its result, which
// QuerySubscriptions decodes from the same raw bytes.
type responseBody struct {
	Code    string `json:"code"`
	Msg     string `json:"msg"`
	SubCode string `json:"sub_code"`
	SubMsg  string `json:"sub_msg"`
}

// parseResponse finds the method's response, member key (or, failing
// that, the gateway's error_response), in body, keeping its raw bytes, and
// the sign.
// The fields are decoded from those raw bytes, the very ones verified, so
// a body with duplicate or conflicting members cannot make herald believe
// one text and verify another. It does not verify anything.
func parseResponse(body []byte, key string) (answer, error) {
	var a answer
	raw, found, err := extractResponse(body, key)
	if err != nil {
		return a, err
	}
	a.key = key
	if !found {
		if raw, found, err = extractResponse(body, errorKey); err != nil {
			return a, err
		}
		a.key = errorKey
	}
	if !found {
		return a, errors.New("answer has neither " + key + " nor " + errorKey)
	}
	a.raw = raw
	var rb struct {
		Code    *string `json:"code"`
		Msg     string  `json:"msg"`
		SubCode string  `json:"sub_code"`
		SubMsg  string  `json:"sub_msg"`
	}
	if err := json.Unmarshal(raw, &rb); err != nil {
		return a, fmt.Errorf("decode %s: %w", a.key, err)
	}
	if rb.Code == nil || *rb.Code == "" {
		return a, fmt.Errorf("%s has no code", a.key)
	}
	a.body = responseBody{Code: *rb.Code, Msg: rb.Msg, SubCode: rb.SubCode, SubMsg: rb.SubMsg}
	// The sign is a top-level string member; the whole body must be JSON.
	var top struct {
		Sign *string `json:"sign"`
	}
	if err := json.Unmarshal(body, &top); err != nil {
		return a, fmt.Errorf("decode answer: %w", err)
	}
	if top.Sign != nil {
		a.sign = *top.Sign
	}
	return a, nil
}
