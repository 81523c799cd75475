package alipay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// This file is alipay.open.app.messagetemplate.subscribe.query
// (platform-apis B.5): which of up to 3 templates a user subscribed to.

// MaxQueryTemplates is how many templates one query may ask about.
const MaxQueryTemplates = 3

// QueryResult is Alipay's answer to a subscription query.
type QueryResult struct {
	// ShowComponent is show_component: whether Alipay would show the
	// subscription component for these templates.
	ShowComponent bool `json:"show_component"`
	// Relations are subscribe_relations, in Alipay's order. A template the
	// user never subscribed to is left out.
	Relations []Relation `json:"relations"`
}

// Relation is a user's subscription to one template. Alipay types its
// fields as strings but does not document their values (platform-apis
// B.5; an older SDK model describes subscribe_state "1" subscribed and
// "0" refused, subscribe_type "onetime" or "longterm", keep_state "0" keep
// subscribing and "1" keep refusing), so each is kept as Alipay sent it: a
// string as is, a number or a boolean as its JSON text, null as "".
type Relation struct {
	TemplateID     string `json:"template_id"`
	SubscribeState string `json:"subscribe_state"`
	SubscribeType  string `json:"subscribe_type"`
	KeepState      string `json:"keep_state"`
	Show           string `json:"show"`
}

// Relation returns the relation of template, false when Alipay left it
// out.
func (r QueryResult) Relation(template string) (Relation, bool) {
	for _, rel := range r.Relations {
		if rel.TemplateID == template {
			return rel, true
		}
	}
	return Relation{}, false
}

// QuerySubscriptions asks Alipay which of templates (1 to
// [MaxQueryTemplates] ids) user subscribed to. user is an open_id or a
// user_id as the app's Config.Recipient says, like a job's to_user. The
// request is signed as Send's is, and the answer believed only once its
// sign verifies with the Alipay public key, on the exact bytes of its
// response member:
//
//   - no template, more than [MaxQueryTemplates], an empty id or an empty
//     user: [ErrQuery], before any call;
//   - an answer whose sign does not verify: [ErrBadSignature];
//   - an answer without a sign: [ErrUnsigned] (the code it claims is
//     quoted in the message, but never returned as an [*APIError]);
//   - a verified answer with a code other than 10000: the [*APIError];
//   - a transport error, an HTTP status other than 200, an answer that does
//     not parse: a plain error.
func (c *Client) QuerySubscriptions(ctx context.Context, user string, templates []string) (QueryResult, error) {
	if err := checkQuery(user, templates); err != nil {
		return QueryResult{}, fmt.Errorf("alipay subscribe query: %w", err)
	}
	biz, err := encodeJSON(map[string]any{c.userField: user, "template_id_list": templates})
	if err != nil {
		return QueryResult{}, fmt.Errorf("alipay subscribe query: encode biz_content: %w", err)
	}
	form, err := c.signedForm(QueryMethod, biz)
	if err != nil {
		return QueryResult{}, fmt.Errorf("alipay subscribe query: %w", err)
	}
	a, err := c.call(ctx, form, queryResponseKey)
	if err != nil {
		return QueryResult{}, fmt.Errorf("alipay subscribe query: %w", err)
	}
	if err := c.judgeQuery(a); err != nil {
		return QueryResult{}, fmt.Errorf("alipay subscribe query: %w", err)
	}
	res, err := decodeQuery(a.raw)
	if err != nil {
		return QueryResult{}, fmt.Errorf("alipay subscribe query: decode %s: %w", a.key, err)
	}
	return res, nil
}

// checkQuery reports a query Alipay would refuse.
func checkQuery(user string, templates []string) error {
	switch {
	case user == "":
		return fmt.Errorf("%w: no user", ErrQuery)
	case len(templates) == 0:
		return fmt.Errorf("%w: no template", ErrQuery)
	case len(templates) > MaxQueryTemplates:
		return fmt.Errorf("%w: %d templates, Alipay answers at most %d", ErrQuery, len(templates), MaxQueryTemplates)
	}
	for i, t := range templates {
		if t == "" {
			return fmt.Errorf("%w: template %d is empty", ErrQuery, i+1)
		}
	}
	return nil
}

// judgeQuery believes a query's answer only when signed and verified: nil
// for a verified success. Unlike Send's judge, no unsigned answer is
// believed, not even a gateway error: a query ends no job, so nothing is
// gained by reading one, and the operator is told the answer was unsigned.
func (c *Client) judgeQuery(a answer) error {
	switch {
	case a.sign == "":
		return fmt.Errorf("%w: %s claims code %s%s, not believed", ErrUnsigned, a.key, strconv.Quote(a.body.Code), quoteSub(a.body.SubCode))
	case !verify(c.alipayKeys, a.raw, a.sign):
		return fmt.Errorf("%w: %s claims code %s%s, not believed", ErrBadSignature, a.key, strconv.Quote(a.body.Code), quoteSub(a.body.SubCode))
	case a.body.Code != codeSuccess:
		return &APIError{Code: a.body.Code, Msg: a.body.Msg, SubCode: a.body.SubCode, SubMsg: a.body.SubMsg}
	case a.key != queryResponseKey:
		return fmt.Errorf("%s with code %s", a.key, a.body.Code)
	}
	return nil
}

// quoteSub is " sub_code \"…\"" for an unbelieved answer's sub_code, if
// any, quoted: it comes from an answer nobody vouches for.
func quoteSub(sub string) string {
	if sub == "" {
		return ""
	}
	return " sub_code " + strconv.Quote(sub)
}

// decodeQuery decodes a verified success's relations from the very bytes
// verified.
func decodeQuery(raw []byte) (QueryResult, error) {
	var body struct {
		ShowComponent flag `json:"show_component"`
		Relations     []struct {
			TemplateID     text `json:"template_id"`
			SubscribeState text `json:"subscribe_state"`
			SubscribeType  text `json:"subscribe_type"`
			KeepState      text `json:"keep_state"`
			Show           text `json:"show"`
		} `json:"subscribe_relations"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return QueryResult{}, err
	}
	res := QueryResult{ShowComponent: bool(body.ShowComponent), Relations: make([]Relation, 0, len(body.Relations))}
	for _, r := range body.Relations {
		res.Relations = append(res.Relations, Relation{
			TemplateID:     string(r.TemplateID),
			SubscribeState: string(r.SubscribeState),
			SubscribeType:  string(r.SubscribeType),
			KeepState:      string(r.KeepState),
			Show:           string(r.Show),
		})
	}
	return res, nil
}

// text is a JSON string, number or boolean kept as text, and null as "".
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	// The decoder calls this with one well-formed value.
	switch {
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
	case b[0] == '{':
		return errors.New("a relation field is an object, not a string, number or boolean")
	case b[0] == '[':
		return errors.New("a relation field is an array, not a string, number or boolean")
	case string(b) == "null":
		*t = ""
	default: // a number, true or false, as written
		*t = text(b)
	}
	return nil
}

// flag is a JSON boolean, also taken as the strings "true" and "false" or
// the numbers and strings 1 and 0; null is false.
type flag bool

func (f *flag) UnmarshalJSON(b []byte) error {
	var t text
	if err := t.UnmarshalJSON(b); err != nil {
		return errors.New("show_component is not a boolean")
	}
	switch t {
	case "true", "1":
		*f = true
	case "false", "0", "":
		*f = false
	default:
		return errors.New("show_component is not a boolean")
	}
	return nil
}
