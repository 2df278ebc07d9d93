package translator

import (
	"slices"
	"strings"
	"testing"

	accesslog "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	trace "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	stream "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"

	"github.com/protogate/protogate/config"
)

// observabilityMapping has an http listener "public" with the given
// access_log block, a tcp listener in a group of its own, and the given
// tracing block.
func observabilityMapping(accessLog, tracing string) string {
	return `
listeners:
  - name: public
    address: 127.0.0.1:10000
    access_log: ` + accessLog + `
    routes:
      - name: web
        match: { prefix: / }
        http: { upstream: web }
  - name: raw
    address: 127.0.0.1:10001
    protocol: tcp
    upstream: db
upstreams:
  http: [ { name: web, endpoints: [ "127.0.0.1:9000" ] } ]
  tcp: [ { name: db, endpoints: [ "127.0.0.1:5432" ] } ]
xds:
  groups:
    - { name: edge, listeners: [ public ] }
    - { name: data, listeners: [ raw ] }
tracing: ` + tracing + `
`
}

// publicManager translates a mapping and returns the edge group and the
// connection manager of its http listener.
func publicManager(t *testing.T, body string) (*Group, *hcm.HttpConnectionManager) {
	t.Helper()
	res, err := Translate(loadString(t, body))
	if err != nil {
		t.Fatalf("translate: %v", err)
	}
	g := res.Group("edge")
	m := &hcm.HttpConnectionManager{}
	if err := g.Listeners[0].FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(m); err != nil {
		t.Fatal(err)
	}
	return g, m
}

// TestAccessLog: the listener's access_log block becomes Envoy's stdout
// JSON log, sampled as the bridges sample, or no log at all.
func TestAccessLog(t *testing.T) {
	tests := []struct {
		name      string
		accessLog string
		wantLog   bool
		wantShare uint32 // per million; 0: every request, no filter
	}{
		{name: "off by default", accessLog: `{}`},
		{name: "off", accessLog: `{ enabled: false, sample_percent: 10 }`},
		{name: "every request", accessLog: `{ enabled: true }`, wantLog: true},
		{name: "10 percent and every 5xx", accessLog: `{ enabled: true, sample_percent: 10 }`, wantLog: true, wantShare: 100000},
		{name: "a fraction of a percent", accessLog: `{ enabled: true, sample_percent: 0.5 }`, wantLog: true, wantShare: 5000},
		{name: "5xx only", accessLog: `{ enabled: true, sample_percent: 0 }`, wantLog: true, wantShare: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, m := publicManager(t, observabilityMapping(tt.accessLog, `{}`))
			if !tt.wantLog {
				if len(m.AccessLog) != 0 {
					t.Fatalf("access log configured while off: %v", m.AccessLog)
				}
				return
			}
			if len(m.AccessLog) != 1 || m.AccessLog[0].Name != "envoy.access_loggers.stdout" {
				t.Fatalf("want one stdout access log, got %v", m.AccessLog)
			}
			checkLogFormat(t, m.AccessLog[0])
			checkSampling(t, m.AccessLog[0].Filter, tt.accessLog, tt.wantShare)
		})
	}
}

func checkLogFormat(t *testing.T, al *accesslog.AccessLog) {
	t.Helper()
	out := &stream.StdoutAccessLog{}
	if err := al.GetTypedConfig().UnmarshalTo(out); err != nil {
		t.Fatal(err)
	}
	fields := out.GetLogFormat().GetJsonFormat().GetFields()
	want := map[string]string{
		"start_time": "%START_TIME%", "method": "%REQ(:METHOD)%", "status": "%RESPONSE_CODE%",
		"response_flags": "%RESPONSE_FLAGS%", "duration_ms": "%DURATION%", "bytes_in": "%BYTES_RECEIVED%",
		"bytes_out": "%BYTES_SENT%", "upstream_cluster": "%UPSTREAM_CLUSTER%", "upstream_host": "%UPSTREAM_HOST%",
		"route": "%ROUTE_NAME%", "request_id": "%REQ(X-REQUEST-ID)%", "traceparent": "%REQ(TRACEPARENT)%",
		"listener": "public",
	}
	for k, v := range want {
		if got := fields[k].GetStringValue(); got != v {
			t.Errorf("log field %s = %q, want %q", k, got, v)
		}
	}
	if !strings.Contains(fields["path"].GetStringValue(), "PATH") {
		t.Errorf("log field path = %q, want the request path", fields["path"].GetStringValue())
	}
}

// checkSampling: at 100 percent there is no filter; below it, a request is
// logged when its status is 5xx or it falls in the share.
func checkSampling(t *testing.T, f *accesslog.AccessLogFilter, block string, wantShare uint32) {
	t.Helper()
	if !strings.Contains(block, "sample_percent") {
		if f != nil {
			t.Fatalf("every request is logged, yet a filter is set: %v", f)
		}
		return
	}
	or := f.GetOrFilter().GetFilters()
	if len(or) != 2 {
		t.Fatalf("want an or_filter of two, got %v", f)
	}
	cmp := or[0].GetStatusCodeFilter().GetComparison()
	if cmp.GetOp() != accesslog.ComparisonFilter_GE || cmp.GetValue().GetDefaultValue() != 500 {
		t.Errorf("first filter is %v, want status >= 500", or[0])
	}
	rt := or[1].GetRuntimeFilter()
	if rt == nil || rt.GetRuntimeKey() == "" {
		t.Fatalf("second filter is %v, want a runtime filter with a key", or[1])
	}
	p := rt.GetPercentSampled()
	if p.GetNumerator() != wantShare || p.GetDenominator().String() != "MILLION" {
		t.Errorf("sampled %d per %s, want %d per MILLION", p.GetNumerator(), p.GetDenominator(), wantShare)
	}
}

// TestTracing: an OTLP endpoint gives every HTTP listener OpenTelemetry
// tracing to a collector cluster its group holds, speaking HTTP/2; no
// endpoint, no tracing and no cluster; a group with no HTTP listener never
// gets the collector.
func TestTracing(t *testing.T) {
	tests := []struct {
		name, tracing string
		wantType      cluster.Cluster_DiscoveryType // 0 with wantTrace false
		wantTrace     bool
	}{
		{name: "none", tracing: `{}`},
		{name: "sample percent without endpoint", tracing: `{ sample_percent: 5 }`},
		{name: "collector by name", tracing: `{ otlp_endpoint: "otel.observability:4317", sample_percent: 25, service_name: edge }`,
			wantTrace: true, wantType: cluster.Cluster_STRICT_DNS},
		{name: "collector by address", tracing: `{ otlp_endpoint: "127.0.0.1:4317" }`,
			wantTrace: true, wantType: cluster.Cluster_EDS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := observabilityMapping(`{}`, tt.tracing)
			g, m := publicManager(t, body)
			c := clusterNamed(g, CollectorCluster)
			if !tt.wantTrace {
				if m.Tracing != nil || c != nil {
					t.Fatalf("tracing %v, collector cluster %v, with no endpoint", m.Tracing, c)
				}
				return
			}
			cfg := loadString(t, body)
			checkTracer(t, m.Tracing, &cfg.Tracing)
			checkCollector(t, g, c, tt.wantType)
			res, _ := Translate(cfg)
			if clusterNamed(res.Group("data"), CollectorCluster) != nil {
				t.Error("a group with no HTTP listener got the collector cluster")
			}
		})
	}
}

func checkTracer(t *testing.T, tr *hcm.HttpConnectionManager_Tracing, want *config.Tracing) {
	t.Helper()
	if tr.GetProvider().GetName() != "envoy.tracers.opentelemetry" {
		t.Fatalf("tracing provider %v, want OpenTelemetry", tr.GetProvider())
	}
	if got := tr.GetRandomSampling().GetValue(); got != want.SamplePercent {
		t.Errorf("random sampling %v, want %v", got, want.SamplePercent)
	}
	otel := &trace.OpenTelemetryConfig{}
	if err := tr.GetProvider().GetTypedConfig().UnmarshalTo(otel); err != nil {
		t.Fatal(err)
	}
	if got := otel.GetGrpcService().GetEnvoyGrpc().GetClusterName(); got != CollectorCluster {
		t.Errorf("spans go to cluster %q, want %q", got, CollectorCluster)
	}
	if otel.GetServiceName() != want.ServiceName {
		t.Errorf("service name %q, want %q", otel.GetServiceName(), want.ServiceName)
	}
}

// checkCollector: the cluster reaches the endpoint over HTTP/2, and its
// endpoints are inline or in the group's assignments.
func checkCollector(t *testing.T, g *Group, c *cluster.Cluster, wantType cluster.Cluster_DiscoveryType) {
	t.Helper()
	if c == nil {
		t.Fatal("the group lacks the collector cluster")
	}
	if c.GetType() != wantType {
		t.Errorf("collector cluster is %v, want %v", c.GetType(), wantType)
	}
	opts := &upstreamhttp.HttpProtocolOptions{}
	if err := c.TypedExtensionProtocolOptions[httpOptionsKey].UnmarshalTo(opts); err != nil {
		t.Fatal(err)
	}
	if opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		t.Error("the collector cluster does not speak HTTP/2, which gRPC needs")
	}
	cla := c.GetLoadAssignment()
	if wantType == cluster.Cluster_EDS {
		i := slices.IndexFunc(g.Endpoints, func(e *endpoint.ClusterLoadAssignment) bool { return e.ClusterName == CollectorCluster })
		if i < 0 {
			t.Fatal("the EDS collector cluster has no assignment in the group")
		}
		cla = g.Endpoints[i]
	}
	if n := len(cla.GetEndpoints()[0].GetLbEndpoints()); n != 1 {
		t.Errorf("collector cluster has %d endpoints, want 1", n)
	}
	if err := g.check(); err != nil {
		t.Errorf("group check: %v", err)
	}
}

func clusterNamed(g *Group, name string) *cluster.Cluster {
	for _, c := range g.Clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}
