package translator

import (
	"fmt"
	"strings"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	uritemplate "github.com/envoyproxy/go-control-plane/envoy/extensions/path/match/uri_template/v3"
	previoushosts "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/routetable"
)

// routeConfig builds the RouteConfiguration of an HTTP listener: one virtual
// host, routes in file order. The route header is removed from every request
// at this level, so no client copy reaches any upstream, and set again only
// on routes to a bridge.
func (b *build) routeConfig(l *config.Listener, path string) *route.RouteConfiguration {
	vh := &route.VirtualHost{
		Name:    l.Name,
		Domains: []string{"*"},
		TypedPerFilterConfig: b.perFilter(path+".filters", func(p Plugin) (proto.Message, error) {
			if vc, ok := p.(VirtualHostConfig); ok {
				return vc.VirtualHostConfig(b, l)
			}
			return nil, nil
		}),
	}
	for j := range l.Routes {
		vh.Routes = append(vh.Routes, b.route(l, &l.Routes[j], fmt.Sprintf("%s.routes[%d]", path, j)))
	}
	rc := &route.RouteConfiguration{
		Name:                   l.Name,
		VirtualHosts:           []*route.VirtualHost{vh},
		RequestHeadersToRemove: []string{b.cfg.Bridge.RouteHeader},
		// Route configs arrive over RDS; an unknown cluster should fail the
		// update, not serve 503s. Except on an on-demand listener: there
		// Envoy holds a route's cluster only once a request needed it.
		ValidateClusters: wrapperspb.Bool(!l.OnDemandClusters),
	}
	if err := rc.ValidateAll(); err != nil {
		b.fail(path+".routes", "Envoy would reject the route configuration: %v", err)
	}
	return rc
}

// perFilter asks every HTTP plugin for a per-filter config through get and
// packs what they return, keyed by filter name.
func (b *build) perFilter(path string, get func(Plugin) (proto.Message, error)) map[string]*anypb.Any {
	out := map[string]*anypb.Any{}
	b.eachFilter(httpChain, path, get, func(p Plugin, a *anypb.Any) { out[p.Name()] = a })
	if len(out) == 0 {
		return nil
	}
	return out
}

func (b *build) route(l *config.Listener, r *config.Route, path string) *route.Route {
	out := &route.Route{
		Name:  r.Name,
		Match: b.routeMatch(&r.Match, path+".match"),
		TypedPerFilterConfig: b.perFilter(path+".filters", func(p Plugin) (proto.Message, error) {
			if rc, ok := p.(RouteConfig); ok {
				return rc.RouteConfig(b, l, r)
			}
			return nil, nil
		}),
	}
	// The timeouts and retries are the route table's, so Envoy and the
	// bridges work from the same figures.
	row, err := routetable.NewRoute(l, r)
	if err != nil {
		b.fail(path, "%v", err)
		return out
	}
	switch {
	case r.Dubbo != nil:
		out.Action = b.bridgeAction(l, BridgeDubboCluster, &row)
		out.RequestHeadersToAdd = b.routeHeader(r)
	case r.NATS != nil:
		out.Action = b.bridgeAction(l, BridgeNATSCluster, &row)
		out.RequestHeadersToAdd = b.routeHeader(r)
	case r.HTTP != nil:
		clusterName := UpstreamCluster("http", r.HTTP.Upstream)
		b.needRoute(l, clusterName)
		ra := &route.RouteAction{
			ClusterSpecifier: &route.RouteAction_Cluster{Cluster: clusterName},
			Timeout:          dur(row.EnvoyTimeout),
			PrefixRewrite:    r.HTTP.PrefixRewrite,
		}
		if r.HTTP.HostRewrite != "" {
			ra.HostRewriteSpecifier = &route.RouteAction_HostRewriteLiteral{HostRewriteLiteral: r.HTTP.HostRewrite}
		}
		if row.EnvoyRetries > 0 {
			ra.RetryPolicy = retryPolicy(httpRetryPolicy, row.EnvoyRetries, row.EnvoyPerTryTimeout.Std())
		}
		out.Action = &route.Route_Route{Route: ra}
	}
	return out
}

// bridgeAction sends a route to a bridge cluster with the table's Envoy
// timeouts: a little longer than the bridge's own, so the bridge answers a
// timeout itself. Envoy retries only idempotent calls, and only failures to
// reach a bridge: the bridge itself handles the upstream.
func (b *build) bridgeAction(l *config.Listener, clusterName string, row *routetable.Route) *route.Route_Route {
	b.need(l, clusterName)
	ra := &route.RouteAction{
		ClusterSpecifier: &route.RouteAction_Cluster{Cluster: clusterName},
		Timeout:          dur(row.EnvoyTimeout),
	}
	if row.EnvoyRetries > 0 {
		ra.RetryPolicy = retryPolicy(bridgeRetryPolicy, row.EnvoyRetries, row.EnvoyPerTryTimeout.Std())
	}
	return &route.Route_Route{Route: ra}
}

func retryPolicy(on string, retries int, perTry time.Duration) *route.RetryPolicy {
	return &route.RetryPolicy{
		RetryOn:       on,
		NumRetries:    wrapperspb.UInt32(uint32(retries)),
		PerTryTimeout: stdDur(perTry),
		RetryHostPredicate: []*route.RetryPolicy_RetryHostPredicate{{
			Name: "envoy.retry_host_predicates.previous_hosts",
			ConfigType: &route.RetryPolicy_RetryHostPredicate_TypedConfig{
				TypedConfig: mustAny(&previoushosts.PreviousHostsPredicate{}),
			},
		}},
		HostSelectionRetryMaxAttempts: 3,
	}
}

// routeHeader tells the bridge which route this is. The route configuration
// already removed any client-sent copy; OVERWRITE makes this the only value
// even if a later change reordered that.
func (b *build) routeHeader(r *config.Route) []*core.HeaderValueOption {
	return []*core.HeaderValueOption{{
		Header:       &core.HeaderValue{Key: b.cfg.Bridge.RouteHeader, Value: r.Name},
		AppendAction: core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}}
}

// routeMatch keeps a route's meaning: a template with variables uses
// Envoy's URI-template matcher (the same syntax), a literal template an
// exact path, and methods a :method header match.
func (b *build) routeMatch(m *config.RouteMatch, path string) *route.RouteMatch {
	out := &route.RouteMatch{}
	switch {
	case m.Path != "" && strings.Contains(m.Path, "{"):
		out.PathSpecifier = &route.RouteMatch_PathMatchPolicy{PathMatchPolicy: &core.TypedExtensionConfig{
			Name:        uriTemplateName,
			TypedConfig: b.pack(&uritemplate.UriTemplateMatchConfig{PathTemplate: m.Path}, path+".path", uriTemplateName),
		}}
	case m.Path != "":
		out.PathSpecifier = &route.RouteMatch_Path{Path: m.Path}
	case m.Prefix != "":
		out.PathSpecifier = &route.RouteMatch_Prefix{Prefix: m.Prefix}
	case m.Regex != "":
		out.PathSpecifier = &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: m.Regex}}
	}
	switch len(m.Methods) {
	case 0:
	case 1:
		out.Headers = append(out.Headers, &route.HeaderMatcher{Name: ":method",
			HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: &matcher.StringMatcher{
				MatchPattern: &matcher.StringMatcher_Exact{Exact: m.Methods[0]}}}})
	default:
		out.Headers = append(out.Headers, &route.HeaderMatcher{Name: ":method",
			HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: &matcher.StringMatcher{
				MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{
					Regex: "^(" + strings.Join(m.Methods, "|") + ")$"}}}}})
	}
	for _, h := range m.Headers {
		hm := &route.HeaderMatcher{Name: strings.ToLower(h.Name), InvertMatch: h.Invert}
		sm := &matcher.StringMatcher{}
		switch {
		case h.Exact != "":
			sm.MatchPattern = &matcher.StringMatcher_Exact{Exact: h.Exact}
		case h.Prefix != "":
			sm.MatchPattern = &matcher.StringMatcher_Prefix{Prefix: h.Prefix}
		case h.Regex != "":
			sm.MatchPattern = &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: h.Regex}}
		}
		if h.Present {
			hm.HeaderMatchSpecifier = &route.HeaderMatcher_PresentMatch{PresentMatch: true}
		} else {
			hm.HeaderMatchSpecifier = &route.HeaderMatcher_StringMatch{StringMatch: sm}
		}
		out.Headers = append(out.Headers, hm)
	}
	return out
}
