package bridges

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/routetable"
)

// requestInfo is what the access log and the metrics say of a request,
// filled in as it is served.
type requestInfo struct {
	route, upstream, protocol string
	// target is the Dubbo method (Service.method) or the NATS subject
	// template: what was called, without the request's values.
	target  string
	errCode string
	traceID string
	method  string
	// bytesIn is counted as the body is read, which an HTTP upstream's
	// transport may still do after the handler returned.
	bytesIn atomic.Int64
	// accessLog is the route's listener's setting; nil: off.
	accessLog *config.AccessLog
	// rt is the route whose names the labels are, for its cached metrics.
	rt *route
	// bodyTimeout is the bridge's body_timeout, for readBody.
	bodyTimeout time.Duration
}

type requestInfoKey struct{}

// infoOf is the request's info; a request served outside ServeHTTP (a
// test calling a handler) gets a throwaway one.
func infoOf(r *http.Request) *requestInfo {
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

func withInfo(r *http.Request, info *requestInfo) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))
}

// routeKnown fills what the route tells.
func (info *requestInfo) routeKnown(rt *route) {
	info.route, info.upstream = rt.row.Name, rt.upstream()
	info.accessLog = rt.row.AccessLog
	info.protocol, info.target = rt.protocol, rt.target
	info.rt = rt
}

// protocolAndTarget are what the access log and the metrics name a
// route's protocol and target by; computed once per route.
func protocolAndTarget(row *routetable.Route) (protocol, target string) {
	switch {
	case row.Dubbo != nil:
		return "dubbo", row.Dubbo.Service + "." + row.Dubbo.Method
	case row.NATS != nil:
		return "nats", row.NATS.Subject
	case row.HTTP != nil:
		return "http", ""
	}
	return "", ""
}

// accessLog writes the request's line when its listener logs requests: a
// share of them, and every 5xx whatever the share.
func (s *Server) accessLog(ctx context.Context, info *requestInfo, status int, bytesOut int64, took time.Duration) {
	al := info.accessLog
	if al == nil || (status < 500 && al.SamplePercent < 100 && rand.Float64()*100 >= al.SamplePercent) {
		return
	}
	s.access.LogAttrs(ctx, slog.LevelInfo, "access",
		slog.String("route", info.route),
		slog.String("upstream", info.upstream),
		slog.String("protocol", info.protocol),
		slog.String("target", info.target),
		slog.String("method", info.method),
		slog.Int("status", status),
		slog.String("error", info.errCode),
		slog.Duration("duration", took),
		slog.Int64("bytes_in", info.bytesIn.Load()),
		slog.Int64("bytes_out", bytesOut),
		slog.String("trace_id", info.traceID),
	)
}

// countingBody counts the request body bytes read. ServeHTTP keeps it in
// the request's exchange and installs a pointer: no allocation of its own.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// traceIDOf reads the trace id of a W3C traceparent header
// (00-TRACEID-SPANID-FLAGS); "" when there is none or it is malformed.
func traceIDOf(h http.Header) string {
	tp := h.Get("Traceparent")
	if len(tp) != 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' {
		return ""
	}
	id := tp[3:35]
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return ""
		}
	}
	if id == "00000000000000000000000000000000" {
		return ""
	}
	return id
}
