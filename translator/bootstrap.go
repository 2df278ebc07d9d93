package translator

import (
	"fmt"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// StaticBootstrap turns a group's resources into a bootstrap that needs no
// control plane: route configurations inlined into their connection
// managers and EDS clusters given their assignments. `envoy --mode validate`
// checks exactly what would be served.
func StaticBootstrap(g *Group, adminAddress string, adminPort uint32) (*bootstrap.Bootstrap, error) {
	routes := map[string]proto.Message{}
	for _, rc := range g.Routes {
		routes[rc.Name] = rc
	}
	var listeners []*listener.Listener
	for _, l := range g.Listeners {
		l = proto.Clone(l).(*listener.Listener)
		for _, fc := range l.FilterChains {
			for _, f := range fc.Filters {
				if f.Name != hcmName {
					continue
				}
				m := &hcm.HttpConnectionManager{}
				if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
					return nil, err
				}
				name := m.GetRds().GetRouteConfigName()
				rc, ok := routes[name]
				if !ok {
					return nil, fmt.Errorf("listener %q: no route configuration %q", l.Name, name)
				}
				m.RouteSpecifier = &hcm.HttpConnectionManager_RouteConfig{RouteConfig: proto.Clone(rc).(*route.RouteConfiguration)}
				a := &anypb.Any{}
				if err := anypb.MarshalFrom(a, m, deterministic); err != nil {
					return nil, err
				}
				f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: a}
			}
		}
		listeners = append(listeners, l)
	}
	var clusters []*cluster.Cluster
	for _, c := range g.Clusters {
		c = proto.Clone(c).(*cluster.Cluster)
		if c.GetType() == cluster.Cluster_EDS {
			for _, cla := range g.Endpoints {
				if cla.ClusterName == c.Name {
					c.LoadAssignment = cla
				}
			}
			c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STATIC}
			c.EdsClusterConfig = nil
		}
		clusters = append(clusters, c)
	}
	b := &bootstrap.Bootstrap{
		Node: &core.Node{Id: "protogate-validate", Cluster: g.Name},
		Admin: &bootstrap.Admin{Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address: adminAddress, PortSpecifier: &core.SocketAddress_PortValue{PortValue: adminPort},
		}}}},
		StaticResources: &bootstrap.Bootstrap_StaticResources{Listeners: listeners, Clusters: clusters},
	}
	if err := b.ValidateAll(); err != nil {
		return nil, err
	}
	return b, nil
}
