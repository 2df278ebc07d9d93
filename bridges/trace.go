package bridges

import (
	"net/http"
	"strings"
)

// W3C trace context travels from the HTTP request to the upstream: as
// attachments of a Dubbo call (the keys Dubbo's and OpenTelemetry's
// instrumentations read) and as NATS message headers. Only well-formed
// values within the specification's bounds go on: the client chooses
// them, so they are checked like any other input.
const (
	maxTraceState = 512  // W3C: at most 32 members; 512 characters is what implementations must propagate
	maxBaggage    = 8192 // W3C baggage: 8192 bytes
)

var traceKeys = []string{"traceparent", "tracestate", "baggage"}

// traceContext is the request's valid trace headers, by lower-case name.
func traceContext(h http.Header) map[string]string {
	if traceIDOf(h) == "" {
		return nil // no valid traceparent: tracestate and baggage mean nothing alone
	}
	out := map[string]string{"traceparent": strings.ToLower(h.Get("Traceparent"))}
	if ts := strings.Join(h.Values("Tracestate"), ","); ts != "" && len(ts) <= maxTraceState && printable(ts) {
		out["tracestate"] = ts
	}
	if b := strings.Join(h.Values("Baggage"), ","); b != "" && len(b) <= maxBaggage && printable(b) {
		out["baggage"] = b
	}
	return out
}

// printable: visible ASCII and spaces only, as both headers' grammars are.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// replyTraceContext copies an upstream's answered trace context, read
// with get, into the HTTP answer when it is well formed.
func replyTraceContext(h http.Header, get func(key string) string) {
	for _, k := range traceKeys[:2] {
		if v := get(k); v != "" && len(v) <= maxTraceState && printable(v) {
			h.Set(k, v)
		}
	}
}
