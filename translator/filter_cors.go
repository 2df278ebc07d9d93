package translator

import (
	"strconv"
	"strings"

	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/protogate/protogate/config"
)

// corsFilter: the filter itself is empty; the policy is per virtual host
// (the listener's settings) and per route (a route's own).
type corsFilter struct{}

var (
	_ HTTPFilter        = corsFilter{}
	_ VirtualHostConfig = corsFilter{}
	_ RouteConfig       = corsFilter{}
)

func (corsFilter) Name() string { return "envoy.filters.http.cors" }
func (corsFilter) Key() string  { return "cors" }

func (corsFilter) HTTPFilter(_ *build, l *config.Listener) (proto.Message, error) {
	if l.Filters.CORS == nil {
		return nil, nil
	}
	return &corsv3.Cors{}, nil
}

func (corsFilter) VirtualHostConfig(_ *build, l *config.Listener) (proto.Message, error) {
	if l.Filters.CORS == nil {
		return nil, nil
	}
	return corsPolicy(l.Filters.CORS), nil
}

func (corsFilter) RouteConfig(_ *build, _ *config.Listener, r *config.Route) (proto.Message, error) {
	if r.Filters.CORS == nil {
		return nil, nil
	}
	return corsPolicy(r.Filters.CORS), nil
}

func corsPolicy(c *config.CORS) *corsv3.CorsPolicy {
	p := &corsv3.CorsPolicy{
		AllowMethods:     strings.Join(c.AllowMethods, ","),
		AllowHeaders:     strings.Join(c.AllowHeaders, ","),
		ExposeHeaders:    strings.Join(c.ExposeHeaders, ","),
		AllowCredentials: wrapperspb.Bool(c.AllowCredentials),
	}
	if c.MaxAge > 0 {
		p.MaxAge = strconv.Itoa(int(c.MaxAge.Std().Seconds())) // Envoy wants whole seconds
	}
	for _, o := range c.AllowOrigins {
		if o == "*" {
			p.AllowOriginStringMatch = append(p.AllowOriginStringMatch, &matcher.StringMatcher{
				MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: ".*"}}})
			continue
		}
		p.AllowOriginStringMatch = append(p.AllowOriginStringMatch, &matcher.StringMatcher{
			MatchPattern: &matcher.StringMatcher_Exact{Exact: strings.TrimSuffix(o, "/")}})
	}
	return p
}
