// Package openapi describes the HTTP API a bridge route table serves as an
// OpenAPI 3.1 document: paths and methods from the routes, parameters and
// bodies with JSON Schemas from the Java types the mapping declares, and
// every answer a route can give, errors included. It reads the route table
// only, the same one the bridges execute, so the description cannot drift
// from what they accept.
package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/routetable"
)

// Version is the OpenAPI version of the documents.
const Version = "3.1.0"

// document is the top of an OpenAPI document; its fields encode in this
// order, so a reader finds the version (info.version) near the start.
type document struct {
	OpenAPI    string              `json:"openapi"`
	Info       info                `json:"info"`
	Tags       []tag               `json:"tags,omitempty"`
	Paths      map[string]pathItem `json:"paths"`
	Components components          `json:"components"`
	// Unlisted are the routes no OpenAPI path can describe.
	Unlisted []unlisted `json:"x-protogate-unlisted,omitempty"`
}

type info struct {
	Title       string `json:"title"`
	Version     string `json:"version"`
	Description string `json:"description"`
}

type tag struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// pathItem holds a path's description and its operations by lower-case
// method.
type pathItem map[string]any

type components struct {
	Schemas   map[string]schema   `json:"schemas"`
	Responses map[string]response `json:"responses"`
	Headers   map[string]header   `json:"headers"`
}

type operation struct {
	OperationID string              `json:"operationId"`
	Summary     string              `json:"summary"`
	Description string              `json:"description,omitempty"`
	Tags        []string            `json:"tags"`
	Parameters  []*parameter        `json:"parameters,omitempty"`
	RequestBody *requestBody        `json:"requestBody,omitempty"`
	Responses   map[string]response `json:"responses"`
	Route       routeInfo           `json:"x-protogate-route"`
}

type parameter struct {
	Name        string `json:"name"`
	In          string `json:"in"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required,omitempty"`
	Schema      schema `json:"schema"`
}

type requestBody struct {
	Description string               `json:"description,omitempty"`
	Required    bool                 `json:"required,omitempty"`
	Content     map[string]mediaType `json:"content"`
}

type mediaType struct {
	Schema schema `json:"schema"`
}

type response struct {
	Description string               `json:"description"`
	Headers     map[string]header    `json:"headers,omitempty"`
	Content     map[string]mediaType `json:"content,omitempty"`
}

type header struct {
	Description string `json:"description,omitempty"`
	Schema      schema `json:"schema"`
}

// routeInfo is what the route does behind the bridge, for people and tools.
type routeInfo struct {
	Name      string `json:"name"`
	Listener  string `json:"listener"`
	Protocol  string `json:"protocol"`
	Upstream  string `json:"upstream"`
	Target    string `json:"target"`
	Timeout   string `json:"timeout,omitempty"`
	BodyLimit int64  `json:"body_limit"`
}

type unlisted struct {
	Route    string   `json:"route"`
	Listener string   `json:"listener"`
	Prefix   string   `json:"prefix,omitempty"`
	Regex    string   `json:"regex,omitempty"`
	Path     string   `json:"path,omitempty"`
	Methods  []string `json:"methods,omitempty"`
	Reason   string   `json:"reason"`
}

// anyMethod is what a route without methods takes.
var anyMethod = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// Document describes the routes of a table as OpenAPI 3.1 JSON, the same
// bytes for the same table. listener "" describes every listener's routes;
// a name describes that listener's only.
func Document(t *routetable.Table, listener string) ([]byte, error) {
	routes, err := routesOf(t, listener)
	if err != nil {
		return nil, err
	}
	b := &builder{schemas: newSchemas(t.JavaTypes), paths: map[string]pathItem{}, shapes: map[string]string{},
		tags: map[string]string{}}
	for _, r := range routes {
		if err := b.add(r); err != nil {
			return nil, fmt.Errorf("route %q: %w", r.Name, err)
		}
	}
	doc := document{
		OpenAPI: Version,
		Info:    info{Title: title(t.Group, listener), Version: t.Version(), Description: description},
		Paths:   b.paths,
		Components: components{
			Schemas:   b.schemas.defs,
			Responses: map[string]response{"MethodNotAllowed": methodNotAllowed()},
			Headers:   map[string]header{"Allow": allowHeader()},
		},
		Unlisted: b.unlisted,
	}
	doc.Components.Schemas["Error"] = errorSchema()
	for _, name := range sortedKeys(b.tags) {
		doc.Tags = append(doc.Tags, tag{Name: name, Description: b.tags[name]})
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encoding the OpenAPI document: %w", err)
	}
	return out.Bytes(), nil
}

const description = `The HTTP API that protogate's bridges serve: each operation is one route of the mapping,
calling a Dubbo method, publishing to NATS, or proxying to an HTTP service. Java types come from the
mapping, never from a request. Every error is a JSON body {"error": {"code", "message", "route",
"upstream"}}; a method a path does not list is a 405 with an Allow header (components/responses/MethodNotAllowed).
Routes matched by prefix or regular expression cannot be written as OpenAPI paths: x-protogate-unlisted names them.`

// routesOf picks the routes described: the table's own (not the former
// definitions a bridging table keeps), of one listener or all.
func routesOf(t *routetable.Table, listener string) ([]*routetable.Route, error) {
	var out []*routetable.Route
	var names []string
	for i := range t.Routes {
		r := &t.Routes[i]
		if !slices.Contains(names, r.Listener) {
			names = append(names, r.Listener)
		}
		if listener == "" || r.Listener == listener {
			out = append(out, r)
		}
	}
	if listener != "" && len(out) == 0 {
		if len(names) == 0 {
			return nil, fmt.Errorf("listener %q: the route table has no HTTP routes", listener)
		}
		return nil, fmt.Errorf("listener %q has no HTTP routes in this table (listeners with routes: %s)", listener, strings.Join(names, ", "))
	}
	return out, nil
}

func title(group, listener string) string {
	s := "protogate"
	if group != "" && group != routetable.AllListeners {
		s += ", node group " + group
	}
	if listener != "" {
		s += ", listener " + listener
	}
	return s
}

// builder gathers the paths, schemas and tags of the routes in order.
type builder struct {
	schemas *schemas
	paths   map[string]pathItem
	// shapes maps a template with its variable names erased to the
	// OpenAPI path that holds it: two templates of one shape are one path.
	shapes   map[string]string
	tags     map[string]string
	unlisted []unlisted
}

func (b *builder) add(r *routetable.Route) error {
	m := &r.Match
	if m.Path == "" {
		u := unlisted{Route: r.Name, Listener: r.Listener, Prefix: m.Prefix, Regex: m.Regex, Methods: m.Methods,
			Reason: "a prefix or regex match is no OpenAPI path template"}
		b.unlisted = append(b.unlisted, u)
		return nil
	}
	tpl, err := config.ParsePathTemplate(m.Path)
	if err != nil {
		return fmt.Errorf("match.path: %w", err)
	}
	key := openAPIPath(tpl)
	if held, ok := b.shapes[tpl.Shape()]; ok && held != key {
		b.unlisted = append(b.unlisted, unlisted{Route: r.Name, Listener: r.Listener, Path: m.Path, Methods: m.Methods,
			Reason: fmt.Sprintf("its path matches what %s matches, under other variable names; OpenAPI holds one of them", held)})
		return nil
	}
	b.shapes[tpl.Shape()] = key
	item := b.paths[key]
	if item == nil {
		item = pathItem{"description": "Methods not listed here: 405, with an Allow header naming those that are."}
	}
	methods := m.Methods
	if len(methods) == 0 {
		methods = anyMethod
	}
	var taken, holders []string
	for _, method := range methods {
		verb := strings.ToLower(method)
		if held, ok := item[verb].(*operation); ok {
			taken = append(taken, method)
			if !slices.Contains(holders, held.Route.Name) {
				holders = append(holders, held.Route.Name)
			}
			continue
		}
		op, err := b.operation(r, tpl, method, len(methods) > 1)
		if err != nil {
			return err
		}
		item[verb] = op
	}
	if len(taken) > 0 {
		// The bridge matches routes in order: an earlier route holding
		// the path and method takes the request when its headers fit.
		b.unlisted = append(b.unlisted, unlisted{Route: r.Name, Listener: r.Listener, Path: m.Path, Methods: taken,
			Reason: fmt.Sprintf("route %s, listed earlier, holds this path and method: this one takes only what that one's listener or header matches leave", strings.Join(holders, ", "))})
	}
	b.paths[key] = item
	return nil
}

// openAPIPath writes a template as an OpenAPI path: {rest=**} becomes
// {rest}, a parameter that spans segments.
func openAPIPath(tpl *config.PathTemplate) string {
	var s strings.Builder
	for _, seg := range tpl.Segments {
		s.WriteByte('/')
		if seg.Var != "" {
			s.WriteString("{" + seg.Var + "}")
		} else {
			s.WriteString(seg.Literal)
		}
	}
	if s.Len() == 0 {
		return "/"
	}
	return s.String()
}

func methodNotAllowed() response {
	return response{
		Description: "The path exists but takes other methods (code method_not_allowed).",
		Headers:     map[string]header{"Allow": {Description: "the methods the path takes", Schema: schema{"type": "string"}}},
		Content:     jsonContent(schema{"$ref": "#/components/schemas/Error"}),
	}
}

func allowHeader() header {
	return header{Description: "the methods a path takes, comma-separated", Schema: schema{"type": "string"}}
}

func jsonContent(sc schema) map[string]mediaType {
	return map[string]mediaType{"application/json": {Schema: sc}}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
