package translator

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	dubborouter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/dubbo_proxy/router/v3"
	dubbo "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/dubbo_proxy/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/protogate/protogate/config"
)

func (b *build) buildListener(l *config.Listener, path string) {
	if l.OnDemandClusters {
		if l.Protocol != config.ProtocolHTTP {
			b.fail(path+".on_demand_clusters", "clusters load on demand on http listeners only; a %s listener's Envoys hold its clusters up front", l.Protocol)
		}
		b.onDemand[l.Name] = true
	}
	if l.OnDemandHosts && l.Protocol != config.ProtocolHTTP {
		b.fail(path+".on_demand_hosts", "hosts load on demand on http listeners only; a %s listener has no virtual hosts", l.Protocol)
	}
	filters := b.networkFilters(l, path)
	switch l.Protocol {
	case config.ProtocolHTTP:
		b.routes[l.Name] = b.routeConfig(l, path)
		if f := b.connectionManager(l, path); f != nil {
			filters = append(filters, f)
		}
	case config.ProtocolDubbo:
		if f := b.dubboProxy(l, path); f != nil {
			filters = append(filters, f)
		}
	case config.ProtocolTCP:
		if f := b.tcpProxy(l, path); f != nil {
			filters = append(filters, f)
		}
	}
	host, port, _ := net.SplitHostPort(l.Address)
	p, _ := strconv.Atoi(port)
	if host == "localhost" {
		host = "127.0.0.1"
	}
	lis := &listener.Listener{
		Name: l.Name,
		Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address:       host,
			PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(p)},
		}}},
		// A slow or hostile client cannot hold an unbounded read buffer.
		PerConnectionBufferLimitBytes: wrapperspb.UInt32(32 << 10),
		FilterChains:                  []*listener.FilterChain{{Filters: filters}},
	}
	if err := lis.ValidateAll(); err != nil {
		b.fail(path, "listener %q: Envoy would reject it: %v", l.Name, err)
	}
	b.listeners[l.Name] = lis
}

// networkFilters runs the network chain for a listener.
func (b *build) networkFilters(l *config.Listener, path string) []*listener.Filter {
	var out []*listener.Filter
	b.eachFilter(networkChain, path+".network_filters", func(p Plugin) (proto.Message, error) {
		if nf, ok := p.(NetworkFilter); ok {
			return nf.NetworkFilter(b, l)
		}
		return nil, nil
	}, func(p Plugin, a *anypb.Any) {
		out = append(out, &listener.Filter{Name: p.Name(), ConfigType: &listener.Filter_TypedConfig{TypedConfig: a}})
	})
	return out
}

// connectionManager is the HTTP connection manager with the defaults a
// careful edge operator sets: the client address from the connection (not
// from headers it sent), bounded header size and timeouts, normalised paths,
// and underscore headers refused (they can smuggle past header checks).
func (b *build) connectionManager(l *config.Listener, path string) *listener.Filter {
	var httpFilters []*hcm.HttpFilter
	b.eachFilter(httpChain, path+".filters", func(p Plugin) (proto.Message, error) {
		if hf, ok := p.(HTTPFilter); ok {
			return hf.HTTPFilter(b, l)
		}
		return nil, nil
	}, func(p Plugin, a *anypb.Any) {
		httpFilters = append(httpFilters, &hcm.HttpFilter{Name: p.Name(), ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: a}})
	})
	m := &hcm.HttpConnectionManager{
		StatPrefix: statPrefix(l.Name),
		CodecType:  hcm.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			RouteConfigName: l.Name,
			ConfigSource: &core.ConfigSource{
				ResourceApiVersion:    core.ApiVersion_V3,
				ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
			},
		}},
		HttpFilters:           httpFilters,
		AccessLog:             b.accessLogs(l, path),
		Tracing:               b.tracing(l),
		UseRemoteAddress:      wrapperspb.Bool(true),
		NormalizePath:         wrapperspb.Bool(true),
		MergeSlashes:          true,
		RequestTimeout:        dur(l.RequestTimeout),
		RequestHeadersTimeout: stdDur(10 * time.Second),
		StreamIdleTimeout:     dur(l.IdleTimeout),
		MaxRequestHeadersKb:   wrapperspb.UInt32(uint32((l.MaxHeaderSize + 1023) / 1024)),
		CommonHttpProtocolOptions: &core.HttpProtocolOptions{
			IdleTimeout:                  stdDur(time.Hour),
			HeadersWithUnderscoresAction: core.HttpProtocolOptions_REJECT_REQUEST,
		},
		Http2ProtocolOptions: &core.Http2ProtocolOptions{
			MaxConcurrentStreams:        wrapperspb.UInt32(100),
			InitialStreamWindowSize:     wrapperspb.UInt32(64 << 10),
			InitialConnectionWindowSize: wrapperspb.UInt32(1 << 20),
		},
	}
	a := b.pack(m, path, hcmName)
	if a == nil {
		return nil
	}
	return &listener.Filter{Name: hcmName, ConfigType: &listener.Filter_TypedConfig{TypedConfig: a}}
}

// dubboProxy routes Dubbo clients to provider clusters. Routes with the same
// interface, group and version share one route configuration, because Envoy
// uses the first configuration whose interface matches.
func (b *build) dubboProxy(l *config.Listener, path string) *listener.Filter {
	var configs []*dubbo.RouteConfiguration
	index := map[string]*dubbo.RouteConfiguration{}
	for j := range l.Routes {
		r := &l.Routes[j]
		key := r.Match.Service + "\x00" + r.Match.Group + "\x00" + r.Match.Version
		rc, ok := index[key]
		if !ok {
			rc = &dubbo.RouteConfiguration{
				Name:      fmt.Sprintf("%s/%d", l.Name, len(configs)),
				Interface: r.Match.Service,
				Group:     r.Match.Group,
				Version:   r.Match.Version,
			}
			index[key] = rc
			configs = append(configs, rc)
		}
		method := &dubbo.MethodMatch{Name: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: ".*"}}}}
		if r.Match.Method != "" {
			method.Name = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: r.Match.Method}}
		}
		clusterName := UpstreamCluster("dubbo", r.Upstream)
		b.need(l, clusterName)
		rc.Routes = append(rc.Routes, &dubbo.Route{
			Match: &dubbo.RouteMatch{Method: method},
			Route: &dubbo.RouteAction{ClusterSpecifier: &dubbo.RouteAction_Cluster{Cluster: clusterName}},
		})
	}
	routerCfg := b.pack(&dubborouter.Router{}, path, "envoy.filters.dubbo.router")
	m := &dubbo.DubboProxy{
		StatPrefix:        statPrefix(l.Name),
		ProtocolType:      dubbo.ProtocolType_Dubbo,
		SerializationType: dubbo.SerializationType_Hessian2,
		RouteSpecifier: &dubbo.DubboProxy_MultipleRouteConfig{MultipleRouteConfig: &dubbo.MultipleRouteConfiguration{
			Name:        l.Name,
			RouteConfig: configs,
		}},
		DubboFilters: []*dubbo.DubboFilter{{Name: "envoy.filters.dubbo.router", Config: routerCfg}},
	}
	a := b.pack(m, path, "envoy.filters.network.dubbo_proxy")
	if a == nil {
		return nil
	}
	return &listener.Filter{Name: "envoy.filters.network.dubbo_proxy", ConfigType: &listener.Filter_TypedConfig{TypedConfig: a}}
}

func (b *build) tcpProxy(l *config.Listener, path string) *listener.Filter {
	clusterName := UpstreamCluster(b.upstreamProtocol(l.Upstream), l.Upstream)
	b.need(l, clusterName)
	m := &tcpproxy.TcpProxy{
		StatPrefix:       statPrefix(l.Name),
		ClusterSpecifier: &tcpproxy.TcpProxy_Cluster{Cluster: clusterName},
		IdleTimeout:      dur(l.IdleTimeout),
	}
	a := b.pack(m, path, "envoy.filters.network.tcp_proxy")
	if a == nil {
		return nil
	}
	return &listener.Filter{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listener.Filter_TypedConfig{TypedConfig: a}}
}

// upstreamProtocol says which list an upstream name is in.
func (b *build) upstreamProtocol(name string) string {
	u := &b.cfg.Upstreams
	for _, x := range u.Dubbo {
		if x.Name == name {
			return "dubbo"
		}
	}
	for _, x := range u.NATS {
		if x.Name == name {
			return "nats"
		}
	}
	for _, x := range u.HTTP {
		if x.Name == name {
			return "http"
		}
	}
	return "tcp"
}

// statPrefix keeps stat names to characters Envoy does not rewrite.
func statPrefix(name string) string { return strings.ReplaceAll(name, ".", "_") }
