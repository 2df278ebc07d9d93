package translator

import (
	"sort"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	jwt "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	"google.golang.org/protobuf/proto"

	"github.com/protogate/protogate/config"
)

// jwtAuthnFilter verifies tokens. The listener config holds the providers
// and one named requirement per distinct provider set; routes pick theirs by
// name, so a route without a setting gets the listener's default.
type jwtAuthnFilter struct{}

var (
	_ HTTPFilter  = jwtAuthnFilter{}
	_ RouteConfig = jwtAuthnFilter{}
)

func (jwtAuthnFilter) Name() string { return "envoy.filters.http.jwt_authn" }
func (jwtAuthnFilter) Key() string  { return "jwt_authn" }

func requirementName(providers []string) string {
	s := append([]string(nil), providers...)
	sort.Strings(s)
	return "any-of:" + strings.Join(s, ",")
}

func requirement(providers []string) *jwt.JwtRequirement {
	if len(providers) == 1 {
		return &jwt.JwtRequirement{RequiresType: &jwt.JwtRequirement_ProviderName{ProviderName: providers[0]}}
	}
	any := &jwt.JwtRequirementOrList{}
	for _, p := range providers {
		any.Requirements = append(any.Requirements, &jwt.JwtRequirement{RequiresType: &jwt.JwtRequirement_ProviderName{ProviderName: p}})
	}
	return &jwt.JwtRequirement{RequiresType: &jwt.JwtRequirement_RequiresAny{RequiresAny: any}}
}

func (jwtAuthnFilter) HTTPFilter(b *build, l *config.Listener) (proto.Message, error) {
	j := l.Filters.JWTAuthn
	if j == nil {
		return nil, nil
	}
	m := &jwt.JwtAuthentication{Providers: map[string]*jwt.JwtProvider{}, RequirementMap: map[string]*jwt.JwtRequirement{}}
	for _, p := range j.Providers {
		jp := &jwt.JwtProvider{
			Issuer:    p.Issuer,
			Audiences: p.Audiences,
			Forward:   p.Forward,
		}
		if p.LocalJWKS != "" {
			jp.JwksSourceSpecifier = &jwt.JwtProvider_LocalJwks{LocalJwks: &core.DataSource{Specifier: &core.DataSource_InlineString{InlineString: p.LocalJWKS}}}
		} else {
			clusterName := UpstreamCluster("http", p.JWKSUpstream)
			b.need(l, clusterName)
			jp.JwksSourceSpecifier = &jwt.JwtProvider_RemoteJwks{RemoteJwks: &jwt.RemoteJwks{
				HttpUri:       &core.HttpUri{Uri: p.JWKSURI, HttpUpstreamType: &core.HttpUri_Cluster{Cluster: clusterName}, Timeout: stdDur(5e9)},
				CacheDuration: dur(p.CacheDuration),
				AsyncFetch:    &jwt.JwksAsyncFetch{},
			}}
		}
		m.Providers[p.Name] = jp
	}
	add := func(providers []string) {
		if len(providers) > 0 {
			m.RequirementMap[requirementName(providers)] = requirement(providers)
		}
	}
	add(j.Require)
	for _, r := range l.Routes {
		if r.Filters.JWTAuthn != nil {
			add(r.Filters.JWTAuthn.Require)
		}
	}
	return m, nil
}

func (jwtAuthnFilter) RouteConfig(_ *build, l *config.Listener, r *config.Route) (proto.Message, error) {
	j := l.Filters.JWTAuthn
	if j == nil {
		return nil, nil
	}
	rj := r.Filters.JWTAuthn
	switch {
	case rj != nil && rj.Disabled:
		return &jwt.PerRouteConfig{RequirementSpecifier: &jwt.PerRouteConfig_Disabled{Disabled: true}}, nil
	case rj != nil && len(rj.Require) > 0:
		return &jwt.PerRouteConfig{RequirementSpecifier: &jwt.PerRouteConfig_RequirementName{RequirementName: requirementName(rj.Require)}}, nil
	case len(j.Require) > 0:
		return &jwt.PerRouteConfig{RequirementSpecifier: &jwt.PerRouteConfig_RequirementName{RequirementName: requirementName(j.Require)}}, nil
	}
	return nil, nil
}
