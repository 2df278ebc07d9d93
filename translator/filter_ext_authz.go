package translator

import (
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthz "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"

	"github.com/protogate/protogate/config"
)

// extAuthzFilter asks an authorization service about each request; routes
// may turn it off.
type extAuthzFilter struct{}

var (
	_ HTTPFilter  = extAuthzFilter{}
	_ RouteConfig = extAuthzFilter{}
)

func (extAuthzFilter) Name() string { return "envoy.filters.http.ext_authz" }
func (extAuthzFilter) Key() string  { return "ext_authz" }

func (extAuthzFilter) HTTPFilter(b *build, l *config.Listener) (proto.Message, error) {
	e := l.Filters.ExtAuthz
	if e == nil {
		return nil, nil
	}
	clusterName := UpstreamCluster("http", e.Upstream)
	b.need(l, clusterName)
	m := &extauthz.ExtAuthz{
		TransportApiVersion: core.ApiVersion_V3,
		FailureModeAllow:    e.FailureModeAllow,
	}
	if e.GRPC {
		m.Services = &extauthz.ExtAuthz_GrpcService{GrpcService: &core.GrpcService{
			TargetSpecifier: &core.GrpcService_EnvoyGrpc_{EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: clusterName}},
			Timeout:         dur(e.Timeout),
		}}
		return m, nil
	}
	svc := &extauthz.HttpService{
		ServerUri:  &core.HttpUri{Uri: "http://" + clusterName, HttpUpstreamType: &core.HttpUri_Cluster{Cluster: clusterName}, Timeout: dur(e.Timeout)},
		PathPrefix: e.PathPrefix,
	}
	m.Services = &extauthz.ExtAuthz_HttpService{HttpService: svc}
	if len(e.AllowedHeaders) > 0 {
		list := &matcher.ListStringMatcher{}
		for _, h := range e.AllowedHeaders {
			list.Patterns = append(list.Patterns, &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: h}, IgnoreCase: true})
		}
		m.AllowedHeaders = list
	}
	return m, nil
}

func (extAuthzFilter) RouteConfig(_ *build, l *config.Listener, r *config.Route) (proto.Message, error) {
	if l.Filters.ExtAuthz == nil || r.Filters.ExtAuthz == nil || !r.Filters.ExtAuthz.Disabled {
		return nil, nil
	}
	return &extauthz.ExtAuthzPerRoute{Override: &extauthz.ExtAuthzPerRoute_Disabled{Disabled: true}}, nil
}
