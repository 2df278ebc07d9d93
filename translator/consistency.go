package translator

import (
	"fmt"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// ByType returns the resources keyed by xDS type URL, as snapshots take them.
func (r *Resources) ByType() map[resource.Type][]types.Resource {
	out := map[resource.Type][]types.Resource{
		resource.ListenerType: {}, resource.RouteType: {}, resource.ClusterType: {}, resource.EndpointType: {},
	}
	for _, x := range r.Listeners {
		out[resource.ListenerType] = append(out[resource.ListenerType], x)
	}
	for _, x := range r.Routes {
		out[resource.RouteType] = append(out[resource.RouteType], x)
	}
	for _, x := range r.Clusters {
		out[resource.ClusterType] = append(out[resource.ClusterType], x)
	}
	for _, x := range r.Endpoints {
		out[resource.EndpointType] = append(out[resource.EndpointType], x)
	}
	return out
}

// check proves a group's resources hang together before anything is served:
// every resource passes Envoy's validation; go-control-plane's snapshot
// consistency holds (each EDS cluster has an assignment, each RDS name a
// route configuration); and every route's cluster exists.
func (g *Group) check() error {
	for _, rs := range g.ByType() {
		for _, r := range rs {
			if err := r.(validator).ValidateAll(); err != nil {
				return fmt.Errorf("%s: %w", cache.GetResourceName(r), err)
			}
		}
	}
	snap, err := cache.NewSnapshot("check", g.ByType())
	if err != nil {
		return err
	}
	if err := snap.Consistent(); err != nil {
		return fmt.Errorf("inconsistent: %w", err)
	}
	clusters := map[string]bool{}
	for _, c := range g.Clusters {
		clusters[c.Name] = true
	}
	for _, rc := range g.Routes {
		for _, vh := range rc.VirtualHosts {
			for _, r := range vh.Routes {
				ra, ok := r.Action.(*route.Route_Route)
				if !ok {
					continue
				}
				if c := ra.Route.GetCluster(); c != "" && !clusters[c] {
					return fmt.Errorf("route %q sends to cluster %q, which the group does not have", r.Name, c)
				}
			}
		}
	}
	return nil
}
