package xds

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	registry      *prometheus.Registry
	nacks         *prometheus.CounterVec
	pushes        *prometheus.CounterVec
	streams       prometheus.Gauge
	groups        prometheus.Gauge
	reloads       *prometheus.CounterVec
	reloadHealthy prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "protogate_xds_nacks_total", Help: "Responses Envoy rejected, by node group and type URL.",
		}, []string{"group", "type_url"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "protogate_xds_pushes_total", Help: "Responses sent, by node group and type URL.",
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
	m.registry.MustRegister(m.nacks, m.pushes, m.streams, m.groups, m.reloads, m.reloadHealthy,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}
