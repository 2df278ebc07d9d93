package xds

import (
	"context"
	"fmt"
	"sort"
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// sharedCache answers state-of-the-world watches with responses built once
// per snapshot and type: every stream of a group is handed the same
// resources, marshalled once, and the same map of what it was sent, so a
// connected client costs its stream and not a copy of the configuration.
// go-control-plane's snapshot cache would wrap and marshal each resource
// anew for every response. Delta watches, and everything else, are the
// snapshot cache's, which is given every snapshot too.
type sharedCache struct {
	cache.SnapshotCache
	hash cache.NodeHash

	mu      sync.Mutex
	snaps   map[string]*sharedSnapshot
	watches map[string]map[int64]*sotwWatch // cache key → open watches
	nextID  int64
}

func newSharedCache(hash cache.NodeHash, inner cache.SnapshotCache) *sharedCache {
	return &sharedCache{SnapshotCache: inner, hash: hash,
		snaps: map[string]*sharedSnapshot{}, watches: map[string]map[int64]*sotwWatch{}}
}

type sotwWatch struct {
	req *cache.Request
	sub cache.Subscription
	ch  chan cache.Response
}

// sharedSnapshot is a snapshot with the responses of its types, each built
// at the first request for it.
type sharedSnapshot struct {
	snap  cache.ResourceSnapshot
	delta *deltaSnapshot // what the snapshot cache is given
	mu    sync.Mutex
	sets  map[string]*frozenSet
}

// frozenSet is one type of one snapshot as every client is sent it: the
// resources marshalled into one buffer (the repeated resources field of a
// DiscoveryResponse, which the codec sends as it is) and Any messages whose
// values are slices of that buffer.
type frozenSet struct {
	version  string
	anys     []*anypb.Any
	encoded  []byte
	returned map[string]string // name → version; read-only, shared by streams
}

// frozenBuilds counts the frozen sets built; a test checks that clients
// of one version do not each cost one.
var frozenBuilds struct {
	sync.Mutex
	n int
}

func (ss *sharedSnapshot) set(typeURL string) (*frozenSet, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if fs, ok := ss.sets[typeURL]; ok {
		return fs, nil
	}
	fs, err := freeze(typeURL, ss.snap.GetVersion(typeURL), sotwResources(ss.snap, typeURL))
	if err != nil {
		return nil, err
	}
	ss.sets[typeURL] = fs
	return fs, nil
}

// freeze marshals resources once, in name order.
func freeze(typeURL, version string, resources map[string]types.Resource) (*frozenSet, error) {
	names := make([]string, 0, len(resources))
	for n := range resources {
		names = append(names, n)
	}
	sort.Strings(names)
	fs := &frozenSet{version: version, returned: make(map[string]string, len(names))}
	type span struct{ off, n int }
	spans := make([]span, len(names))
	var buf []byte
	for i, name := range names {
		value, err := cache.MarshalResource(resources[name])
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", typeURL, name, err)
		}
		anyLen := protowire.SizeTag(1) + protowire.SizeBytes(len(typeURL)) + protowire.SizeTag(2) + protowire.SizeBytes(len(value))
		buf = protowire.AppendTag(buf, 2, protowire.BytesType) // DiscoveryResponse.resources
		buf = protowire.AppendVarint(buf, uint64(anyLen))
		buf = protowire.AppendTag(buf, 1, protowire.BytesType) // Any.type_url
		buf = protowire.AppendString(buf, typeURL)
		buf = protowire.AppendTag(buf, 2, protowire.BytesType) // Any.value
		buf = protowire.AppendVarint(buf, uint64(len(value)))
		spans[i] = span{len(buf), len(value)}
		buf = append(buf, value...)
		fs.returned[name] = version
	}
	fs.encoded = buf
	fs.anys = make([]*anypb.Any, len(names))
	for i, sp := range spans {
		fs.anys[i] = &anypb.Any{TypeUrl: typeURL, Value: buf[sp.off : sp.off+sp.n : sp.off+sp.n]}
	}
	registerFrozen(fs)
	frozenBuilds.Lock()
	frozenBuilds.n++
	frozenBuilds.Unlock()
	return fs, nil
}

// sharedResponse is one stream's response: its own DiscoveryResponse (the
// server sets the nonce on it) around the shared resources.
type sharedResponse struct {
	req *cache.Request
	fs  *frozenSet
}

func (r *sharedResponse) GetDiscoveryResponse() (*discovery.DiscoveryResponse, error) {
	return &discovery.DiscoveryResponse{VersionInfo: r.fs.version, Resources: r.fs.anys, TypeUrl: r.req.GetTypeUrl()}, nil
}
func (r *sharedResponse) GetRequest() *discovery.DiscoveryRequest { return r.req }
func (r *sharedResponse) GetVersion() (string, error)             { return r.fs.version, nil }
func (r *sharedResponse) GetResponseVersion() string              { return r.fs.version }
func (r *sharedResponse) GetReturnedResources() map[string]string { return r.fs.returned }
func (r *sharedResponse) GetContext() context.Context             { return context.Background() }

// ClearSnapshot forgets key in both caches.
func (c *sharedCache) ClearSnapshot(key string) {
	c.mu.Lock()
	delete(c.snaps, key)
	c.mu.Unlock()
	c.SnapshotCache.ClearSnapshot(key)
}

// SetSnapshot answers the open watches of key whose version changed, in
// the order Envoy wants the types, then hands the snapshot to the snapshot
// cache for its delta watches.
func (c *sharedCache) SetSnapshot(ctx context.Context, key string, snap cache.ResourceSnapshot) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ss := c.sharedOf(key, snap)
	c.snaps[key] = ss
	open := c.watches[key]
	ids := make([]int64, 0, len(open))
	for id := range open {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := typeOrder(open[ids[i]].req.GetTypeUrl()), typeOrder(open[ids[j]].req.GetTypeUrl())
		if a != b {
			return a < b
		}
		return ids[i] < ids[j]
	})
	for _, id := range ids {
		w := open[id]
		if snap.GetVersion(w.req.GetTypeUrl()) == w.req.GetVersionInfo() {
			continue
		}
		delete(open, id)
		if err := c.respond(ss, w); err != nil {
			return err
		}
	}
	return c.SnapshotCache.SetSnapshot(ctx, key, ss.delta)
}

// sharedOf is snap shared: the one another key (a group's canaries) holds
// already, or a new one that keeps, of key's last snapshot, the frozen
// types whose version (a content hash) did not change. c.mu is held.
func (c *sharedCache) sharedOf(key string, snap cache.ResourceSnapshot) *sharedSnapshot {
	for _, ss := range c.snaps {
		if ss.snap == snap {
			return ss
		}
	}
	ss := &sharedSnapshot{snap: snap, sets: map[string]*frozenSet{}}
	ss.delta = newDeltaSnapshot(ss)
	old := c.snaps[key]
	if old == nil {
		return ss
	}
	old.mu.Lock()
	for typ, fs := range old.sets {
		if snap.GetVersion(typ) == fs.version {
			ss.sets[typ] = fs
		}
	}
	old.mu.Unlock()
	old.delta.mu.Lock()
	for typ := range old.delta.plain {
		if snap.GetVersion(typ) == old.snap.GetVersion(typ) {
			ss.delta.frozen[typ], ss.delta.plain[typ], ss.delta.versions[typ] = old.delta.frozen[typ], old.delta.plain[typ], old.delta.versions[typ]
		}
	}
	old.delta.mu.Unlock()
	return ss
}

// typeOrder ranks type URLs as Types lists them; others come last.
func typeOrder(typeURL string) int {
	for i, t := range Types {
		if t == typeURL {
			return i
		}
	}
	return len(Types)
}

// CreateWatch answers at once when the client lacks the version or a
// resource it asked for, and otherwise keeps the watch until the next
// snapshot of its key, as the snapshot cache does.
func (c *sharedCache) CreateWatch(req *cache.Request, sub cache.Subscription, ch chan cache.Response) (func(), error) {
	key := c.hash.ID(req.GetNode())
	c.mu.Lock()
	defer c.mu.Unlock()
	ss := c.snaps[key]
	if ss == nil || (req.GetVersionInfo() == ss.snap.GetVersion(req.GetTypeUrl()) && !lacks(ss.snap, req.GetTypeUrl(), sub)) {
		c.nextID++
		id := c.nextID
		if c.watches[key] == nil {
			c.watches[key] = map[int64]*sotwWatch{}
		}
		c.watches[key][id] = &sotwWatch{req: req, sub: sub, ch: ch}
		return func() {
			c.mu.Lock()
			delete(c.watches[key], id)
			if len(c.watches[key]) == 0 {
				delete(c.watches, key)
			}
			c.mu.Unlock()
		}, nil
	}
	if err := c.respond(ss, &sotwWatch{req: req, sub: sub, ch: ch}); err != nil {
		return nil, err
	}
	return func() {}, nil
}

// sotwForms is a snapshot whose state-of-the-world clients are served
// other resources of some types than its delta clients (xds/vhds.go).
type sotwForms interface {
	sotwForm(typeURL string) (map[string]types.Resource, bool)
}

// sotwResources are the resources of typeURL a state-of-the-world client
// is served.
func sotwResources(snap cache.ResourceSnapshot, typeURL string) map[string]types.Resource {
	if f, ok := snap.(sotwForms); ok {
		if res, ok := f.sotwForm(typeURL); ok {
			return res
		}
	}
	return snap.GetResources(typeURL)
}

// lacks says whether the client was not sent a resource of the snapshot
// it subscribes to.
func lacks(snap cache.ResourceSnapshot, typeURL string, sub cache.Subscription) bool {
	known := sub.ReturnedResources()
	resources := sotwResources(snap, typeURL)
	if sub.IsWildcard() {
		for name := range resources {
			if _, ok := known[name]; !ok {
				return true
			}
		}
		return false
	}
	for name := range sub.SubscribedResources() {
		if _, ok := known[name]; !ok {
			if _, ok := resources[name]; ok {
				return true
			}
		}
	}
	return false
}

// respond sends w the snapshot's resources of its type. Over ADS a request
// that names resources is answered only when it names every resource the
// snapshot has of the type (the snapshot cache's rule): Envoy asks for the
// endpoints and routes it needs once it has the clusters and listeners
// naming them, and an answer before that would be incomplete.
func (c *sharedCache) respond(ss *sharedSnapshot, w *sotwWatch) error {
	typeURL := w.req.GetTypeUrl()
	if !w.sub.IsWildcard() {
		asked := w.sub.SubscribedResources()
		for name := range sotwResources(ss.snap, typeURL) {
			if _, ok := asked[name]; !ok {
				return nil
			}
		}
	}
	fs, err := ss.set(typeURL)
	if err != nil {
		return err
	}
	select {
	case w.ch <- &sharedResponse{req: w.req, fs: fs}:
	default:
		// The stream's channel holds one response per type it watches
		// and a watch is answered once, so it cannot be full.
		return fmt.Errorf("response channel full for %s", typeURL)
	}
	return nil
}

// GetSnapshot is the snapshot as published (the snapshot cache holds its
// frozen form, which only marshals).
func (c *sharedCache) GetSnapshot(key string) (cache.ResourceSnapshot, error) {
	c.mu.Lock()
	ss := c.snaps[key]
	c.mu.Unlock()
	if ss == nil {
		return c.SnapshotCache.GetSnapshot(key)
	}
	return ss.snap, nil
}

// deltaSnapshot is what the snapshot cache serves delta streams: the
// resources frozen, each a message holding its name and, as unknown
// fields, the rest of the encoding marshalled once. The cache still
// marshals and hashes every resource it sends to every delta client; of a
// frozen resource that is a copy of bytes, not a walk of the message.
type deltaSnapshot struct {
	ss       *sharedSnapshot
	mu       sync.Mutex
	frozen   map[string]map[string]types.ResourceWithTTL
	plain    map[string]map[string]types.Resource
	versions map[string]map[string]string
}

func newDeltaSnapshot(ss *sharedSnapshot) *deltaSnapshot {
	return &deltaSnapshot{ss: ss, frozen: map[string]map[string]types.ResourceWithTTL{},
		plain: map[string]map[string]types.Resource{}, versions: map[string]map[string]string{}}
}

func (d *deltaSnapshot) GetVersion(typeURL string) string { return d.ss.snap.GetVersion(typeURL) }
func (d *deltaSnapshot) ConstructVersionMap() error       { return nil } // built per type when asked
func (d *deltaSnapshot) GetResourcesAndTTL(typeURL string) map[string]types.ResourceWithTTL {
	d.load(typeURL)
	return d.frozen[typeURL]
}
func (d *deltaSnapshot) GetResources(typeURL string) map[string]types.Resource {
	d.load(typeURL)
	return d.plain[typeURL]
}
func (d *deltaSnapshot) GetVersionMap(typeURL string) map[string]string {
	d.load(typeURL)
	return d.versions[typeURL]
}

// load freezes one type; a resource that cannot be frozen is served as it
// is. Versions are hashes of what the cache marshals, as it computes them.
func (d *deltaSnapshot) load(typeURL string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.plain[typeURL]; ok {
		return
	}
	orig := d.ss.snap.GetResources(typeURL)
	frozen := make(map[string]types.ResourceWithTTL, len(orig))
	plain := make(map[string]types.Resource, len(orig))
	versions := make(map[string]string, len(orig))
	values := map[string][]byte{}
	if _, other := d.ss.snap.(sotwForms); other && typeURL == resource.RouteType {
		// State-of-the-world clients are sent other route configurations.
	} else if fs, err := d.ss.set(typeURL); err == nil {
		names := sortedKeys(fs.returned)
		for i, name := range names {
			values[name] = fs.anys[i].GetValue()
		}
	}
	for name, res := range orig {
		r := res
		if v, ok := values[name]; ok {
			r = freezeResource(res, v)
		}
		b, err := cache.MarshalResource(r)
		if err != nil {
			r = res
			if b, err = cache.MarshalResource(r); err != nil {
				continue // the snapshot's own resources marshalled for the state of the world
			}
		}
		frozen[name], plain[name], versions[name] = types.ResourceWithTTL{Resource: r}, r, cache.HashResource(b)
	}
	d.frozen[typeURL], d.plain[typeURL], d.versions[typeURL] = frozen, plain, versions
}

// freezeResource is an empty message of res's type with res's name (field
// 1 of every xDS resource) and value, res's encoding, without its name, as
// unknown fields.
func freezeResource(res types.Resource, value []byte) types.Resource {
	m := res.ProtoReflect()
	fd := m.Descriptor().Fields().ByNumber(1)
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
		return res
	}
	rest, ok := withoutField(value, 1)
	if !ok {
		return res
	}
	out := m.Type().New()
	out.Set(fd, m.Get(fd))
	out.SetUnknown(rest)
	return out.Interface()
}

// withoutField is b, an encoded message, without the top-level field num.
func withoutField(b []byte, num protowire.Number) ([]byte, bool) {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		n, typ, tl := protowire.ConsumeTag(b)
		if tl < 0 {
			return nil, false
		}
		vl := protowire.ConsumeFieldValue(n, typ, b[tl:])
		if vl < 0 {
			return nil, false
		}
		if n != num {
			out = append(out, b[:tl+vl]...)
		}
		b = b[tl+vl:]
	}
	return out, true
}
