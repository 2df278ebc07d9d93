package translator

import (
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	trace "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/protogate/protogate/config"
)

const (
	openTelemetryTracerName = "envoy.tracers.opentelemetry"
	// The mapping has no setting for these: a collector is near, and a
	// stuck one must not hold export calls open.
	collectorConnectTimeout = config.Duration(time.Second)
	collectorExportTimeout  = 5 * time.Second
)

// addCollectorCluster adds the OTLP/gRPC collector's cluster when tracing
// is configured; the HTTP listeners that trace need it.
func (b *build) addCollectorCluster() {
	t := &b.cfg.Tracing
	if t.OTLPEndpoint == "" {
		return
	}
	// gRPC needs HTTP/2 to the collector.
	b.addCluster(clusterSpec{
		name: CollectorCluster, path: "tracing.otlp_endpoint", endpoints: []string{t.OTLPEndpoint},
		connectTimeout: collectorConnectTimeout, http: true, http2: true,
	})
}

// tracingConfig is the connection managers' tracing to the mapping's
// collector, or nil when none is configured; built once, so a problem is
// reported once however many listeners share it.
func (b *build) tracingConfig() *hcm.HttpConnectionManager_Tracing {
	t := &b.cfg.Tracing
	if t.OTLPEndpoint == "" {
		return nil
	}
	otel := &trace.OpenTelemetryConfig{
		GrpcService: &core.GrpcService{
			TargetSpecifier: &core.GrpcService_EnvoyGrpc_{EnvoyGrpc: &core.GrpcService_EnvoyGrpc{
				ClusterName: CollectorCluster,
				// The default, the cluster name, holds a "/": no host name.
				Authority: t.OTLPEndpoint,
			}},
			Timeout: stdDur(collectorExportTimeout),
		},
		ServiceName: t.ServiceName,
	}
	a := b.pack(otel, "tracing", openTelemetryTracerName)
	if a == nil {
		return nil
	}
	return &hcm.HttpConnectionManager_Tracing{
		RandomSampling: &typev3.Percent{Value: t.SamplePercent},
		Provider: &trace.Tracing_Http{
			Name:       openTelemetryTracerName,
			ConfigType: &trace.Tracing_Http_TypedConfig{TypedConfig: a},
		},
	}
}

// tracing gives an HTTP listener the shared tracing config and the
// collector's cluster. Envoy then starts or continues the W3C trace and
// passes traceparent on to the bridges.
func (b *build) tracing(l *config.Listener) *hcm.HttpConnectionManager_Tracing {
	if b.tracer == nil {
		return nil
	}
	b.need(l, CollectorCluster)
	return b.tracer
}
