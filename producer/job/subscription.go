package job

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"time"
)

// Subject roots of the receiving half: subscription events from the
// platforms' pushes, and the delivery status derived from them.
const (
	SubscriptionRoot = "notify.subscription"
	StatusRoot       = "notify.status"
)

// Kinds of subscription event: the <event> token of
// notify.subscription.<platform>.<event> and [SubscriptionEvent].Event.
const (
	// EventPopup is a user's answer to the subscription popup
	// (WeChat subscribe_msg_popup_event).
	EventPopup = "popup"
	// EventChange is a user's change from the message card or the
	// settings (WeChat subscribe_msg_change_event).
	EventChange = "change"
	// EventSent is the platform's final result of an accepted send
	// (WeChat subscribe_msg_sent_event).
	EventSent = "sent"
)

// SubscriptionEvents lists every event kind.
var SubscriptionEvents = []string{EventPopup, EventChange, EventSent}

// Statuses of a [SubscriptionEvent] and a [StatusEvent].
const (
	// StatusAccept and StatusReject are the statuses of popup and change
	// events.
	StatusAccept = "accept"
	StatusReject = "reject"
	// StatusSuccess and StatusFailed are the statuses of sent events.
	StatusSuccess = "success"
	StatusFailed  = "failed"
	// StatusDelivered is a [StatusEvent]'s status for a send that reached
	// the user; a failed one has StatusFailed.
	StatusDelivered = "delivered"
)

// SubscriptionEvent is one item of a platform's subscription push,
// published to notify.subscription.<platform>.<event> with the
// Nats-Msg-Id of [SubscriptionEvent.DedupID]. Fields an event kind does
// not have are left out.
type SubscriptionEvent struct {
	Platform   string `json:"platform"`
	App        string `json:"app"`
	Event      string `json:"event"`   // EventPopup, EventChange or EventSent
	ToUser     string `json:"to_user"` // WeChat FromUserName: the openid
	TemplateID string `json:"template_id"`
	// Status is StatusAccept or StatusReject for popup and change,
	// StatusSuccess or StatusFailed for sent (WeChat ErrorCode 0 is
	// success).
	Status string `json:"status"`
	// PopupScene is WeChat's PopupScene, for popup.
	PopupScene string `json:"popup_scene,omitempty"`
	// MsgID is the platform's message id as a decimal string, for sent.
	MsgID string `json:"msgid,omitempty"`
	// ErrorCode ("0" on success) and ErrorStatus are the platform's
	// result, for sent.
	ErrorCode   string `json:"error_code,omitempty"`
	ErrorStatus string `json:"error_status,omitempty"`
	// CreatedAt is the platform's CreateTime; ReceivedAt is when herald
	// received the push.
	CreatedAt  time.Time `json:"created_at"`
	ReceivedAt time.Time `json:"received_at"`
}

// DedupID is the event's Nats-Msg-Id: [SubscriptionMsgID] of its fields.
func (e *SubscriptionEvent) DedupID() string {
	return SubscriptionMsgID(e.Platform, e.App, e.ToUser, e.CreatedAt.Unix(), e.Event, e.TemplateID, e.MsgID)
}

// SubscriptionMsgID derives the Nats-Msg-Id of a subscription event from
// what identifies it: the platform and app, the user (WeChat FromUserName),
// the push's CreateTime in Unix seconds, the event kind, the template and
// the platform's message id (empty where the event has none). A platform
// retrying one push therefore stores each of its events once.
//
// The fields are hashed with SHA-256, each preceded by its length, so
// values that differ only in where one field ends and the next begins (or
// in separators, line ends or trailing spaces) never give the same id. The
// id is "sub:" and 64 hex digits.
func SubscriptionMsgID(platform, app, toUser string, createTime int64, event, templateID, msgID string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, f := range []string{platform, app, toUser, strconv.FormatInt(createTime, 10), event, templateID, msgID} {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(f)))])
		h.Write([]byte(f))
	}
	var sum [sha256.Size]byte
	return "sub:" + hex.EncodeToString(h.Sum(sum[:0]))
}

// SubscriptionSubject is the subject of platform's events of kind event:
// notify.subscription.wechat.popup.
func SubscriptionSubject(platform, event string) string {
	return SubscriptionRoot + "." + platform + "." + event
}

// StatusEvent is the delivery status of one send, published to
// notify.status.<platform> when the platform reports its final result.
type StatusEvent struct {
	// ID, App, TemplateID and ToUser are the delivered job's; ID is empty
	// when no delivered job matches MsgID.
	ID         string `json:"id"`
	App        string `json:"app"`
	TemplateID string `json:"template_id"`
	ToUser     string `json:"to_user"`
	Platform   string `json:"platform"`
	MsgID      string `json:"msgid"`
	// Status is StatusDelivered or StatusFailed.
	Status      string `json:"status"`
	ErrorCode   string `json:"error_code,omitempty"`
	ErrorStatus string `json:"error_status,omitempty"`
	// SentAt is the delivery receipt's time, zero (and left out) when no
	// delivered job matches; StatusAt is the sent event's created_at.
	SentAt   time.Time `json:"sent_at,omitzero"`
	StatusAt time.Time `json:"status_at"`
}

// StatusMsgID is the Nats-Msg-Id of the delivery status event derived from
// the sent event whose Nats-Msg-Id is eventID: the same for every
// redelivery of that event.
func StatusMsgID(eventID string) string { return "status:" + eventID }

// StatusSubject is the subject delivery status events for platform go
// to: notify.status.wechat.
func StatusSubject(platform string) string { return StatusRoot + "." + platform }
