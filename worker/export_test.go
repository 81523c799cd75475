package worker

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/retry"
)

// What the settlement table test, an external test so that it can use
// memstore, needs of the package's insides.

type Verdict = verdict

var (
	VerdictDelivered = delivered
	VerdictHeldBack  = heldBack
	VerdictDead      = deadLettered
)

func VerdictDuplicate(sent *SentRecord) Verdict { return verdict{kind: duplicate, sent: sent} }
func VerdictRetry(err error) Verdict            { return verdict{kind: retryLater, err: err} }
func VerdictAbandon() Verdict                   { return verdict{kind: abandon} }

// Outcomes, the outcome label of herald_jobs_total.
const (
	OutcomeDelivered  = outcomeDelivered
	OutcomeDuplicate  = outcomeDuplicate
	OutcomeDeadLetter = outcomeDeadLetter
	OutcomeRetry      = outcomeRetry
	OutcomeHeld       = outcomeHeld
	OutcomeHandedBack = outcomeHandedBack
)

// SettleHarness is a worker reduced to what settling uses.
type SettleHarness struct {
	w *Worker
}

// NewSettleHarness is a worker settling with store, publishing through pub,
// counting on reg.
func NewSettleHarness(store Store, pub publisher, reg prometheus.Registerer, policy retry.Policy, maxAttempts int) *SettleHarness {
	w := &Worker{
		cfg:   Config{Instance: "w1", Receipts: true, MaxAttempts: maxAttempts, Retry: policy},
		store: store, pub: pub, log: zap.NewNop(), m: newMetrics(reg), now: time.Now,
	}
	w.cfg.setDefaults()
	w.health = newHealth(store, w.m, w.log)
	w.out = newOutbox(pub, "NOTIFY_EVENTS", &ensurer{log: w.log}, 10, 10, w.m, w.log)
	go w.out.answers()
	return &SettleHarness{w: w}
}

// Settle settles v for msg carrying j (zero when it did not decode).
func (h *SettleHarness) Settle(msg jetstream.Msg, j job.Job, decoded, claimed bool, attempts int, v Verdict) {
	meta, _ := msg.Metadata()
	f := &inflight{msg: msg, meta: meta, j: j, platform: job.PlatformOf(msg.Subject()), owner: h.Owner(msg), base: h.w.log,
		decoded: decoded, claimed: claimed, attempts: attempts}
	h.w.settle(context.Background(), f, v)
}

// Owner is the lease owner of msg's delivery.
func (h *SettleHarness) Owner(jetstream.Msg) string { return "w1:9:1" }

// Close settles the receipts still due, giving up those not stored
// within a moment.
func (h *SettleHarness) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	h.w.out.close(ctx)
}

// Admit runs the admission stage for j.
func (h *SettleHarness) Admit(msg jetstream.Msg, j job.Job) (v Verdict, done bool, attempts int) {
	meta, _ := msg.Metadata()
	f := &inflight{msg: msg, meta: meta, j: j, owner: "w1:9:2", base: h.w.log, decoded: true}
	v, done = h.w.admit(context.Background(), f)
	return v, done, f.attempts
}

// Jobs and ReceiptsGivenUp are the worker's metrics.
func (h *SettleHarness) Jobs() *prometheus.CounterVec        { return h.w.m.jobs }
func (h *SettleHarness) ReceiptsGivenUp() prometheus.Counter { return h.w.m.receiptsGivenUp }

// Kind, Reason and Code describe a verdict.
func (v Verdict) Kind() string   { return v.kind.String() }
func (v Verdict) Reason() string { return v.reason }
func (v Verdict) Code() string   { return v.detail.Code }
