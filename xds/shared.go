package xds

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/anypb"
)

// sharedCache answers state-of-the-world and delta watches with responses
// built once per snapshot and type: every stream of a group is handed the
// same resources, marshalled once, and a state-of-the-world stream the
// same map of what it was sent, so a connected client costs its stream
// and not a copy of the configuration. go-control-plane's snapshot cache
// would wrap and marshal each resource anew for every response. The rest
// (Fetch, status) is the snapshot cache's, which is given every snapshot
// too but opens no watches.
type sharedCache struct {
	cache.SnapshotCache
	hash cache.NodeHash

	mu           sync.Mutex
	snaps        map[string]*sharedSnapshot
	watches      map[string]map[int64]*sotwWatch  // cache key → open watches
	deltaWatches map[string]map[int64]*deltaWatch // cache key → open delta watches
	nextID       int64
}

func newSharedCache(hash cache.NodeHash, inner cache.SnapshotCache) *sharedCache {
	return &sharedCache{SnapshotCache: inner, hash: hash, snaps: map[string]*sharedSnapshot{},
		watches: map[string]map[int64]*sotwWatch{}, deltaWatches: map[string]map[int64]*deltaWatch{}}
}

type sotwWatch struct {
	req *cache.Request
	sub cache.Subscription
	ch  chan cache.Response
}

// sharedSnapshot is a snapshot with the responses of its types, each built
// at the first request for it: sets for state-of-the-world clients,
// deltas for delta ones.
type sharedSnapshot struct {
	snap   cache.ResourceSnapshot
	mu     sync.Mutex
	sets   map[string]*frozenSet
	deltas map[string]*deltaSet
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
	return memo(&ss.mu, ss.sets, typeURL, func() (*frozenSet, error) {
		return freeze(typeURL, ss.snap.GetVersion(typeURL), sotwResources(ss.snap, typeURL))
	})
}

// memo is m[typeURL], built at the first call under mu. It is kept only
// for the types served: a type URL a client names holds nothing.
func memo[T any](mu *sync.Mutex, m map[string]T, typeURL string, build func() (T, error)) (T, error) {
	mu.Lock()
	defer mu.Unlock()
	if v, ok := m[typeURL]; ok {
		return v, nil
	}
	v, err := build()
	if err == nil && slices.Contains(Types, typeURL) {
		m[typeURL] = v
	}
	return v, err
}

// marshalSorted is resources' names in order and each one's encoding.
func marshalSorted(typeURL string, resources map[string]types.Resource) ([]string, [][]byte, error) {
	names := make([]string, 0, len(resources))
	for n := range resources {
		names = append(names, n)
	}
	sort.Strings(names)
	values := make([][]byte, len(names))
	for i, name := range names {
		v, err := cache.MarshalResource(resources[name])
		if err != nil {
			return nil, nil, fmt.Errorf("%s %q: %w", typeURL, name, err)
		}
		values[i] = v
	}
	return names, values, nil
}

// freeze marshals resources once, in name order.
func freeze(typeURL, version string, resources map[string]types.Resource) (*frozenSet, error) {
	names, values, err := marshalSorted(typeURL, resources)
	if err != nil {
		return nil, err
	}
	fs := &frozenSet{version: version, returned: make(map[string]string, len(names))}
	type span struct{ off, n int }
	spans := make([]span, len(names))
	var buf []byte
	for i, name := range names {
		value := values[i]
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

// ClearSnapshot forgets key in both caches, and its open delta watches as
// go-control-plane's cache forgets them.
func (c *sharedCache) ClearSnapshot(key string) {
	c.mu.Lock()
	delete(c.snaps, key)
	delete(c.deltaWatches, key)
	c.mu.Unlock()
	c.SnapshotCache.ClearSnapshot(key)
}

// SetSnapshot answers the open watches of key whose version changed, in
// the order Envoy wants the types, then the delta watches it has something
// for, likewise, and hands the snapshot to the snapshot cache.
func (c *sharedCache) SetSnapshot(ctx context.Context, key string, snap cache.ResourceSnapshot) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ss := c.sharedOf(key, snap)
	c.snaps[key] = ss
	open := c.watches[key]
	for _, id := range inTypeOrder(open, func(w *sotwWatch) string { return w.req.GetTypeUrl() }) {
		w := open[id]
		if snap.GetVersion(w.req.GetTypeUrl()) == w.req.GetVersionInfo() {
			continue
		}
		delete(open, id)
		if err := c.respond(ss, w); err != nil {
			return err
		}
	}
	if err := c.respondDeltaWatches(ctx, key, ss); err != nil {
		return err
	}
	return c.SnapshotCache.SetSnapshot(ctx, key, snap)
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
	ss := &sharedSnapshot{snap: snap, sets: map[string]*frozenSet{}, deltas: map[string]*deltaSet{}}
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
	for typ, ds := range old.deltas {
		if snap.GetVersion(typ) == ds.version {
			ss.deltas[typ] = ds
		}
	}
	old.mu.Unlock()
	return ss
}

// inTypeOrder is the ids of open watches, in the order Envoy wants their
// types (Types), then by id.
func inTypeOrder[W any](open map[int64]W, typeOf func(W) string) []int64 {
	ids := make([]int64, 0, len(open))
	for id := range open {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := typeOrder(typeOf(open[ids[i]])), typeOrder(typeOf(open[ids[j]]))
		if a != b {
			return a < b
		}
		return ids[i] < ids[j]
	})
	return ids
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
		// and a watch is answered once, so it is not full; were it, one
		// stream must not fail the group's publish.
	}
	return nil
}

// GetSnapshot is the snapshot as published.
func (c *sharedCache) GetSnapshot(key string) (cache.ResourceSnapshot, error) {
	c.mu.Lock()
	ss := c.snaps[key]
	c.mu.Unlock()
	if ss == nil {
		return c.SnapshotCache.GetSnapshot(key)
	}
	return ss.snap, nil
}
