package worker

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/producer/job"
)

// Outcomes of a handled message, the outcome label of herald_jobs_total.
const (
	outcomeDelivered  = "delivered"
	outcomeDuplicate  = "duplicate"
	outcomeDeadLetter = "dead_letter"
	outcomeRetry      = "retry"
	outcomeHeld       = "held"
	outcomeHandedBack = "handed_back"
)

type metrics struct {
	jobs        *prometheus.CounterVec   // platform, template, outcome
	jobsSeen    sync.Map                 // jobsLabels -> prometheus.Counter, bounded as the labels are
	sendSeconds *prometheus.HistogramVec // platform, result
	deadLetters *prometheus.CounterVec   // platform, reason
	rateWaits   *prometheus.CounterVec   // platform
	rateWaitSec prometheus.Histogram
	inFlight    prometheus.Gauge
	appPaused   *prometheus.GaugeVec // platform, app
	storeUp     prometheus.Gauge

	receiptsPending prometheus.Gauge
	receiptsGivenUp prometheus.Counter

	subscriptionSkips  *prometheus.CounterVec // platform, mode, state
	subscriptionEvents *prometheus.CounterVec // platform, event, result
	statusEvents       *prometheus.CounterVec // platform, status, matched

	streamBytes    *prometheus.GaugeVec // stream
	streamMaxBytes *prometheus.GaugeVec // stream
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_jobs_total",
			Help: "Jobs handled, by platform, template (one the config names, else other; none for jobs that did not decode) and outcome (delivered, duplicate, dead_letter, retry, held, handed_back).",
		}, []string{"platform", "template", "outcome"}),
		sendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herald_send_duration_seconds",
			Help:    "Platform send call latency, by platform and result (ok, error).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"platform", "result"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_dead_letters_total",
			Help: "Jobs dead-lettered, by platform and reason.",
		}, []string{"platform", "reason"}),
		rateWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_rate_limit_waits_total",
			Help: "Jobs that waited for a rate limit (held in place or handed back), by platform.",
		}, []string{"platform"}),
		rateWaitSec: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_rate_limit_wait_seconds",
			Help:    "Time jobs waited in place for a rate-limit slot.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_in_flight",
			Help: "Jobs being handled by this replica.",
		}),
		appPaused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_app_paused",
			Help: "1 while a (platform, app) is paused, throttled by quota or its breaker is open.",
		}, []string{"platform", "app"}),
		storeUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_store_up",
			Help: "1 while the shared store (Redis) answers.",
		}),
		receiptsPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_receipts_pending",
			Help: "Delivery receipts not stored yet (the receipt stream is missing, full or unreachable), kept and retried.",
		}),
		receiptsGivenUp: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_receipts_given_up_total",
			Help: "Delivery receipts never stored: more were pending than worker.max_pending_receipts, or the replica stopped with them pending.",
		}),
		streamBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_stream_bytes",
			Help: "Bytes stored in each of the worker's streams (jobs, dead letters, receipts, subscription events), as of the last look (every 30s).",
		}, []string{"stream"}),
		streamMaxBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_stream_max_bytes",
			Help: "The max_bytes of each of the worker's streams; 0 for no limit (or a missing stream).",
		}, []string{"stream"}),
	}
	m.subscriptionSkips = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_subscription_skips_total",
		Help: "Jobs the subscription ledger skips (mode enforce) or would skip (mode observe), by platform and state (rejected, exhausted, no_grants).",
	}, []string{"platform", "mode", "state"})
	m.subscriptionEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_subscription_events_total",
		Help: "Subscription events the ledger took, by platform, event (popup, change, sent) and result (applied, duplicate, malformed, error).",
	}, []string{"platform", "event", "result"})
	m.statusEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_status_events_total",
		Help: "Delivery status events published, by platform, status (delivered, failed) and whether a delivered job matched the message id.",
	}, []string{"platform", "status", "matched"})
	reg.MustRegister(m.jobs, m.sendSeconds, m.deadLetters, m.rateWaits, m.rateWaitSec,
		m.inFlight, m.appPaused, m.storeUp, m.receiptsPending, m.receiptsGivenUp,
		m.subscriptionSkips, m.subscriptionEvents, m.statusEvents, m.streamBytes, m.streamMaxBytes)
	for _, p := range []string{job.WeChat, job.Alipay} {
		m.rateWaits.WithLabelValues(p)
		for _, r := range job.Reasons {
			m.deadLetters.WithLabelValues(p, r)
		}
	}
	return m
}

// jobsLabels are the labels of one herald_jobs_total series.
type jobsLabels struct{ platform, template, outcome string }

// job returns the herald_jobs_total series for the labels. Every job
// counts once, and looking a series up validates and hashes its labels:
// the series already seen are kept. The labels are bounded (configured
// templates only), so the map is too.
func (m *metrics) job(platform, template, outcome string) prometheus.Counter {
	k := jobsLabels{platform, template, outcome}
	if c, ok := m.jobsSeen.Load(k); ok {
		return c.(prometheus.Counter)
	}
	c := m.jobs.WithLabelValues(platform, template, outcome)
	m.jobsSeen.Store(k, c)
	return c
}

// Template label values of jobs whose template the config does not name,
// and of messages that did not decode as jobs.
const (
	templateOther = "other"
	templateNone  = "none"
)

// templateLabel is f's template as a label value: only a template the
// config names, never a producer's string.
func (w *Worker) templateLabel(f *inflight) string {
	switch {
	case !f.decoded:
		return templateNone
	case w.cfg.KnownTemplate != nil && w.cfg.KnownTemplate(f.j.Platform, f.j.App, f.j.TemplateID):
		return f.j.TemplateID
	default:
		return templateOther
	}
}
