package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/producer/job"
)

// Topology names and sizes herald's streams and its worker consumer.
type Topology struct {
	SendStream   string // NOTIFY_SEND
	DeadStream   string // NOTIFY_DEAD
	EventsStream string // NOTIFY_EVENTS; empty: no delivery receipts
	Consumer     string // herald-worker
	// SubscriptionsStream keeps the subscription events herald receiver
	// stores (notify.subscription.>), with a duplicate window of
	// [SubscriptionsDuplicateWindow]. NOTIFY_SUBSCRIPTIONS.
	SubscriptionsStream string
	// LedgerConsumer is the durable pull consumer on SubscriptionsStream
	// the workers keep the subscription ledger from (herald-ledger); empty
	// when the ledger is off. With it, EventsStream also takes the delivery
	// status events (notify.status.>).
	LedgerConsumer string

	Replicas            int           // stream replicas: 1, or 3 in a cluster
	DuplicateWindow     time.Duration // 2m
	DeadMaxAge          time.Duration // 14 days
	EventsMaxAge        time.Duration // 7 days
	SubscriptionsMaxAge time.Duration // 30 days

	// Size limits, in bytes; 0 for none. JetStream reserves each limit ×
	// Replicas of its file store when the stream is created, and refuses a
	// stream whose limit does not fit.
	//
	// DeadMaxBytes (1 GiB) discards new: a dead letter that does not fit is
	// refused, and the worker keeps its job until it does. EventsMaxBytes
	// (2 GiB) and SubscriptionsMaxBytes (1 GiB) discard the oldest
	// messages: receipts and events are there to be read soon after
	// they are stored.
	DeadMaxBytes          int64
	EventsMaxBytes        int64
	SubscriptionsMaxBytes int64

	AckWait       time.Duration // 30s
	MaxAckPending int           // jobs handed out and not yet acked, over all replicas
}

// SubscriptionsDuplicateWindow is how long the subscriptions stream
// remembers an event's Nats-Msg-Id: longer than WeChat takes to retry a
// push (three tries within seconds) and than the receiver's 5-minute
// timestamp tolerance, so a retried or replayed push stores nothing twice.
const SubscriptionsDuplicateWindow = 10 * time.Minute

// DefaultTopology is the contract's default names and sizes.
var DefaultTopology = Topology{
	SendStream:          "NOTIFY_SEND",
	DeadStream:          "NOTIFY_DEAD",
	EventsStream:        "NOTIFY_EVENTS",
	Consumer:            "herald-worker",
	SubscriptionsStream: "NOTIFY_SUBSCRIPTIONS",
	Replicas:            1,
	DuplicateWindow:     2 * time.Minute,
	DeadMaxAge:          14 * 24 * time.Hour,
	EventsMaxAge:        7 * 24 * time.Hour,
	SubscriptionsMaxAge: 30 * 24 * time.Hour,

	DeadMaxBytes:          1 << 30,
	EventsMaxBytes:        2 << 30,
	SubscriptionsMaxBytes: 1 << 30,

	AckWait:       30 * time.Second,
	MaxAckPending: 16384,
}

// Change is one resource Apply created or updated.
type Change struct {
	Kind   string `json:"kind"`   // "stream" or "consumer"
	Name   string `json:"name"`   // e.g. NOTIFY_SEND
	Action string `json:"action"` // "created", "updated" or "unchanged"
}

// Streams returns the stream configurations of t.
func (t Topology) Streams() []jetstream.StreamConfig {
	out := []jetstream.StreamConfig{{
		Name:        t.SendStream,
		Description: "herald send jobs",
		Subjects:    []string{job.SendRoot + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		Duplicates:  t.DuplicateWindow,
		MaxMsgSize:  job.MaxSize + 4096,
	}, {
		Name:        t.DeadStream,
		Description: "herald dead letters",
		Subjects:    []string{job.DeadRoot + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		MaxAge:      t.DeadMaxAge,
		MaxBytes:    t.DeadMaxBytes,
		Discard:     jetstream.DiscardNew,
		Duplicates:  t.DuplicateWindow,
	}}
	if t.EventsStream != "" {
		out = append(out, jetstream.StreamConfig{
			Name:        t.EventsStream,
			Description: "herald delivery receipts",
			Subjects:    t.eventSubjects(),
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
			MaxAge:      t.EventsMaxAge,
			MaxBytes:    t.EventsMaxBytes,
			Discard:     jetstream.DiscardOld,
			Duplicates:  t.DuplicateWindow,
		})
	}
	return append(out, t.SubscriptionsStreamConfig())
}

// eventSubjects are the events stream's subjects: receipts, and the
// delivery status when the ledger is on.
func (t Topology) eventSubjects() []string {
	if t.LedgerConsumer == "" {
		return []string{job.SentRoot + ".>"}
	}
	return []string{job.SentRoot + ".>", job.StatusRoot + ".>"}
}

// SubscriptionsStreamConfig is the configuration of the subscriptions
// stream: limits retention, file storage, max age SubscriptionsMaxAge, max
// bytes SubscriptionsMaxBytes discarding the oldest.
func (t Topology) SubscriptionsStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        t.SubscriptionsStream,
		Description: "herald subscription events",
		Subjects:    []string{job.SubscriptionRoot + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		MaxAge:      t.SubscriptionsMaxAge,
		MaxBytes:    t.SubscriptionsMaxBytes,
		Discard:     jetstream.DiscardOld,
		Duplicates:  SubscriptionsDuplicateWindow,
	}
}

// ConsumerConfig is the shared durable pull consumer every worker replica
// uses. Deliveries are unlimited: herald counts attempts itself, because
// rate-limit holds and crash redeliveries are not failures.
func (t Topology) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       t.Consumer,
		Description:   "herald worker replicas",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       t.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: t.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		Replicas:      t.Replicas,
	}
}

// LedgerConsumerConfig is the durable pull consumer the workers share on
// the subscriptions stream. Events are few and each is applied at once,
// so a short ack wait redelivers one whose replica died soon.
func (t Topology) LedgerConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       t.LedgerConsumer,
		Description:   "herald subscription ledger",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       t.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: 4096,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		Replicas:      t.Replicas,
	}
}

// consumers are the durable consumers of t, each with its stream.
func (t Topology) consumers() []struct {
	stream string
	cfg    jetstream.ConsumerConfig
} {
	out := []struct {
		stream string
		cfg    jetstream.ConsumerConfig
	}{{t.SendStream, t.ConsumerConfig()}}
	if t.LedgerConsumer != "" {
		out = append(out, struct {
			stream string
			cfg    jetstream.ConsumerConfig
		}{t.SubscriptionsStream, t.LedgerConsumerConfig()})
	}
	return out
}

// Apply creates or updates the streams and the consumers so they match t.
// It is idempotent and reports what it did.
func (t Topology) Apply(ctx context.Context, js jetstream.JetStream) ([]Change, error) {
	var changes []Change
	for _, cfg := range t.Streams() {
		c, err := applyStream(ctx, js, cfg)
		if err != nil {
			return changes, err
		}
		changes = append(changes, c)
	}
	for _, c := range t.consumers() {
		ch, err := applyConsumer(ctx, js, c.stream, c.cfg)
		if err != nil {
			return changes, err
		}
		changes = append(changes, ch)
	}
	return changes, nil
}

// applyConsumer creates the durable consumer cfg on stream, or updates it
// where it differs.
func applyConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (Change, error) {
	ch := Change{Kind: "consumer", Name: cfg.Durable, Action: "created"}
	c, err := js.Consumer(ctx, stream, cfg.Durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		if _, err := js.CreateConsumer(ctx, stream, cfg); err != nil {
			return ch, fmt.Errorf("create consumer %s: %w", cfg.Durable, err)
		}
	case err != nil:
		return ch, fmt.Errorf("consumer %s: %w", cfg.Durable, err)
	default:
		ch.Action = "unchanged"
		if !sameConsumer(c.CachedInfo().Config, cfg) {
			ch.Action = "updated"
			if _, err := js.UpdateConsumer(ctx, stream, cfg); err != nil {
				return ch, fmt.Errorf("update consumer %s: %w", cfg.Durable, err)
			}
		}
	}
	return ch, nil
}

// EnsureStream creates the stream called name from t when it is missing:
// a worker calls it when someone deleted a stream it publishes to. An
// existing stream is left as it is.
func (t Topology) EnsureStream(ctx context.Context, js jetstream.JetStream, name string) error {
	for _, cfg := range t.Streams() {
		if cfg.Name != name {
			continue
		}
		_, err := js.CreateStream(ctx, cfg)
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("create stream %s: %w", name, err)
		}
		return nil
	}
	return fmt.Errorf("stream %s is not one of herald's", name)
}

// ApplySubscriptions creates or updates the subscriptions stream alone, as
// herald receiver does at start: it publishes nothing else.
func (t Topology) ApplySubscriptions(ctx context.Context, js jetstream.JetStream) (Change, error) {
	return applyStream(ctx, js, t.SubscriptionsStreamConfig())
}

// applyStream creates the stream cfg, or updates it where it differs.
func applyStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (Change, error) {
	c := Change{Kind: "stream", Name: cfg.Name, Action: "created"}
	s, err := js.Stream(ctx, cfg.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			return c, fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
	case err != nil:
		return c, fmt.Errorf("stream %s: %w", cfg.Name, err)
	default:
		c.Action = "unchanged"
		if !sameStream(s.CachedInfo().Config, cfg) {
			c.Action = "updated"
			if _, err := js.UpdateStream(ctx, cfg); err != nil {
				return c, fmt.Errorf("update stream %s: %w", cfg.Name, err)
			}
		}
	}
	return c, nil
}

func sameStream(have, want jetstream.StreamConfig) bool {
	return have.Replicas == want.Replicas &&
		have.Duplicates == want.Duplicates &&
		have.MaxAge == want.MaxAge &&
		sameLimit(have.MaxBytes, want.MaxBytes) &&
		have.Discard == want.Discard &&
		sameLimit(int64(have.MaxMsgSize), int64(want.MaxMsgSize)) &&
		len(have.Subjects) == len(want.Subjects) &&
		(len(have.Subjects) == 0 || have.Subjects[0] == want.Subjects[0]) &&
		have.Description == want.Description
}

func sameConsumer(have, want jetstream.ConsumerConfig) bool {
	return have.AckWait == want.AckWait &&
		have.MaxAckPending == want.MaxAckPending &&
		have.MaxDeliver == want.MaxDeliver &&
		have.Description == want.Description &&
		(want.Replicas == 0 || have.Replicas == want.Replicas)
}

// sameLimit compares two JetStream limits, where 0 and -1 both mean none.
func sameLimit(a, b int64) bool {
	return a == b || (a <= 0 && b <= 0)
}
