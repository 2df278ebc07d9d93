package bridges

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/protogate/protogate/config"
	dubboproto "github.com/protogate/protogate/protocols/dubbo"
	"github.com/protogate/protogate/protocols/dubbo/javatype"
)

// dubboRoute is what a Dubbo route needs at request time, parsed once.
type dubboRoute struct {
	upstream *config.DubboUpstream
	types    []*javatype.Type
	erased   []string
	returns  *javatype.Type
	wantBody bool
	// refTimeout is the longest timeout of all routes to the same service,
	// which share one reference.
	refTimeout time.Duration
}

func newDubboRoute(cfg *config.Config, r *config.Route) (*dubboRoute, error) {
	d := &dubboRoute{upstream: cfg.Upstreams.FindDubbo(r.Dubbo.Upstream)}
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
	for _, p := range r.Dubbo.Params {
		t, err := javatype.Parse(p.Type)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", r.Name, err)
		}
		d.types = append(d.types, t)
		d.erased = append(d.erased, t.Erased())
		if p.From == "body" || strings.HasPrefix(p.From, "body.") {
			d.wantBody = true
		}
	}
	return d, nil
}

// serveDubbo extracts every parameter, converts it to its declared Java
// type, calls the provider and answers with the result as JSON.
func (s *Server) serveDubbo(w http.ResponseWriter, r *http.Request, st *state, rt *route, vars map[string]string) *apiError {
	d := rt.cfg.Dubbo
	fail := func(status int, code, format string, args ...any) *apiError {
		return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...), Route: rt.cfg.Name, Upstream: d.Upstream}
	}
	var body any
	if rt.dubbo.wantBody {
		raw, aerr := readBody(w, r, int64(rt.cfg.BodyLimit), fail)
		if aerr != nil {
			return aerr
		}
		var err error
		if len(bytes.TrimSpace(raw)) > 0 {
			if body, err = decodeJSON(raw, st.table.maxDepth); err != nil {
				return fail(http.StatusBadRequest, "bad_json", "%v", err)
			}
			if at, found := dubboproto.FindClassKey(body, ""); found {
				return fail(http.StatusBadRequest, "class_not_allowed",
					"the body sets %q: Java types come from the mapping, never from a request", at)
			}
		}
	}
	conv := &dubboproto.Converter{Types: st.javaTypes}
	args := make([]any, len(d.Params))
	query := r.URL.Query()
	for i, p := range d.Params {
		name := p.Name
		if name == "" {
			name = p.From
		}
		t := rt.dubbo.types[i]
		var (
			text    string
			isText  bool
			jsonVal any
			present bool
		)
		switch src, key, _ := strings.Cut(p.From, "."); src {
		case "path":
			text, present = vars[key]
			isText = true
		case "query":
			present = query.Has(key)
			text, isText = query.Get(key), true
		case "header":
			_, present = r.Header[http.CanonicalHeaderKey(key)]
			text, isText = r.Header.Get(key), true
		case "body":
			if key == "" {
				jsonVal, present = body, body != nil
				break
			}
			obj, ok := body.(map[string]any)
			if body != nil && !ok {
				return fail(http.StatusBadRequest, "bad_json", "the body must be a JSON object with a field %q", key)
			}
			jsonVal, present = obj[key]
		}
		if !present || (!isText && jsonVal == nil) {
			if p.Optional {
				continue
			}
			return fail(http.StatusBadRequest, "missing_parameter", "parameter %s (%s) is missing", name, p.From)
		}
		var val any
		var err error
		if isText {
			val, err = conv.FromText(t, text, name)
		} else {
			val, err = conv.FromJSON(t, jsonVal, name)
		}
		if err != nil {
			return fail(http.StatusBadRequest, "bad_parameter", "%v", err)
		}
		args[i] = val
	}
	att := map[string]string{}
	for _, a := range d.Attachments {
		if v := r.Header.Get(a.Header); v != "" {
			att[a.Name] = v
		}
	}
	retries := 0
	if d.Idempotent {
		retries = d.Retries
	}
	result, err := s.dubbo.Invoke(r.Context(), &dubboproto.Call{
		Upstream: rt.dubbo.upstream, Service: d.Service, Version: d.Version, Group: d.Group, Method: d.Method,
		Types: rt.dubbo.erased, Args: args, Timeout: d.Timeout.Std(), RefTimeout: rt.dubbo.refTimeout, Retries: retries, Attachments: att,
	})
	if err != nil {
		return dubboFailure(fail, err, d)
	}
	writeJSON(w, http.StatusOK, dubboproto.TypedResultToJSON(result, rt.dubbo.returns, d.IncludeClass))
	return nil
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
	case errors.Is(err, dubboproto.ErrTimeout):
		return fail(http.StatusGatewayTimeout, "provider_timeout", "%s.%s did not answer within %s", d.Service, d.Method, d.Timeout)
	}
	return fail(http.StatusBadGateway, "upstream_error", "upstream %s: %v", d.Upstream, err)
}

// decodeJSON reads one JSON value with numbers kept exact, refusing
// trailing data and nesting deeper than maxDepth.
func decodeJSON(raw []byte, maxDepth int) (any, error) {
	if err := checkDepth(raw, maxDepth); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("the body is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("the body holds more than one JSON value")
	}
	return v, nil
}

// checkDepth counts nesting without building anything, so a hostile body
// is refused before it is decoded.
func checkDepth(raw []byte, maxDepth int) error {
	depth, inString, escaped := 0, false, false
	for _, c := range raw {
		switch {
		case escaped:
			escaped = false
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
