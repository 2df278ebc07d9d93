package xds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"sync"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// servedSnapshot is a group's snapshot with what VHDS needs: the route
// configurations of listeners with on_demand_hosts whole, as translated.
// Delta Envoys are served them without their virtual hosts (each is loaded
// on request, see vhdsWatch); state-of-the-world Envoys, which cannot use
// VHDS, with them and without VHDS.
type servedSnapshot struct {
	*cache.Snapshot
	whole map[string]*route.RouteConfiguration // by name: those with VHDS
	sotw  map[string]types.Resource            // the route configurations state-of-the-world Envoys get

	mu     sync.Mutex
	hosts  map[string]vhdsEntry // "config/host" → the virtual host answering it
	bodies map[*route.VirtualHost]*pickedVhost
	deltaV map[string]string // route configuration → version of its delta form
	// byType caches GetResources, which go-control-plane builds anew on
	// every call, and the caches call for every request of every client.
	byType map[string]map[string]types.Resource
}

// GetResources is the snapshot's, made once per type; read-only.
func (s *servedSnapshot) GetResources(typeURL string) map[string]types.Resource {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.byType[typeURL]; ok {
		return m
	}
	m := s.Snapshot.GetResources(typeURL)
	if s.byType == nil {
		s.byType = map[string]map[string]types.Resource{}
	}
	s.byType[typeURL] = m
	return m
}

// splitVHDS returns route configurations as delta Envoys get them, and
// keeps what state-of-the-world ones get and the whole tables.
func (s *servedSnapshot) splitVHDS(items []types.Resource) []types.Resource {
	out := make([]types.Resource, len(items))
	for i, r := range items {
		rc, ok := r.(*route.RouteConfiguration)
		if !ok || rc.GetVhds() == nil {
			out[i] = r
			continue
		}
		if s.whole == nil {
			s.whole, s.sotw = map[string]*route.RouteConfiguration{}, map[string]types.Resource{}
		}
		s.whole[rc.GetName()] = rc
		delta := proto.CloneOf(rc)
		delta.VirtualHosts = nil
		out[i] = delta
		sotw := proto.CloneOf(rc)
		sotw.Vhds = nil
		s.sotw[rc.GetName()] = sotw
	}
	if s.sotw != nil {
		for _, r := range out {
			if _, ok := s.sotw[cache.GetResourceName(r)]; !ok {
				s.sotw[cache.GetResourceName(r)] = r
			}
		}
	}
	return out
}

// sotwForm: state-of-the-world Envoys get the route configurations with
// their virtual hosts.
func (s *servedSnapshot) sotwForm(typeURL string) (map[string]types.Resource, bool) {
	if typeURL != resource.RouteType || s.sotw == nil {
		return nil, false
	}
	return s.sotw, true
}

// vhdsEntry is one requested host's virtual host: its name, and for a
// host the server knows, the virtual host answering it (shared by every
// host it answers) and the version. An unknown name has neither.
type vhdsEntry struct {
	name, host string
	picked     *pickedVhost
	version    string
}

// pickedVhost is a virtual host of a route configuration encoded once,
// without its name and domains, which each host's copy puts in front.
type pickedVhost struct {
	body    []byte
	version string
}

const unknownVersion = "unknown"

// resource is e as a delta resource. Its bytes are made per response (a
// few bytes of name and domain before the shared body) and dropped after,
// so a host kept costs its name, not a copy of its routes.
func (e vhdsEntry) resource() *discovery.Resource {
	r := &discovery.Resource{Name: e.name, Aliases: []string{e.name}}
	if e.picked == nil {
		return r
	}
	b := make([]byte, 0, len(e.name)+len(e.host)+8+len(e.picked.body))
	b = protowire.AppendTag(b, 1, protowire.BytesType) // VirtualHost.name
	b = protowire.AppendString(b, e.name)
	b = protowire.AppendTag(b, 2, protowire.BytesType) // VirtualHost.domains
	b = protowire.AppendString(b, e.host)
	b = append(b, e.picked.body...)
	r.Version, r.Resource = e.version, &anypb.Any{TypeUrl: resource.VirtualHostType, Value: b}
	return r
}

// maxVHDSHosts bounds the hosts remembered per snapshot: a host is
// whatever a client put in its Host header. Past the bound a host is
// worked out on each request for it, which costs a lookup and a hash.
const maxVHDSHosts = 4096

// maxVHDSPerStream bounds the hosts one Envoy is served: past it, a new
// host gets the answer for a name the server does not know (Envoy answers
// 404), so that random Host headers cannot grow an Envoy's routes, or the
// work of answering it, without end.
const maxVHDSPerStream = 1024

// namespaceVersion is the version of a subscription to a route
// configuration's whole namespace, which Envoy starts VHDS with: it is
// answered, with nothing, so that Envoy stops waiting.
const namespaceVersion = "namespace"

// vhost is the virtual host for the VHDS name "config/host": a virtual
// host of the route configuration, named so and for that host alone, that
// holds the routes Envoy would pick for the host — its exact domain's, the
// longest matching wildcard's, or those for any host. An unknown
// configuration gets the resource Envoy expects for a name the server
// does not know: its name and alias, no virtual host.
func (s *servedSnapshot) vhost(name string) vhdsEntry {
	s.mu.Lock()
	if e, ok := s.hosts[name]; ok {
		s.mu.Unlock()
		return e
	}
	s.mu.Unlock()
	e := s.buildVhost(name)
	s.mu.Lock()
	if s.hosts == nil {
		s.hosts = map[string]vhdsEntry{}
	}
	if len(s.hosts) < maxVHDSHosts {
		s.hosts[name] = e
	}
	s.mu.Unlock()
	return e
}

func (s *servedSnapshot) buildVhost(name string) vhdsEntry {
	unknown := vhdsEntry{name: name, version: unknownVersion}
	i := strings.LastIndex(name, "/")
	if i < 0 {
		return unknown
	}
	config, host := name[:i], strings.ToLower(name[i+1:])
	rc := s.whole[config]
	if rc == nil || host == "" {
		return unknown
	}
	picked := s.picked(config, pickVhost(rc.GetVirtualHosts(), host))
	if picked == nil {
		return unknown
	}
	sum := sha256.Sum256([]byte(picked.version + "\x00" + host))
	return vhdsEntry{name: name, host: host, picked: picked, version: hex.EncodeToString(sum[:8])}
}

// picked is vh of config encoded once per snapshot.
func (s *servedSnapshot) picked(config string, vh *route.VirtualHost) *pickedVhost {
	if vh == nil {
		return nil
	}
	s.mu.Lock()
	p, ok := s.bodies[vh]
	s.mu.Unlock()
	if ok {
		return p
	}
	body := proto.CloneOf(vh)
	body.Name, body.Domains = "", nil
	b, err := deterministic.Marshal(body)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(append(slices.Clip(b), s.deltaVersion(config)...))
	p = &pickedVhost{body: b, version: hex.EncodeToString(sum[:8])}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bodies == nil {
		s.bodies = map[*route.VirtualHost]*pickedVhost{}
	}
	s.bodies[vh] = p
	return p
}

// deltaVersion is the version of config as delta Envoys hold it: when it
// changes, Envoy drops the virtual hosts it loaded and needs them again.
func (s *servedSnapshot) deltaVersion(config string) string {
	s.mu.Lock()
	v, ok := s.deltaV[config]
	s.mu.Unlock()
	if ok {
		return v
	}
	if r, ok := s.GetResources(resource.RouteType)[config]; ok {
		if b, err := deterministic.Marshal(r); err == nil {
			sum := sha256.Sum256(b)
			v = hex.EncodeToString(sum[:8])
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deltaV == nil {
		s.deltaV = map[string]string{}
	}
	s.deltaV[config] = v
	return v
}

// pickVhost is the virtual host Envoy would route host to, matching
// domains against the Host header as sent, port included: an exact
// domain, then the longest "*." wildcard the host ends with, then "*".
func pickVhost(vhosts []*route.VirtualHost, host string) *route.VirtualHost {
	var wildcard, any *route.VirtualHost
	longest := 0
	for _, vh := range vhosts {
		for _, d := range vh.GetDomains() {
			switch {
			case d == host:
				return vh
			case d == "*":
				any = vh
			case strings.HasPrefix(d, "*.") && strings.HasSuffix(host, d[1:]) && len(d) > longest:
				wildcard, longest = vh, len(d)
			}
		}
	}
	if wildcard != nil {
		return wildcard
	}
	return any
}

// vhdsResponse is one delta response of virtual hosts.
type vhdsResponse struct {
	req       *cache.DeltaRequest
	resources []*discovery.Resource
	next      map[string]string
	version   string
}

var _ cache.DeltaResponse = (*vhdsResponse)(nil)

func (r *vhdsResponse) GetDeltaDiscoveryResponse() (*discovery.DeltaDiscoveryResponse, error) {
	return &discovery.DeltaDiscoveryResponse{SystemVersionInfo: r.version, Resources: r.resources, TypeUrl: resource.VirtualHostType}, nil
}
func (r *vhdsResponse) GetDeltaRequest() *cache.DeltaRequest    { return r.req }
func (r *vhdsResponse) GetSystemVersion() (string, error)       { return r.version, nil }
func (r *vhdsResponse) GetResponseVersion() string              { return r.version }
func (r *vhdsResponse) GetNextVersionMap() map[string]string    { return r.next }
func (r *vhdsResponse) GetReturnedResources() map[string]string { return r.next }
func (r *vhdsResponse) GetContext() context.Context             { return context.Background() }

// vhdsWatches are the open virtual-host watches by cache key, answered
// when a snapshot of their key changes what they subscribe to.
type vhdsWatches struct {
	mu     sync.Mutex
	nextID int64
	open   map[string]map[int64]*vhdsWatch
}

type vhdsWatch struct {
	req *cache.DeltaRequest
	sub cache.Subscription
	ch  chan cache.DeltaResponse
}

// vhdsWatch answers a delta request for virtual hosts (VHDS) from the
// node's snapshot, or waits for a snapshot that changes one it subscribes
// to. Names are "config/host" as Envoy asks for them on a request for a
// host it has no routes for, or a configuration's name alone, which Envoy
// subscribes to first.
func (s *Server) vhdsWatch(req *cache.DeltaRequest, sub cache.Subscription, ch chan cache.DeltaResponse) (func(), error) {
	key := nodeHash{s}.ID(req.GetNode())
	w := &vhdsWatch{req: req, sub: sub, ch: ch}
	s.vhds.mu.Lock()
	defer s.vhds.mu.Unlock()
	if s.answerVHDS(key, w) {
		return func() {}, nil
	}
	s.vhds.nextID++
	id := s.vhds.nextID
	if s.vhds.open == nil {
		s.vhds.open = map[string]map[int64]*vhdsWatch{}
	}
	if s.vhds.open[key] == nil {
		s.vhds.open[key] = map[int64]*vhdsWatch{}
	}
	s.vhds.open[key][id] = w
	return func() {
		s.vhds.mu.Lock()
		defer s.vhds.mu.Unlock()
		delete(s.vhds.open[key], id)
		if len(s.vhds.open[key]) == 0 {
			delete(s.vhds.open, key)
		}
	}, nil
}

// vhdsChanged answers the open virtual-host watches of key that the new
// snapshot changes.
func (s *Server) vhdsChanged(key string) {
	s.vhds.mu.Lock()
	defer s.vhds.mu.Unlock()
	for id, w := range s.vhds.open[key] {
		if s.answerVHDS(key, w) {
			delete(s.vhds.open[key], id)
		}
	}
}

// answerVHDS sends w what changed for it, if anything; s.vhds.mu is held.
func (s *Server) answerVHDS(key string, w *vhdsWatch) bool {
	snap, err := s.cache.GetSnapshot(key)
	if err != nil {
		return false
	}
	served, _ := snap.(*servedSnapshot)
	held := w.sub.ReturnedResources()
	next := make(map[string]string, len(w.sub.SubscribedResources()))
	var changed []*discovery.Resource
	differs := false
	hosts := 0
	for name := range w.sub.SubscribedResources() {
		if v, ok := held[name]; ok && v != unknownVersion && v != namespaceVersion {
			hosts++
		}
	}
	for name := range w.sub.SubscribedResources() {
		e := vhdsEntry{name: name, version: unknownVersion}
		switch v, ok := held[name]; {
		case !strings.Contains(name, "/") && served != nil && served.whole[name] != nil:
			e.version = namespaceVersion
		case served == nil:
		case ok && v != unknownVersion || hosts < maxVHDSPerStream:
			if e = served.vhost(name); !ok && e.picked != nil {
				hosts++
			}
		}
		next[name] = e.version
		if held[name] != e.version {
			differs = true
			if e.version != namespaceVersion {
				changed = append(changed, e.resource())
			}
		}
	}
	if !differs {
		return false
	}
	select {
	case w.ch <- &vhdsResponse{req: w.req, resources: changed, next: next, version: snap.GetVersion(resource.RouteType)}:
		return true
	default:
		return false // the stream has not taken its last answer yet; the next change retries
	}
}

// vhdsNotify is the cache the server sets snapshots through: after each,
// the open virtual-host watches of its key are answered.
type vhdsNotify struct {
	cache.SnapshotCache
	s *Server
}

func (n vhdsNotify) SetSnapshot(ctx context.Context, key string, snap cache.ResourceSnapshot) error {
	err := n.SnapshotCache.SetSnapshot(ctx, key, snap)
	n.s.vhdsChanged(key)
	return err
}
