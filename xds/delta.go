package xds

import (
	"context"
	"slices"
	"sort"
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/anypb"
)

// Delta watches are answered here, with go-control-plane's delta cache
// semantics (pkg/cache/v3 simple.go and delta.go), from resources frozen
// once per snapshot and type: go-control-plane would marshal and hash
// every resource it sends anew for each client, and gRPC would marshal
// the response again.

// deltaSet is one type of one snapshot as delta clients are sent it: each
// resource once as a discovery.Resource (name, version, an Any) that every
// response shares, and all of them encoded once, back to back, as the
// repeated resources field of a DeltaDiscoveryResponse, so the codec sends
// any of them as slices of that buffer.
type deltaSet struct {
	version string   // the type's version: system_version_info
	names   []string // sorted
	index   map[string]int32
	entries []discovery.Resource // in name order; read-only
	encoded []byte
	offsets []int // entry i is encoded[offsets[i]:offsets[i+1]]

	versionsOnce sync.Once
	allVersions  map[string]string
}

// deltaBuilds counts the delta sets built; a test checks that clients of
// one version do not each cost one.
var deltaBuilds struct {
	sync.Mutex
	n int
}

// deltaSet is the snapshot's delta set of typeURL, built at the first
// request for it.
func (ss *sharedSnapshot) deltaSet(typeURL string) (*deltaSet, error) {
	return memo(&ss.mu, ss.deltas, typeURL, func() (*deltaSet, error) {
		return freezeDelta(typeURL, ss.snap.GetVersion(typeURL), ss.snap.GetResources(typeURL))
	})
}

// freezeDelta marshals resources once, in name order. A resource's
// version is the hash go-control-plane gives it (of its deterministic
// encoding), so a client reconnecting with initial_resource_versions from
// either is not resent what it holds.
func freezeDelta(typeURL, version string, resources map[string]types.Resource) (*deltaSet, error) {
	names, values, err := marshalSorted(typeURL, resources)
	if err != nil {
		return nil, err
	}
	versions := make([]string, len(names))
	size := 0
	for i, name := range names {
		value := values[i]
		versions[i] = cache.HashResource(value)
		size += protowire.SizeTag(2) + protowire.SizeBytes(entrySize(typeURL, name, versions[i], len(value)))
	}
	ds := &deltaSet{version: version, names: names, index: make(map[string]int32, len(names)),
		entries: make([]discovery.Resource, len(names)), offsets: make([]int, len(names)+1)}
	anys := make([]anypb.Any, len(names))
	buf := make([]byte, 0, size)
	for i, name := range names {
		value, ver := values[i], versions[i]
		ds.offsets[i] = len(buf)
		buf = protowire.AppendTag(buf, 2, protowire.BytesType) // DeltaDiscoveryResponse.resources
		buf = protowire.AppendVarint(buf, uint64(entrySize(typeURL, name, ver, len(value))))
		buf = protowire.AppendTag(buf, 3, protowire.BytesType) // Resource.name
		buf = protowire.AppendString(buf, name)
		buf = protowire.AppendTag(buf, 1, protowire.BytesType) // Resource.version
		buf = protowire.AppendString(buf, ver)
		buf = protowire.AppendTag(buf, 2, protowire.BytesType) // Resource.resource
		buf = protowire.AppendVarint(buf, uint64(anySize(typeURL, len(value))))
		buf = protowire.AppendTag(buf, 1, protowire.BytesType) // Any.type_url
		buf = protowire.AppendString(buf, typeURL)
		buf = protowire.AppendTag(buf, 2, protowire.BytesType) // Any.value
		buf = protowire.AppendVarint(buf, uint64(len(value)))
		at := len(buf)
		buf = append(buf, value...)
		anys[i].TypeUrl, anys[i].Value = typeURL, buf[at:len(buf):len(buf)]
		e := &ds.entries[i]
		e.Name, e.Version, e.Resource = name, ver, &anys[i]
		ds.index[name] = int32(i)
	}
	ds.offsets[len(names)] = len(buf)
	ds.encoded = buf
	deltaBuilds.Lock()
	deltaBuilds.n++
	deltaBuilds.Unlock()
	return ds, nil
}

func anySize(typeURL string, valueLen int) int {
	return protowire.SizeTag(1) + protowire.SizeBytes(len(typeURL)) + protowire.SizeTag(2) + protowire.SizeBytes(valueLen)
}

// entrySize is the size of an encoded discovery.Resource.
func entrySize(typeURL, name, version string, valueLen int) int {
	return protowire.SizeTag(3) + protowire.SizeBytes(len(name)) + protowire.SizeTag(1) + protowire.SizeBytes(len(version)) +
		protowire.SizeTag(2) + protowire.SizeBytes(anySize(typeURL, valueLen))
}

// deltaWatch is an open delta watch. seen is the set it was last found
// to have nothing new from, when its subscription cannot change while the
// watch is open: a snapshot with the same set of its type skips it.
type deltaWatch struct {
	req  *cache.DeltaRequest
	sub  cache.Subscription
	ch   chan cache.DeltaResponse
	seen *deltaSet
}

// CreateDeltaWatch answers at once when the client lacks a resource or
// holds one the snapshot no longer has (or this is the first request of a
// wildcard subscription), and otherwise keeps the watch until a snapshot
// of its key has something for it, as go-control-plane's cache does.
func (c *sharedCache) CreateDeltaWatch(req *cache.DeltaRequest, sub cache.Subscription, ch chan cache.DeltaResponse) (func(), error) {
	key := c.hash.ID(req.GetNode())
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &deltaWatch{req: req, sub: sub, ch: ch}
	if ss := c.snaps[key]; ss != nil {
		sent, err := c.respondDelta(context.Background(), ss, w)
		if err != nil {
			return nil, err
		}
		if sent {
			return func() {}, nil
		}
	}
	c.nextID++
	id := c.nextID
	if c.deltaWatches[key] == nil {
		c.deltaWatches[key] = map[int64]*deltaWatch{}
	}
	c.deltaWatches[key][id] = w
	return func() {
		c.mu.Lock()
		delete(c.deltaWatches[key], id)
		if len(c.deltaWatches[key]) == 0 {
			delete(c.deltaWatches, key)
		}
		c.mu.Unlock()
	}, nil
}

// respondDeltaWatches answers the open delta watches of key that ss has
// something for, in the order Envoy wants the types; the others stay
// open. c.mu is held.
func (c *sharedCache) respondDeltaWatches(ctx context.Context, key string, ss *sharedSnapshot) error {
	open := c.deltaWatches[key]
	for _, id := range inTypeOrder(open, func(w *deltaWatch) string { return w.req.GetTypeUrl() }) {
		sent, err := c.respondDelta(ctx, ss, open[id])
		if err != nil {
			return err
		}
		if sent {
			delete(open, id)
		}
	}
	if len(open) == 0 {
		delete(c.deltaWatches, key)
	}
	return nil
}

// respondDelta sends w what it lacks of ss, if anything, and says whether
// it did. c.mu is held.
func (c *sharedCache) respondDelta(ctx context.Context, ss *sharedSnapshot, w *deltaWatch) (bool, error) {
	typeURL := w.req.GetTypeUrl()
	ds, err := ss.deltaSet(typeURL)
	if err != nil {
		return false, err
	}
	if ds == w.seen {
		return false, nil
	}
	d := deltaOf(ds, w.sub)
	// A first wildcard request is answered even with nothing: Envoy
	// waits for that answer to finish starting.
	if len(d.changed) == 0 && len(d.removed) == 0 && !(d.wildcard && w.req.GetResponseNonce() == "") {
		if _, fixed := w.sub.(*deltaSub); fixed {
			w.seen = ds
		}
		return false, nil
	}
	resp := &deltaResponse{req: w.req, set: ds, changed: d.changed, removed: d.removed, next: d.nextVersions(ds), ctx: ctx}
	select {
	case w.ch <- resp:
		return true, nil
	default:
		// The stream's channel holds two responses per type and a watch
		// is answered once, so it is not full; were it, one stream must
		// not fail the group's publish: the watch stays open and the next
		// snapshot answers it.
		return false, nil
	}
}

// delta is what a subscription lacks of a set, as go-control-plane's
// createDeltaResponse computes it: for a wildcard subscription every
// resource of the set, for another the subscribed ones the set has; sent
// when the client holds another version or none, and removed when the
// client holds it and the set has not.
type delta struct {
	wildcard   bool
	subscribed map[string]struct{} // when not wildcard
	changed    []int32             // entries, ascending
	removed    []string
}

func deltaOf(ds *deltaSet, sub cache.Subscription) delta {
	returned := sub.ReturnedResources()
	d := delta{wildcard: sub.IsWildcard()}
	if d.wildcard {
		for i := range ds.entries {
			if v, ok := returned[ds.names[i]]; !ok || v != ds.entries[i].Version {
				d.changed = append(d.changed, int32(i))
			}
		}
		for name := range returned {
			if _, ok := ds.index[name]; !ok {
				d.removed = append(d.removed, name)
			}
		}
	} else {
		// Read once: a narrowed subscription builds it (ondemand.go).
		d.subscribed = sub.SubscribedResources()
		for name := range d.subscribed {
			v, found := returned[name]
			if i, ok := ds.index[name]; ok {
				if !found || v != ds.entries[i].Version {
					d.changed = append(d.changed, i)
				}
			} else if found {
				d.removed = append(d.removed, name)
			}
		}
		slices.Sort(d.changed)
	}
	sort.Strings(d.removed)
	return d
}

// nextVersions is what the client holds once sent d: a map of its own,
// since the stream writes into it on an unsubscribe. Names and versions
// are the set's strings.
func (d delta) nextVersions(ds *deltaSet) map[string]string {
	if d.wildcard {
		return ds.versions()
	}
	next := make(map[string]string, len(d.subscribed))
	for name := range d.subscribed {
		if i, ok := ds.index[name]; ok {
			next[ds.names[i]] = ds.entries[i].Version
		}
	}
	if len(next) == len(ds.entries) {
		return ds.versions() // every resource of the set: the one map all such clients share
	}
	return next
}

// versions is every resource's version, built once; read-only: the delta
// streams (deltastream.go) copy a map before they change it.
func (ds *deltaSet) versions() map[string]string {
	ds.versionsOnce.Do(func() {
		ds.allVersions = make(map[string]string, len(ds.entries))
		for i := range ds.entries {
			ds.allVersions[ds.names[i]] = ds.entries[i].Version
		}
	})
	return ds.allVersions
}

// deltaResponse is one stream's delta response: its own message around
// the set's shared entries, made when the stream sends it.
type deltaResponse struct {
	req     *cache.DeltaRequest
	set     *deltaSet
	changed []int32
	removed []string
	next    map[string]string
	ctx     context.Context

	once sync.Once
	msg  *discovery.DeltaDiscoveryResponse
}

var _ cache.DeltaResponse = (*deltaResponse)(nil)

// GetDeltaDiscoveryResponse is the same message at every call (the server
// sets the nonce on it); the codec knows its resources' encoding.
func (r *deltaResponse) GetDeltaDiscoveryResponse() (*discovery.DeltaDiscoveryResponse, error) {
	r.once.Do(func() {
		resources := make([]*discovery.Resource, len(r.changed))
		for i, at := range r.changed {
			resources[i] = &r.set.entries[at]
		}
		r.msg = &discovery.DeltaDiscoveryResponse{SystemVersionInfo: r.set.version, Resources: resources,
			RemovedResources: r.removed, TypeUrl: r.req.GetTypeUrl()}
		registerDelta(r.msg, r.set, r.changed)
	})
	return r.msg, nil
}
func (r *deltaResponse) GetDeltaRequest() *cache.DeltaRequest    { return r.req }
func (r *deltaResponse) GetSystemVersion() (string, error)       { return r.set.version, nil }
func (r *deltaResponse) GetResponseVersion() string              { return r.set.version }
func (r *deltaResponse) GetNextVersionMap() map[string]string    { return r.next }
func (r *deltaResponse) GetReturnedResources() map[string]string { return r.next }
func (r *deltaResponse) GetContext() context.Context             { return r.ctx }
