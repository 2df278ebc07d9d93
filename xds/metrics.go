package xds

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/protogate/protogate/internal/promreg"
)

type metrics struct {
	registry      *promreg.Registry
	nacks         *prometheus.CounterVec
	pushes        *prometheus.CounterVec
	streams       prometheus.Gauge
	groups        prometheus.Gauge
	reloads       *prometheus.CounterVec
	reloadHealthy prometheus.Gauge
	// refusals count clients refused at a limit; connections and nodes
	// are what the limits bound.
	refusals    *prometheus.CounterVec
	acks        *prometheus.CounterVec
	push        *prometheus.HistogramVec
	connections prometheus.Gauge
	nodes       prometheus.Gauge
	refusalLog  throttle
}

func newMetrics() *metrics {
	m := &metrics{
		registry: promreg.New(),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "protogate_xds_nacks_total", Help: "Responses Envoy rejected, by node group (unknown for groups the mapping does not define) and type URL.",
		}, []string{"group", "type_url"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "protogate_xds_pushes_total", Help: "Responses sent, by node group (unknown for groups the mapping does not define) and type URL.",
		}, []string{"group", "type_url"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "protogate_xds_streams", Help: "Open xDS streams.",
		}),
		groups: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "protogate_xds_groups", Help: "Node groups with a published snapshot.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "protogate_config_reloads_total", Help: "Mapping reloads, by result (success or failure).",
		}, []string{"result"}),
		reloadHealthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "protogate_config_last_reload_success", Help: "1 if the last reload was published, 0 if it was rejected and the last good config is still served.",
		}),
	}
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "protogate_xds_limit_refusals_total", Help: "xDS clients refused at a limit of xds.limits, by limit (connections, streams, node_metadata, node_id).",
	}, []string{"limit"})
	m.acks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "protogate_xds_acks_total", Help: "Responses nodes accepted, by node group (unknown for groups the mapping does not define) and type URL.",
	}, []string{"group", "type_url"})
	m.push = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "protogate_xds_push_duration_seconds",
		Help:    "From the start of a reload to the last connected Envoy of the group holding (ACK or NACK) every type of the new version, by group.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120},
	}, []string{"group"})
	m.connections = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "protogate_xds_connections", Help: "Open connections to the ADS port.",
	})
	m.nodes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "protogate_xds_nodes", Help: "Nodes /status remembers: connected, or disconnected less than xds.limits.forget_after ago.",
	})
	m.registry.MustRegister(m.nacks, m.pushes, m.streams, m.groups, m.reloads, m.reloadHealthy, m.refusals, m.acks, m.push, m.connections, m.nodes,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// UnknownGroupLabel is the group label of nodes whose group the mapping
// does not define: clients choose group names, so they never become
// label values.
const UnknownGroupLabel = "unknown"

// groupLabel is group as a metric label.
func (s *Server) groupLabel(group string) string {
	s.mu.RLock()
	_, ok := s.groups[group]
	s.mu.RUnlock()
	if ok {
		return group
	}
	return UnknownGroupLabel
}
