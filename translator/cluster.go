package translator

import (
	"fmt"
	"net/netip"
	"net/url"
	"sort"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tls "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/protogate/protogate/config"
)

// clusterSpec is what the translator needs to know to build one cluster.
type clusterSpec struct {
	name           string
	path           string // mapping field the cluster comes from
	endpoints      []string
	connectTimeout config.Duration
	http           bool // speaks HTTP: protocol options apply
	http2          bool
	tls            bool
	healthCheck    *config.HealthCheck
	breakers       *config.CircuitBreakers
	filters        *config.UpstreamFilters
	bridge         bool
}

// buildClusters builds every cluster the mapping can need; groups then pick
// the ones their listeners reach.
func (b *build) buildClusters() {
	br := &b.cfg.Bridge
	bridgeEndpoints := br.Endpoints
	if br.Discovery == config.BridgeDiscoveryXDS {
		// EDS, filled by the control plane with the bridges that announce
		// themselves.
		bridgeEndpoints = nil
	}
	for _, name := range []string{BridgeDubboCluster, BridgeNATSCluster} {
		b.addCluster(clusterSpec{
			name: name, path: "bridge", endpoints: bridgeEndpoints, connectTimeout: br.ConnectTimeout,
			http: true, http2: br.HTTP2, healthCheck: &br.HealthCheck, breakers: br.CircuitBreakers, bridge: true,
		})
	}
	for i := range b.cfg.Upstreams.Dubbo {
		u := &b.cfg.Upstreams.Dubbo[i]
		var eps []string
		for _, raw := range u.URLs {
			if pu, err := url.Parse(raw); err == nil {
				eps = append(eps, pu.Host)
			}
		}
		if u.Registry != "" {
			eps = b.discovered(u)
		}
		// Registry-discovered providers arrive over EDS; none found yet is
		// an empty assignment, which Envoy accepts.
		b.addCluster(clusterSpec{name: UpstreamCluster("dubbo", u.Name), path: fmt.Sprintf("upstreams.dubbo[%d]", i),
			endpoints: eps, connectTimeout: u.ConnectTimeout, filters: &u.Filters})
	}
	for i := range b.cfg.Upstreams.NATS {
		u := &b.cfg.Upstreams.NATS[i]
		var eps []string
		for _, raw := range u.URLs {
			if pu, err := url.Parse(raw); err == nil {
				eps = append(eps, pu.Host)
			}
		}
		b.addCluster(clusterSpec{name: UpstreamCluster("nats", u.Name), path: fmt.Sprintf("upstreams.nats[%d]", i),
			endpoints: eps, connectTimeout: u.ConnectTimeout})
	}
	for i := range b.cfg.Upstreams.HTTP {
		u := &b.cfg.Upstreams.HTTP[i]
		b.addCluster(clusterSpec{name: UpstreamCluster("http", u.Name), path: fmt.Sprintf("upstreams.http[%d]", i),
			endpoints: u.Endpoints, connectTimeout: u.ConnectTimeout, http: true, http2: u.HTTP2, tls: u.TLS,
			healthCheck: u.HealthCheck, breakers: u.CircuitBreakers, filters: &u.Filters})
	}
	for i := range b.cfg.Upstreams.TCP {
		u := &b.cfg.Upstreams.TCP[i]
		b.addCluster(clusterSpec{name: UpstreamCluster("tcp", u.Name), path: fmt.Sprintf("upstreams.tcp[%d]", i),
			endpoints: u.Endpoints, connectTimeout: u.ConnectTimeout})
	}
	b.addCollectorCluster()
}

// addCluster builds a cluster: EDS when every endpoint is an IP (so an
// endpoint change is a small EDS push), STRICT_DNS when any is a host name.
func (b *build) addCluster(s clusterSpec) {
	c := &cluster.Cluster{
		Name:           s.name,
		ConnectTimeout: dur(s.connectTimeout),
		LbPolicy:       cluster.Cluster_ROUND_ROBIN,
	}
	cla := loadAssignment(s.name, s.endpoints)
	if allIPs(s.endpoints) {
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_EDS}
		c.EdsClusterConfig = &cluster.Cluster_EdsClusterConfig{EdsConfig: adsSource()}
		b.endpoints[s.name] = cla
	} else {
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STRICT_DNS}
		c.DnsLookupFamily = cluster.Cluster_V4_PREFERRED
		c.LoadAssignment = cla
	}
	if s.breakers != nil {
		c.CircuitBreakers = &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{{
			Priority:           core.RoutingPriority_DEFAULT,
			MaxConnections:     wrapperspb.UInt32(uint32(s.breakers.MaxConnections)),
			MaxPendingRequests: wrapperspb.UInt32(uint32(s.breakers.MaxPendingRequests)),
			MaxRequests:        wrapperspb.UInt32(uint32(s.breakers.MaxRequests)),
			MaxRetries:         wrapperspb.UInt32(uint32(s.breakers.MaxRetries)),
		}}}
	}
	if s.healthCheck != nil {
		hc := &core.HealthCheck_HttpHealthCheck{Path: s.healthCheck.Path}
		if s.http2 {
			hc.CodecClientType = typev3.CodecClientType_HTTP2
		}
		c.HealthChecks = []*core.HealthCheck{{
			Timeout:            dur(s.healthCheck.Timeout),
			Interval:           dur(s.healthCheck.Interval),
			HealthyThreshold:   wrapperspb.UInt32(uint32(s.healthCheck.HealthyThreshold)),
			UnhealthyThreshold: wrapperspb.UInt32(uint32(s.healthCheck.UnhealthyThreshold)),
			HealthChecker:      &core.HealthCheck_HttpHealthCheck_{HttpHealthCheck: hc},
		}}
	}
	if s.bridge {
		// A bridge answers 502/503/504 when its upstream fails; that says
		// nothing about the bridge, so only failures to reach the bridge
		// itself (local-origin errors) eject it.
		c.OutlierDetection = &cluster.OutlierDetection{
			SplitExternalLocalOriginErrors:         true,
			ConsecutiveLocalOriginFailure:          wrapperspb.UInt32(5),
			EnforcingConsecutiveLocalOriginFailure: wrapperspb.UInt32(100),
			EnforcingConsecutive_5Xx:               wrapperspb.UInt32(0),
			EnforcingConsecutiveGatewayFailure:     wrapperspb.UInt32(0),
			Interval:                               stdDur(10 * time.Second),
			BaseEjectionTime:                       stdDur(30 * time.Second),
			MaxEjectionPercent:                     wrapperspb.UInt32(50),
		}
	}
	if s.http {
		if opts := b.httpOptions(s); opts != nil {
			c.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpOptionsKey: opts}
		}
	}
	if s.tls && len(s.endpoints) > 0 {
		host, _, _ := config.SplitEndpoint(s.endpoints[0])
		ctx := &tls.UpstreamTlsContext{
			Sni: host,
			CommonTlsContext: &tls.CommonTlsContext{
				ValidationContextType: &tls.CommonTlsContext_ValidationContext{ValidationContext: &tls.CertificateValidationContext{
					TrustedCa: &core.DataSource{Specifier: &core.DataSource_Filename{Filename: systemCABundle}},
					MatchTypedSubjectAltNames: []*tls.SubjectAltNameMatcher{{
						SanType: tls.SubjectAltNameMatcher_DNS,
						Matcher: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: host}},
					}},
				}},
			},
		}
		if a := b.pack(ctx, s.path+".tls", tlsTransportName); a != nil {
			c.TransportSocket = &core.TransportSocket{Name: tlsTransportName, ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: a}}
		}
	}
	if s.filters != nil {
		c.Filters = b.upstreamNetworkFilters(s)
	}
	if err := c.ValidateAll(); err != nil {
		b.fail(s.path, "cluster %q: Envoy would reject it: %v", s.name, err)
	}
	b.clusters[s.name] = c
}

// httpOptions sets the protocol to the upstream and the cluster's upstream
// HTTP filters, which must end with the codec filter.
func (b *build) httpOptions(s clusterSpec) *anypb.Any {
	opts := &upstreamhttp.HttpProtocolOptions{
		CommonHttpProtocolOptions: &core.HttpProtocolOptions{IdleTimeout: stdDur(time.Hour)},
	}
	explicit := &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig{}
	if s.http2 {
		explicit.ProtocolConfig = &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &core.Http2ProtocolOptions{}}
	} else {
		explicit.ProtocolConfig = &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &core.Http1ProtocolOptions{}}
	}
	opts.UpstreamProtocolOptions = &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: explicit}
	if s.filters != nil {
		var filters []*hcm.HttpFilter
		b.eachFilter(upstreamHTTPChain, s.path+".filters", func(p Plugin) (proto.Message, error) {
			if uf, ok := p.(UpstreamHTTPFilter); ok {
				return uf.UpstreamHTTPFilter(b, s.filters)
			}
			return nil, nil
		}, func(p Plugin, a *anypb.Any) {
			filters = append(filters, &hcm.HttpFilter{Name: p.Name(), ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: a}})
		})
		// The codec alone is the default; leave it implicit.
		if len(filters) > 1 {
			opts.HttpFilters = filters
		}
	}
	return b.pack(opts, s.path, httpOptionsKey)
}

func (b *build) upstreamNetworkFilters(s clusterSpec) []*cluster.Filter {
	var out []*cluster.Filter
	b.eachFilter(upstreamNetworkChain, s.path+".filters", func(p Plugin) (proto.Message, error) {
		if nf, ok := p.(UpstreamNetworkFilter); ok {
			return nf.UpstreamNetworkFilter(b, s.filters)
		}
		return nil, nil
	}, func(p Plugin, a *anypb.Any) {
		out = append(out, &cluster.Filter{Name: p.Name(), TypedConfig: a})
	})
	return out
}

func allIPs(endpoints []string) bool {
	for _, e := range endpoints {
		host, _, err := config.SplitEndpoint(e)
		if err != nil {
			return false
		}
		if _, err := netip.ParseAddr(host); err != nil {
			return false
		}
	}
	return true
}

func loadAssignment(name string, endpoints []string) *endpoint.ClusterLoadAssignment {
	cla := &endpoint.ClusterLoadAssignment{ClusterName: name}
	var lbs []*endpoint.LbEndpoint
	for _, e := range endpoints {
		host, port, err := config.SplitEndpoint(e)
		if err != nil {
			continue
		}
		lbs = append(lbs, &endpoint.LbEndpoint{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
			Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
				Address:       host,
				PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)},
			}}},
		}}})
	}
	cla.Endpoints = []*endpoint.LocalityLbEndpoints{{LbEndpoints: lbs}}
	return cla
}

func adsSource() *core.ConfigSource {
	return &core.ConfigSource{
		ResourceApiVersion:    core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
	}
}

// discovered lists, sorted, the dubbo-protocol providers found for every
// service routed to a registry upstream: Envoy's dubbo_proxy speaks only
// the dubbo protocol.
func (b *build) discovered(u *config.DubboUpstream) []string {
	if b.disc == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, s := range b.cfg.DubboServices(u.Name) {
		for _, e := range b.disc.Providers(u, s.Service, s.Version, s.Group, "dubbo") {
			seen[e] = true
		}
	}
	out := make([]string, 0, len(seen))
	for e := range seen {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}
