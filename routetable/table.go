// Package routetable holds the bridge route table: what the bridges of one
// node group execute, computed once from the mapping by the translator,
// beside the Envoy resources of the same group. Every value a bridge needs
// at request time that depends on the mapping as a whole (effective
// timeouts, retries, body limits, the providers of each upstream) is
// settled here, so a bridge never re-derives it and Envoy and the bridges
// cannot disagree. A table is plain data: it travels as JSON, and Compile
// turns it into the matchers and types a bridge serves from.
package routetable

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/protogate/protogate/config"
)

// BridgeSlack is how much longer Envoy waits than a bridge route's own
// timeout, so the bridge answers a timeout with its own 504 body naming the
// upstream instead of Envoy cutting it off.
const BridgeSlack = time.Second

// Table is one node group's bridge routes and the upstreams they call.
type Table struct {
	Group string `json:"group"`
	// RouteHeader is the request header in which Envoy names the route.
	RouteHeader string `json:"route_header"`
	// MaxJSONDepth bounds the nesting of request bodies.
	MaxJSONDepth int `json:"max_json_depth"`
	// Routes in mapping order: the order a bridge without Envoy in front
	// matches them in.
	Routes    []Route           `json:"routes"`
	Upstreams Upstreams         `json:"upstreams"`
	JavaTypes []config.JavaType `json:"java_types,omitempty"`
	// BridgeClusters are the group's Envoy clusters to its bridges when
	// the bridges announce themselves (bridge.discovery xds): the control
	// plane fills their endpoints with the group's live bridges.
	BridgeClusters []string `json:"bridge_clusters,omitempty"`
	// Former are routes a reload changes, as they were: only a bridging
	// table has them. A request an Envoy still on its old routes sends by
	// such a route's name, and that its new definition does not take (a
	// changed path, say), is served by its former one.
	Former []Route `json:"former,omitempty"`
	// Tracing is where the bridges export spans; nil: nowhere.
	Tracing *config.Tracing `json:"tracing,omitempty"`
	// OpenAPIPath is where the bridges serve the OpenAPI description of
	// the table's routes; empty: nowhere.
	OpenAPIPath string `json:"openapi_path,omitempty"`
}

// Route is one HTTP route as a bridge executes it. Exactly one of Dubbo,
// NATS and HTTP is set.
type Route struct {
	Name     string `json:"name"`
	Listener string `json:"listener"`
	Match    Match  `json:"match"`
	// BodyLimit is the largest request body taken (the route's, or the
	// bridge's max_body_size).
	BodyLimit config.Size `json:"body_limit"`
	// Timeout is the bridge's deadline for the call upstream.
	Timeout config.Duration `json:"timeout"`
	// AccessLog is its listener's access_log when it is on; nil: off.
	AccessLog *config.AccessLog `json:"access_log,omitempty"`
	// Retries are the bridge's extra attempts upstream: 0 unless the
	// route is idempotent.
	Retries int `json:"retries"`
	// EnvoyPerTryTimeout and EnvoyTimeout are what Envoy waits for one
	// try and in all; EnvoyRetries how often Envoy tries another bridge.
	EnvoyPerTryTimeout config.Duration `json:"envoy_per_try_timeout"`
	EnvoyTimeout       config.Duration `json:"envoy_timeout"`
	EnvoyRetries       int             `json:"envoy_retries"`

	Dubbo *DubboCall         `json:"dubbo,omitempty"`
	NATS  *config.NATSTarget `json:"nats,omitempty"`
	HTTP  *config.HTTPTarget `json:"http,omitempty"`
}

// Match is an HTTP route's match: a path template, prefix or regex, with
// methods and headers.
type Match struct {
	Path    string               `json:"path,omitempty"`
	Prefix  string               `json:"prefix,omitempty"`
	Regex   string               `json:"regex,omitempty"`
	Methods []string             `json:"methods,omitempty"`
	Headers []config.HeaderMatch `json:"headers,omitempty"`
	// Hosts are the Host values the route answers (empty: any), matched
	// as Envoy matches virtual host domains.
	Hosts []string `json:"hosts,omitempty"`
}

// DubboCall is a Dubbo route's generic call.
type DubboCall struct {
	config.DubboTarget
	// ErasedTypes are the parameter types as the generic call names them
	// (java.util.List, not java.util.List<java.lang.String>).
	ErasedTypes []string `json:"erased_types"`
}

// Upstreams are the upstreams the table's routes call, each with the
// digest of the settings that shape its client.
type Upstreams struct {
	Dubbo []DubboUpstream `json:"dubbo,omitempty"`
	NATS  []NATSUpstream  `json:"nats,omitempty"`
	HTTP  []HTTPUpstream  `json:"http,omitempty"`
}

// DubboUpstream is a Dubbo upstream's settings for the bridges. Endpoints
// are the providers to call, HOST:PORT: the upstream's URLs, or what the
// control plane found in its registry.
type DubboUpstream struct {
	config.DubboUpstream
	Endpoints []string `json:"endpoints"`
	// Services are the providers the control plane found in the
	// upstream's registry, by service key (ServiceKey); absent when
	// nothing discovered them.
	Services map[string][]string `json:"services,omitempty"`
	Digest   string              `json:"digest"`
}

// ServiceKey names a service as Dubbo does: group/interface:version.
func ServiceKey(service, version, group string) string {
	k := service
	if group != "" {
		k = group + "/" + k
	}
	if version != "" {
		k += ":" + version
	}
	return k
}

// Discovered answers which providers a registry holds, HOST:PORT, for a
// service of an upstream in a protocol ("dubbo" or "tri").
type Discovered interface {
	Providers(u *config.DubboUpstream, service, version, group, protocol string) []string
}

// Providers are a route's providers as the table has them: the discovered
// ones of its service for a registry upstream (nil when none were
// discovered), its URLs' endpoints otherwise.
func (u *DubboUpstream) Providers(d *DubboCall) []string {
	if u.Registry == "" {
		return u.Endpoints
	}
	if u.Services == nil {
		return nil
	}
	eps := u.Services[ServiceKey(d.Service, d.Version, d.Group)]
	if eps == nil {
		eps = []string{}
	}
	return eps
}

// NATSUpstream is a NATS upstream's settings for the bridges.
type NATSUpstream struct {
	config.NATSUpstream
	Digest string `json:"digest"`
}

// HTTPUpstream is a plain HTTP upstream, proxied by a bridge only where no
// Envoy stands in front.
type HTTPUpstream struct {
	config.HTTPUpstream
	Digest string `json:"digest"`
}

// Route returns the named route, or nil.
func (t *Table) Route(name string) *Route {
	for i := range t.Routes {
		if t.Routes[i].Name == name {
			return &t.Routes[i]
		}
	}
	return nil
}

// DubboUpstream returns the named Dubbo upstream, or nil.
func (t *Table) DubboUpstream(name string) *DubboUpstream {
	for i := range t.Upstreams.Dubbo {
		if t.Upstreams.Dubbo[i].Name == name {
			return &t.Upstreams.Dubbo[i]
		}
	}
	return nil
}

// HTTPUpstream returns the named HTTP upstream, or nil.
func (t *Table) HTTPUpstream(name string) *HTTPUpstream {
	for i := range t.Upstreams.HTTP {
		if t.Upstreams.HTTP[i].Name == name {
			return &t.Upstreams.HTTP[i]
		}
	}
	return nil
}

// Upstream names the upstream a route calls.
func (r *Route) Upstream() string {
	switch {
	case r.Dubbo != nil:
		return r.Dubbo.Upstream
	case r.NATS != nil:
		return r.NATS.Upstream
	case r.HTTP != nil:
		return r.HTTP.Upstream
	}
	return ""
}

// Protocol names what a route calls: dubbo, nats or http.
func (r *Route) Protocol() string {
	switch {
	case r.Dubbo != nil:
		return "dubbo"
	case r.NATS != nil:
		return "nats"
	case r.HTTP != nil:
		return "http"
	}
	return ""
}

// Version is the table's content hash: equal tables have equal versions,
// whatever process computed them.
func (t *Table) Version() string {
	r, err := t.Resource()
	if err != nil {
		// A table holds plain data only; this cannot fail.
		panic(fmt.Sprintf("routetable: encoding a table: %v", err))
	}
	return r.GetVersion()
}

// Marshal encodes the table for the wire.
func (t *Table) Marshal() ([]byte, error) { return json.Marshal(t) }

// Unmarshal decodes a table and validates it: a table that does not
// validate is refused whole.
func Unmarshal(raw []byte) (*Table, error) {
	var t Table
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("decoding a route table: %w", err)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

// digest hashes the settings that shape an upstream's client.
func digest(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("routetable: encoding upstream settings: %v", err))
	}
	return versionOf(raw)
}

// versionOf is the version of a table encoded as raw.
func versionOf(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}
