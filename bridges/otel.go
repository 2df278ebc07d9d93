package bridges

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/protogate/protogate/config"
)

// tracing exports the bridge's spans to the mapping's OTLP collector: an
// HTTP server span per request and a client span per Dubbo call or NATS
// publish, whose context is what the upstream is sent. Without a
// collector there is no tracer and nothing is made.
type tracing struct {
	settings string
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
}

var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// newTracing starts an exporter to the collector; spans go in batches, so
// a slow or absent collector never holds a request.
func newTracing(t *config.Tracing) (*tracing, error) {
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(t.OTLPEndpoint), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", t.ServiceName+".bridge"))
	p := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(t.SamplePercent/100))),
	)
	return &tracing{settings: tracingKey(t), provider: p, tracer: p.Tracer("github.com/protogate/protogate/bridges")}, nil
}

func tracingKey(t *config.Tracing) string {
	return fmt.Sprintf("%s|%g|%s", t.OTLPEndpoint, t.SamplePercent, t.ServiceName)
}

// shutdown flushes what is left and stops the exporter.
func (tr *tracing) shutdown() {
	if tr == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tr.provider.Shutdown(ctx)
}

// serverSpan starts the request's span from the caller's trace context.
func (tr *tracing) serverSpan(r *http.Request) (*http.Request, trace.Span) {
	ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := tr.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path)))
	return r.WithContext(ctx), span
}

// endServer names the span by its route and closes it with the answer.
func endServer(span trace.Span, info *requestInfo, status int) {
	if info.route != "" {
		span.SetName(info.method + " " + info.route)
		span.SetAttributes(attribute.String("protogate.route", info.route), attribute.String("protogate.upstream", info.upstream))
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, info.errCode)
	}
	span.End()
}

// clientSpan starts the span of the call upstream, when the request is
// traced, and returns the trace context to send with it: the client
// span's, or without tracing the caller's own, passed on unchanged.
func clientSpan(st *state, r *http.Request, name string, attrs ...attribute.KeyValue) (map[string]string, func(error)) {
	parent := trace.SpanFromContext(r.Context())
	tr := st.tracing
	if tr == nil || !parent.SpanContext().IsValid() {
		return traceContext(r.Header), func(error) {}
	}
	ctx, span := tr.tracer.Start(r.Context(), name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	carrier := propagation.MapCarrier{}
	propagator.Inject(ctx, carrier)
	return carrier, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// prepareTracing is the tracing a table asks for: the current one when
// its settings are unchanged, a new one when they changed, nil for none.
func prepareTracing(t *config.Tracing, cur *state) (*tracing, error) {
	if t == nil {
		return nil, nil
	}
	if cur != nil && cur.tracing != nil && cur.tracing.settings == tracingKey(t) {
		return cur.tracing, nil
	}
	return newTracing(t)
}
