package push

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"
)

// Mode is a push's security mode, as chosen in the console.
type Mode string

// The console's modes.
const (
	// ModePlain sends the message as the body; only the query is signed.
	ModePlain Mode = "plain"
	// ModeCompatible sends the plaintext fields and Encrypt.
	ModeCompatible Mode = "compatible"
	// ModeSafe sends Encrypt only (and ToUserName).
	ModeSafe Mode = "safe"
)

// Format is a push's data format, as chosen in the console.
type Format string

// The console's formats.
const (
	FormatXML  Format = "xml"
	FormatJSON Format = "json"
)

// Sealer makes pushes the way WeChat does, for the sandbox and tests.
type Sealer struct {
	AppID string
	Token string
	// Key encrypts in compatible and safe mode.
	Key    *Key
	Mode   Mode
	Format Format
	// Rand supplies nonces and the 16 random bytes of each ciphertext;
	// nil means crypto/rand.
	Rand io.Reader
}

// Seal returns the query and body of m's push at now.
func (s *Sealer) Seal(m Message, now time.Time) (url.Values, []byte, error) {
	body, err := m.Marshal(s.Format)
	if err != nil {
		return nil, nil, err
	}
	return s.SealBody(body, m.ToUserName, now)
}

// SealBody is [Sealer.Seal] for a message already encoded (in the
// Sealer's format), sent as it is: tests use it for shapes Marshal does
// not write. In compatible mode Encrypt is added to body's fields.
func (s *Sealer) SealBody(body []byte, toUserName string, now time.Time) (url.Values, []byte, error) {
	random := s.Rand
	if random == nil {
		random = rand.Reader
	}
	var nb [4]byte
	if _, err := io.ReadFull(random, nb[:]); err != nil {
		return nil, nil, fmt.Errorf("seal: nonce: %w", err)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	nonce := strconv.FormatUint(uint64(binary.BigEndian.Uint32(nb[:])), 10)
	q := url.Values{"signature": {Sign(s.Token, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce}}
	if s.Mode == ModePlain || s.Mode == "" {
		return q, body, nil
	}
	if s.Mode != ModeCompatible && s.Mode != ModeSafe {
		return nil, nil, fmt.Errorf("seal: unknown mode %q", s.Mode)
	}
	if s.Key == nil {
		return nil, nil, errors.New("seal: compatible and safe mode need a key")
	}
	enc, err := s.Key.Encrypt(body, s.AppID, random)
	if err != nil {
		return nil, nil, fmt.Errorf("seal: %w", err)
	}
	q.Set("encrypt_type", "aes")
	q.Set("msg_signature", Sign(s.Token, ts, nonce, enc))
	var out []byte
	switch {
	case s.Mode == ModeSafe && s.Format == FormatJSON:
		out, err = json.Marshal(struct {
			ToUserName string `json:"ToUserName"`
			Encrypt    string `json:"Encrypt"`
		}{toUserName, enc})
	case s.Mode == ModeSafe:
		out, err = xml.Marshal(xmlSafe{ToUserName: cdata{toUserName}, Encrypt: cdata{enc}})
	case s.Format == FormatJSON:
		out, err = withJSONField(body, "Encrypt", enc)
	default:
		out, err = withXMLField(body, "Encrypt", enc)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("seal: %w", err)
	}
	return q, out, nil
}

// withJSONField adds "name":value as the first field of the object body.
func withJSONField(body []byte, name, value string) ([]byte, error) {
	i := bytes.IndexByte(body, '{')
	if i < 0 {
		return nil, errors.New("body is not a JSON object")
	}
	field, _ := json.Marshal(map[string]string{name: value})
	field = field[1 : len(field)-1] // "name":"value"
	out := append(append(append([]byte(nil), body[:i+1]...), field...), ',')
	rest := bytes.TrimLeft(body[i+1:], " \t\r\n")
	if len(rest) > 0 && rest[0] == '}' {
		out = out[:len(out)-1]
	}
	return append(out, body[i+1:]...), nil
}

// withXMLField adds <name>value</name> as the last element of the XML
// document body.
func withXMLField(body []byte, name, value string) ([]byte, error) {
	end := bytes.LastIndex(body, []byte("</"))
	if end < 0 {
		return nil, errors.New("body is not an XML element")
	}
	var el bytes.Buffer
	if err := xml.NewEncoder(&el).EncodeElement(cdata{value}, xml.StartElement{Name: xml.Name{Local: name}}); err != nil {
		return nil, err
	}
	return append(append(append([]byte(nil), body[:end]...), el.Bytes()...), body[end:]...), nil
}

type cdata struct {
	V string `xml:",cdata"`
}

type xmlSafe struct {
	XMLName    xml.Name `xml:"xml"`
	ToUserName cdata    `xml:"ToUserName"`
	Encrypt    cdata    `xml:"Encrypt"`
}

type xmlItemOut struct {
	TemplateID      *cdata `xml:"TemplateId,omitempty"`
	SubscribeStatus *cdata `xml:"SubscribeStatusString,omitempty"`
	PopupScene      string `xml:"PopupScene,omitempty"`
	MsgID           int64  `xml:"MsgID,omitempty"`
	ErrorCode       string `xml:"ErrorCode,omitempty"`
	ErrorStatus     *cdata `xml:"ErrorStatus,omitempty"`
}

type xmlWrapperOut struct {
	XMLName xml.Name
	List    []xmlItemOut `xml:"List"`
}

type xmlMessageOut struct {
	XMLName      xml.Name       `xml:"xml"`
	ToUserName   cdata          `xml:"ToUserName"`
	FromUserName cdata          `xml:"FromUserName"`
	CreateTime   int64          `xml:"CreateTime"`
	MsgType      cdata          `xml:"MsgType"`
	Event        cdata          `xml:"Event"`
	Wrapper      *xmlWrapperOut `xml:",omitempty"`
	List         []xmlItemOut   `xml:"List"` // items of an event without a wrapper
}

func optCDATA(s string) *cdata {
	if s == "" {
		return nil
	}
	return &cdata{s}
}

// Marshal encodes m as WeChat pushes it: XML with the items under the
// event's wrapper element, or JSON with a top-level List that is an
// object for one item and an array for several, and numbers for
// CreateTime, MsgID, ErrorCode and a numeric PopupScene.
func (m Message) Marshal(f Format) ([]byte, error) {
	switch f {
	case FormatXML, "":
		x := xmlMessageOut{
			ToUserName: cdata{m.ToUserName}, FromUserName: cdata{m.FromUserName}, CreateTime: m.CreateTime,
			MsgType: cdata{m.MsgType}, Event: cdata{m.Event},
		}
		var items []xmlItemOut
		for _, it := range m.Items {
			items = append(items, xmlItemOut{
				TemplateID: optCDATA(it.TemplateID), SubscribeStatus: optCDATA(it.SubscribeStatus),
				PopupScene: it.PopupScene, MsgID: it.MsgID, ErrorCode: it.ErrorCode, ErrorStatus: optCDATA(it.ErrorStatus),
			})
		}
		if name, ok := wrapperOf[m.Event]; ok && len(items) > 0 {
			x.Wrapper = &xmlWrapperOut{XMLName: xml.Name{Local: name}, List: items}
		} else {
			x.List = items
		}
		out, err := xml.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("marshal push: %w", err)
		}
		return out, nil
	case FormatJSON:
		type item struct {
			TemplateID      string          `json:"TemplateId,omitempty"`
			SubscribeStatus string          `json:"SubscribeStatusString,omitempty"`
			PopupScene      json.RawMessage `json:"PopupScene,omitempty"`
			MsgID           int64           `json:"MsgID,omitempty"`
			ErrorCode       json.RawMessage `json:"ErrorCode,omitempty"`
			ErrorStatus     string          `json:"ErrorStatus,omitempty"`
		}
		items := make([]item, 0, len(m.Items))
		for _, it := range m.Items {
			items = append(items, item{
				TemplateID: it.TemplateID, SubscribeStatus: it.SubscribeStatus, PopupScene: numberOrString(it.PopupScene),
				MsgID: it.MsgID, ErrorCode: numberOrString(it.ErrorCode), ErrorStatus: it.ErrorStatus,
			})
		}
		var list any
		switch len(items) {
		case 0:
		case 1:
			list = items[0]
		default:
			list = items
		}
		out, err := json.Marshal(struct {
			ToUserName   string `json:"ToUserName"`
			FromUserName string `json:"FromUserName"`
			CreateTime   int64  `json:"CreateTime"`
			MsgType      string `json:"MsgType"`
			Event        string `json:"Event"`
			List         any    `json:"List,omitempty"`
		}{m.ToUserName, m.FromUserName, m.CreateTime, m.MsgType, m.Event, list})
		if err != nil {
			return nil, fmt.Errorf("marshal push: %w", err)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("marshal push: unknown format %q", f)
	}
}

// numberOrString is s as a JSON number when it is a decimal integer, as a
// JSON string otherwise, and absent when empty.
func numberOrString(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return json.RawMessage(strconv.FormatInt(n, 10))
	}
	b, _ := json.Marshal(s)
	return b
}
