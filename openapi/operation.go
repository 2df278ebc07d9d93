package openapi

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/protocols/dubbo/javatype"
	"github.com/protogate/protogate/protocols/nats/subject"
	"github.com/protogate/protogate/routetable"
)

// Header names the bridge reads for JetStream expectations.
const (
	headerExpectedStream  = "Nats-Expected-Stream"
	headerExpectedLastSeq = "Nats-Expected-Last-Sequence"
	maxIdempotencyKey     = 256
)

// tokenPattern is what a value filling a subject token may hold.
const tokenPattern = `^[A-Za-z0-9_-]+$`

// operation describes one method of a route.
func (b *builder) operation(r *routetable.Route, tpl *config.PathTemplate, method string, multi bool) (*operation, error) {
	id := r.Name
	if multi {
		id += "_" + strings.ToLower(method) // operationIds are unique per document
	}
	op := &operation{OperationID: id, Tags: []string{r.Upstream()},
		Route: routeInfo{Name: r.Name, Listener: r.Listener, Protocol: r.Protocol(), Upstream: r.Upstream(),
			Timeout: r.Timeout.String(), BodyLimit: int64(r.BodyLimit)}}
	ps := &params{}
	for _, seg := range tpl.Segments {
		if seg.Var == "" {
			continue
		}
		p := ps.add(seg.Var, "path", schema{"type": "string", "minLength": 1})
		if seg.Rest {
			p.Description = "the rest of the path: one or more segments, slashes included"
		}
	}
	var sub *subject.Template
	var err error
	switch {
	case r.Dubbo != nil:
		err = b.dubbo(op, ps, r)
	case r.NATS != nil:
		if sub, err = subject.Parse(r.NATS.Subject); err == nil {
			b.nats(op, ps, r, sub)
		}
	case r.HTTP != nil:
		b.proxy(op, r)
	}
	if err != nil {
		return nil, err
	}
	headerMatches(ps, r.Match.Headers)
	op.Parameters = ps.list
	for status, resp := range errorResponses(errorsOf(r, sub)) {
		if _, ok := op.Responses[status]; !ok {
			op.Responses[status] = resp
		}
	}
	return op, nil
}

// params are an operation's parameters in order; one (in, name) appears
// once, its schemas joined when two sources read it.
type params struct{ list []*parameter }

func (ps *params) add(name, in string, sc schema) *parameter {
	for _, p := range ps.list {
		if p.In == in && (p.Name == name || in == "header" && strings.EqualFold(p.Name, name)) {
			p.Schema = allOf(p.Schema, sc)
			return p
		}
	}
	p := &parameter{Name: name, In: in, Schema: sc, Required: in == "path"}
	ps.list = append(ps.list, p)
	return p
}

// allOf is a value both schemas take; the path's bare string adds nothing.
func allOf(a, b schema) schema {
	if isPlainString(a) {
		return b
	}
	if isPlainString(b) {
		return a
	}
	return schema{"allOf": []schema{a, b}}
}

func isPlainString(sc schema) bool {
	return sc["type"] == "string" && len(sc) <= 2 && (len(sc) == 1 || sc["minLength"] == 1)
}

func describe(p *parameter, text string) {
	if p.Description == "" {
		p.Description = text
	} else if !strings.Contains(p.Description, text) {
		p.Description += "; " + text
	}
}

// dubbo describes a generic call: its parameters from the path, query,
// headers and JSON body, and the method's result.
func (b *builder) dubbo(op *operation, ps *params, r *routetable.Route) error {
	d := r.Dubbo
	op.Summary = "dubbo " + d.Service + "." + d.Method
	op.Route.Target = d.Service + "." + d.Method
	b.tags[r.Upstream()] = "Dubbo upstream " + r.Upstream()
	var desc []string
	if d.Version != "" || d.Group != "" {
		desc = append(desc, fmt.Sprintf("Calls %s (version %q, group %q) method %s.", d.Service, d.Version, d.Group, d.Method))
	}
	body := &bodyShape{props: schema{}}
	for i, p := range d.Params {
		t, err := parse(p.Type)
		if err != nil {
			return fmt.Errorf("param %d: %w", i, err)
		}
		name := p.Name
		if name == "" {
			name = p.From
		}
		src, key, _ := strings.Cut(p.From, ".")
		switch src {
		case "path", "query", "header":
			sc, err := b.schemas.text(t)
			if err != nil {
				return fmt.Errorf("param %s: %w", name, err)
			}
			prm := ps.add(key, src, sc)
			prm.Required = prm.Required || !p.Optional
			describe(prm, fmt.Sprintf("argument %d (%s), Java type %s", i, name, t))
		case "body":
			if err := b.bodyParam(body, t, key, p, i, name); err != nil {
				return err
			}
		}
	}
	for _, a := range d.Attachments {
		prm := ps.add(a.Header, "header", schema{"type": "string"})
		describe(prm, "sent to the provider as attachment "+a.Name)
	}
	if rb := body.requestBody(r); rb != nil {
		op.RequestBody = rb
	}
	res := schema{"description": "whatever the method returned, as plain JSON (null for void or a null result)"}
	what := "What the method returned, as plain JSON: enums by name, BigDecimal and BigInteger as exact strings, " +
		"dates as RFC 3339, byte arrays base64 where the provider sent bytes (the route declares no returns type)."
	if d.Returns != "" {
		what = "What the method returned (" + d.Returns + "), as JSON in the request's own terms: enums by name, " +
			"BigDecimal and BigInteger as exact strings, dates as RFC 3339, byte[] as base64; null for a null result."
		t, err := parse(d.Returns)
		if err != nil {
			return fmt.Errorf("returns: %w", err)
		}
		if res, err = b.schemas.nullable(t, result); err != nil {
			return fmt.Errorf("returns: %w", err)
		}
	}
	op.Responses = map[string]response{"200": {Description: what, Content: jsonContent(res)}}
	if len(d.Exceptions) > 0 {
		var ex []string
		for _, e := range d.Exceptions {
			ex = append(ex, fmt.Sprintf("%s → %d", e.Class, e.Status))
		}
		desc = append(desc, "Exceptions with a status of their own: "+strings.Join(ex, ", ")+".")
	}
	if r.Retries > 0 {
		desc = append(desc, fmt.Sprintf("Idempotent: retried up to %d times on another provider.", r.Retries))
	}
	op.Description = strings.Join(desc, " ")
	return nil
}

// bodyShape is what a Dubbo route reads of the JSON body: the whole body
// as one argument, or fields of an object, one argument each.
type bodyShape struct {
	whole         schema
	wholeRequired bool
	props         schema
	required      []string
}

func (b *builder) bodyParam(body *bodyShape, t *javatype.Type, field string, p config.DubboParam, i int, name string) error {
	var sc schema
	var err error
	if p.Optional {
		sc, err = b.schemas.nullable(t, request)
	} else {
		sc, err = b.schemas.value(t, request) // null counts as missing
	}
	if err != nil {
		return fmt.Errorf("param %s: %w", name, err)
	}
	if field == "" {
		body.whole, body.wholeRequired = sc, !p.Optional
		return nil
	}
	body.props[field] = withDescription(sc, fmt.Sprintf("argument %d (%s), Java type %s", i, name, t))
	if !p.Optional {
		body.required = append(body.required, field)
	}
	return nil
}

// withDescription puts a description beside a schema's own (beside a
// $ref too: OpenAPI 3.1's schemas allow it).
func withDescription(sc schema, text string) schema {
	out := clone(sc)
	if own, ok := sc["description"].(string); ok {
		text += ": " + own
	}
	out["description"] = text
	return out
}

func (s *bodyShape) requestBody(r *routetable.Route) *requestBody {
	limit := fmt.Sprintf("at most %s", r.BodyLimit)
	switch {
	case s.whole != nil && len(s.props) == 0:
		return &requestBody{Required: s.wholeRequired, Description: "The argument, as JSON; " + limit + ".",
			Content: jsonContent(s.whole)}
	case len(s.props) > 0:
		obj := schema{"type": "object", "properties": s.props, "additionalProperties": false}
		if len(s.required) > 0 {
			obj["required"] = s.required
		}
		if s.whole != nil {
			obj = schema{"allOf": []schema{obj, s.whole}}
		}
		return &requestBody{Required: len(s.required) > 0 || s.wholeRequired,
			Description: "A JSON object whose fields are the arguments; any other field is refused; " + limit + ".",
			Content:     jsonContent(obj)}
	}
	return nil
}

// nats describes a publish or request: the subject's variables, the
// headers the bridge reads or copies, the raw body, and the answer.
func (b *builder) nats(op *operation, ps *params, r *routetable.Route, sub *subject.Template) {
	n := r.NATS
	op.Summary = "nats " + n.Mode + " " + n.Subject
	op.Route.Target = n.Subject
	b.tags[r.Upstream()] = "NATS upstream " + r.Upstream()
	token := schema{"type": "string", "pattern": tokenPattern, "maxLength": n.MaxTokenLength}
	for _, tok := range sub.Tokens {
		var prm *parameter
		switch tok.Source {
		case subject.FromPath:
			prm = ps.add(tok.Name, "path", token)
		case subject.FromQuery:
			prm = ps.add(tok.Name, "query", token)
		case subject.FromHeader:
			prm = ps.add(tok.Name, "header", token)
		default:
			continue
		}
		prm.Required = true
		describe(prm, "fills a token of the subject "+n.Subject)
	}
	for _, h := range n.Headers {
		describe(ps.add(h, "header", schema{"type": "string"}), "copied to the message")
	}
	op.RequestBody = &requestBody{
		Description: fmt.Sprintf("The message data, sent unchanged (any content; its Content-Type is copied to the message); at most %s, or the NATS server's max_payload.", r.BodyLimit),
		Content:     map[string]mediaType{"*/*": {Schema: schema{}}},
	}
	switch n.Mode {
	case config.NATSModeCore:
		op.Responses = map[string]response{"202": {Description: "Published, at most once: nothing confirms a subscriber got it.",
			Content: jsonContent(schema{"$ref": "#/components/schemas/CorePublish"})}}
		b.schemas.defs["CorePublish"] = corePublishSchema()
	case config.NATSModeRequest:
		hs := map[string]header{}
		for _, h := range n.ReplyHeaders {
			hs[h] = header{Description: "copied from the reply", Schema: schema{"type": "string"}}
		}
		anyBody := map[string]mediaType{"*/*": {Schema: schema{}}}
		op.Responses = map[string]response{
			"200": {Description: "The reply's data, with its Content-Type (application/octet-stream when it has none).", Headers: hs, Content: anyBody},
			"4XX": {Description: "The service's own error answer, with the status it gave.", Content: anyBody},
			"5XX": {Description: "The service's own error answer, with the status it gave.", Content: anyBody},
		}
	default:
		describe(ps.add(n.IdempotencyHeader, "header", schema{"type": "string", "maxLength": maxIdempotencyKey}),
			"the message's Nats-Msg-Id: a retry with the same value is stored once")
		describe(ps.add(headerExpectedStream, "header", schema{"type": "string"}), "publish only if the subject's stream is this one")
		describe(ps.add(headerExpectedLastSeq, "header", schema{"type": "string", "pattern": "^[0-9]+$"}),
			"publish only if the stream's last sequence is this one")
		op.Responses = map[string]response{"201": {Description: "Stored: the stream's acknowledgement.",
			Content: jsonContent(schema{"$ref": "#/components/schemas/PublishAck"})}}
		b.schemas.defs["PublishAck"] = publishAckSchema()
	}
	op.Description = fmt.Sprintf("Publishes to NATS subject %s (mode %s).", n.Subject, n.Mode)
}

// proxy describes a plain HTTP route: what the upstream answers is its own.
func (b *builder) proxy(op *operation, r *routetable.Route) {
	op.Summary = "http " + r.HTTP.Upstream
	op.Route.Target = r.HTTP.Upstream
	b.tags[r.Upstream()] = "HTTP upstream " + r.Upstream()
	op.Description = "Proxied to the HTTP upstream as it is; its answers are its own. Behind Envoy, Envoy proxies it and its own errors apply."
	op.Responses = map[string]response{"default": {Description: "The upstream's answer."}}
}

// headerMatches are the route's header conditions: a request whose headers
// do not fit is not this route's (a 404 when nothing else takes it).
func headerMatches(ps *params, hs []config.HeaderMatch) {
	for _, h := range hs {
		var sc schema
		switch {
		case h.Present:
			sc = schema{"type": "string"}
		case h.Exact != "":
			sc = schema{"type": "string", "enum": []any{h.Exact}}
		case h.Prefix != "":
			sc = schema{"type": "string", "pattern": "^" + regexp.QuoteMeta(h.Prefix)}
		case h.Regex != "":
			sc = schema{"type": "string", "pattern": anchored(h.Regex)}
		}
		text := "must match the route's header condition"
		if h.Invert {
			// Present and inverted: the header must be absent.
			if h.Present {
				sc = schema{"not": schema{}}
				text = "must be absent"
			} else {
				sc = schema{"not": sc}
				text = "must not match the route's header condition"
			}
		}
		prm := ps.add(h.Name, "header", sc)
		prm.Required = prm.Required || !h.Invert
		describe(prm, text)
	}
}

// anchored makes an RE2 expression match the whole value, as Envoy's
// safe_regex does, for a JSON Schema pattern (which searches).
func anchored(re string) string {
	return "^(?:" + re + ")$"
}

func publishAckSchema() schema {
	return schema{"type": "object", "required": []string{"stream", "seq", "duplicate"},
		"description": "A JetStream acknowledgement: the message is stored.",
		"properties": schema{
			"stream":    schema{"type": "string", "description": "the stream that stored it"},
			"seq":       schema{"type": "integer", "minimum": 0, "description": "its sequence in the stream"},
			"duplicate": schema{"type": "boolean", "description": "true when the idempotency key was seen already: nothing new was stored"},
		}}
}

func corePublishSchema() schema {
	return schema{"type": "object", "required": []string{"subject", "delivery"},
		"description": "A core NATS publish, sent at most once.",
		"properties": schema{
			"subject":  schema{"type": "string", "description": "the subject published to"},
			"delivery": schema{"const": "at-most-once"},
		}}
}
