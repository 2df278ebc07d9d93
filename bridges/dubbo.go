package bridges

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go.opentelemetry.io/otel/attribute"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/protogate/protogate/config"
	dubboproto "github.com/protogate/protogate/protocols/dubbo"
	"github.com/protogate/protogate/protocols/dubbo/javatype"
	"github.com/protogate/protogate/routetable"
)

// dubboRoute is what a Dubbo route needs at request time, parsed once.
type dubboRoute struct {
	upstream *config.DubboUpstream
	// endpoints are the providers the control plane found in the
	// upstream's registry for this service (nil: none looked for).
	endpoints []string
	types     []*javatype.Type
	erased    []string
	returns   *javatype.Type
	wantBody  bool
	// bodyFields are the top-level body fields the parameters read, when
	// they read it field by field: any other field is a mistake.
	bodyFields []string
	// params say where each parameter comes from, read once.
	params []dubboParam
	// readsQuery: a parameter comes from the query string, which is
	// then parsed.
	readsQuery bool
	// addrs are the upstream's URLs as HOST:PORT, read once (nil for a
	// registry upstream, or URLs the invoker reports as wrong per call).
	addrs []string
	// spanName is the client span's, service/method.
	spanName string
}

// dubboParam is where a parameter comes from: src is path, query, header
// or body, key the name after the dot.
type dubboParam struct {
	src, key string
	header   string // key as a canonical header name
	name     string // the name messages give
}

func newDubboRoute(t *routetable.Table, r *routetable.Route) (*dubboRoute, error) {
	d := &dubboRoute{}
	if u := t.DubboUpstream(r.Dubbo.Upstream); u != nil {
		d.upstream = &u.DubboUpstream
		if u.Registry != "" {
			d.endpoints = u.Providers(r.Dubbo)
		}
	}
	if d.upstream == nil {
		return nil, fmt.Errorf("route %q: no dubbo upstream %q", r.Name, r.Dubbo.Upstream)
	}
	if r.Dubbo.Returns != "" {
		t, err := javatype.Parse(r.Dubbo.Returns)
		if err != nil {
			return nil, fmt.Errorf("route %q: returns: %w", r.Name, err)
		}
		d.returns = t
	}
	if d.upstream.Registry == "" {
		if addrs, err := dubboproto.ProviderAddrs(d.upstream.URLs); err == nil {
			d.addrs = addrs
		}
	}
	d.spanName = r.Dubbo.Service + "/" + r.Dubbo.Method
	for _, p := range r.Dubbo.Params {
		src, key, _ := strings.Cut(p.From, ".")
		dp := dubboParam{src: src, key: key, name: p.Name}
		if dp.name == "" {
			dp.name = p.From
		}
		switch src {
		case "header":
			dp.header = http.CanonicalHeaderKey(key)
		case "query":
			d.readsQuery = true
		}
		d.params = append(d.params, dp)
		t, err := javatype.Parse(p.Type)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", r.Name, err)
		}
		d.types = append(d.types, t)
		d.erased = append(d.erased, t.Erased())
		if p.From == "body" || strings.HasPrefix(p.From, "body.") {
			d.wantBody = true
		}
		if f, ok := strings.CutPrefix(p.From, "body."); ok {
			d.bodyFields = append(d.bodyFields, f)
		}
	}
	return d, nil
}

// serveDubbo extracts every parameter, converts it to its declared Java
// type, calls the provider and answers with the result as JSON.
func (s *Server) serveDubbo(w http.ResponseWriter, r *http.Request, st *state, rt *route, vars map[string]string) *apiError {
	d := rt.row.Dubbo
	f := dubboFail{route: rt.row.Name, upstream: d.Upstream}
	body, aerr := dubboBody(w, r, st, rt, f)
	if aerr != nil {
		return aerr
	}
	args, aerr := dubboArgs(r, st, rt, vars, body, f)
	if aerr != nil {
		return aerr
	}
	att, endSpan := dubboSpan(st, r, rt)
	for _, a := range d.Attachments {
		if _, trace := att[strings.ToLower(a.Name)]; trace {
			continue
		}
		if v := r.Header.Get(a.Header); v != "" {
			if att == nil {
				att = make(map[string]string, len(d.Attachments))
			}
			att[a.Name] = v
		}
	}
	began := time.Now()
	call := &dubboproto.Call{
		Upstream: rt.dubbo.upstream, Service: d.Service, Version: d.Version, Group: d.Group, Method: d.Method,
		Types: rt.dubbo.erased, Args: args, Timeout: rt.row.Timeout.Std(), Retries: rt.row.Retries, Attachments: att,
		Endpoints: rt.dubbo.endpoints, URLAddrs: rt.dubbo.addrs,
	}
	result, err := s.dubbo.Invoke(r.Context(), call)
	s.metrics.observeUpstream(d.Upstream, "dubbo", "call", began)
	endSpan(err)
	if err != nil {
		return dubboFailure(f.fail, err, &d.DubboTarget)
	}
	replyTraceContext(w.Header(), func(k string) string { return call.Reply[k] }) // the provider's, when it sends one back
	conv := dubboproto.Converter{Types: st.javaTypes}
	writeJSON(w, http.StatusOK, conv.Result(result, rt.dubbo.returns, d.IncludeClass))
	return nil
}

// dubboFail makes the errors of one route's requests.
type dubboFail struct{ route, upstream string }

func (f dubboFail) fail(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...), Route: f.route, Upstream: f.upstream}
}

// dubboBody reads and decodes the JSON body of a route whose parameters
// read it; nil when they do not, or when it is empty.
func dubboBody(w http.ResponseWriter, r *http.Request, st *state, rt *route, f dubboFail) (any, *apiError) {
	if !rt.dubbo.wantBody {
		return nil, nil
	}
	raw, aerr := readBody(w, r, int64(rt.row.BodyLimit), f.fail)
	if aerr != nil || len(bytes.TrimSpace(raw)) == 0 {
		return nil, aerr
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		return nil, f.fail(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"this route reads a JSON body: send Content-Type: application/json")
	}
	body, err := decodeJSON(raw, st.table.maxDepth)
	if err != nil {
		return nil, f.fail(http.StatusBadRequest, "bad_json", "%v", err)
	}
	if obj, ok := body.(map[string]any); ok && len(rt.dubbo.bodyFields) > 0 && !onlyFields(obj, rt.dubbo.bodyFields) {
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			if !slices.Contains(rt.dubbo.bodyFields, k) {
				if dubboproto.IsClassKey(k) {
					return nil, f.fail(http.StatusBadRequest, "class_not_allowed", "the body sets %q: Java types come from the mapping, never from a request", k)
				}
				return nil, f.fail(http.StatusBadRequest, "unknown_field", "the body has a field %q this route does not take (it takes %s)", k, strings.Join(rt.dubbo.bodyFields, ", "))
			}
		}
	}
	return body, nil
}

// onlyFields reports whether every key of obj is one of fields.
func onlyFields(obj map[string]any, fields []string) bool {
	for k := range obj {
		if !slices.Contains(fields, k) {
			return false
		}
	}
	return true
}

// dubboArgs extracts every parameter and converts it to its declared type.
func dubboArgs(r *http.Request, st *state, rt *route, vars map[string]string, body any, f dubboFail) ([]any, *apiError) {
	d := rt.row.Dubbo
	conv := dubboproto.Converter{Types: st.javaTypes}
	args := make([]any, len(d.Params))
	var query url.Values
	if rt.dubbo.readsQuery {
		query = r.URL.Query()
	}
	for i, p := range d.Params {
		dp := &rt.dubbo.params[i]
		t := rt.dubbo.types[i]
		var (
			text    string
			isText  bool
			jsonVal any
			present bool
		)
		switch dp.src {
		case "path":
			text, present = vars[dp.key]
			isText = true
		case "query":
			present = query.Has(dp.key)
			text, isText = query.Get(dp.key), true
		case "header":
			_, present = r.Header[dp.header]
			text, isText = r.Header.Get(dp.key), true
		case "body":
			if dp.key == "" {
				jsonVal, present = body, body != nil
				break
			}
			obj, ok := body.(map[string]any)
			if body != nil && !ok {
				return nil, f.fail(http.StatusBadRequest, "bad_json", "the body must be a JSON object with a field %q", dp.key)
			}
			jsonVal, present = obj[dp.key]
		}
		if !present || (!isText && jsonVal == nil) {
			if p.Optional {
				continue
			}
			return nil, f.fail(http.StatusBadRequest, "missing_parameter", "parameter %s (%s) is missing", dp.name, p.From)
		}
		var val any
		var err error
		if isText {
			val, err = conv.FromText(t, text, dp.name)
		} else {
			val, err = conv.FromJSON(t, jsonVal, dp.name)
		}
		if err != nil {
			return nil, paramFailure(f, err)
		}
		args[i] = val
	}
	return args, nil
}

func paramFailure(f dubboFail, err error) *apiError {
	var classKey *dubboproto.ClassKeyError
	if errors.As(err, &classKey) {
		return f.fail(http.StatusBadRequest, "class_not_allowed", "%v", err)
	}
	return f.fail(http.StatusBadRequest, "bad_parameter", "%v", err)
}

// dubboSpan starts the client span, when tracing is on, and returns the
// trace context the provider gets (nil when there is none); the route's
// own attachments may not overwrite it.
func dubboSpan(st *state, r *http.Request, rt *route) (map[string]string, func(error)) {
	if st.tracing == nil {
		return clientSpan(st, r, rt.dubbo.spanName)
	}
	d := rt.row.Dubbo
	return clientSpan(st, r, rt.dubbo.spanName, attribute.String("rpc.system", "apache_dubbo"),
		attribute.String("rpc.service", d.Service), attribute.String("rpc.method", d.Method), attribute.String("protogate.upstream", d.Upstream))
}

func dubboFailure(fail func(int, string, string, ...any) *apiError, err error, d *config.DubboTarget) *apiError {
	var pe *dubboproto.ProviderError
	switch {
	case errors.As(err, &pe):
		status := http.StatusBadGateway
		for _, e := range d.Exceptions {
			if e.Class == pe.Class {
				status = e.Status
			}
		}
		what := pe.Class
		if what == "" {
			what = "an exception"
		}
		return fail(status, "provider_exception", "%s.%s threw %s: %s", d.Service, d.Method, what, pe.Message)
	case errors.Is(err, dubboproto.ErrNoProvider):
		return fail(http.StatusServiceUnavailable, "no_provider", "no provider of %s on upstream %s is reachable", d.Service, d.Upstream)
	case errors.Is(err, dubboproto.ErrServiceNotFound):
		return fail(http.StatusNotFound, "no_such_service", "upstream %s has no provider of %s with version %q and group %q", d.Upstream, d.Service, d.Version, d.Group)
	case errors.Is(err, dubboproto.ErrResponseTooLarge):
		var tl *dubboproto.ResponseTooLargeError
		if errors.As(err, &tl) && tl.Size > 0 {
			return fail(http.StatusBadGateway, "response_too_large", "%s.%s answered with %s, over upstream %s's max_response_size of %s",
				d.Service, d.Method, config.Size(tl.Size), d.Upstream, config.Size(tl.Limit))
		}
		return fail(http.StatusBadGateway, "response_too_large", "%s.%s answered with more than upstream %s's max_response_size", d.Service, d.Method, d.Upstream)
	case errors.Is(err, dubboproto.ErrTimeout):
		return fail(http.StatusGatewayTimeout, "provider_timeout", "%s.%s did not answer within %s", d.Service, d.Method, d.Timeout)
	}
	var rl *dubboproto.RequestTooLargeError
	if errors.As(err, &rl) {
		return fail(http.StatusRequestEntityTooLarge, "request_too_large", "the arguments of %s.%s encode to %s, over the Dubbo protocol's limit of %s; nothing was sent",
			d.Service, d.Method, config.Size(rl.Size), config.Size(rl.Limit))
	}
	return fail(http.StatusBadGateway, "upstream_error", "upstream %s: %v", d.Upstream, err)
}

// decodeJSON reads one JSON value with numbers kept exact, strictly:
// invalid UTF-8, a lone surrogate escape, a key twice in one object,
// trailing data and nesting deeper than maxDepth are each refused, where
// encoding/json would repair or keep the last silently.
func decodeJSON(raw []byte, maxDepth int) (any, error) {
	if !utf8.Valid(raw) {
		return nil, fmt.Errorf("the body is not valid UTF-8")
	}
	if err := checkDepth(raw, maxDepth); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeValue(dec, "")
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("the body holds more than one JSON value")
	}
	return v, nil
}

// decodeValue reads one value token by token, so duplicate keys are seen.
func decodeValue(dec *json.Decoder, path string) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("the body is not valid JSON: %v", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("the body is not valid JSON: %v", err)
				}
				k := kt.(string)
				p := k
				if path != "" {
					p = path + "." + k
				}
				if _, dup := obj[k]; dup {
					return nil, fmt.Errorf("%s appears twice in one object", p)
				}
				if obj[k], err = decodeValue(dec, p); err != nil {
					return nil, err
				}
			}
			_, err = dec.Token() // }
			return obj, err
		case '[':
			list := []any{}
			for i := 0; dec.More(); i++ {
				v, err := decodeValue(dec, fmt.Sprintf("%s[%d]", path, i))
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			_, err = dec.Token() // ]
			return list, err
		}
		return nil, fmt.Errorf("the body is not valid JSON")
	}
	return tok, nil
}

func isJSON(contentType string) bool {
	if contentType == "application/json" {
		return true // what nearly every client sends, without a parse
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// checkDepth counts nesting without building anything, so a hostile body
// is refused before it is decoded; on the way it refuses \u escapes of lone
// surrogates, which encoding/json would turn into U+FFFD.
func checkDepth(raw []byte, maxDepth int) error {
	depth, inString, escaped := 0, false, false
	for i, c := range raw {
		switch {
		case escaped:
			escaped = false
			if c == 'u' {
				if err := checkSurrogate(raw, i+1); err != nil {
					return err
				}
			}
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			if depth > maxDepth {
				return fmt.Errorf("the body nests deeper than %d levels", maxDepth)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// checkSurrogate looks at the 4 hex digits of a \u escape at raw[at:]: a
// high surrogate must be followed by an escaped low one, and a low one must
// not stand alone (it is checked as the second half of a pair here).
func checkSurrogate(raw []byte, at int) error {
	r, ok := hex4(raw, at)
	switch {
	case !ok:
		return nil // not valid JSON; the decoder says so
	case r >= 0xD800 && r <= 0xDBFF:
		if at+10 <= len(raw) && raw[at+4] == '\\' && raw[at+5] == 'u' {
			if lo, ok := hex4(raw, at+6); ok && lo >= 0xDC00 && lo <= 0xDFFF {
				return nil
			}
		}
		return fmt.Errorf("the body holds a lone surrogate escape (\\u%04X): not a character", r)
	case r >= 0xDC00 && r <= 0xDFFF:
		if at >= 8 && raw[at-8] == '\\' && raw[at-7] == 'u' {
			if hi, ok := hex4(raw, at-6); ok && hi >= 0xD800 && hi <= 0xDBFF {
				return nil
			}
		}
		return fmt.Errorf("the body holds a lone surrogate escape (\\u%04X): not a character", r)
	}
	return nil
}

func hex4(raw []byte, at int) (rune, bool) {
	if at+4 > len(raw) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(raw[at:at+4]), 16, 32)
	return rune(n), err == nil
}
