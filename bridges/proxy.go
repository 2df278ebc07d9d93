package bridges

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync/atomic"

	"github.com/protogate/protogate/config"
)

// proxyRoute serves a plain HTTP route when no Envoy runs (protogate run):
// the bridge proxies to the upstream's endpoints in turn. Behind Envoy
// these routes never reach a bridge.
type proxyRoute struct {
	upstream *config.HTTPUpstream
	rp       *httputil.ReverseProxy
	next     atomic.Uint64
}

func newProxyRoute(cfg *config.Config, r *config.Route) (*proxyRoute, error) {
	p := &proxyRoute{upstream: cfg.Upstreams.FindHTTP(r.HTTP.Upstream)}
	if p.upstream == nil {
		return nil, fmt.Errorf("route %q: no http upstream %q", r.Name, r.HTTP.Upstream)
	}
	scheme := "http"
	if p.upstream.TLS {
		scheme = "https"
	}
	routeHeader := cfg.Bridge.RouteHeader
	dialer := &net.Dialer{Timeout: p.upstream.ConnectTimeout.Std()}
	p.rp = &httputil.ReverseProxy{
		Transport: &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 64, ForceAttemptHTTP2: p.upstream.HTTP2},
		Rewrite: func(pr *httputil.ProxyRequest) {
			eps := p.upstream.Endpoints
			ep := eps[int(p.next.Add(1)-1)%len(eps)]
			path := pr.In.URL.Path
			if r.HTTP.PrefixRewrite != "" && r.Match.Prefix != "" {
				path = r.HTTP.PrefixRewrite + strings.TrimPrefix(path, r.Match.Prefix)
			}
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.URL.Path, pr.Out.URL.RawPath = scheme, ep, path, ""
			pr.Out.Host = ep
			if r.HTTP.HostRewrite != "" {
				pr.Out.Host = r.HTTP.HostRewrite
			}
			pr.Out.Header.Del(routeHeader)
			pr.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			status, code := http.StatusBadGateway, "upstream_unavailable"
			if errors.Is(err, context.DeadlineExceeded) {
				status, code = http.StatusGatewayTimeout, "upstream_timeout"
			}
			writeError(w, &apiError{Status: status, Code: code, Route: r.Name, Upstream: r.HTTP.Upstream,
				Message: fmt.Sprintf("HTTP upstream %s: %v", r.HTTP.Upstream, err)})
		},
	}
	return p, nil
}

func (s *Server) serveProxy(w http.ResponseWriter, r *http.Request, rt *route) *apiError {
	ctx, cancel := context.WithTimeout(r.Context(), rt.cfg.HTTP.Timeout.Std())
	defer cancel()
	rt.proxy.rp.ServeHTTP(w, r.WithContext(ctx))
	return nil
}
