package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/producer/job"
)

// overviewView is the live overview.
type overviewView struct {
	Chart      chart
	Delivered  int
	Dead       int
	Method     string // how the minutes were counted
	Consumer   consumerState
	Streams    []streamState
	ByReason   []countLink
	InDead     uint64
	Replicas   []replicaState
	Operations []opView
	Problems   []string
	At         time.Time
	Took       time.Duration
}

func (overviewView) refresh() int { return 15 }

type consumerState struct {
	Name, Stream                  string
	Exists                        bool
	Pending                       uint64
	AckPending, Redelivered, Wait int
}

type streamState struct {
	Name                string
	Exists              bool
	Messages, Bytes     uint64
	FirstTime, LastTime time.Time
	Consumers           int
}

type replicaState struct {
	URL, State, Answer string
	Took               time.Duration
}

// Bounds of the overview.
const (
	outcomeMinutes = 60
	// maxMinuteScan is how many messages of the last hour the overview
	// reads to count them by minute; above it, it asks the server for the
	// count at every minute instead (one question per minute).
	maxMinuteScan  = 50_000
	replicaTimeout = 2 * time.Second
	maxReplicaBody = 512
)

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := r.Context()
	now := time.Now().UTC()
	from := now.Truncate(time.Minute).Add(-(outcomeMinutes - 1) * time.Minute)
	starts := make([]time.Time, outcomeMinutes)
	for i := range starts {
		starts[i] = from.Add(time.Duration(i) * time.Minute)
	}
	v := overviewView{At: now, Operations: c.ops.recent(5)}
	var mu sync.Mutex
	problem := func(err error) {
		mu.Lock()
		v.Problems = append(v.Problems, err.Error())
		mu.Unlock()
	}
	var delivered, dead []int
	var methods [2]string
	var wg sync.WaitGroup
	if c.cfg.EventsStream != "" {
		wg.Go(func() {
			var err error
			delivered, methods[0], err = c.perMinute(ctx, c.cfg.EventsStream, job.SentRoot+".>", starts)
			if err != nil {
				problem(fmt.Errorf("receipts: %w", err))
			}
		})
	}
	wg.Go(func() {
		var err error
		dead, methods[1], err = c.perMinute(ctx, c.cfg.DeadStream, job.DeadRoot+".>", starts)
		if err != nil {
			problem(fmt.Errorf("dead letters: %w", err))
		}
	})
	wg.Go(func() {
		if err := c.streamsAndConsumer(ctx, &v); err != nil {
			problem(err)
		}
	})
	wg.Go(func() {
		counts, err := subjectCounts(ctx, c.js, c.cfg.DeadStream)
		if err != nil {
			problem(fmt.Errorf("dead letters by reason: %w", err))
			return
		}
		byReason := map[string]int{}
		for subject, n := range counts {
			rest, _ := strings.CutPrefix(subject, job.DeadRoot+".")
			_, reason, _ := strings.Cut(rest, ".")
			byReason[reason] += int(n)
			v.InDead += n
		}
		v.ByReason = countLinks(filterForm{}, "reason", byReason, int(v.InDead))
	})
	wg.Go(func() { v.Replicas = c.replicas(ctx) })
	wg.Wait()

	list := []series{}
	if delivered != nil {
		list = append(list, series{Name: "delivered", Color: colorDelivered, Values: delivered})
		v.Delivered = sum(delivered)
	}
	if dead != nil {
		list = append(list, series{Name: "dead-lettered", Color: colorDead, Values: dead})
		v.Dead = sum(dead)
	}
	v.Chart = stackedChart("Jobs by outcome per minute, last hour", starts, time.Minute, list)
	v.Method = strings.Trim(strings.Join(methods[:], "; "), "; ")
	v.Took = time.Since(start).Round(time.Millisecond)
	c.render(w, r, http.StatusOK, "overview", "Overview", v)
}

func sum(v []int) int {
	n := 0
	for _, x := range v {
		n += x
	}
	return n
}

// perMinute counts the messages on subject in stream stored in each
// minute from starts[0] on. When the hour holds few enough it reads their
// headers; otherwise it asks the server for the pending count at every
// minute, which costs one question per minute however many there are.
func (c *Console) perMinute(ctx context.Context, stream, subject string, starts []time.Time) ([]int, string, error) {
	out := make([]int, len(starts))
	s, err := c.js.Stream(ctx, stream)
	if err != nil {
		return nil, "", fmt.Errorf("stream %s: %w", stream, err)
	}
	subjects := []string{subject}
	first, err := probe(ctx, s, subjects, 0, starts[0])
	if err != nil {
		return nil, "", err
	}
	if first.Pending <= maxMinuteScan {
		_, err := scanHeaders(ctx, c.js, stream, subjects, starts[0], maxMinuteScan+1000,
			func(_ uint64, _ string, t time.Time, _ nats.Header) bool {
				if i := bucketOf(starts, time.Minute, t); i >= 0 {
					out[i]++
				}
				return true
			})
		return out, stream + ": read " + formatInt(first.Pending) + " messages' headers", err
	}
	pend := make([]uint64, len(starts)+1)
	pend[0] = first.Pending
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 4)
	for i := 1; i < len(starts); i++ {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			pos, err := probe(ctx, s, subjects, 0, starts[i])
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			pend[i] = pos.Pending
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, "", firstErr
	}
	for i := range starts {
		out[i] = int(pend[i] - min(pend[i], pend[i+1]))
	}
	return out, stream + ": counted by the server at each minute", nil
}

func (c *Console) streamsAndConsumer(ctx context.Context, v *overviewView) error {
	names := []string{c.cfg.SendStream, c.cfg.DeadStream}
	if c.cfg.EventsStream != "" {
		names = append(names, c.cfg.EventsStream)
	}
	names = append(names, c.cfg.OtherStreams...)
	var errs []error
	for _, name := range names {
		st := streamState{Name: name}
		s, err := c.js.Stream(ctx, name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
		case err != nil:
			errs = append(errs, fmt.Errorf("stream %s: %w", name, err))
		default:
			info := s.CachedInfo().State
			st.Exists, st.Messages, st.Bytes, st.Consumers = true, info.Msgs, info.Bytes, info.Consumers
			if info.Msgs > 0 {
				st.FirstTime, st.LastTime = info.FirstTime, info.LastTime
			}
		}
		v.Streams = append(v.Streams, st)
	}
	v.Consumer = consumerState{Name: c.cfg.Consumer, Stream: c.cfg.SendStream}
	if c.cfg.Consumer == "" {
		return errors.Join(errs...)
	}
	cons, err := c.js.Consumer(ctx, c.cfg.SendStream, c.cfg.Consumer)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
	case err != nil:
		errs = append(errs, fmt.Errorf("consumer %s: %w", c.cfg.Consumer, err))
	default:
		ci := cons.CachedInfo()
		v.Consumer.Exists = true
		v.Consumer.Pending, v.Consumer.AckPending = ci.NumPending, ci.NumAckPending
		v.Consumer.Redelivered, v.Consumer.Wait = ci.NumRedelivered, ci.NumWaiting
	}
	return errors.Join(errs...)
}

// replicas asks each configured replica's /readyz, all at once, each
// within replicaTimeout.
func (c *Console) replicas(ctx context.Context) []replicaState {
	out := make([]replicaState, len(c.cfg.Replicas))
	var wg sync.WaitGroup
	for i, base := range c.cfg.Replicas {
		wg.Go(func() { out[i] = c.readiness(ctx, base) })
	}
	wg.Wait()
	return out
}

func (c *Console) readiness(ctx context.Context, base string) replicaState {
	st := replicaState{URL: base}
	ctx, cancel := context.WithTimeout(ctx, replicaTimeout)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/readyz", nil)
	if err != nil {
		st.State, st.Answer = "unreachable", err.Error()
		return st
	}
	resp, err := c.client.Do(req)
	st.Took = time.Since(start).Round(time.Millisecond)
	if err != nil {
		st.State, st.Answer = "unreachable", err.Error()
		return st
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxReplicaBody))
	st.Answer = strings.TrimSpace(string(body))
	if resp.StatusCode == http.StatusOK {
		st.State = "ready"
	} else {
		st.State = "not ready"
		if st.Answer == "" {
			st.Answer = resp.Status
		}
	}
	return st
}
