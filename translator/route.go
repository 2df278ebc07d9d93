package translator

import (
	"fmt"
	"slices"
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

// routeConfig builds the RouteConfiguration of an HTTP listener: a virtual
// host per host routes name in match.hosts, holding those routes and the
// ones for any host, and a "*" one holding the routes for any host, each
// in file order. The route header is removed from every request at this
// level, so no client copy reaches any upstream, and set again only on
// routes to a bridge.
//
// A listener with on_demand_hosts also gets VHDS: the control plane serves
// delta Envoys the configuration without its virtual hosts and each host's
// on request, and state-of-the-world Envoys the configuration with them
// (xds/vhds.go).
func (b *build) routeConfig(l *config.Listener, path string) *route.RouteConfiguration {
	perFilter := b.perFilter(path+".filters", func(p Plugin) (proto.Message, error) {
		if vc, ok := p.(VirtualHostConfig); ok {
			return vc.VirtualHostConfig(b, l)
		}
		return nil, nil
	})
	built := make([]*route.Route, len(l.Routes))
	var hosts []string
	seen := map[string]bool{}
	for j := range l.Routes {
		built[j] = b.route(l, &l.Routes[j], fmt.Sprintf("%s.routes[%d]", path, j))
		for _, h := range l.Routes[j].Match.Hosts {
			if !seen[h] {
				seen[h] = true
				hosts = append(hosts, h)
			}
		}
	}
	vhost := func(name, domain string) *route.VirtualHost {
		vh := &route.VirtualHost{Name: name, Domains: []string{domain}, TypedPerFilterConfig: perFilter}
		for j := range l.Routes {
			if rh := l.Routes[j].Match.Hosts; len(rh) == 0 || slices.Contains(rh, domain) {
				vh.Routes = append(vh.Routes, built[j])
			}
		}
		return vh
	}
	rc := &route.RouteConfiguration{
		Name:                   l.Name,
		RequestHeadersToRemove: []string{b.cfg.Bridge.RouteHeader},
		// Route configs arrive over RDS; an unknown cluster should fail the
		// update, not serve 503s. Except on an on-demand listener: there
		// Envoy holds a route's cluster only once a request needed it.
		ValidateClusters: wrapperspb.Bool(!l.OnDemandClusters),
	}
	for _, h := range hosts {
		rc.VirtualHosts = append(rc.VirtualHosts, vhost(l.Name+"/"+h, h))
	}
	rc.VirtualHosts = append(rc.VirtualHosts, vhost(l.Name, "*"))
	if l.OnDemandHosts {
		rc.Vhds = &route.Vhds{ConfigSource: adsSource()}
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
