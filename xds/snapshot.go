package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
)

var deterministic = proto.MarshalOptions{Deterministic: true}

// snapshotOf builds a snapshot whose version for each type is a hash of that
// type's resources. A route-only change moves only the route version, so
// state-of-the-world clients are pushed routes alone; the same content always
// gets the same version, across restarts too.
func snapshotOf(res Resources) (*published, error) {
	snap := &servedSnapshot{Snapshot: &cache.Snapshot{}}
	p := &published{Types: map[string]string{}, snapshot: snap, At: time.Now(), served: res}
	all := sha256.New()
	for _, typ := range Types {
		items := append([]types.Resource(nil), res[typ]...)
		sort.Slice(items, func(i, j int) bool { return cache.GetResourceName(items[i]) < cache.GetResourceName(items[j]) })
		h := sha256.New()
		for _, r := range items {
			b, err := deterministic.Marshal(r)
			if err != nil {
				return nil, err
			}
			h.Write([]byte(cache.GetResourceName(r)))
			h.Write(b)
		}
		v := hex.EncodeToString(h.Sum(nil))[:16]
		p.Types[typ] = v
		all.Write([]byte(typ + v))
		if typ == resource.RouteType {
			// The version is of the whole tables: an edit of one host's
			// routes reaches state-of-the-world Envoys too.
			items = snap.splitVHDS(items)
		}
		snap.Resources[cache.GetResponseType(typ)] = cache.NewResources(v, items)
	}
	p.Version = hex.EncodeToString(all.Sum(nil))[:16]
	if err := snap.Consistent(); err != nil {
		return nil, err
	}
	return p, nil
}

// FallbackVersionPrefix starts the version of every type in the fallback
// snapshot, the empty configuration a node of no known group is served. An
// empty group and the fallback look alike otherwise; the prefix lets a
// client (protogate dump, or someone reading Envoy's config_dump) tell them
// apart. Envoy treats versions as opaque, so it changes nothing for Envoy.
const FallbackVersionPrefix = "fallback-"

// fallbackListed marks a fallback version that names the known groups.
const fallbackListed = FallbackVersionPrefix + "groups="

// maxFallbackList bounds the group list carried in the fallback version: it
// travels with every response to such a node, and a long list is better
// read on /status.
const maxFallbackList = 256

// fallbackVersion is the version of the fallback snapshot when the control
// plane serves groups: "fallback-groups=a,b" (names query-escaped, so any
// name survives the comma), or "fallback-" and a hash of the list when it
// is too long. It is deterministic, like every other version here, and it
// moves only when the set of groups does.
func fallbackVersion(groups []string) string {
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = url.QueryEscape(g)
	}
	sort.Strings(names)
	list := strings.Join(names, ",")
	if len(list) <= maxFallbackList {
		return fallbackListed + list
	}
	sum := sha256.Sum256([]byte(list))
	return FallbackVersionPrefix + hex.EncodeToString(sum[:])[:16]
}

// FallbackGroups reads a version a client was served. fallback says it is
// the fallback snapshot's; listed says the version names the groups the
// control plane has, and groups are those names.
func FallbackGroups(version string) (groups []string, listed, fallback bool) {
	if !strings.HasPrefix(version, FallbackVersionPrefix) {
		return nil, false, false
	}
	list, ok := strings.CutPrefix(version, fallbackListed)
	if !ok {
		return nil, false, true
	}
	groups = []string{}
	for _, n := range strings.Split(list, ",") {
		if n == "" {
			continue
		}
		name, err := url.QueryUnescape(n)
		if err != nil {
			return nil, false, true
		}
		groups = append(groups, name)
	}
	return groups, true, true
}

// fallbackSnapshot is the valid, empty configuration of nodes of no known
// group, versioned by the groups there are.
func fallbackSnapshot(groups []string) *cache.Snapshot {
	v := fallbackVersion(groups)
	snap := &cache.Snapshot{}
	for _, typ := range Types {
		snap.Resources[cache.GetResponseType(typ)] = cache.NewResources(v, nil)
	}
	return snap
}

// nackGuard wraps the snapshot cache where the stock behaviour would push
// what a client already has:
//   - a NACK carries the last good version, which differs from the current
//     one, so the cache would resend the rejected snapshot at once, and the
//     client would reject it again, in a loop. The tracker rewrites a NACK's
//     version to the rejected one (see tracker.OnStreamRequest), and here the
//     client counts as holding it.
//   - a client reconnecting after a restart names the version it holds;
//     versions are content hashes, so if it equals the current one the
//     client has exactly these resources and needs no push.
type nackGuard struct {
	cache.SnapshotCache
	s *Server
}

func (g nackGuard) CreateWatch(req *cache.Request, sub cache.Subscription, ch chan cache.Response) (func(), error) {
	g.s.waitFor(req.GetNode())
	if req.GetTypeUrl() == resource.EndpointType {
		if group := (nodeHash{g.s}).ID(req.GetNode()); g.s.holdEndpoints(group) {
			return g.s.heldWatch(group, func() (func(), error) { return g.createWatch(req, sub, ch) })
		}
	}
	return g.createWatch(req, sub, ch)
}

// CreateDeltaWatch holds endpoint watches as CreateWatch does, and leaves
// on-demand clusters out of wildcard watches (ondemand.go).
func (g nackGuard) CreateDeltaWatch(req *cache.DeltaRequest, sub cache.Subscription, ch chan cache.DeltaResponse) (func(), error) {
	g.s.waitFor(req.GetNode())
	if req.GetTypeUrl() == resource.VirtualHostType {
		return g.s.vhdsWatch(req, sub, ch)
	}
	return g.s.onDemandWatch(req, sub, ch, func(sub cache.Subscription) (func(), error) {
		if req.GetTypeUrl() == resource.EndpointType {
			if group := (nodeHash{g.s}).ID(req.GetNode()); g.s.holdEndpoints(group) {
				return g.s.heldWatch(group, func() (func(), error) { return g.SnapshotCache.CreateDeltaWatch(req, sub, ch) })
			}
		}
		return g.SnapshotCache.CreateDeltaWatch(req, sub, ch)
	})
}

func (g nackGuard) createWatch(req *cache.Request, sub cache.Subscription, ch chan cache.Response) (func(), error) {
	if req.GetVersionInfo() != "" && len(sub.ReturnedResources()) == 0 {
		snap, err := g.GetSnapshot(nodeHash{g.s}.ID(req.GetNode()))
		if err == nil && snap.GetVersion(req.GetTypeUrl()) == req.GetVersionInfo() {
			held := map[string]string{}
			for name := range snap.GetResources(req.GetTypeUrl()) {
				held[name] = req.GetVersionInfo()
			}
			sub = heldSubscription{sub, held}
		}
	}
	return g.SnapshotCache.CreateWatch(req, sub, ch)
}

// heldSubscription reports resources the client already holds.
type heldSubscription struct {
	cache.Subscription
	held map[string]string
}

func (h heldSubscription) ReturnedResources() map[string]string { return h.held }
