package receiver

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/producer/job"
)

// Results of a stored event, the result label of
// herald_receiver_events_total.
const (
	resultStored    = "stored"
	resultDuplicate = "duplicate"
)

// answerCodes are the answers counted per app; 404 is counted under the
// app "" only.
var answerCodes = []int{200, 400, 401, 405, 503}

type metrics struct {
	requests *prometheus.CounterVec   // platform, app, code
	refused  *prometheus.CounterVec   // platform, app, reason
	events   *prometheus.CounterVec   // platform, app, event, result
	ignored  *prometheus.CounterVec   // platform, app, kind
	seconds  *prometheus.HistogramVec // platform
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_receiver_requests_total",
			Help: "Push and URL-check requests answered, by platform, app (empty for an unknown app) and HTTP code.",
		}, []string{"platform", "app", "code"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_receiver_refused_total",
			Help: "Requests refused with 400 or 401, by platform, app and reason.",
		}, []string{"platform", "app", "reason"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_receiver_events_total",
			Help: "Subscription events published, by platform, app, event and result (stored, duplicate: already stored from an earlier try).",
		}, []string{"platform", "app", "event", "result"}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_receiver_ignored_total",
			Help: "Pushes answered success without storing anything, by platform, app and kind (message: another message type; event: another event).",
		}, []string{"platform", "app", "kind"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herald_receiver_request_duration_seconds",
			Help:    "Time from a request's arrival to its answer, by platform.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"platform"}),
	}
	reg.MustRegister(m.requests, m.refused, m.events, m.ignored, m.seconds)
	return m
}

// init pre-creates the series of platform p, so dashboards see zeros.
func (m *metrics) init(p Platform, reasons []string) {
	name := p.Name()
	m.seconds.WithLabelValues(name)
	m.requests.WithLabelValues(name, "", "404")
	for _, app := range p.Apps() {
		for _, c := range answerCodes {
			m.requests.WithLabelValues(name, app, strconv.Itoa(c))
		}
		for _, r := range reasons {
			m.refused.WithLabelValues(name, app, r)
		}
		for _, e := range job.SubscriptionEvents {
			m.events.WithLabelValues(name, app, e, resultStored)
			m.events.WithLabelValues(name, app, e, resultDuplicate)
		}
		for _, k := range []string{IgnoredMessage, IgnoredEvent} {
			m.ignored.WithLabelValues(name, app, k)
		}
	}
}
