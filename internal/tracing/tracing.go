// Package tracing sets up OpenTelemetry traces for herald's processes and
// carries W3C trace context in NATS headers. Traces are off unless the
// standard OTEL_* environment asks for them: OTEL_TRACES_EXPORTER=otlp, or
// an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), and not OTEL_SDK_DISABLED=true. The
// exporter is OTLP over HTTP; the SDK reads the rest of OTEL_* itself
// (endpoint, headers, OTEL_TRACES_SAMPLER, OTEL_SERVICE_NAME, ...).
package tracing

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/internal/buildinfo"
)

// Enabled reports whether environ asks for traces.
func Enabled(lookup func(string) string) bool {
	if strings.EqualFold(lookup("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch strings.ToLower(lookup("OTEL_TRACES_EXPORTER")) {
	case "otlp":
		return true
	case "none":
		return false
	}
	return lookup("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || lookup("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup returns a tracer for service exporting over OTLP/HTTP, and the
// function that flushes and stops it; a nil tracer when traces are off.
func Setup(ctx context.Context, lookup func(string) string, service string) (trace.Tracer, func(context.Context) error, error) {
	none := func(context.Context) error { return nil }
	if !Enabled(lookup) {
		return nil, none, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, none, fmt.Errorf("otlp trace exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(service), semconv.ServiceVersion(buildinfo.Get().Version)))
	if err != nil {
		return nil, none, fmt.Errorf("trace resource: %w", err)
	}
	// The environment's OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
	if env, err := resource.New(ctx, resource.WithFromEnv()); err == nil {
		if merged, err := resource.Merge(res, env); err == nil {
			res = merged
		}
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp.Tracer("github.com/heraldhq/herald"), tp.Shutdown, nil
}

// Propagator is W3C trace context (traceparent, tracestate).
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Header carries trace context in NATS message headers, whose keys are
// kept as written (traceparent, lowercase, as W3C spells it).
type Header nats.Header

var _ propagation.TextMapCarrier = Header{}

// Get returns the first value of key.
func (h Header) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set sets key to value.
func (h Header) Set(key, value string) { h[key] = []string{value} }

// Keys lists the keys.
func (h Header) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// Extract returns ctx with the trace context of a message's headers.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return Propagator.Extract(ctx, Header(h))
}

// Inject writes ctx's trace context into a message's headers.
func Inject(ctx context.Context, h nats.Header) { Propagator.Inject(ctx, Header(h)) }

// TraceParent is ctx's trace context as a traceparent value, "" when it
// has none.
func TraceParent(ctx context.Context) string {
	h := Header{}
	Inject(ctx, nats.Header(h))
	return h.Get("traceparent")
}

// FromTraceParent returns ctx carrying the trace context of a
// traceparent value.
func FromTraceParent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return Propagator.Extract(ctx, Header{"traceparent": {tp}})
}
