package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
)

var deterministic = proto.MarshalOptions{Deterministic: true}

// snapshotOf builds a snapshot whose version for each type is a hash of that
// type's resources. A route-only change moves only the route version, so
// state-of-the-world clients are pushed routes alone; the same content always
// gets the same version, across restarts too.
func snapshotOf(res Resources) (*published, error) {
	snap := &cache.Snapshot{}
	p := &published{Types: map[string]string{}, snapshot: snap, At: time.Now()}
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
		snap.Resources[cache.GetResponseType(typ)] = cache.NewResources(v, items)
	}
	p.Version = hex.EncodeToString(all.Sum(nil))[:16]
	if err := snap.Consistent(); err != nil {
		return nil, err
	}
	return p, nil
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
