// Package producer is what services import to publish jobs, and what herald
// itself uses to provision its streams.
//
// [Publisher.Publish] validates a job before it leaves the process and sets
// the Nats-Msg-Id header to the job's id, so JetStream drops a duplicate
// publish within the stream's duplicate window. [Topology.Apply] creates or
// updates the job, dead-letter, receipt and subscription-event streams and
// the shared worker consumer; it is idempotent.
// [Topology.ApplySubscriptions] does the same for the subscription-event
// stream alone, which is all herald receiver publishes to.
package producer
