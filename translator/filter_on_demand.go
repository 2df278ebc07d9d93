package translator

import (
	"time"

	ondemand "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/on_demand/v3"
	"google.golang.org/protobuf/proto"

	"github.com/protogate/protogate/config"
)

// onDemandTimeout bounds how long a request waits for its cluster to
// arrive (Envoy's own default, set so the golden files show it).
const onDemandTimeout = 5 * time.Second

// onDemandFilter lets the Envoys of a listener with on_demand_clusters load
// a route's cluster when a request first needs it, and those of a listener
// with on_demand_hosts the routes of a Host when a request first names it:
// Envoy subscribes to it by name on its ADS stream (delta xDS only) and
// holds the request meanwhile.
// It sits just before the router, so only requests every other filter
// admitted can make an Envoy fetch a cluster, and the route it looks at is
// the final one.
//
// It is switched on by a listener field, not a filters block: Key is that
// field, so problems point at it.
type onDemandFilter struct{}

var _ HTTPFilter = onDemandFilter{}

func (onDemandFilter) Name() string { return "envoy.filters.http.on_demand" }
func (onDemandFilter) Key() string  { return "on_demand_clusters" }

func (onDemandFilter) HTTPFilter(_ *build, l *config.Listener) (proto.Message, error) {
	if !l.OnDemandClusters && !l.OnDemandHosts {
		return nil, nil
	}
	if !l.OnDemandClusters {
		return &ondemand.OnDemand{}, nil // virtual hosts only
	}
	return &ondemand.OnDemand{Odcds: &ondemand.OnDemandCds{
		Source:  adsSource(),
		Timeout: stdDur(onDemandTimeout),
	}}, nil
}
