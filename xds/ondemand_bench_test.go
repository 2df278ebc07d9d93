package xds

import (
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// BenchmarkOnDemandVersusWildcard: what an on-demand Envoy of a group
// with 2,000 upstreams is sent to start and use 10 of them (its wildcard
// cluster and endpoint subscriptions, then the 10 clusters and their
// endpoints by name), against what a wildcard delta client is sent for the
// same 2,000 upstreams behind a listener that is not on demand (every
// cluster and every endpoint). A wildcard delta client of the on-demand
// group itself is narrowed like the on-demand Envoy, so the twin group
// stands for "without on-demand".
func BenchmarkOnDemandVersusWildcard(b *testing.B) {
	const n = 2000
	s := startOnDemand(b, onDemandMapping(n))
	ten := upstreamClusters(1, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800)
	var lazyBytes, lazyRes, allBytes, allRes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lazy := openADSDelta(b, s.XDSAddr(), "lazy")
		for _, typ := range []string{resource.ClusterType, resource.EndpointType} {
			lazy.send(typ, nil, nil)
			lazy.next(typ)
			lazy.send(typ, ten, nil)
			lazy.next(typ)
		}
		all := openADSDelta(b, s.XDSAddr(), "eager")
		for _, typ := range []string{resource.ClusterType, resource.EndpointType} {
			all.send(typ, nil, nil)
			all.next(typ)
		}
		lazyBytes += lazy.bytes.Load()
		lazyRes += lazy.resources.Load()
		allBytes += all.bytes.Load()
		allRes += all.resources.Load()
		lazy.close()
		all.close()
	}
	b.StopTimer()
	perOp := func(v int64) float64 { return float64(v) / float64(b.N) }
	b.ReportMetric(perOp(lazyBytes), "ondemand-bytes/op")
	b.ReportMetric(perOp(lazyRes), "ondemand-resources/op")
	b.ReportMetric(perOp(allBytes), "wildcard-bytes/op")
	b.ReportMetric(perOp(allRes), "wildcard-resources/op")
	b.ReportMetric(float64(allBytes)/float64(lazyBytes), "bytes-ratio")
}
