package bridges

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"time"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/routetable"
)

// proxyRoute serves a plain HTTP route when no Envoy runs (protogate run):
// the bridge proxies to the upstream's endpoints in turn. Behind Envoy
// these routes never reach a bridge.
type proxyRoute struct {
	upstream *config.HTTPUpstream
	rp       *httputil.ReverseProxy
	next     atomic.Uint64
}

// transportFor gives an HTTP upstream's transport: the one its settings'
// digest already has, or a new one.
type transportFor func(*routetable.HTTPUpstream) *http.Transport

// newTransport is the connection pool to one HTTP upstream.
func newTransport(u *config.HTTPUpstream) *http.Transport {
	dialer := &net.Dialer{Timeout: u.ConnectTimeout.Std()}
	return &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 64, ForceAttemptHTTP2: u.HTTP2}
}

func newProxyRoute(t *routetable.Table, r *routetable.Route, log *slog.Logger, transport transportFor) (*proxyRoute, error) {
	p := &proxyRoute{}
	row := t.HTTPUpstream(r.HTTP.Upstream)
	if row == nil {
		return nil, fmt.Errorf("route %q: no http upstream %q", r.Name, r.HTTP.Upstream)
	}
	p.upstream = &row.HTTPUpstream
	if len(p.upstream.Endpoints) == 0 {
		// Rewrite picks an endpoint per request; none would be a panic there.
		return nil, fmt.Errorf("route %q: http upstream %q has no endpoints", r.Name, r.HTTP.Upstream)
	}
	scheme := "http"
	if p.upstream.TLS {
		scheme = "https"
	}
	routeHeader := t.RouteHeader
	p.rp = &httputil.ReverseProxy{
		Transport: transport(row),
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
			// The endpoint's address is for the operator, not the client:
			// the log has it, the body names the upstream (writeError
			// removes addresses from the message).
			log.Debug("http upstream call failed", "route", r.Name, "upstream", r.HTTP.Upstream, "err", err)
			writeError(w, proxyFailure(r, err))
		},
	}
	return p, nil
}

// proxyFailure is the answer for a request the upstream did not serve.
func proxyFailure(r *routetable.Route, err error) *apiError {
	e := &apiError{Status: http.StatusBadGateway, Code: "upstream_unavailable", Route: r.Name, Upstream: r.HTTP.Upstream,
		Message: fmt.Sprintf("HTTP upstream %s did not answer: %v", r.HTTP.Upstream, err)}
	if errors.Is(err, context.DeadlineExceeded) {
		e.Status, e.Code = http.StatusGatewayTimeout, "upstream_timeout"
		e.Message = fmt.Sprintf("HTTP upstream %s did not answer within %s", r.HTTP.Upstream, r.HTTP.Timeout)
	}
	return e
}

func (s *Server) serveProxy(w http.ResponseWriter, r *http.Request, rt *route) *apiError {
	ctx, cancel := context.WithTimeout(r.Context(), rt.row.Timeout.Std())
	defer cancel()
	began := time.Now()
	rt.proxy.rp.ServeHTTP(w, r.WithContext(ctx))
	s.metrics.observeUpstream(rt.upstream(), "http", "proxy", began)
	return nil
}
