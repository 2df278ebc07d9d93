// Package bridges is the HTTP server that turns requests into NATS
// publishes and Dubbo generic calls: a route table from the mapping, request
// extraction, per-protocol handlers, and errors as JSON with the status a
// client can act on.
package bridges

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/protogate/protogate/config"
	dubboproto "github.com/protogate/protogate/protocols/dubbo"
	natsproto "github.com/protogate/protogate/protocols/nats"
	"github.com/protogate/protogate/protocols/nats/subject"
	"github.com/protogate/protogate/routetable"
)

// Server is the bridge HTTP server.
type Server struct {
	settings config.Bridge // server settings, fixed at start
	log      *slog.Logger
	natsURLs map[string][]string
	state    atomic.Pointer[state]
	reloadMu sync.Mutex
	// dubbo is created on the first mapping with Dubbo routes.
	dubbo *dubboproto.Invoker
	http  *http.Server
	lis   net.Listener
	// closing turns readiness off as soon as shutdown starts.
	closing atomic.Bool
	// awaiting is set while a bridge fed over xDS has no table yet.
	awaiting atomic.Bool
	// inFlight bounds the requests served at once (bridge.max_in_flight).
	inFlight chan struct{}
	metrics  *metrics
	// access gets the access log lines.
	access *slog.Logger
}

// state is everything a request is served from; a reload builds a new one
// and swaps it in whole, so a request never sees half of two mappings.
type state struct {
	table     *table
	version   string // the route table's
	nats      map[string]*natsConn
	javaTypes dubboproto.Types
	// transports are the HTTP upstreams' connection pools, by digest.
	transports map[string]*http.Transport
	// dubbo is the server's invoker as this state was prepared (nil
	// while no table had Dubbo routes), read without racing Prepare.
	dubbo *dubboproto.Invoker
	// tracing exports spans when the table names a collector.
	tracing *tracing
}

// natsConn is a connection with the upstream settings it was made for, so a
// reload reuses it only while they are unchanged.
type natsConn struct {
	*natsproto.Conn
	settings string
}

// Options adjust a Server beyond the mapping.
type Options struct {
	Logger *slog.Logger
	// NATSURLs gives the URLs of NATS upstreams that have none in the
	// mapping (embedded servers).
	NATSURLs map[string][]string
	// AwaitTable starts the bridge with no routes, not ready, until Apply
	// gives it a table (a bridge fed by the control plane over xDS).
	AwaitTable bool
	// AccessLog gets the access log lines of listeners that log requests;
	// nil: Logger.
	AccessLog *slog.Logger
}

// New builds a bridge with its server settings, serving a route table, and
// opens a connection to each NATS upstream the table's routes use. A NATS
// server that is down does not stop it; the bridge is not ready until the
// connection is up. The table is the only thing a bridge reads of the
// mapping: the translator computed it, whether it came over xDS or from a
// file read in the same process.
func New(settings config.Bridge, t *routetable.Table, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{settings: settings, log: opts.Logger, natsURLs: opts.NATSURLs, inFlight: make(chan struct{}, max(settings.MaxInFlight, 1)),
		access: opts.AccessLog}
	if s.access == nil {
		s.access = opts.Logger
	}
	s.metrics = newMetrics(s)
	if opts.AwaitTable {
		s.awaiting.Store(true)
		t = &routetable.Table{Group: "(none yet)", RouteHeader: settings.RouteHeader, MaxJSONDepth: settings.MaxJSONDepth}
	}
	st, err := s.Prepare(t)
	if err != nil {
		return nil, err
	}
	s.state.Store(st)
	b := &settings
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: b.ReadHeaderTimeout.Std(),
		ReadTimeout:       b.ReadTimeout.Std(),
		WriteTimeout:      b.WriteTimeout.Std(),
		IdleTimeout:       b.IdleTimeout.Std(),
		MaxHeaderBytes:    int(b.MaxHeaderSize),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if b.HTTP2 {
		// Envoy speaks HTTP/2 in clear text to the bridges when asked.
		p := new(http.Protocols)
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		s.http.Protocols = p
	}
	return s, nil
}

// Prepared is a table made ready to serve but not yet serving.
type Prepared = state

// Prepare builds what a table needs (matchers, connections to NATS
// upstreams whose settings changed) without touching what is serving; on
// failure nothing is left behind. Commit switches to it.
func (s *Server) Prepare(rt *routetable.Table) (*Prepared, error) { return s.PrepareAlongside(rt, nil) }

// PrepareAlongside is Prepare for a table that goes before another one,
// pending, not yet committed: what pending opened is reused, so the two
// share their connections (the table that serves a reload's old and new
// routes while Envoys switch, before the new table alone).
func (s *Server) PrepareAlongside(rt *routetable.Table, pending *Prepared) (*Prepared, error) {
	if err := rt.Validate(); err != nil {
		return nil, err
	}
	st := &state{version: rt.Version(), nats: map[string]*natsConn{}, transports: map[string]*http.Transport{},
		javaTypes: dubboproto.NewTypes(rt.JavaTypes)}
	cur := s.state.Load()
	// An HTTP upstream whose settings did not change keeps its pool of
	// connections; a changed one gets a new pool.
	transport := func(u *routetable.HTTPUpstream) *http.Transport {
		if tr, ok := st.transports[u.Digest]; ok {
			return tr
		}
		tr, ok := (*http.Transport)(nil), false
		if cur != nil {
			tr, ok = cur.transports[u.Digest]
		}
		if !ok && pending != nil {
			tr, ok = pending.transports[u.Digest]
		}
		if !ok {
			tr = newTransport(&u.HTTPUpstream)
		}
		st.transports[u.Digest] = tr
		return tr
	}
	t, err := buildTable(rt, s.log, transport)
	if err != nil {
		return nil, err
	}
	st.table = t
	if t.hasDubbo() && s.dubbo == nil {
		if s.dubbo, err = dubboproto.NewInvoker(s.log); err != nil {
			return nil, err
		}
	}
	st.dubbo = s.dubbo
	if pending != nil && pending.tracing != nil && rt.Tracing != nil && pending.tracing.settings == tracingKey(rt.Tracing) {
		st.tracing = pending.tracing
	} else if st.tracing, err = prepareTracing(rt.Tracing, cur); err != nil {
		return nil, err
	}
	var current map[string]*natsConn
	if old := s.state.Load(); old != nil {
		current = old.nats
	}
	var opened []*natsConn
	for i := range rt.Upstreams.NATS {
		u := &rt.Upstreams.NATS[i].NATSUpstream
		urls := u.URLs
		if o, ok := s.natsURLs[u.Name]; ok {
			urls = o
		} else if u.Embedded {
			return nil, fmt.Errorf("NATS upstream %q is embedded but no embedded server runs for it: "+
				"embedded servers start with protogate run, so restart it after adding one", u.Name)
		}
		// The table's digest of the settings (by value, TLS included), and
		// the URLs of an embedded server: an unchanged upstream keeps its
		// connection across reloads.
		settings := rt.Upstreams.NATS[i].Digest + " " + strings.Join(urls, ",")
		if c, ok := current[u.Name]; ok && c.settings == settings {
			st.nats[u.Name] = c
			continue
		}
		if c, ok := pending.natsConn(u.Name); ok && c.settings == settings {
			st.nats[u.Name] = c
			continue
		}
		c, err := natsproto.Connect(u, urls, s.log)
		if err != nil {
			for _, o := range opened {
				o.Drain(time.Second)
			}
			return nil, err
		}
		nc := &natsConn{Conn: c, settings: settings}
		opened = append(opened, nc)
		st.nats[u.Name] = nc
	}
	return st, nil
}

// natsConn is the connection p holds for an upstream; p may be nil.
func (p *Prepared) natsConn(name string) (*natsConn, bool) {
	if p == nil {
		return nil, false
	}
	c, ok := p.nats[name]
	return c, ok
}

// Current is what serves now, for a caller that may need to go back to it
// (Commit it again).
func (s *Server) Current() *Prepared { return s.state.Load() }

// Commit switches to a prepared mapping. Requests already running finish
// on what they started with; connections no longer used are drained once
// those requests can have finished.
func (s *Server) Commit(p *Prepared) {
	old := s.state.Swap(p)
	if old == nil {
		return
	}
	var unused []*natsConn
	for name, c := range old.nats {
		if p.nats[name] != c {
			unused = append(unused, c)
		}
	}
	var idle []*http.Transport
	for d, tr := range old.transports {
		if p.transports[d] != tr {
			idle = append(idle, tr)
		}
	}
	var oldTracing *tracing
	if old.tracing != p.tracing {
		oldTracing = old.tracing
	}
	go func() {
		// Requests started on the old table can have finished by then.
		time.Sleep(s.settings.WriteTimeout.Std())
		oldTracing.shutdown()
		for _, c := range unused {
			c.Drain(5 * time.Second)
		}
		for _, tr := range idle {
			tr.CloseIdleConnections()
		}
		if s.dubbo != nil {
			// Providers no table names any more lose their connections;
			// the table is read now, so a newer reload's are kept.
			s.dubbo.Retain(dubboAddrs(s.state.Load().table))
		}
	}()
	s.log.Info("bridge routes switched", "routes", len(p.table.byName), "table_version", p.version)
}

// Discard releases what Prepare opened for a table that will not be
// committed (the control plane refused the reload): connections the serving
// table does not share are drained.
func (s *Server) Discard(p *Prepared) {
	cur := s.state.Load()
	if p.tracing != nil && (cur == nil || cur.tracing != p.tracing) {
		p.tracing.shutdown()
	}
	for name, c := range p.nats {
		if cur == nil || cur.nats[name] != c {
			c.Drain(time.Second)
		}
	}
	for d, tr := range p.transports {
		if cur == nil || cur.transports[d] != tr {
			tr.CloseIdleConnections()
		}
	}
}

// Apply prepares and commits a table: the bridge-only reload.
func (s *Server) Apply(t *routetable.Table) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	p, err := s.Prepare(t)
	if err != nil {
		return err
	}
	s.Commit(p)
	s.awaiting.Store(false)
	return nil
}

// Start binds the bridge address and serves it.
func (s *Server) Start() error {
	lis, err := net.Listen("tcp", s.settings.Address)
	if err != nil {
		return fmt.Errorf("bridge address %s: %w", s.settings.Address, err)
	}
	s.lis = lis
	lis = limitListener(lis, s.settings.MaxConnections, s.log, s.metrics.refused.WithLabelValues("connections").Inc)
	go func() {
		if err := s.http.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("bridge server stopped", "err", err)
		}
	}()
	s.log.Info("bridge listening", "address", s.Addr())
	return nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Drain marks the bridge not ready while it keeps serving: it is leaving
// and Shutdown follows.
func (s *Server) Drain() { s.closing.Store(true) }

// Shutdown stops taking requests, lets those in flight finish within ctx,
// then drains the NATS connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	err := s.http.Shutdown(ctx)
	s.closeNATS()
	s.state.Load().tracing.shutdown() // what is left is sent
	return err
}

func (s *Server) closeNATS() {
	for _, c := range s.state.Load().nats {
		c.Drain(5 * time.Second)
	}
}

// Ready reports whether the bridge has a table and every upstream its
// routes use, unless the mapping marks it optional, can take calls: a NATS
// upstream is connected, a Dubbo one has a provider it can reach. It says
// for each one that cannot why ("events: not connected: ...").
func (s *Server) Ready() (bool, []string) {
	var down []string
	for _, u := range s.Upstreams() {
		if !u.Usable && !u.Optional {
			down = append(down, u.Name+": "+u.Reason)
		}
	}
	return len(down) == 0 && !s.closing.Load() && !s.awaiting.Load(), down
}

// UpstreamState is whether an upstream the bridge serves can take calls.
type UpstreamState struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Usable   bool   `json:"usable"`
	Reason   string `json:"reason,omitempty"`
	Optional bool   `json:"optional,omitempty"`
	// Known and Healthy count a Dubbo upstream's providers.
	Known   int `json:"known,omitempty"`
	Healthy int `json:"healthy,omitempty"`
}

// Upstreams lists the state of each NATS and Dubbo upstream the routes
// use, by protocol and name.
func (s *Server) Upstreams() []UpstreamState {
	st := s.state.Load()
	var out []UpstreamState
	for name, c := range st.nats {
		ok, why := c.Usable()
		out = append(out, UpstreamState{Name: name, Protocol: "nats", Usable: ok, Reason: why, Optional: st.table.optional["nats/"+name]})
	}
	out = append(out, dubboStates(st)...)
	slices.SortFunc(out, func(a, b UpstreamState) int {
		return strings.Compare(a.Protocol+"/"+a.Name, b.Protocol+"/"+b.Name)
	})
	return out
}

// exchange is what ServeHTTP keeps of one request, in one allocation.
type exchange struct {
	rec  statusRecorder
	info requestInfo
	body countingBody
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ex := &exchange{rec: statusRecorder{ResponseWriter: w, status: http.StatusOK}}
	rec := &ex.rec
	st := s.state.Load()
	t := st.table
	routeName := r.Header.Get(t.routeHeader)
	switch {
	case routeName == "" && r.URL.Path == "/healthz":
		rec.Write([]byte("ok\n"))
		return
	case routeName == "" && r.URL.Path == "/readyz":
		if ok, down := s.Ready(); !ok {
			msg := "not ready: shutting down"
			if s.awaiting.Load() {
				msg = "not ready: no route table from the control plane yet"
			}
			if len(down) > 0 {
				msg = "not ready: upstreams unusable: " + strings.Join(down, "; ")
			}
			writeError(rec, &apiError{Status: http.StatusServiceUnavailable, Code: "not_ready", Message: msg})
			return
		}
		rec.Write([]byte("ready\n"))
		return
	case routeName == "" && t.openapiPath != "" && r.URL.Path == t.openapiPath:
		serveOpenAPI(rec, r, t.openapi, st.version)
		return
	case routeName == "" && r.URL.Path == "/metrics":
		s.metrics.handler.ServeHTTP(rec, r)
		return
	}
	// Past max_in_flight a request is told at once to come back, rather
	// than queueing behind the others until every one of them is late.
	select {
	case s.inFlight <- struct{}{}:
		defer func() { <-s.inFlight }()
	default:
		s.metrics.refused.WithLabelValues("overloaded").Inc()
		rec.Header().Set("Retry-After", "1")
		writeError(rec, &apiError{Status: http.StatusServiceUnavailable, Code: "overloaded",
			Message: fmt.Sprintf("the bridge is serving %d requests already; retry shortly", cap(s.inFlight))})
		return
	}
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	info := &ex.info
	info.method, info.traceID, info.bodyTimeout = r.Method, traceIDOf(r.Header), s.settings.BodyTimeout.Std()
	if r.Body != nil && r.Body != http.NoBody {
		ex.body = countingBody{r.Body, &info.bytesIn}
		r.Body = &ex.body
	}
	r = withInfo(r, info)
	var span trace.Span
	if st.tracing != nil {
		r, span = st.tracing.serverSpan(r)
		if sc := span.SpanContext(); sc.IsValid() {
			info.traceID = sc.TraceID().String()
		}
	}
	rt, vars, aerr := t.find(r, routeName)
	if rt != nil {
		info.routeKnown(rt)
	} else if aerr != nil && t.byName[aerr.Route] != nil {
		info.routeKnown(t.byName[aerr.Route]) // a 404 or 405 that still knew its route
	}
	if aerr == nil {
		aerr = s.serve(rec, r, st, rt, vars)
	}
	if aerr != nil {
		info.errCode = aerr.Code
		writeError(rec, aerr)
	}
	took := time.Since(start)
	if span != nil {
		endServer(span, info, rec.status)
	}
	s.metrics.countRequest(info, rec.status, took)
	s.accessLog(r.Context(), info, rec.status, rec.bytes, took)
	if s.log.Enabled(r.Context(), slog.LevelDebug) { // the arguments alone would allocate
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "route", info.route, "status", rec.status, "duration", took)
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, st *state, rt *route, vars map[string]string) *apiError {
	switch {
	case rt.row.NATS != nil:
		return s.serveNATS(w, r, st, rt, vars)
	case rt.row.Dubbo != nil:
		return s.serveDubbo(w, r, st, rt, vars)
	case rt.proxy != nil:
		return s.serveProxy(w, r, rt)
	}
	return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no bridge route here",
		Route: rt.row.Name, Upstream: rt.upstream()}
}

// table is the bridge's view of the mapping's routes.
type table struct {
	routeHeader string
	byName      map[string]*route
	// former are the earlier definitions of routes a reload changes, in a
	// bridging table only: what an Envoy not yet switched sends.
	former   map[string]*route
	ordered  []*route
	maxDepth int
	// optional are the upstreams ("nats/NAME") the bridge may be ready
	// without.
	optional map[string]bool
	// openapi is the description of the routes, served at openapiPath.
	openapiPath string
	openapi     []byte
	// domains are, per listener, the hosts its routes name in
	// match.hosts: a request is for the one Envoy's virtual hosts would
	// pick (hosts.go).
	domains map[string][]string
	// dubboUps are the table's Dubbo upstreams, listed once: /readyz and
	// every scrape read them (health.go).
	dubboUps []*dubboUpstream
}

type route struct {
	row *routetable.Route
	tpl *config.PathTemplate
	// tplLiteral is the path template's literal start ("/a/b" of
	// "/a/b/{id}"): a path without it cannot match, and is told so
	// without splitting it.
	tplLiteral string
	prefix     string
	re         *regexp.Regexp
	headers    []headerMatch
	methods    []string
	subject    *subject.Template
	// natsHeaders are a NATS route's header names in canonical form.
	natsHeaders *natsHeaderNames
	dubbo       *dubboRoute
	proxy       *proxyRoute
	listener    string
	// protocol and target name the route in the access log and metrics.
	protocol, target string
	metrics          atomic.Pointer[routeMetrics]
}

type headerMatch struct {
	config.HeaderMatch
	re *regexp.Regexp
}

// buildTable compiles a route table: matchers, subjects and Java types
// parsed once. Dubbo and NATS routes are the bridge's own; plain HTTP
// routes it proxies only when no Envoy stands in front (behind Envoy they
// never reach a bridge).
func buildTable(rt *routetable.Table, log *slog.Logger, transport transportFor) (*table, error) {
	t := &table{routeHeader: rt.RouteHeader, byName: map[string]*route{}, maxDepth: rt.MaxJSONDepth, optional: map[string]bool{}}
	for _, u := range rt.Upstreams.NATS {
		t.optional["nats/"+u.Name] = u.Optional
	}
	for i := range rt.Routes {
		row := &rt.Routes[i]
		r, err := buildRoute(rt, row, log, transport)
		if err != nil {
			return nil, err
		}
		t.byName[row.Name] = r
		t.ordered = append(t.ordered, r)
		t.addDomains(row)
	}
	for i := range rt.Former {
		row := &rt.Former[i]
		r, err := buildRoute(rt, row, log, transport)
		if err != nil {
			return nil, fmt.Errorf("former definition: %w", err)
		}
		if t.former == nil {
			t.former = map[string]*route{}
		}
		t.former[row.Name] = r
		// Matched last when no Envoy names the route; their providers
		// and connections are kept while they serve.
		t.ordered = append(t.ordered, r)
		t.addDomains(row)
	}
	t.dubboUps = dubboUpstreams(t)
	if rt.OpenAPIPath != "" {
		doc, err := openAPIOf(rt)
		if err != nil {
			return nil, fmt.Errorf("openapi: %w", err)
		}
		t.openapiPath, t.openapi = rt.OpenAPIPath, doc
	}
	return t, nil
}

// buildRoute parses what one route needs at request time; every error
// names the route.
func buildRoute(t *routetable.Table, row *routetable.Route, log *slog.Logger, transport transportFor) (*route, error) {
	rt := &route{row: row, prefix: row.Match.Prefix, methods: row.Match.Methods, listener: row.Listener}
	rt.protocol, rt.target = protocolAndTarget(row)
	if err := rt.parseMatch(); err != nil {
		return nil, fmt.Errorf("route %q: %w", row.Name, err)
	}
	var err error
	switch {
	case row.NATS != nil:
		if rt.subject, err = subject.Parse(row.NATS.Subject); err != nil {
			return nil, fmt.Errorf("route %q: %w", row.Name, err)
		}
		rt.natsHeaders = canonicalNames(row.NATS)
	case row.Dubbo != nil:
		rt.dubbo, err = newDubboRoute(t, row)
	case row.HTTP != nil:
		rt.proxy, err = newProxyRoute(t, row, log, transport)
	}
	if err != nil {
		return nil, err // newDubboRoute and newProxyRoute name the route
	}
	return rt, nil
}

// parseMatch compiles the route's path template, regex and header regexes.
func (rt *route) parseMatch() error {
	m := &rt.row.Match
	var err error
	if m.Path != "" {
		if rt.tpl, err = config.ParsePathTemplate(m.Path); err != nil {
			return err
		}
		rt.tplLiteral = literalStart(rt.tpl)
	}
	if m.Regex != "" {
		if rt.re, err = regexp.Compile(m.Regex); err != nil {
			return fmt.Errorf("match.regex: %w", err)
		}
	}
	for _, h := range m.Headers {
		hm := headerMatch{HeaderMatch: h}
		if h.Regex != "" {
			if hm.re, err = regexp.Compile(h.Regex); err != nil {
				return fmt.Errorf("match.headers %s: %w", h.Name, err)
			}
		}
		rt.headers = append(rt.headers, hm)
	}
	return nil
}

// upstream names the upstream a route calls.
func (rt *route) upstream() string { return rt.row.Upstream() }

// dubboAddrs are the provider addresses a table's Dubbo routes may call.
func dubboAddrs(t *table) map[string]bool {
	keep := map[string]bool{}
	for _, u := range t.dubboUps {
		for _, a := range u.addrs {
			keep[a] = true
		}
	}
	return keep
}

func (t *table) hasDubbo() bool {
	for _, rt := range t.ordered {
		if rt.dubbo != nil {
			return true
		}
	}
	return false
}

// find picks the route: by name when Envoy sent the route header, else by
// matching like Envoy would. Either way the path, headers and method must fit
// the route, so the header selects among the mapping's routes and nothing more.
func (t *table) find(r *http.Request, name string) (*route, map[string]string, *apiError) {
	if name != "" {
		rt, ok := t.byName[name]
		if !ok {
			return nil, nil, &apiError{Status: http.StatusNotFound, Code: "unknown_route", Message: fmt.Sprintf("no bridge route is named %q", name)}
		}
		if f := t.former[name]; f != nil && !(rt.takes(r) && rt.hostIsOwn(r)) && f.takes(r) && f.hostIsOwn(r) {
			rt = f // sent by an Envoy still on the route's former definition
		}
		vars, ok := rt.matchPath(r)
		// Envoy picked the virtual host already, maybe from routes older or
		// newer than these: the host need only be one the route names.
		if !ok || !rt.matchHeaders(r) || !rt.hostIsOwn(r) {
			return nil, nil, &apiError{Status: http.StatusNotFound, Code: "not_found", Route: name, Upstream: rt.upstream(),
				Message: "the request does not match route " + name}
		}
		if !rt.allows(r.Method) {
			return nil, nil, methodNotAllowed(rt.methods, rt)
		}
		return rt, vars, nil
	}
	var allowed []string
	var matched []*route
	for _, rt := range t.ordered {
		vars, ok := rt.matchPath(r)
		if !ok || !rt.matchHeaders(r) || !t.forHost(rt, r) {
			continue
		}
		if rt.allows(r.Method) {
			return rt, vars, nil
		}
		allowed = append(allowed, rt.methods...)
		matched = append(matched, rt)
	}
	switch len(matched) {
	case 0:
		return nil, nil, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no route matches " + r.Method + " " + r.URL.Path}
	case 1:
		return nil, nil, methodNotAllowed(allowed, matched[0])
	}
	// Several routes share the path: none of them is the one meant.
	return nil, nil, methodNotAllowed(allowed, nil)
}

// methodNotAllowed is a 405 with the Allow header; it names the route and
// its upstream when one route is known (rt may be nil).
func methodNotAllowed(allowed []string, rt *route) *apiError {
	allowed = slices.Clone(allowed) // rt.methods is the mapping's own slice
	slices.Sort(allowed)
	allowed = slices.Compact(allowed)
	e := &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
		Message: "allowed methods: " + strings.Join(allowed, ", "), allow: strings.Join(allowed, ", ")}
	if rt != nil {
		e.Route, e.Upstream = rt.row.Name, rt.upstream()
	}
	return e
}

// takes reports whether the route matches the request whole: path,
// headers and method.
func (rt *route) takes(r *http.Request) bool {
	_, ok := rt.matchPath(r)
	return ok && rt.matchHeaders(r) && rt.allows(r.Method)
}

// literalStart is "/" and the template's literal segments up to its first
// variable, joined as the escaped path has them ("" when it starts with a
// variable): PathTemplate.Match compares literal segments with the escaped
// path's own.
func literalStart(t *config.PathTemplate) string {
	var b strings.Builder
	for _, seg := range t.Segments {
		if seg.Var != "" || seg.Rest {
			break
		}
		b.WriteString("/" + seg.Literal)
	}
	return b.String()
}

func (rt *route) matchPath(r *http.Request) (map[string]string, bool) {
	switch {
	case rt.tpl != nil:
		p := r.URL.EscapedPath()
		if !strings.HasPrefix(p, rt.tplLiteral) {
			return nil, false
		}
		return rt.tpl.Match(p)
	case rt.prefix != "":
		return nil, strings.HasPrefix(r.URL.Path, rt.prefix)
	case rt.re != nil:
		return nil, rt.re.MatchString(r.URL.Path)
	}
	return nil, false
}

func (rt *route) matchHeaders(r *http.Request) bool {
	for _, h := range rt.headers {
		v, present := r.Header[http.CanonicalHeaderKey(h.Name)]
		val := strings.Join(v, ",")
		var ok bool
		switch {
		case h.Present:
			ok = present
		case h.Exact != "":
			ok = present && val == h.Exact
		case h.Prefix != "":
			ok = present && strings.HasPrefix(val, h.Prefix)
		case h.re != nil:
			ok = present && h.re.MatchString(val)
		}
		if ok == h.Invert {
			return false
		}
	}
	return true
}

func (rt *route) allows(method string) bool {
	return len(rt.methods) == 0 || slices.Contains(rt.methods, method)
}

// statusRecorder remembers the status for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's own writer:
// readBody sets the body_timeout read deadline through it.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
