package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/dlq"
	"github.com/heraldhq/herald/internal/text"
	"github.com/heraldhq/herald/producer"
)

func init() { commands = append(commands, newStreamsCmd) }

func newStreamsCmd(e *env) *cobra.Command {
	var conn natsFlags
	cmd := &cobra.Command{
		Use:   "streams",
		Short: "Create, update and inspect herald's JetStream streams and consumer",
		Long: `herald keeps jobs in NOTIFY_SEND (work queue), dead letters in NOTIFY_DEAD,
delivery receipts in NOTIFY_EVENTS and the subscription events herald receiver
stores in NOTIFY_SUBSCRIPTIONS, and its workers share the durable pull consumer
herald-worker on NOTIFY_SEND. Names, replicas, the duplicate window and retention
come from the config (nats.*), as do the size limits: when NOTIFY_DEAD reaches
nats.dead_max_bytes new dead letters wait with their jobs until there is room,
while NOTIFY_EVENTS and NOTIFY_SUBSCRIPTIONS drop their oldest messages. The worker creates what is missing at start (the
receiver creates NOTIFY_SUBSCRIPTIONS); streams apply also updates what differs,
and streams status shows how they are doing.`,
		Example: `  herald streams apply --config herald.yaml
  herald streams status --server nats://nats:4222`,
		Args: cobra.NoArgs,
	}
	conn.register(cmd)
	cmd.AddCommand(newStreamsApplyCmd(e, &conn), newStreamsStatusCmd(e, &conn))
	return cmd
}

func newStreamsApplyCmd(e *env, conn *natsFlags) *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Create or update the streams and the worker consumer from the config",
		Long: `Create the job, dead-letter, receipt and subscription-event streams and the
worker consumer where they are missing, and update those whose configuration
differs from the config (subjects, replicas, duplicate window, max age, max bytes
and discard policy, message size; ack wait and max ack pending of the consumer). It is idempotent: a second run reports every
resource unchanged. Stored messages are kept.`,
		Example: `  herald streams apply --config herald.yaml
  HERALD_NATS_REPLICAS=3 herald streams apply --server nats://nats:4222 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := conn.connect(cmd, e, "streams apply")
			if err != nil {
				return err
			}
			defer c.close()
			changes, err := topologyOf(c.cfg).Apply(cmd.Context(), c.js)
			if perr := printChanges(e.stdout, changes, jsonOut); perr != nil {
				return perr
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the changes as a JSON array")
	return cmd
}

func printChanges(w io.Writer, changes []producer.Change, jsonOut bool) error {
	if jsonOut {
		if changes == nil {
			changes = []producer.Change{}
		}
		return writeJSON(w, changes)
	}
	t := newTable(w, "KIND", "NAME", "ACTION")
	for _, c := range changes {
		t.row(c.Kind, c.Name, c.Action)
	}
	return t.flush()
}

// streamStatus is one stream in herald streams status --json.
type streamStatus struct {
	Name      string     `json:"name"`
	Exists    bool       `json:"exists"`
	Messages  uint64     `json:"messages"`
	Bytes     uint64     `json:"bytes"`
	FirstSeq  uint64     `json:"first_seq"`
	FirstTime *time.Time `json:"first_time,omitempty"`
	LastSeq   uint64     `json:"last_seq"`
	LastTime  *time.Time `json:"last_time,omitempty"`
	Consumers int        `json:"consumers"`
}

// consumerStatus is the worker consumer in herald streams status --json.
type consumerStatus struct {
	Name        string `json:"name"`
	Stream      string `json:"stream"`
	Exists      bool   `json:"exists"`
	Pending     uint64 `json:"pending"`     // jobs not yet delivered
	AckPending  int    `json:"ack_pending"` // delivered, not yet acknowledged
	Redelivered int    `json:"redelivered"` // delivered more than once, not yet acknowledged
	Waiting     int    `json:"waiting"`     // pull requests waiting: idle worker capacity
	Delivered   uint64 `json:"delivered"`   // last stream sequence delivered
	AckFloor    uint64 `json:"ack_floor"`   // stream sequence below which every job is acknowledged
}

// deadStatus is the dead letters stored since a point in time.
type deadStatus struct {
	Since time.Time `json:"since"`
	dlq.Counts
}

type status struct {
	Streams     []streamStatus `json:"streams"`
	Consumer    consumerStatus `json:"consumer"`
	DeadLetters *deadStatus    `json:"dead_letters,omitempty"`
}

func newStreamsStatusCmd(e *env, conn *natsFlags) *cobra.Command {
	var since string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the streams, the worker consumer and recent dead letters",
		Long: `Show, per stream, its messages, bytes and first and last message time; for the
worker consumer the jobs pending delivery, delivered but not yet acknowledged
(ack pending), redelivered, and the pull requests waiting (idle workers); and the
dead letters stored within --since, by reason. It exits 1 when a stream or the
consumer is missing (run herald streams apply).`,
		Example: `  herald streams status
  herald streams status --since 1h --json | jq .consumer.pending`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			from, err := parseTimeFlag(since, now, -1)
			if err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			c, err := conn.connect(cmd, e, "streams status")
			if err != nil {
				return err
			}
			defer c.close()
			ctx := cmd.Context()
			topo := topologyOf(c.cfg)
			var st status
			var missing []string
			for _, sc := range topo.Streams() {
				ss := streamStatus{Name: sc.Name}
				s, err := c.js.Stream(ctx, sc.Name)
				switch {
				case errors.Is(err, jetstream.ErrStreamNotFound):
					missing = append(missing, "stream "+sc.Name)
				case err != nil:
					return fmt.Errorf("stream %s: %w", sc.Name, err)
				default:
					info := s.CachedInfo().State
					ss.Exists, ss.Messages, ss.Bytes, ss.Consumers = true, info.Msgs, info.Bytes, info.Consumers
					ss.FirstSeq, ss.LastSeq = info.FirstSeq, info.LastSeq
					if info.Msgs > 0 {
						ss.FirstTime, ss.LastTime = &info.FirstTime, &info.LastTime
					}
				}
				st.Streams = append(st.Streams, ss)
			}

			st.Consumer = consumerStatus{Name: topo.Consumer, Stream: topo.SendStream}
			cons, err := c.js.Consumer(ctx, topo.SendStream, topo.Consumer)
			switch {
			case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
				missing = append(missing, "consumer "+topo.Consumer)
			case err != nil:
				return fmt.Errorf("consumer %s: %w", topo.Consumer, err)
			default:
				ci := cons.CachedInfo()
				st.Consumer.Exists = true
				st.Consumer.Pending, st.Consumer.AckPending = ci.NumPending, ci.NumAckPending
				st.Consumer.Redelivered, st.Consumer.Waiting = ci.NumRedelivered, ci.NumWaiting
				st.Consumer.Delivered, st.Consumer.AckFloor = ci.Delivered.Stream, ci.AckFloor.Stream
			}

			if !slices.Contains(missing, "stream "+topo.DeadStream) {
				counts, err := dlq.Stats(ctx, c.js, topo.DeadStream, dlq.Filter{Since: from})
				if err != nil {
					return err
				}
				st.DeadLetters = &deadStatus{Since: from.UTC(), Counts: counts}
			}

			if jsonOut {
				if err := writeJSON(e.stdout, st); err != nil {
					return err
				}
			} else if err := printStatus(e.stdout, st, since); err != nil {
				return err
			}
			if len(missing) > 0 {
				return fmt.Errorf("missing %s: run herald streams apply", strings.Join(missing, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "24h", "count dead letters stored since: a duration ago or an RFC 3339 time")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the status as JSON")
	return cmd
}

func printStatus(w io.Writer, st status, since string) error {
	t := newTable(w, "STREAM", "MESSAGES", "BYTES", "FIRST", "LAST", "CONSUMERS")
	for _, s := range st.Streams {
		if !s.Exists {
			t.row(s.Name, "missing", "-", "-", "-", "-")
			continue
		}
		t.row(s.Name, s.Messages, text.Bytes(s.Bytes), formatTime(s.FirstTime), formatTime(s.LastTime), s.Consumers)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	c := st.Consumer
	t = newTable(w, "CONSUMER", "STREAM", "PENDING", "ACK PENDING", "REDELIVERED", "WAITING")
	if c.Exists {
		t.row(c.Name, c.Stream, c.Pending, c.AckPending, c.Redelivered, c.Waiting)
	} else {
		t.row(c.Name, c.Stream, "missing", "-", "-", "-")
	}
	if err := t.flush(); err != nil {
		return err
	}
	d := st.DeadLetters
	if d == nil {
		return nil
	}
	fmt.Fprintf(w, "\n%d dead letters since %s (%s)\n", d.Total, d.Since.Format(time.RFC3339), since)
	if d.Total == 0 {
		return nil
	}
	return printCountTable(w, "REASON", d.ByReason, d.Total)
}

func formatTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
