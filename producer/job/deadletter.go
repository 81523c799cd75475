package job

import (
	"encoding/json"
	"time"
)

// Dead-letter reasons. They are stable: operators filter and alert on them.
const (
	ReasonUserRefused         = "user_refused"
	ReasonInvalidTemplateData = "invalid_template_data"
	ReasonSensitiveContent    = "sensitive_content"
	ReasonInvalidRecipient    = "invalid_recipient"
	ReasonInvalidTemplate     = "invalid_template"
	ReasonInvalidPage         = "invalid_page"
	ReasonMalformedJob        = "malformed_job"
	ReasonExpired             = "expired"
	ReasonRetriesExhausted    = "retries_exhausted"
	ReasonUnknownApp          = "unknown_app"
	ReasonPlatformRejected    = "platform_rejected"
)

// Reasons lists every dead-letter reason.
var Reasons = []string{
	ReasonUserRefused, ReasonInvalidTemplateData, ReasonSensitiveContent,
	ReasonInvalidRecipient, ReasonInvalidTemplate, ReasonInvalidPage,
	ReasonMalformedJob, ReasonExpired, ReasonRetriesExhausted,
	ReasonUnknownApp, ReasonPlatformRejected,
}

// DeadLetter is published to notify.dead.<platform>.<reason>.
type DeadLetter struct {
	Reason         string          `json:"reason"`
	Platform       string          `json:"platform"`
	App            string          `json:"app"`
	TemplateID     string          `json:"template_id"`
	ToUser         string          `json:"to_user"`
	ID             string          `json:"id"`
	Code           string          `json:"code"`
	Message        string          `json:"message"`
	Field          string          `json:"field,omitempty"`
	Attempts       int             `json:"attempts"`
	FirstAttemptAt *time.Time      `json:"first_attempt_at,omitempty"`
	DeadAt         time.Time       `json:"dead_at"`
	Worker         string          `json:"worker"`
	Source         Source          `json:"source"`
	Job            json.RawMessage `json:"job,omitempty"`
	Raw            []byte          `json:"raw,omitempty"`
	Replays        int             `json:"replays"`
}

// Source locates the message a dead letter came from.
type Source struct {
	Stream   string `json:"stream"`
	Subject  string `json:"subject"`
	Sequence uint64 `json:"sequence"`
}

// Receipt is published to notify.sent.<platform> once per delivered job.
type Receipt struct {
	ID         string    `json:"id"`
	Platform   string    `json:"platform"`
	App        string    `json:"app"`
	TemplateID string    `json:"template_id"`
	ToUser     string    `json:"to_user"`
	Attempts   int       `json:"attempts"`
	MsgID      string    `json:"msgid,omitempty"`
	SentAt     time.Time `json:"sent_at"`
	Worker     string    `json:"worker"`
}
