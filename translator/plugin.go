// Package translator turns a validated mapping into Envoy v3 resources:
// listeners, routes, clusters and endpoints, one set per node group. It is a
// pure function of the model; it does not talk to the network.
//
// Filters are plugins, one file each. A plugin says what it contributes by
// the interfaces it implements; the lists below are the chains in the order
// Envoy runs them.
package translator

import (
	"google.golang.org/protobuf/proto"

	"github.com/protogate/protogate/config"
)

// Plugin is one Envoy filter. Name is the filter's name in Envoy's config;
// Key is its key in the mapping's filters blocks.
type Plugin interface {
	Name() string
	Key() string
}

// HTTPFilter contributes a filter to an HTTP listener's chain. It returns nil
// when the listener does not enable the filter.
type HTTPFilter interface {
	Plugin
	HTTPFilter(b *build, l *config.Listener) (proto.Message, error)
}

// VirtualHostConfig contributes per-filter config for a listener's virtual
// host (settings that apply to all of its routes).
type VirtualHostConfig interface {
	Plugin
	VirtualHostConfig(b *build, l *config.Listener) (proto.Message, error)
}

// RouteConfig contributes per-route config (typed_per_filter_config).
type RouteConfig interface {
	Plugin
	RouteConfig(b *build, l *config.Listener, r *config.Route) (proto.Message, error)
}

// NetworkFilter contributes a network filter that runs before the
// listener's protocol filter (HTTP connection manager, dubbo_proxy or
// tcp_proxy).
type NetworkFilter interface {
	Plugin
	NetworkFilter(b *build, l *config.Listener) (proto.Message, error)
}

// UpstreamHTTPFilter contributes an upstream HTTP filter to a cluster
// (HttpProtocolOptions.http_filters).
type UpstreamHTTPFilter interface {
	Plugin
	UpstreamHTTPFilter(b *build, f *config.UpstreamFilters) (proto.Message, error)
}

// UpstreamNetworkFilter contributes a filter to Cluster.filters. Stock Envoy
// registers no upstream network filters, so this chain is empty; the hook
// keeps cluster-level network filters a one-file addition.
type UpstreamNetworkFilter interface {
	Plugin
	UpstreamNetworkFilter(b *build, f *config.UpstreamFilters) (proto.Message, error)
}

// httpChain is the HTTP filter chain of every HTTP listener, in order:
// CORS answers preflights before anything can reject them; authentication
// and authorization come before rate limiting so unauthenticated floods are
// cut first; faults and buffering act on admitted requests; on-demand
// cluster discovery runs just before the router, for admitted requests only;
// the router is last.
var httpChain = []Plugin{
	corsFilter{},
	jwtAuthnFilter{},
	extAuthzFilter{},
	localRateLimitFilter{},
	faultFilter{},
	bufferFilter{},
	headerMutationFilter{},
	gzipFilter{},
	onDemandFilter{},
	routerFilter{},
}

// networkChain runs on every connection before the protocol filter:
// access control first, then the connection rate limit.
var networkChain = []Plugin{
	rbacNetworkFilter{},
	localRateLimitNetworkFilter{},
}

// upstreamHTTPChain runs on requests as they leave for a cluster; the codec
// must be last.
var upstreamHTTPChain = []Plugin{
	upstreamHeaderMutationFilter{},
	upstreamCodecFilter{},
}

// upstreamNetworkChain is empty: see UpstreamNetworkFilter.
var upstreamNetworkChain = []Plugin{}
