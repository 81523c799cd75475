package job

// Subject roots. Each is followed by the platform (and, for dead letters, the
// reason): notify.send.wechat, notify.dead.wechat.user_refused.
const (
	SendRoot = "notify.send"
	DeadRoot = "notify.dead"
	SentRoot = "notify.sent"
)

// Headers herald reads or writes.
const (
	// HeaderMsgID is JetStream's de-duplication header. Producers set it to
	// the job's id.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderReason and HeaderCode are set on every dead letter.
	HeaderReason = "Herald-Reason"
	HeaderCode   = "Herald-Code"
	// HeaderReplays carries how many times a job was replayed from the
	// dead-letter stream; herald dlq replay sets it.
	HeaderReplays = "Herald-Replays"
)

// UnknownPlatform is the platform of a dead letter whose job could not be
// decoded far enough to tell: notify.dead.unknown.malformed_job.
const UnknownPlatform = "unknown"

// SendSubject is the subject jobs for platform are published on.
func SendSubject(platform string) string { return SendRoot + "." + platform }

// DeadSubject is the subject a dead letter is published on.
func DeadSubject(platform, reason string) string {
	if platform == "" {
		platform = UnknownPlatform
	}
	return DeadRoot + "." + platform + "." + reason
}

// SentSubject is the subject delivery receipts for platform go to.
func SentSubject(platform string) string { return SentRoot + "." + platform }

// PlatformOf returns the last token of a job subject, or "" when the
// subject has none.
func PlatformOf(subject string) string {
	for i := len(subject) - 1; i >= 0; i-- {
		if subject[i] == '.' {
			return subject[i+1:]
		}
	}
	return ""
}
