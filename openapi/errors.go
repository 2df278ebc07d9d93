package openapi

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/protocols/nats/subject"
	"github.com/protogate/protogate/routetable"
)

// failures collects the error codes a route can answer with, by status, as
// the bridge's handlers (bridges/dubbo.go, nats.go, proxy.go, errors.go)
// give them.
type failures map[int][]string

func (f failures) add(status int, codes ...string) {
	for _, c := range codes {
		if !slices.Contains(f[status], c) {
			f[status] = append(f[status], c)
		}
	}
}

// errorsOf lists every error status a route can give, with its codes.
func errorsOf(r *routetable.Route, sub *subject.Template) failures {
	f := failures{}
	f.add(http.StatusServiceUnavailable, "overloaded") // past max_in_flight, any route
	if len(r.Match.Headers) > 0 {
		// The path and method fit, the headers do not.
		f.add(http.StatusNotFound, "not_found")
	}
	switch {
	case r.Dubbo != nil:
		dubboErrors(f, r.Dubbo)
	case r.NATS != nil:
		natsErrors(f, r.NATS, sub)
	case r.HTTP != nil:
		f.add(http.StatusBadGateway, "upstream_unavailable")
		f.add(http.StatusGatewayTimeout, "upstream_timeout")
	}
	return f
}

// bodyErrors are readBody's: a body over the limit, too slow, unreadable.
func bodyErrors(f failures) {
	f.add(http.StatusBadRequest, "bad_body")
	f.add(http.StatusRequestTimeout, "body_timeout")
	f.add(http.StatusRequestEntityTooLarge, "body_too_large")
}

func dubboErrors(f failures, d *routetable.DubboCall) {
	readsBody := false
	for _, p := range d.Params {
		if p.From == "body" || strings.HasPrefix(p.From, "body.") {
			readsBody = true
		}
	}
	if readsBody {
		bodyErrors(f)
		f.add(http.StatusBadRequest, "bad_json")
		f.add(http.StatusUnsupportedMediaType, "unsupported_media_type")
	}
	for _, p := range d.Params {
		if strings.HasPrefix(p.From, "body.") {
			f.add(http.StatusBadRequest, "unknown_field")
		}
	}
	if len(d.Params) > 0 {
		f.add(http.StatusBadRequest, "missing_parameter", "bad_parameter")
	}
	if readsBody {
		// Only a body can name a type, or outgrow a Dubbo frame.
		f.add(http.StatusBadRequest, "class_not_allowed")
		f.add(http.StatusRequestEntityTooLarge, "request_too_large")
	}
	f.add(http.StatusBadGateway, "provider_exception")
	for _, e := range d.Exceptions {
		f.add(e.Status, "provider_exception")
	}
	f.add(http.StatusServiceUnavailable, "no_provider")
	f.add(http.StatusNotFound, "no_such_service")
	f.add(http.StatusBadGateway, "response_too_large", "upstream_error")
	f.add(http.StatusGatewayTimeout, "provider_timeout")
}

func natsErrors(f failures, n *config.NATSTarget, sub *subject.Template) {
	bodyErrors(f)
	if sub != nil && slices.ContainsFunc(sub.Tokens, subject.Token.IsVar) {
		f.add(http.StatusBadRequest, "invalid_subject_token")
	}
	f.add(http.StatusBadRequest, "subject_too_long")
	f.add(http.StatusRequestHeaderFieldsTooLarge, "headers_too_large")
	f.add(http.StatusServiceUnavailable, "upstream_unavailable")
	switch n.Mode {
	case config.NATSModeCore:
	case config.NATSModeRequest:
		f.add(http.StatusServiceUnavailable, "no_responders")
		f.add(http.StatusGatewayTimeout, "reply_timeout")
		f.add(http.StatusBadGateway, "reply_lost", "service_error")
	default:
		f.add(http.StatusBadRequest, "bad_idempotency_key", "bad_expected_sequence")
		f.add(http.StatusConflict, "idempotency_conflict", "expectation_failed")
		f.add(http.StatusServiceUnavailable, "ack_lost", "no_stream")
		f.add(http.StatusGatewayTimeout, "ack_timeout")
	}
	f.add(http.StatusBadGateway, "upstream_error")
}

// codeText says what each error code means, for the responses' descriptions.
var codeText = map[string]string{
	"overloaded":             "the bridge serves as many requests as it may; retry shortly",
	"not_found":              "the request does not match the route's headers",
	"bad_body":               "the body could not be read",
	"body_timeout":           "the body did not arrive within the bridge's body_timeout",
	"body_too_large":         "the body is over the route's body limit (a NATS route's also over the server's max_payload)",
	"bad_json":               "the body is not one strict JSON value (invalid UTF-8, a lone surrogate, a key twice, too deep) or not the object the route reads",
	"unsupported_media_type": "the body is not sent as application/json",
	"unknown_field":          "the body has a field no parameter reads",
	"missing_parameter":      "a required parameter is missing or null",
	"bad_parameter":          "a value does not fit its Java type (wrong JSON type, out of range, not an enum constant, an unknown POJO field)",
	"class_not_allowed":      "the body names a Java type (a class, @type, _class or $class key)",
	"request_too_large":      "the arguments encode to more than the Dubbo protocol's frame; nothing was sent",
	"provider_exception":     "the provider threw an exception (its class and message are in the message)",
	"no_provider":            "no provider of the service is reachable",
	"no_such_service":        "the upstream has no provider of this service version and group",
	"response_too_large":     "the provider's answer is over the upstream's max_response_size",
	"upstream_error":         "the upstream failed in another way",
	"provider_timeout":       "the provider did not answer within the route's timeout",
	"invalid_subject_token":  "a subject variable is missing, too long, or holds more than letters, digits, - and _",
	"subject_too_long":       "the subject would be over the NATS server's control line",
	"headers_too_large":      "the headers copied to the message are too large for the NATS server",
	"upstream_unavailable":   "the upstream is not connected or did not answer; nothing was sent",
	"no_responders":          "no service answers requests on the subject",
	"reply_timeout":          "the service did not answer within the route's timeout",
	"reply_lost":             "the connection was lost before the reply came",
	"service_error":          "the service answered with an error",
	"bad_idempotency_key":    "the idempotency header is over 256 characters",
	"bad_expected_sequence":  "Nats-Expected-Last-Sequence is not a whole number",
	"idempotency_conflict":   "the idempotency key was used for another message",
	"expectation_failed":     "the stream is not the one expected, or its last sequence differs",
	"ack_lost":               "the connection was lost before the stream's acknowledgement; the message may be stored",
	"no_stream":              "no JetStream stream takes the subject; nothing was stored",
	"ack_timeout":            "no acknowledgement within the route's timeout; the message may be stored",
	"upstream_timeout":       "the HTTP upstream did not answer within the route's timeout",
}

// errorResponses turns the failures into OpenAPI responses, each with the
// error body's schema and its codes listed.
func errorResponses(f failures) map[string]response {
	out := map[string]response{}
	for status, codes := range f {
		var b strings.Builder
		fmt.Fprintf(&b, "%s. The error's code is one of:", http.StatusText(status))
		for _, c := range codes {
			fmt.Fprintf(&b, "\n- `%s`: %s", c, codeText[c])
		}
		resp := response{Description: b.String(), Content: jsonContent(schema{"$ref": "#/components/schemas/Error"})}
		if status == http.StatusServiceUnavailable {
			resp.Headers = map[string]header{"Retry-After": {Description: "seconds to wait before retrying, where a retry will likely work",
				Schema: schema{"type": "integer", "minimum": 0}}}
		}
		out[strconv.Itoa(status)] = resp
	}
	return out
}

// errorSchema is the body of every error the bridge answers with.
func errorSchema() schema {
	return schema{
		"type":        "object",
		"description": "An error answered by the bridge: what the request got wrong (4xx), or which upstream failed (5xx).",
		"required":    []string{"error"},
		"properties": schema{"error": schema{
			"type":     "object",
			"required": []string{"code", "message"},
			"properties": schema{
				"code":     schema{"type": "string", "description": "a stable code to act on, such as bad_parameter or no_provider"},
				"message":  schema{"type": "string", "description": "what went wrong, for people"},
				"route":    schema{"type": "string", "description": "the route's name, when one was matched"},
				"upstream": schema{"type": "string", "description": "the upstream the route calls"},
			},
		}},
	}
}
