package bridges

import (
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/internal/promreg"
)

// latencyBuckets suit a bridge whose own work is tens of microseconds and
// whose upstreams answer in anything from a fraction of a millisecond to
// the route's timeout.
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// metrics are the bridge's own, on its /metrics. Every label value comes
// from the route table or from the code (route and upstream names, error
// codes, status codes), never from the request: a request for an unknown
// route counts under route "".
type metrics struct {
	registry *promreg.Registry
	handler  http.Handler // /metrics, made once
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	upstream *prometheus.HistogramVec
	refused  *prometheus.CounterVec
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		registry: promreg.New(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: promreg.RequestsTotal,
			Help: "Requests answered, by route, upstream, protocol, HTTP status code and error code (\"\" on success).",
		}, []string{"route", "upstream", "protocol", "code", "error"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "protogate_bridge_request_duration_seconds", Buckets: latencyBuckets,
			Help: "Time from the request's arrival to the end of its answer, by route and protocol.",
		}, []string{"route", "protocol"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "protogate_bridge_requests_in_flight", Help: "Requests being served.",
		}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "protogate_bridge_upstream_duration_seconds", Buckets: latencyBuckets,
			Help: "Time upstream, by upstream, protocol and operation: call (Dubbo), publish (NATS core), jetstream_publish (until the stream's ack), request (NATS request-reply), proxy (HTTP).",
		}, []string{"upstream", "protocol", "operation"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "protogate_bridge_refused_total",
			Help: "Requests and connections refused before any route ran, by reason: overloaded (max_in_flight), connections (max_connections).",
		}, []string{"reason"}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.inFlight, m.upstream, m.refused, upstreamCollector{s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
	return m
}

// observeUpstream records the time an upstream operation took.
func (m *metrics) observeUpstream(upstream, protocol, operation string, since time.Time) {
	m.upstream.WithLabelValues(upstream, protocol, operation).Observe(time.Since(since).Seconds())
}

// upstreamCollector reports the state of the upstreams as the table
// serving now has them, at every scrape.
type upstreamCollector struct{ s *Server }

var (
	descUsable = prometheus.NewDesc("protogate_bridge_upstream_usable",
		"1 if the upstream can take calls now (NATS: connected; Dubbo: a provider can be reached), by upstream and protocol.",
		[]string{"upstream", "protocol"}, nil)
	descProviders = prometheus.NewDesc("protogate_bridge_dubbo_providers",
		"Providers of a Dubbo upstream, by state: known (in the route table), healthy (reachable and not ejected).",
		[]string{"upstream", "state"}, nil)
)

func (c upstreamCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descUsable
	ch <- descProviders
}

func (c upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	for _, u := range c.s.Upstreams() {
		v := 0.0
		if u.Usable {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descUsable, prometheus.GaugeValue, v, u.Name, u.Protocol)
		if u.Protocol == "dubbo" {
			ch <- prometheus.MustNewConstMetric(descProviders, prometheus.GaugeValue, float64(u.Known), u.Name, "known")
			ch <- prometheus.MustNewConstMetric(descProviders, prometheus.GaugeValue, float64(u.Healthy), u.Name, "healthy")
		}
	}
}

// countRequest records one answered request: through the route's cached
// children when a route is known, so a request hashes no labels.
func (m *metrics) countRequest(info *requestInfo, status int, took time.Duration) {
	if info.rt == nil {
		m.requests.WithLabelValues(info.route, info.upstream, info.protocol, strconv.Itoa(status), info.errCode).Inc()
		m.duration.WithLabelValues(info.route, info.protocol).Observe(took.Seconds())
		return
	}
	rm := info.rt.metricsOf(m)
	rm.answer(m, info, status).Inc()
	rm.duration.Observe(took.Seconds())
}

// routeMetrics are one route's metric children, looked up on its first
// request (a series appears when it is first counted, as with
// WithLabelValues) and kept with the route, which a reload replaces.
type routeMetrics struct {
	duration prometheus.Observer
	// upstream is the NATS route's upstream operation, made on the first
	// publish, so a route whose requests all fail before sending has no
	// series there, as before the cache.
	upstreamOnce sync.Once
	upstream     prometheus.Observer
	// answers are the request counters by status and error code,
	// copied on write: a new pair is rare, a lookup is every request.
	answers atomic.Pointer[map[answerKey]prometheus.Counter]
	mu      sync.Mutex
}

type answerKey struct {
	status int
	code   string
}

// metricsOf is the route's cached metric children, made on first use.
func (rt *route) metricsOf(m *metrics) *routeMetrics {
	if rm := rt.metrics.Load(); rm != nil {
		return rm
	}
	rm := &routeMetrics{duration: m.duration.WithLabelValues(rt.row.Name, rt.protocol)}
	if !rt.metrics.CompareAndSwap(nil, rm) {
		return rt.metrics.Load()
	}
	return rm
}

// answer is the request counter of a status and error code.
func (rm *routeMetrics) answer(m *metrics, info *requestInfo, status int) prometheus.Counter {
	key := answerKey{status, info.errCode}
	if cur := rm.answers.Load(); cur != nil {
		if c, ok := (*cur)[key]; ok {
			return c
		}
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	cur := rm.answers.Load()
	if cur != nil {
		if c, ok := (*cur)[key]; ok {
			return c
		}
	}
	next := make(map[answerKey]prometheus.Counter, 1)
	if cur != nil {
		maps.Copy(next, *cur)
	}
	c := m.requests.WithLabelValues(info.route, info.upstream, info.protocol, strconv.Itoa(status), info.errCode)
	next[key] = c
	rm.answers.Store(&next)
	return c
}

// observeNATS records the time a NATS route's upstream operation took.
func (m *metrics) observeNATS(rt *route, since time.Time) {
	rm := rt.metricsOf(m)
	rm.upstreamOnce.Do(func() {
		rm.upstream = m.upstream.WithLabelValues(rt.upstream(), "nats", natsOperation(rt.row.NATS.Mode))
	})
	rm.upstream.Observe(time.Since(since).Seconds())
}

// natsOperation names a NATS mode's upstream operation in the metrics.
func natsOperation(mode string) string {
	switch mode {
	case config.NATSModeCore:
		return "publish"
	case config.NATSModeRequest:
		return "request"
	}
	return "jetstream_publish"
}

// MetricNames lists the names of the metrics the bridge exports, for the
// tests that tie dashboards to the code.
func (s *Server) MetricNames() []string {
	return s.metrics.registry.Names()
}

// RouteAnswers counts the bridge's answers on routes, all and 5xx, for a
// control plane in the same process that watches a rollout.
func (s *Server) RouteAnswers(routes []string) (total, failed float64) {
	// The request counter alone: a whole Gather would run every collector,
	// the upstream one included, which may dial providers.
	ch := make(chan prometheus.Metric, 64)
	go func() { s.metrics.requests.Collect(ch); close(ch) }()
	var series []*dto.Metric
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) == nil {
			series = append(series, &d)
		}
	}
	return promreg.Answers(series, routes)
}
