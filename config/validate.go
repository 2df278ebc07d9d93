package config

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/protogate/protogate/protocols/dubbo/javatype"
	"github.com/protogate/protogate/protocols/nats/subject"
)

// Validate checks a decoded model and returns every problem found.
func Validate(cfg *Config) Problems {
	return validate(cfg)
}

// validator holds the indexes the rules look things up in.
type validator struct {
	problems
	cfg       *Config
	upstreams map[string]string // name → protocol of the upstream list it is in
	dubbo     map[string]*DubboUpstream
	nats      map[string]*NATSUpstream
	classes   map[string]*JavaType
}

func validate(cfg *Config) Problems {
	v := &validator{cfg: cfg, upstreams: map[string]string{}, dubbo: map[string]*DubboUpstream{},
		nats: map[string]*NATSUpstream{}, classes: map[string]*JavaType{}}
	checkTags(reflect.ValueOf(cfg).Elem(), "", &v.problems)
	v.upstreamsIndex()
	v.javaTypes()
	v.listeners()
	v.bridge()
	v.xds()
	v.xdsSecurity()
	v.rollout()
	v.xdsLimits()
	return v.list
}

// Hop-by-hop headers never cross the bridge, in either direction.
var hopByHop = []string{"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
	"te", "trailer", "transfer-encoding", "upgrade", "proxy-connection", "host", "content-length"}

// credentialHeaders carry a caller's credentials.
var credentialHeaders = []string{"authorization", "cookie", "proxy-authorization"}

// reservedAttachments are Dubbo attachment keys the bridge itself sets, or
// that steer dubbo-go or the provider (routing tags, environment, call
// settings): a client header must never become one.
var reservedAttachments = []string{"generic", "path", "interface", "version", "group", "timeout",
	"token", "dubbo", "application", "async", "side", "remote.application", "environment", "retries",
	"loadbalance", "cluster", "serialization", "sticky", "methods", "accesslog",
	"content-type", "te", "user-agent", "host", "authority"}

// reservedAttachmentPrefixes cover whole families: triple's and gRPC's
// own headers, HTTP/2 pseudo-headers, dubbo-go's dotted settings
// (dubbo.tag, dubbo.force.tag, ...).
var reservedAttachmentPrefixes = []string{"tri-", "grpc-", ":", "dubbo.", "dubbo-"}

func reservedAttachment(name string) bool {
	n := strings.ToLower(name)
	if slices.Contains(reservedAttachments, n) {
		return true
	}
	for _, p := range reservedAttachmentPrefixes {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

func (v *validator) upstreamsIndex() {
	seen := map[string]string{}
	note := func(name, proto, path string) {
		if name == "" {
			return
		}
		if prev, ok := seen[name]; ok {
			v.add(path, "upstream name %q is already used by %s", name, prev)
			return
		}
		seen[name] = path
		v.upstreams[name] = proto
	}
	u := &v.cfg.Upstreams
	for i := range u.Dubbo {
		d := &u.Dubbo[i]
		p := index("upstreams.dubbo", i)
		note(d.Name, "dubbo", p+".name")
		v.dubbo[d.Name] = d
		switch {
		case d.Registry == "" && len(d.URLs) == 0:
			v.add(p, "needs registry or urls to find providers")
		case d.Registry != "" && len(d.URLs) > 0:
			v.add(p+".urls", "set either registry or urls, not both")
		}
		if d.Registry != "" {
			if ru, err := parseURL(d.Registry); err == nil {
				if ru.Scheme != "zookeeper" {
					v.add(p+".registry", "registry scheme %q is not supported (use zookeeper://HOST:PORT)", ru.Scheme)
				} else if _, _, err := SplitEndpoint(ru.Host); err != nil {
					v.add(p+".registry", "%v", err)
				}
			}
		}
		want := map[string]string{DubboProtocolDubbo: "dubbo", DubboProtocolTriple: "tri"}[d.Protocol]
		for j, raw := range d.URLs {
			pu, err := parseURL(raw)
			if err != nil {
				continue // reported by format
			}
			if want != "" && pu.Scheme != want {
				v.add(index(p+".urls", j), "scheme %q does not match protocol %s (want %s://HOST:PORT)", pu.Scheme, d.Protocol, want)
			}
			if _, _, err := SplitEndpoint(pu.Host); err != nil {
				v.add(index(p+".urls", j), "%v", err)
			}
		}
		v.upstreamFilters(&d.Filters, p+".filters")
	}
	for i := range u.NATS {
		n := &u.NATS[i]
		p := index("upstreams.nats", i)
		note(n.Name, "nats", p+".name")
		v.nats[n.Name] = n
		v.natsUpstream(n, p)
	}
	for i := range u.HTTP {
		h := &u.HTTP[i]
		p := index("upstreams.http", i)
		note(h.Name, "http", p+".name")
		if h.HealthCheck != nil && !strings.HasPrefix(h.HealthCheck.Path, "/") {
			v.add(p+".health_check.path", "must start with /")
		}
		if h.HealthCheck != nil && h.HealthCheck.Timeout > h.HealthCheck.Interval {
			v.add(p+".health_check.timeout", "%s is longer than the interval %s", h.HealthCheck.Timeout, h.HealthCheck.Interval)
		}
		v.upstreamFilters(&h.Filters, p+".filters")
	}
	for i := range u.TCP {
		note(u.TCP[i].Name, "tcp", index("upstreams.tcp", i)+".name")
	}
}

func (v *validator) natsUpstream(n *NATSUpstream, p string) {
	switch {
	case n.Embedded && len(n.URLs) > 0:
		v.add(p+".urls", "an embedded server has no urls; remove them or embedded")
	case !n.Embedded && len(n.URLs) == 0:
		v.add(p+".urls", "is required (or set embedded: true for a development server)")
	case !n.Embedded && n.DataDir != "":
		v.add(p+".data_dir", "is only used with embedded: true")
	}
	for j, raw := range n.URLs {
		if pu, err := parseURL(raw); err == nil {
			if pu.Scheme != "nats" && pu.Scheme != "tls" {
				v.add(index(p+".urls", j), "scheme %q is not nats or tls", pu.Scheme)
			}
			if pu.User != nil {
				v.add(index(p+".urls", j), "credentials in the URL would be logged; use credentials, user with password_file, or token_file")
			}
		}
	}
	auth := 0
	for _, set := range []bool{n.Credentials != "", n.NKeySeedFile != "", n.User != "", n.TokenFile != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		v.add(p, "set only one of credentials, nkey_seed_file, user and token_file")
	}
	if (n.User == "") != (n.PasswordFile == "") {
		v.add(p+".password_file", "user and password_file go together")
	}
	if n.TLS != nil && (n.TLS.Cert == "") != (n.TLS.Key == "") {
		v.add(p+".tls", "cert and key go together")
	}
	if n.Provision && len(n.Streams) == 0 {
		v.add(p+".provision", "is on but no streams are listed")
	}
	names := map[string]bool{}
	for j, s := range n.Streams {
		sp := index(p+".streams", j)
		if s.Name != "" {
			if strings.ContainsAny(s.Name, " .*>/\\\t") {
				v.add(sp+".name", "%q: a stream name cannot hold spaces, '.', '*', '>', '/' or '\\'", s.Name)
			}
			if names[s.Name] {
				v.add(sp+".name", "stream %q is listed twice", s.Name)
			}
			names[s.Name] = true
		}
		for k, subj := range s.Subjects {
			if err := subject.CheckPattern(subj); err != nil {
				v.add(index(sp+".subjects", k), "%v", err)
			}
		}
	}
}

func (v *validator) upstreamFilters(f *UpstreamFilters, p string) {
	if f.HeaderMutation != nil {
		v.headerMutation(f.HeaderMutation, p+".header_mutation")
	}
}

func (v *validator) javaTypes() {
	for i := range v.cfg.JavaTypes {
		jt := &v.cfg.JavaTypes[i]
		p := index("java_types", i)
		if jt.Class == "" {
			continue
		}
		if err := javatype.CheckClassName(jt.Class); err != nil {
			v.add(p+".class", "%v", err)
			continue
		}
		if t, err := javatype.Parse(jt.Class); err == nil && t.Kind != javatype.Class {
			v.add(p+".class", "%s is built in and cannot be redeclared", jt.Class)
			continue
		}
		if _, dup := v.classes[jt.Class]; dup {
			v.add(p+".class", "class %s is declared twice", jt.Class)
			continue
		}
		v.classes[jt.Class] = jt
	}
	for i := range v.cfg.JavaTypes {
		jt := &v.cfg.JavaTypes[i]
		p := index("java_types", i)
		if (jt.Fields == nil) == (jt.Enum == nil) {
			v.add(p, "set exactly one of fields (a POJO) and enum")
		}
		seen := map[string]bool{}
		for j, f := range jt.Fields {
			fp := index(p+".fields", j)
			if f.Name != "" {
				if err := javatype.CheckIdentifier(f.Name); err != nil {
					v.add(fp+".name", "%v", err)
				}
				if seen[f.Name] {
					v.add(fp+".name", "field %q is declared twice", f.Name)
				}
				seen[f.Name] = true
			}
			if f.Type != "" {
				v.javaType(f.Type, fp+".type")
			}
		}
		for j, c := range jt.Enum {
			if err := javatype.CheckIdentifier(c); err != nil {
				v.add(index(p+".enum", j), "%v", err)
			}
			if seen[c] {
				v.add(index(p+".enum", j), "constant %q is listed twice", c)
			}
			seen[c] = true
		}
	}
}

// javaType parses a type and checks every class it names is declared.
func (v *validator) javaType(s, p string) *javatype.Type {
	t, err := javatype.Parse(s)
	if err != nil {
		v.add(p, "%q is not a Java type: %v", s, err)
		return nil
	}
	for _, c := range t.Classes() {
		if _, ok := v.classes[c]; !ok {
			v.add(p, "class %s is not declared under java_types (its fields must come from the mapping)", c)
		}
	}
	return t
}

func (v *validator) listeners() {
	if len(v.cfg.Listeners) == 0 {
		v.add("listeners", "at least one listener is required")
	}
	names := map[string]string{}
	addrs := map[string]string{}
	routes := make(map[string]string, v.cfg.Routes())
	for i := range v.cfg.Listeners {
		l := &v.cfg.Listeners[i]
		p := index("listeners", i)
		if prev, ok := names[l.Name]; ok && l.Name != "" {
			v.add(p+".name", "listener name %q is already used by %s", l.Name, prev)
		}
		names[l.Name] = p
		if prev, ok := addrs[l.Address]; ok && l.Address != "" {
			v.add(p+".address", "%s is already the address of %s", l.Address, prev)
		}
		addrs[l.Address] = p
		v.networkFilters(&l.NetworkFilters, p+".network_filters")
		switch l.Protocol {
		case ProtocolHTTP:
			v.httpListener(l, p, routes)
		case ProtocolDubbo:
			v.dubboListener(l, p, routes)
		case ProtocolTCP:
			v.tcpListener(l, p)
		}
	}
}

func (v *validator) notHTTP(l *Listener, p string) {
	if !reflect.ValueOf(l.Filters).IsZero() {
		v.add(p+".filters", "HTTP filters apply to http listeners only")
	}
}

func (v *validator) tcpListener(l *Listener, p string) {
	v.notHTTP(l, p)
	if len(l.Routes) > 0 {
		v.add(p+".routes", "a tcp listener has no routes; it proxies to its upstream")
	}
	switch proto, ok := v.upstreams[l.Upstream]; {
	case l.Upstream == "":
		v.add(p+".upstream", "is required on a tcp listener")
	case !ok:
		v.add(p+".upstream", "no upstream is named %q", l.Upstream)
	case proto != "tcp" && proto != "nats":
		v.add(p+".upstream", "%q is a %s upstream; a tcp listener needs a tcp or nats upstream", l.Upstream, proto)
	case proto == "nats" && v.nats[l.Upstream].Embedded:
		v.add(p+".upstream", "%q is an embedded NATS server, which Envoy cannot reach by address", l.Upstream)
	}
}

func (v *validator) dubboListener(l *Listener, p string, routeNames map[string]string) {
	v.notHTTP(l, p)
	if l.Upstream != "" {
		v.add(p+".upstream", "dubbo listeners route per route; set upstream on each route")
	}
	if len(l.Routes) == 0 {
		v.add(p+".routes", "a dubbo listener needs at least one route")
	}
	for j := range l.Routes {
		r := &l.Routes[j]
		rp := index(p+".routes", j)
		v.routeName(r, rp, routeNames, false)
		m := &r.Match
		if m.Path != "" || m.Prefix != "" || m.Regex != "" || len(m.Methods) > 0 || len(m.Headers) > 0 || len(m.Hosts) > 0 {
			v.add(rp+".match", "path, prefix, regex, methods, headers and hosts are for http listeners; match dubbo calls on service, group, version and method")
		}
		if r.Dubbo != nil || r.NATS != nil || r.HTTP != nil {
			v.add(rp, "dubbo, nats and http targets are for http listeners; a dubbo route names its upstream")
		}
		if !reflect.ValueOf(r.Filters).IsZero() || r.BodyLimit != 0 {
			v.add(rp, "filters and body_limit are for http routes")
		}
		if m.Service == "" {
			v.add(rp+".match.service", "is required on a dubbo route")
		} else if err := javatype.CheckClassName(strings.TrimSuffix(m.Service, ".*")); err != nil && m.Service != "*" {
			v.add(rp+".match.service", "%v", err)
		}
		if m.Method != "" {
			if err := javatype.CheckIdentifier(m.Method); err != nil {
				v.add(rp+".match.method", "%v", err)
			}
		}
		v.upstreamRef(r.Upstream, "dubbo", "a dubbo listener route", rp+".upstream")
	}
}

func (v *validator) upstreamRef(name, want, what, p string) {
	switch proto, ok := v.upstreams[name]; {
	case name == "":
		v.add(p, "is required")
	case !ok:
		v.add(p, "no upstream is named %q", name)
	case proto != want:
		v.add(p, "%q is a %s upstream; %s needs %s upstream", name, proto, what, article(want))
	}
}

func (v *validator) routeName(r *Route, p string, seen map[string]string, required bool) {
	if r.Name == "" {
		if required {
			v.add(p+".name", "is required (Envoy tells the bridge the route by name)")
		}
		return
	}
	if prev, ok := seen[r.Name]; ok {
		v.add(p+".name", "route name %q is already used by %s", r.Name, prev)
		return
	}
	seen[r.Name] = p
}

func (v *validator) httpListener(l *Listener, p string, routeNames map[string]string) {
	if l.Upstream != "" {
		v.add(p+".upstream", "http listeners route per route; upstream is for tcp listeners")
	}
	if len(l.Routes) == 0 {
		v.add(p+".routes", "an http listener needs at least one route")
	}
	v.httpFilters(&l.Filters, p+".filters")
	matches := make(map[string]string, len(l.Routes))
	routesPath, filtersPath := p+".routes", p+".filters"
	for j := range l.Routes {
		r := &l.Routes[j]
		rp := index(routesPath, j)
		v.routeName(r, rp, routeNames, true)
		if r.Upstream != "" {
			v.add(rp+".upstream", "http routes name their upstream inside dubbo, nats or http")
		}
		tpl := v.httpMatch(&r.Match, rp+".match")
		key := matchKey(&r.Match, tpl)
		if prev, ok := matches[key]; ok {
			v.add(rp+".match", "matches the same requests as %s, which comes first, so this route is never reached", prev)
		}
		matches[key] = rp
		targets := 0
		if r.Dubbo != nil {
			targets++
			v.dubboTarget(r.Dubbo, tpl, rp+".dubbo")
		}
		if r.NATS != nil {
			targets++
			v.natsTarget(r.NATS, tpl, rp+".nats")
		}
		if r.HTTP != nil {
			targets++
			v.httpTarget(r.HTTP, &r.Match, rp+".http")
		}
		if targets != 1 {
			v.add(rp, "needs exactly one of dubbo, nats and http (has %d)", targets)
		}
		v.routeFilters(&r.Filters, &l.Filters, rp+".filters", filtersPath)
	}
}

// matchKey is what a route matches, compared by structure: variable names
// of a path template do not change which requests it takes.
func matchKey(m *RouteMatch, tpl *PathTemplate) string {
	path := m.Path
	if tpl != nil {
		path = tpl.Shape()
	}
	methods := m.Methods
	if len(methods) > 1 {
		methods = slices.Clone(methods)
		slices.Sort(methods)
	}
	hs := []byte("null")
	if m.Headers != nil {
		hs, _ = json.Marshal(m.Headers)
	}
	if len(m.Hosts) > 0 {
		// Routes for other hosts do not take the same requests.
		hosts := slices.Clone(m.Hosts)
		slices.Sort(hosts)
		hs = append(append(hs, '|'), strings.Join(hosts, " ")...)
	}
	// The key reads as fmt's "%q|%q|%q|%v|%s" would, built without fmt:
	// this runs once per route.
	var b strings.Builder
	b.WriteString(strconv.Quote(path))
	b.WriteByte('|')
	b.WriteString(strconv.Quote(m.Prefix))
	b.WriteByte('|')
	b.WriteString(strconv.Quote(m.Regex))
	b.WriteString("|[")
	b.WriteString(strings.Join(methods, " "))
	b.WriteString("]|")
	b.Write(hs)
	return b.String()
}

func (v *validator) httpMatch(m *RouteMatch, p string) *PathTemplate {
	n := 0
	for _, s := range []string{m.Path, m.Prefix, m.Regex} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		v.add(p, "needs exactly one of path, prefix and regex")
	}
	if m.Service != "" || m.Group != "" || m.Version != "" || m.Method != "" {
		v.add(p, "service, group, version and method match dubbo listeners only")
	}
	var tpl *PathTemplate
	if m.Path != "" {
		var err error
		if tpl, err = ParsePathTemplate(m.Path); err != nil {
			v.add(p+".path", "%q: %v", m.Path, err)
		}
	}
	if m.Prefix != "" && !strings.HasPrefix(m.Prefix, "/") {
		v.add(p+".prefix", "must start with /")
	}
	if m.Regex != "" {
		if _, err := regexp.Compile(m.Regex); err != nil {
			v.add(p+".regex", "not a valid RE2 expression: %v", err)
		}
	}
	seen := map[string]bool{}
	for i, meth := range m.Methods {
		if seen[meth] {
			v.add(index(p+".methods", i), "%s is listed twice", meth)
		}
		seen[meth] = true
	}
	v.hosts(m.Hosts, p+".hosts")
	for i, h := range m.Headers {
		hp := index(p+".headers", i)
		n := 0
		for _, set := range []bool{h.Exact != "", h.Prefix != "", h.Regex != "", h.Present} {
			if set {
				n++
			}
		}
		if n != 1 {
			v.add(hp, "needs exactly one of exact, prefix, regex and present")
		}
		if h.Regex != "" {
			if _, err := regexp.Compile(h.Regex); err != nil {
				v.add(hp+".regex", "not a valid RE2 expression: %v", err)
			}
		}
		if strings.EqualFold(h.Name, v.cfg.Bridge.RouteHeader) {
			v.add(hp+".name", "%s is the route header Envoy sets; clients cannot choose routes by it", h.Name)
		}
		if strings.HasPrefix(h.Name, ":") {
			v.add(hp+".name", "pseudo-headers cannot be matched here; use path and methods")
		}
	}
	return tpl
}

// maxRouteHosts bounds match.hosts: a route for more hosts than this is
// one for any host.
const maxRouteHosts = 64

// hostPattern is a lower-case DNS name, optionally behind "*." and
// followed by a port.
var hostPattern = regexp.MustCompile(`^(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:[0-9]{1,5})?$`)

func (v *validator) hosts(hosts []string, p string) {
	if len(hosts) > maxRouteHosts {
		v.add(p, "%d hosts; at most %d (leave hosts out for a route of any host)", len(hosts), maxRouteHosts)
		return
	}
	seen := map[string]bool{}
	for i, h := range hosts {
		hp := index(p, i)
		switch {
		case h == "*" || h == "":
			v.add(hp, "%q: leave hosts out for a route of any host", h)
		case len(h) > 253 || !hostPattern.MatchString(h):
			v.add(hp, "%q is not a host name: lower-case DNS labels, optionally a leading *. and a :port", h)
		case seen[h]:
			v.add(hp, "%s is listed twice", h)
		default:
			if _, port, ok := strings.Cut(h, ":"); ok {
				if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
					v.add(hp, "%q: port %s is not 1-65535", h, port)
				}
			}
		}
		seen[h] = true
	}
}

var paramFrom = regexp.MustCompile(`^(path|query|header)\.(.+)$|^body(\.(.+))?$`)

func (v *validator) dubboTarget(d *DubboTarget, tpl *PathTemplate, p string) {
	v.upstreamRef(d.Upstream, "dubbo", "a dubbo route", p+".upstream")
	if d.Service != "" {
		if err := javatype.CheckClassName(d.Service); err != nil {
			v.add(p+".service", "%v", err)
		}
	}
	if d.Method != "" {
		if err := javatype.CheckIdentifier(d.Method); err != nil {
			v.add(p+".method", "%v", err)
		}
	}
	if d.Retries > 0 && !d.Idempotent {
		v.add(p+".retries", "retries need idempotent: true; a non-idempotent call could run twice")
	}
	for i, prm := range d.Params {
		pp := index(p+".params", i)
		if prm.From != "" {
			v.paramSource(prm.From, tpl, pp+".from")
		}
		if prm.Type != "" {
			if t := v.javaType(prm.Type, pp+".type"); t != nil && t.Kind == javatype.Primitive && prm.Optional {
				v.add(pp+".optional", "%s is a primitive and cannot be null; use %s", prm.Type, javatype.BoxOf(prm.Type))
			}
		}
	}
	if d.Returns != "" {
		v.javaType(d.Returns, p+".returns")
	}
	for i, a := range d.Attachments {
		ap := index(p+".attachments", i)
		if reservedAttachment(a.Name) {
			v.add(ap+".name", "%q is reserved: Dubbo, triple or dubbo-go read it, so only the bridge sets it", a.Name)
		}
		v.headerNotReserved(a.Header, ap+".header")
	}
	for i, e := range d.Exceptions {
		if e.Class != "" {
			if err := javatype.CheckClassName(e.Class); err != nil {
				v.add(index(p+".exceptions", i)+".class", "%v", err)
			}
		}
	}
}

func (v *validator) paramSource(from string, tpl *PathTemplate, p string) {
	m := paramFrom.FindStringSubmatch(from)
	if m == nil {
		v.add(p, "%q is not a source: use path.VAR, query.NAME, header.NAME, body or body.FIELD", from)
		return
	}
	switch m[1] {
	case "path":
		switch {
		case tpl == nil:
			v.add(p, "%q needs a path template match with {%s}", from, m[2])
		case !tpl.HasVar(m[2]):
			v.add(p, "the path template %s has no variable {%s}", tpl.Raw, m[2])
		}
	case "header":
		v.headerNotReserved(m[2], p)
	}
}

// headerNotReserved refuses headers the client does not own.
// natsHeaderCopy refuses client headers that must not reach a NATS
// message: NATS and JetStream control headers (the bridge sets those from
// its own fields only), and credentials the mapping did not mean to forward.
func (v *validator) natsHeaderCopy(h string, n *NATSTarget, p string) {
	lower := strings.ToLower(h)
	switch {
	case slices.Contains(hopByHop, lower):
		// already refused as hop-by-hop
	case strings.HasPrefix(lower, "nats-"):
		v.add(p, "%s would be a NATS control header; only the bridge sets those (idempotency_header sets Nats-Msg-Id)", h)
	case slices.Contains(credentialHeaders, lower) && !slices.ContainsFunc(n.ForwardCredentials, func(f string) bool { return strings.EqualFold(f, h) }):
		v.add(p, "%s carries the caller's credentials; every subscriber would see them (list it under forward_credentials if that is meant)", h)
	}
}

func (v *validator) headerNotReserved(h, p string) {
	switch {
	case h == "":
	case strings.EqualFold(h, v.cfg.Bridge.RouteHeader):
		v.add(p, "%s is the route header Envoy sets; it carries no client data", h)
	case slices.Contains(hopByHop, strings.ToLower(h)):
		v.add(p, "%s is a hop-by-hop header and never reaches the bridge intact", h)
	default:
		if err := checkHeaderName(h); err != nil {
			v.add(p, "%v", err)
		}
	}
}

func (v *validator) natsTarget(n *NATSTarget, tpl *PathTemplate, p string) {
	v.upstreamRef(n.Upstream, "nats", "a nats route", p+".upstream")
	if n.Subject != "" {
		st, err := subject.Parse(n.Subject)
		if err != nil {
			v.add(p+".subject", "%q: %v", n.Subject, err)
		} else {
			for _, tok := range st.Tokens {
				switch tok.Source {
				case subject.FromPath:
					switch {
					case tpl == nil:
						v.add(p+".subject", "{%s} needs a path template match that binds it", tok.Name)
					case !tpl.HasVar(tok.Name):
						v.add(p+".subject", "{%s}: the path template %s has no such variable", tok.Name, tpl.Raw)
					}
				case subject.FromHeader:
					v.headerNotReserved(tok.Name, p+".subject")
				}
			}
			v.streamCovers(n, st, p)
		}
	}
	for i, h := range n.Headers {
		v.headerNotReserved(h, index(p+".headers", i))
		v.natsHeaderCopy(h, n, index(p+".headers", i))
	}
	if n.Mode == NATSModeJetStream {
		v.headerNotReserved(n.IdempotencyHeader, p+".idempotency_header")
		v.natsHeaderCopy(n.IdempotencyHeader, n, p+".idempotency_header")
	}
	for i, h := range n.ForwardCredentials {
		if !slices.Contains(credentialHeaders, strings.ToLower(h)) {
			v.add(index(p+".forward_credentials", i), "%s is not a credential header (%s)", h, strings.Join(credentialHeaders, ", "))
		}
	}
	for i, h := range n.ReplyHeaders {
		v.headerNotReserved(h, index(p+".reply_headers", i))
	}
	if len(n.ReplyHeaders) > 0 && n.Mode != NATSModeRequest {
		v.add(p+".reply_headers", "only request mode has a reply")
	}
}

// streamCovers checks, when the upstream lists its streams, that a
// JetStream route's subject lands in one of them.
func (v *validator) streamCovers(n *NATSTarget, st *subject.Template, p string) {
	u := v.nats[n.Upstream]
	if u == nil || n.Mode != NATSModeJetStream || len(u.Streams) == 0 {
		return
	}
	for _, s := range u.Streams {
		for _, pat := range s.Subjects {
			if st.Covers(pat) {
				return
			}
		}
	}
	v.add(p+".subject", "%q is in none of the streams listed for upstream %q; publishes would fail", n.Subject, n.Upstream)
}

func (v *validator) httpTarget(h *HTTPTarget, m *RouteMatch, p string) {
	v.upstreamRef(h.Upstream, "http", "an http route", p+".upstream")
	if h.Retries > 0 && !h.Idempotent {
		v.add(p+".retries", "retries need idempotent: true; a non-idempotent request could run twice")
	}
	if h.PrefixRewrite != "" && m.Prefix == "" {
		v.add(p+".prefix_rewrite", "needs a prefix match")
	}
}

func (v *validator) httpFilters(f *HTTPFilters, p string) {
	if f.CORS != nil {
		v.cors(f.CORS, p+".cors")
	}
	if f.JWTAuthn != nil {
		names := map[string]bool{}
		for i, pr := range f.JWTAuthn.Providers {
			pp := index(p+".jwt_authn.providers", i)
			if names[pr.Name] {
				v.add(pp+".name", "provider %q is listed twice", pr.Name)
			}
			names[pr.Name] = true
			switch {
			case (pr.JWKSURI == "") == (pr.LocalJWKS == ""):
				v.add(pp, "set exactly one of jwks_uri and local_jwks")
			case pr.JWKSURI != "":
				if pr.JWKSUpstream == "" {
					v.add(pp+".jwks_upstream", "is required with jwks_uri (Envoy fetches keys through a cluster)")
				} else {
					v.upstreamRef(pr.JWKSUpstream, "http", "a JWKS fetch", pp+".jwks_upstream")
				}
			default:
				var doc struct {
					Keys []json.RawMessage `json:"keys"`
				}
				if err := json.Unmarshal([]byte(pr.LocalJWKS), &doc); err != nil || doc.Keys == nil {
					v.add(pp+".local_jwks", "is not a JWKS document ({\"keys\": [...]})")
				}
			}
		}
		for i, r := range f.JWTAuthn.Require {
			if !names[r] {
				v.add(index(p+".jwt_authn.require", i), "no provider is named %q", r)
			}
		}
	}
	if f.ExtAuthz != nil {
		v.upstreamRef(f.ExtAuthz.Upstream, "http", "ext_authz", p+".ext_authz.upstream")
		if f.ExtAuthz.PathPrefix != "" && !strings.HasPrefix(f.ExtAuthz.PathPrefix, "/") {
			v.add(p+".ext_authz.path_prefix", "must start with /")
		}
	}
	if f.Fault != nil {
		v.fault(f.Fault, p+".fault")
	}
	if f.HeaderMutation != nil {
		v.headerMutation(f.HeaderMutation, p+".header_mutation")
	}
}

func (v *validator) routeFilters(f *RouteFilters, lf *HTTPFilters, p, lp string) {
	need := func(name string, set, enabled bool) {
		if set && !enabled {
			v.add(p+"."+name, "%s.%s is not enabled, so this route setting would do nothing", lp, name)
		}
	}
	need("cors", f.CORS != nil, lf.CORS != nil)
	need("jwt_authn", f.JWTAuthn != nil, lf.JWTAuthn != nil)
	need("ext_authz", f.ExtAuthz != nil, lf.ExtAuthz != nil)
	need("local_ratelimit", f.LocalRateLimit != nil, lf.LocalRateLimit != nil)
	need("fault", f.Fault != nil, lf.Fault != nil)
	need("buffer", f.Buffer != nil, lf.Buffer != nil)
	need("header_mutation", f.HeaderMutation != nil, lf.HeaderMutation != nil)
	need("gzip", f.Gzip != nil, lf.Gzip != nil)
	if f.CORS != nil {
		v.cors(f.CORS, p+".cors")
	}
	if f.JWTAuthn != nil && lf.JWTAuthn != nil {
		if f.JWTAuthn.Disabled && len(f.JWTAuthn.Require) > 0 {
			v.add(p+".jwt_authn", "set require or disabled, not both")
		}
		for i, r := range f.JWTAuthn.Require {
			if !slices.ContainsFunc(lf.JWTAuthn.Providers, func(pr JWTProvider) bool { return pr.Name == r }) {
				v.add(index(p+".jwt_authn.require", i), "no provider is named %q in %s.jwt_authn", r, lp)
			}
		}
	}
	if f.Fault != nil {
		v.fault(f.Fault, p+".fault")
	}
	if f.HeaderMutation != nil {
		v.headerMutation(f.HeaderMutation, p+".header_mutation")
	}
}

func (v *validator) cors(c *CORS, p string) {
	for i, o := range c.AllowOrigins {
		if o == "*" {
			if c.AllowCredentials {
				v.add(index(p+".allow_origins", i), "* cannot be combined with allow_credentials (browsers refuse it)")
			}
			continue
		}
		u, err := parseURL(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || (u.Path != "" && u.Path != "/") {
			v.add(index(p+".allow_origins", i), "%q is not an origin like https://app.example.com", o)
		}
	}
	for i, m := range c.AllowMethods {
		if strings.ToUpper(m) != m || checkHeaderName(m) != nil {
			v.add(index(p+".allow_methods", i), "%q is not an upper-case method name", m)
		}
	}
}

func (v *validator) fault(f *Fault, p string) {
	if f.Delay == nil && f.Abort == nil {
		v.add(p, "needs delay, abort or both")
	}
}

func (v *validator) headerMutation(h *HeaderMutation, p string) {
	check := func(name, hp string) {
		switch {
		case strings.EqualFold(name, v.cfg.Bridge.RouteHeader):
			v.add(hp, "%s is the route header; only protogate sets it", name)
		case strings.EqualFold(name, "host"):
			v.add(hp, "host cannot be changed here; use http.host_rewrite")
		}
	}
	for i, a := range h.RequestAdd {
		check(a.Name, index(p+".request_add", i)+".name")
	}
	for i, n := range h.RequestRemove {
		check(n, index(p+".request_remove", i))
	}
	for i, a := range h.ResponseAdd {
		check(a.Name, index(p+".response_add", i)+".name")
	}
}

func (v *validator) networkFilters(f *NetworkFilters, p string) {
	if r := f.RBAC; r != nil {
		if (len(r.AllowCIDRs) == 0) == (len(r.DenyCIDRs) == 0) {
			v.add(p+".rbac", "set exactly one of allow_cidrs and deny_cidrs")
		}
		for _, list := range []struct {
			name  string
			cidrs []string
		}{{"allow_cidrs", r.AllowCIDRs}, {"deny_cidrs", r.DenyCIDRs}} {
			for i, c := range list.cidrs {
				if _, err := netip.ParsePrefix(c); err != nil {
					v.add(index(p+".rbac."+list.name, i), "%q is not a CIDR like 10.0.0.0/8", c)
				}
			}
		}
	}
}

func (v *validator) bridge() {
	b := &v.cfg.Bridge
	if b.RouteHeader != "" && (slices.Contains(hopByHop, strings.ToLower(b.RouteHeader)) || strings.HasPrefix(b.RouteHeader, ":")) {
		v.add("bridge.route_header", "%s cannot carry the route name", b.RouteHeader)
	}
	if b.ReadHeaderTimeout > b.ReadTimeout && b.ReadTimeout > 0 {
		v.add("bridge.read_header_timeout", "%s is longer than read_timeout %s", b.ReadHeaderTimeout, b.ReadTimeout)
	}
}

func (v *validator) xds() {
	x := &v.cfg.XDS
	// Port 0 asks for any free port, so only a fixed port can clash.
	if x.Address != "" && x.Address == x.AdminAddress && !strings.HasSuffix(x.Address, ":0") {
		v.add("xds.admin_address", "is the same as xds.address")
	}
	listeners := map[string]bool{}
	for _, l := range v.cfg.Listeners {
		listeners[l.Name] = true
	}
	groups := map[string]bool{}
	grouped := map[string]bool{}
	for i, g := range x.Groups {
		p := index("xds.groups", i)
		if groups[g.Name] {
			v.add(p+".name", "group %q is listed twice", g.Name)
		}
		groups[g.Name] = true
		for j, l := range g.Listeners {
			if !listeners[l] {
				v.add(index(p+".listeners", j), "no listener is named %q", l)
			}
			grouped[l] = true
		}
	}
	for i, name := range x.RetiredGroups {
		for _, g := range x.Groups {
			if g.Name == name && len(g.Listeners) > 0 {
				v.add(index("xds.retired_groups", i), "group %q is retired but still has listeners in xds.groups", name)
			}
		}
	}
	if len(x.Groups) > 0 {
		for i, l := range v.cfg.Listeners {
			if l.Name != "" && !grouped[l.Name] {
				v.add(index("listeners", i)+".name", "listener %q is in no xds group, so no Envoy would get it", l.Name)
			}
		}
	}
}

// DefaultGroup is the node group used when the mapping names none.
const DefaultGroup = "default"

// resolve fills the defaults that depend on other fields, once the model is
// valid, so every consumer reads the same effective values.
func (c *Config) resolve() {
	dubbo := make(map[string]*DubboUpstream, len(c.Upstreams.Dubbo))
	for i := range c.Upstreams.Dubbo {
		u := &c.Upstreams.Dubbo[i]
		if _, dup := dubbo[u.Name]; !dup { // FindDubbo's first match
			dubbo[u.Name] = u
		}
	}
	for i := range c.Listeners {
		for j := range c.Listeners[i].Routes {
			r := &c.Listeners[i].Routes[j]
			if r.BodyLimit == 0 && c.Listeners[i].Protocol == ProtocolHTTP {
				r.BodyLimit = c.Bridge.MaxBodySize
			}
			if r.Dubbo != nil && r.Dubbo.Timeout == 0 {
				if u := dubbo[r.Dubbo.Upstream]; u != nil {
					r.Dubbo.Timeout = u.Timeout
				}
			}
			if r.Filters.LocalRateLimit != nil && r.Filters.LocalRateLimit.Burst == 0 {
				r.Filters.LocalRateLimit.Burst = r.Filters.LocalRateLimit.Requests
			}
		}
		f := &c.Listeners[i].Filters
		if f.LocalRateLimit != nil && f.LocalRateLimit.Burst == 0 {
			f.LocalRateLimit.Burst = f.LocalRateLimit.Requests
		}
		nf := &c.Listeners[i].NetworkFilters
		if nf.LocalRateLimit != nil && nf.LocalRateLimit.Burst == 0 {
			nf.LocalRateLimit.Burst = nf.LocalRateLimit.Connections
		}
	}
	if len(c.Bridge.Endpoints) == 0 {
		if _, port, err := SplitEndpoint(c.Bridge.Address); err == nil && port > 0 {
			c.Bridge.Endpoints = []string{c.Bridge.Address}
		}
	}
	if len(c.XDS.Groups) == 0 {
		g := NodeGroup{Name: DefaultGroup}
		for _, l := range c.Listeners {
			g.Listeners = append(g.Listeners, l.Name)
		}
		c.XDS.Groups = []NodeGroup{g}
	}
}

func article(proto string) string {
	if proto == "http" {
		return "an http"
	}
	return "a " + proto
}

// Routes counts the routes of all listeners.
func (c *Config) Routes() int {
	n := 0
	for _, l := range c.Listeners {
		n += len(l.Routes)
	}
	return n
}

// FindDubbo returns the Dubbo upstream of that name, or nil.
func (u *Upstreams) FindDubbo(name string) *DubboUpstream {
	for i := range u.Dubbo {
		if u.Dubbo[i].Name == name {
			return &u.Dubbo[i]
		}
	}
	return nil
}

// Count counts the upstreams of every protocol.
func (u *Upstreams) Count() int { return len(u.Dubbo) + len(u.NATS) + len(u.HTTP) + len(u.TCP) }
