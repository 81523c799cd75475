package push

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// WeChat's subscription events: the Event of a message whose MsgType is
// MsgTypeEvent.
const (
	MsgTypeEvent = "event"

	EventPopup  = "subscribe_msg_popup_event"
	EventChange = "subscribe_msg_change_event"
	EventSent   = "subscribe_msg_sent_event"
)

// Bounds on what [Parse] accepts.
const (
	// MaxItems is the most List items one push may carry. A popup offers
	// at most a handful of templates; WeChat sends one sent event per push.
	MaxItems = 100
	// MaxFieldLen is the longest field, in bytes. Openids are 28 bytes and
	// template ids 43.
	MaxFieldLen = 512
)

// Message is one push, decoded. Fields WeChat did not send are empty.
type Message struct {
	ToUserName   string // the mini-program's original id, gh_...
	FromUserName string // the user's openid
	CreateTime   int64  // Unix seconds
	MsgType      string // MsgTypeEvent for subscription events
	Event        string // EventPopup, EventChange, EventSent or another
	Items        []Item // the List items, in order
}

// Item is one List item of a subscription event.
type Item struct {
	TemplateID string
	// SubscribeStatus is SubscribeStatusString: accept or reject (popup
	// and change events).
	SubscribeStatus string
	// PopupScene is where the popup showed (popup events).
	PopupScene string
	// MsgID is the send's message id (sent events); 0 when absent.
	MsgID int64
	// ErrorCode ("0" on success) and ErrorStatus are the send's result
	// (sent events). A numeric ErrorCode is kept in decimal.
	ErrorCode   string
	ErrorStatus string
}

// wrapperOf names the XML element (and JSON key) that holds an event's
// List items.
var wrapperOf = map[string]string{
	EventPopup:  "SubscribeMsgPopupEvent",
	EventChange: "SubscribeMsgChangeEvent",
	EventSent:   "SubscribeMsgSentEvent",
}

// Parse decodes a plaintext message, XML or JSON, told apart by its first
// byte other than white space. Errors wrap [ErrMalformed].
func Parse(data []byte) (Message, error) {
	data = bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(data) == 0 {
		return Message{}, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	var (
		m   Message
		err error
	)
	switch data[0] {
	case '<':
		m, err = parseXML(data)
	case '{':
		m, err = parseJSON(data)
	default:
		return Message{}, fmt.Errorf("%w: neither XML nor a JSON object", ErrMalformed)
	}
	if err != nil {
		return Message{}, err
	}
	if err := m.check(); err != nil {
		return Message{}, err
	}
	return m, nil
}

// check applies the bounds.
func (m *Message) check() error {
	if len(m.Items) > MaxItems {
		return fmt.Errorf("%w: %d items, limit %d", ErrMalformed, len(m.Items), MaxItems)
	}
	fields := []struct{ name, v string }{
		{"ToUserName", m.ToUserName}, {"FromUserName", m.FromUserName},
		{"MsgType", m.MsgType}, {"Event", m.Event},
	}
	for _, it := range m.Items {
		fields = append(fields, []struct{ name, v string }{
			{"TemplateId", it.TemplateID}, {"SubscribeStatusString", it.SubscribeStatus},
			{"PopupScene", it.PopupScene}, {"ErrorCode", it.ErrorCode}, {"ErrorStatus", it.ErrorStatus},
		}...)
	}
	for _, f := range fields {
		if len(f.v) > MaxFieldLen {
			return fmt.Errorf("%w: %s longer than %d bytes", ErrMalformed, f.name, MaxFieldLen)
		}
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("%w: %s is not UTF-8", ErrMalformed, f.name)
		}
	}
	return nil
}

type xmlItem struct {
	TemplateID      string `xml:"TemplateId"`
	SubscribeStatus string `xml:"SubscribeStatusString"`
	PopupScene      string `xml:"PopupScene"`
	MsgID           string `xml:"MsgID"`
	ErrorCode       string `xml:"ErrorCode"`
	ErrorStatus     string `xml:"ErrorStatus"`
}

type xmlList struct {
	List []xmlItem `xml:"List"`
}

type xmlMessage struct {
	ToUserName   string    `xml:"ToUserName"`
	FromUserName string    `xml:"FromUserName"`
	CreateTime   string    `xml:"CreateTime"`
	MsgType      string    `xml:"MsgType"`
	Event        string    `xml:"Event"`
	Encrypt      string    `xml:"Encrypt"`
	List         []xmlItem `xml:"List"`
	Popup        *xmlList  `xml:"SubscribeMsgPopupEvent"`
	Change       *xmlList  `xml:"SubscribeMsgChangeEvent"`
	Sent         *xmlList  `xml:"SubscribeMsgSentEvent"`
}

func (x *xmlMessage) wrapper(event string) *xmlList {
	switch event {
	case EventPopup:
		return x.Popup
	case EventChange:
		return x.Change
	case EventSent:
		return x.Sent
	}
	return nil
}

func parseXML(data []byte) (Message, error) {
	var x xmlMessage
	if err := xml.Unmarshal(data, &x); err != nil {
		return Message{}, fmt.Errorf("%w: xml: %v", ErrMalformed, err)
	}
	m := Message{
		ToUserName:   strings.TrimSpace(x.ToUserName),
		FromUserName: strings.TrimSpace(x.FromUserName),
		MsgType:      strings.TrimSpace(x.MsgType),
		Event:        strings.TrimSpace(x.Event),
	}
	var err error
	if m.CreateTime, err = parseInt("CreateTime", x.CreateTime); err != nil {
		return Message{}, err
	}
	// The items sit under the event's wrapper; a top-level List is read
	// when there is none.
	list := x.List
	if w := x.wrapper(m.Event); w != nil {
		list = w.List
	}
	if len(list) > MaxItems {
		return Message{}, fmt.Errorf("%w: %d items, limit %d", ErrMalformed, len(list), MaxItems)
	}
	for _, xi := range list {
		it := Item{
			TemplateID:      strings.TrimSpace(xi.TemplateID),
			SubscribeStatus: strings.TrimSpace(xi.SubscribeStatus),
			PopupScene:      strings.TrimSpace(xi.PopupScene),
			ErrorCode:       canonicalCode(xi.ErrorCode),
			ErrorStatus:     strings.TrimSpace(xi.ErrorStatus),
		}
		if it.MsgID, err = parseInt("MsgID", xi.MsgID); err != nil {
			return Message{}, err
		}
		m.Items = append(m.Items, it)
	}
	return m, nil
}

type jsonMessage struct {
	ToUserName   string          `json:"ToUserName"`
	FromUserName string          `json:"FromUserName"`
	CreateTime   json.RawMessage `json:"CreateTime"`
	MsgType      string          `json:"MsgType"`
	Event        string          `json:"Event"`
	Encrypt      string          `json:"Encrypt"`
	List         json.RawMessage `json:"List"`
	Popup        json.RawMessage `json:"SubscribeMsgPopupEvent"`
	Change       json.RawMessage `json:"SubscribeMsgChangeEvent"`
	Sent         json.RawMessage `json:"SubscribeMsgSentEvent"`
}

func (j *jsonMessage) wrapper(event string) json.RawMessage {
	switch event {
	case EventPopup:
		return j.Popup
	case EventChange:
		return j.Change
	case EventSent:
		return j.Sent
	}
	return nil
}

type jsonItem struct {
	TemplateID      string          `json:"TemplateId"`
	SubscribeStatus string          `json:"SubscribeStatusString"`
	PopupScene      json.RawMessage `json:"PopupScene"`
	MsgID           json.RawMessage `json:"MsgID"`
	ErrorCode       json.RawMessage `json:"ErrorCode"`
	ErrorStatus     string          `json:"ErrorStatus"`
}

func parseJSON(data []byte) (Message, error) {
	var j jsonMessage
	if err := json.Unmarshal(data, &j); err != nil {
		return Message{}, fmt.Errorf("%w: json: %v", ErrMalformed, err)
	}
	m := Message{
		ToUserName:   strings.TrimSpace(j.ToUserName),
		FromUserName: strings.TrimSpace(j.FromUserName),
		MsgType:      strings.TrimSpace(j.MsgType),
		Event:        strings.TrimSpace(j.Event),
	}
	ct, err := jsonScalar("CreateTime", j.CreateTime)
	if err != nil {
		return Message{}, err
	}
	if m.CreateTime, err = parseInt("CreateTime", ct); err != nil {
		return Message{}, err
	}
	list := j.List
	if w := j.wrapper(m.Event); len(w) > 0 {
		list = w
	}
	raw, err := jsonItems(list, 0, nil)
	if err != nil {
		return Message{}, err
	}
	for _, ji := range raw {
		it := Item{
			TemplateID:      strings.TrimSpace(ji.TemplateID),
			SubscribeStatus: strings.TrimSpace(ji.SubscribeStatus),
			ErrorStatus:     strings.TrimSpace(ji.ErrorStatus),
		}
		if it.PopupScene, err = jsonScalar("PopupScene", ji.PopupScene); err != nil {
			return Message{}, err
		}
		code, err := jsonScalar("ErrorCode", ji.ErrorCode)
		if err != nil {
			return Message{}, err
		}
		it.ErrorCode = canonicalCode(code)
		id, err := jsonScalar("MsgID", ji.MsgID)
		if err != nil {
			return Message{}, err
		}
		if it.MsgID, err = parseInt("MsgID", id); err != nil {
			return Message{}, err
		}
		m.Items = append(m.Items, it)
	}
	return m, nil
}

// maxDepth bounds the nesting of List shapes: a wrapper holding
// {"List": [...]} is two levels.
const maxDepth = 3

// jsonItems reads the List shapes: an array of items, one item object,
// or an object whose List holds either.
func jsonItems(raw json.RawMessage, depth int, out []jsonItem) ([]jsonItem, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return out, nil
	}
	if depth >= maxDepth {
		return nil, fmt.Errorf("%w: List nested too deep", ErrMalformed)
	}
	switch raw[0] {
	case '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return nil, fmt.Errorf("%w: List: %v", ErrMalformed, err)
		}
		if len(out)+len(elems) > MaxItems {
			return nil, fmt.Errorf("%w: more than %d items", ErrMalformed, MaxItems)
		}
		for _, e := range elems {
			var err error
			if out, err = jsonItems(e, depth+1, out); err != nil {
				return nil, err
			}
		}
		return out, nil
	case '{':
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, fmt.Errorf("%w: List: %v", ErrMalformed, err)
		}
		if list, ok := fields["List"]; ok {
			return jsonItems(list, depth+1, out)
		}
		var it jsonItem
		if err := json.Unmarshal(raw, &it); err != nil {
			return nil, fmt.Errorf("%w: List item: %v", ErrMalformed, err)
		}
		if len(out) >= MaxItems {
			return nil, fmt.Errorf("%w: more than %d items", ErrMalformed, MaxItems)
		}
		return append(out, it), nil
	default:
		return nil, fmt.Errorf("%w: List is neither an object nor an array", ErrMalformed)
	}
}

// jsonScalar reads a value WeChat sends as a number or a string: a number
// is kept as its literal (never through a float), a string as its text,
// null or absent as "".
func jsonScalar(name string, raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%w: %s: %v", ErrMalformed, name, err)
		}
		return strings.TrimSpace(s), nil
	case c == '-' || '0' <= c && c <= '9':
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", fmt.Errorf("%w: %s: %v", ErrMalformed, name, err)
		}
		return n.String(), nil
	default:
		return "", fmt.Errorf("%w: %s is neither a number nor a string", ErrMalformed, name)
	}
}

// parseInt reads a decimal int64; "" is 0.
func parseInt(name, s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s is not a whole number", ErrMalformed, name)
	}
	return n, nil
}

// canonicalCode writes a numeric ErrorCode in plain decimal ("00" and "0"
// are both "0") and keeps any other text as it is.
func canonicalCode(s string) string {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return strconv.FormatInt(n, 10)
	}
	return s
}
