package routetable

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/protocols/dubbo/javatype"
)

// Build computes the table of one node group from a validated mapping: the
// HTTP routes of the group's listeners, and the upstreams they call. The
// table validates before it is returned; an error names the route.
func Build(cfg *config.Config, group config.NodeGroup) (*Table, error) {
	return BuildWith(cfg, group, nil)
}

// BuildWith is Build with the providers found in registries (nil: none
// looked for).
func BuildWith(cfg *config.Config, group config.NodeGroup, d Discovered) (*Table, error) {
	t := &Table{
		Group:        group.Name,
		RouteHeader:  cfg.Bridge.RouteHeader,
		MaxJSONDepth: cfg.Bridge.MaxJSONDepth,
		JavaTypes:    cfg.JavaTypes,
		OpenAPIPath:  cfg.Bridge.OpenAPIPath,
	}
	if cfg.Tracing.OTLPEndpoint != "" {
		tr := cfg.Tracing
		t.Tracing = &tr
	}
	used := map[string]bool{} // protocol/upstream
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		if l.Protocol != config.ProtocolHTTP || !slices.Contains(group.Listeners, l.Name) {
			continue
		}
		for j := range l.Routes {
			rt, err := NewRoute(l, &l.Routes[j])
			if err != nil {
				return nil, err
			}
			t.Routes = append(t.Routes, rt)
			used[rt.Protocol()+"/"+rt.Upstream()] = true
		}
	}
	for _, u := range cfg.Upstreams.Dubbo {
		if !used["dubbo/"+u.Name] {
			continue
		}
		du, err := dubboUpstream(u, t.Routes, d)
		if err != nil {
			return nil, err
		}
		t.Upstreams.Dubbo = append(t.Upstreams.Dubbo, du)
	}
	for _, u := range cfg.Upstreams.NATS {
		if used["nats/"+u.Name] {
			u.Streams = slices.Clone(u.Streams)
			t.Upstreams.NATS = append(t.Upstreams.NATS, NATSUpstream{NATSUpstream: u, Digest: digest(u)})
		}
	}
	for _, u := range cfg.Upstreams.HTTP {
		if used["http/"+u.Name] {
			u.Filters = config.UpstreamFilters{} // Envoy's, not the bridge's
			t.Upstreams.HTTP = append(t.Upstreams.HTTP, HTTPUpstream{HTTPUpstream: u, Digest: digest(u)})
		}
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}

// NewRoute computes one HTTP route's row: the one place where effective
// timeouts and retries are derived, for the bridges and for Envoy's route.
func NewRoute(l *config.Listener, r *config.Route) (Route, error) {
	m := r.Match
	rt := Route{
		Name: r.Name, Listener: l.Name, BodyLimit: r.BodyLimit,
		Match: Match{Path: m.Path, Prefix: m.Prefix, Regex: m.Regex, Methods: m.Methods, Headers: m.Headers, Hosts: m.Hosts},
	}
	if l.AccessLog.Enabled {
		al := l.AccessLog
		rt.AccessLog = &al
	}
	switch {
	case r.Dubbo != nil:
		d := &DubboCall{DubboTarget: *r.Dubbo}
		for _, p := range d.Params {
			t, err := javatype.Parse(p.Type)
			if err != nil {
				return rt, fmt.Errorf("route %q: param %q: %w", r.Name, p.From, err)
			}
			d.ErasedTypes = append(d.ErasedTypes, t.Erased())
		}
		rt.Dubbo = d
		rt.Timeout = d.Timeout
		if d.Idempotent {
			rt.Retries = d.Retries
		}
		// Envoy tries another bridge only when it could not reach one
		// (the bridge retries the provider itself), and only for
		// idempotent calls.
		rt.setEnvoyTimeouts(d.Timeout.Std()+BridgeSlack, rt.Retries)
	case r.NATS != nil:
		n := *r.NATS
		rt.NATS = &n
		rt.Timeout = n.Timeout
		// A publish is never retried: JetStream de-duplicates only with
		// the client's key, and a core publish would double.
		rt.setEnvoyTimeouts(n.Timeout.Std()+BridgeSlack, 0)
	case r.HTTP != nil:
		h := *r.HTTP
		rt.HTTP = &h
		rt.Timeout = h.Timeout
		if h.Idempotent {
			rt.Retries = h.Retries
		}
		rt.setEnvoyTimeouts(h.Timeout.Std(), rt.Retries)
	}
	return rt, nil
}

// setEnvoyTimeouts: Envoy waits perTry for each of retries+1 tries.
func (r *Route) setEnvoyTimeouts(perTry time.Duration, retries int) {
	r.EnvoyRetries = retries
	r.EnvoyPerTryTimeout = config.Duration(perTry)
	r.EnvoyTimeout = config.Duration(perTry * time.Duration(retries+1))
}

// dubboUpstream takes what the bridges need of a Dubbo upstream: its
// providers as HOST:PORT endpoints, and not Envoy's cluster filters.
func dubboUpstream(u config.DubboUpstream, routes []Route, d Discovered) (DubboUpstream, error) {
	u.Filters = config.UpstreamFilters{}
	u.URLs = slices.Clone(u.URLs)
	du := DubboUpstream{DubboUpstream: u, Endpoints: []string{}}
	for _, raw := range u.URLs {
		pu, err := url.Parse(raw)
		if err != nil || pu.Host == "" {
			return du, fmt.Errorf("dubbo upstream %q: provider URL %q is not SCHEME://HOST:PORT", u.Name, raw)
		}
		du.Endpoints = append(du.Endpoints, pu.Host)
	}
	if u.Registry != "" && d != nil {
		protocol := "dubbo"
		if u.Protocol == config.DubboProtocolTriple {
			protocol = "tri"
		}
		du.Services = map[string][]string{}
		for _, r := range routes {
			if c := r.Dubbo; c != nil && c.Upstream == u.Name {
				eps := slices.Clone(d.Providers(&u, c.Service, c.Version, c.Group, protocol))
				if eps == nil {
					eps = []string{}
				}
				du.Services[ServiceKey(c.Service, c.Version, c.Group)] = eps
			}
		}
	}
	du.Digest = upstreamDigest(du)
	return du, nil
}

// upstreamDigest hashes what shapes a Dubbo upstream's clients.
func upstreamDigest(du DubboUpstream) string {
	return digest(struct {
		U         config.DubboUpstream
		Endpoints []string
		Services  map[string][]string
	}{du.DubboUpstream, du.Endpoints, du.Services})
}

// AllListeners names the table FromConfig builds over every HTTP listener.
const AllListeners = "*"

// FromConfig builds the table a bridge reading a mapping file serves: the
// named group's, or with group "" the routes of every HTTP listener (a
// bridge that serves clients directly, as in protogate run, takes them all).
func FromConfig(cfg *config.Config, group string) (*Table, error) {
	return FromConfigWith(cfg, group, nil)
}

// FromConfigWith is FromConfig with the providers found in registries.
func FromConfigWith(cfg *config.Config, group string, d Discovered) (*Table, error) {
	if group != "" {
		for _, g := range cfg.XDS.Groups {
			if g.Name == group {
				return BuildWith(cfg, g, d)
			}
		}
		names := make([]string, len(cfg.XDS.Groups))
		for i, g := range cfg.XDS.Groups {
			names[i] = g.Name
		}
		return nil, fmt.Errorf("the mapping has no node group %q (groups: %s)", group, strings.Join(names, ", "))
	}
	all := config.NodeGroup{Name: AllListeners}
	for _, l := range cfg.Listeners {
		all.Listeners = append(all.Listeners, l.Name)
	}
	return BuildWith(cfg, all, d)
}
