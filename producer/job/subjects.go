package job

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"time"
)

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

// ReceiptMsgID is the Nats-Msg-Id of a job's delivery receipt: the same for
// every publish of it, so the receipt stream stores it once within its
// duplicate window. It hashes the key's parts, each length-prefixed, so
// that ids differing only in separators, CR/LF or trailing spaces never
// share a receipt id, and no producer byte reaches a header.
func ReceiptMsgID(platform, app, id string) string {
	h := sha256.New()
	for _, s := range []string{platform, app, id} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return "sent:" + platform + ":" + hex.EncodeToString(h.Sum(nil)[:16])
}

// DeadLetterMsgID is the Nats-Msg-Id of the dead letter of the message
// stored at seq of stream at time stored: the same for every publish of
// that dead letter, whichever delivery of the message makes it, and
// different for every other message, even once the stream is deleted and
// created again and its sequences start over.
func DeadLetterMsgID(stream string, seq uint64, stored time.Time) string {
	return "dead:" + stream + ":" + strconv.FormatUint(seq, 10) + ":" + strconv.FormatInt(stored.UnixNano(), 10)
}
