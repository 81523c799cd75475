package producer

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/producer/job"
)

// Publisher publishes jobs to JetStream.
type Publisher struct {
	js jetstream.Publisher
}

// New returns a Publisher on js.
func New(js jetstream.Publisher) *Publisher {
	return &Publisher{js: js}
}

// Publish validates j and publishes it to notify.send.<platform> with
// Nats-Msg-Id set to its id. An invalid job is refused with an error
// wrapping [job.ErrMalformed] and nothing is published.
func (p *Publisher) Publish(ctx context.Context, j job.Job) (*jetstream.PubAck, error) {
	msg, err := Message(j)
	if err != nil {
		return nil, err
	}
	ack, err := p.js.PublishMsg(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("publish job %s: %w", j.ID, err)
	}
	return ack, nil
}

// Message validates j and builds the message Publish sends, for callers that
// publish asynchronously or add headers of their own.
func Message(j job.Job) (*nats.Msg, error) {
	if j.App == "" {
		j.App = job.DefaultApp
	}
	if err := j.Validate(""); err != nil {
		return nil, fmt.Errorf("job %q: %w", j.ID, err)
	}
	data, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	if len(data) > job.MaxSize {
		return nil, fmt.Errorf("job %q: %w: %d bytes, limit %d", j.ID, job.ErrMalformed, len(data), job.MaxSize)
	}
	msg := nats.NewMsg(job.SendSubject(j.Platform))
	msg.Data = data
	msg.Header.Set(job.HeaderMsgID, j.ID)
	return msg, nil
}
