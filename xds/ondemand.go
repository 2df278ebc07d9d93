package xds

import (
	"context"
	"strings"
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// On-demand clusters. An Envoy whose listener has on_demand_clusters asks
// for a route's cluster by name when a request first needs it, on its delta
// ADS stream, beside its wildcard CDS subscription from the bootstrap. For
// such a group, a wildcard delta watch of clusters or endpoints is served as
// if it named the group's up-front clusters and what the client named
// itself, so the on-demand clusters reach an Envoy only once it asks for
// them, and stop when it unsubscribes. Named subscriptions are served as
// go-control-plane does anyway. State-of-the-world clients are not
// narrowed: that protocol has no per-name additions to a wildcard watch, so
// they get every cluster, and their on-demand filter finds each one present.

// onDemandSets holds each group's on-demand clusters and the others.
type onDemandSets struct {
	mu     sync.RWMutex
	groups map[string]*onDemandGroup
}

// onDemandGroup is one group's split. A reload's interim snapshots
// (phases.go) hold the clusters of the version before and the next one, so
// the up-front set is both publishes' up-front clusters: a name the snapshot
// lacks is skipped by the cache, so the extra ones cost nothing.
type onDemandGroup struct {
	lazy     map[string]bool
	upFront  map[string]bool
	previous map[string]bool
}

func (s *Server) onDemandState() *onDemandSets { return s.onDemand }

// setOnDemand records a group's on-demand clusters (none: the group has
// no on-demand listener) beside res, the resources it is about to be
// served. It must run before the group's snapshots of res are set, so the
// watches they answer see the new split.
func (s *Server) setOnDemand(group string, res Resources, clusters []string) {
	sets := s.onDemandState()
	sets.mu.Lock()
	defer sets.mu.Unlock()
	if len(clusters) == 0 {
		delete(sets.groups, group)
		return
	}
	g := &onDemandGroup{lazy: map[string]bool{}, upFront: map[string]bool{}}
	for _, c := range clusters {
		g.lazy[c] = true
	}
	for _, r := range res[resource.ClusterType] {
		if name := cache.GetResourceName(r); !g.lazy[name] {
			g.upFront[name] = true
		}
	}
	if old := sets.groups[group]; old != nil {
		g.previous = old.upFront
	}
	sets.groups[group] = g
}

// upFrontOnly drops a group's on-demand clusters from names. A reload
// that adds only those needs no make-before-break step (phases.go): Envoys
// fetch them on first use, and a narrowed delta Envoy is sent nothing to
// ACK, so waiting for it would last the whole EnvoyAckTimeout.
func (s *Server) upFrontOnly(group string, names []string) []string {
	sets := s.onDemandState()
	sets.mu.RLock()
	defer sets.mu.RUnlock()
	g, ok := sets.groups[group]
	if !ok {
		return names
	}
	var out []string
	for _, n := range names {
		if !g.lazy[n] {
			out = append(out, n)
		}
	}
	return out
}

func (o *onDemandSets) has(group string) bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	_, ok := o.groups[group]
	return ok
}

// view is what a wildcard watch of group is served: the up-front
// clusters, the names it subscribed to, and the on-demand clusters it
// holds (a cluster that became on-demand while the client held it is kept
// current rather than left stale; an unsubscribed name is held at version
// "" by go-control-plane, so it is not kept). ok is false when the group
// has no on-demand clusters.
func (o *onDemandSets) view(group string, named map[string]struct{}, held map[string]string) (map[string]struct{}, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	g, ok := o.groups[group]
	if !ok {
		return nil, false
	}
	out := make(map[string]struct{}, len(named)+len(g.upFront)+len(g.previous))
	for name := range named {
		out[name] = struct{}{}
	}
	for _, set := range []map[string]bool{g.upFront, g.previous} {
		for name := range set {
			if !g.lazy[name] {
				out[name] = struct{}{}
			}
		}
	}
	for name, version := range held {
		if g.lazy[name] && version != "" {
			out[name] = struct{}{}
		}
	}
	return out, true
}

// onDemandSubscription narrows a wildcard subscription of a group with
// on-demand clusters. It reads the group's split when the cache asks, not
// when the watch opens: a watch left open is answered by a later snapshot,
// with that publish's split.
type onDemandSubscription struct {
	cache.Subscription
	sets  *onDemandSets
	group string
}

func (o onDemandSubscription) IsWildcard() bool { return !o.sets.has(o.group) }

func (o onDemandSubscription) SubscribedResources() map[string]struct{} {
	named := o.Subscription.SubscribedResources()
	if view, ok := o.sets.view(o.group, named, o.Subscription.ReturnedResources()); ok {
		return view
	}
	return named
}

// onDemandWatch opens a delta watch through create, narrowed when it is a
// wildcard watch of clusters or endpoints.
func (s *Server) onDemandWatch(req *cache.DeltaRequest, sub cache.Subscription, ch chan cache.DeltaResponse,
	create func(cache.Subscription) (func(), error)) (func(), error) {
	typ := req.GetTypeUrl()
	if !sub.IsWildcard() || (typ != resource.ClusterType && typ != resource.EndpointType) {
		return create(sub)
	}
	// The sets are by group; the snapshot is the node's cache key's (its
	// canaries' key, in a rollout).
	group, _ := strings.CutSuffix(nodeHash{s}.ID(req.GetNode()), CanarySuffix)
	narrowed := onDemandSubscription{Subscription: sub, sets: s.onDemandState(), group: group}
	if typ == resource.ClusterType && req.GetResponseNonce() == "" {
		s.answerStart(req, narrowed, nodeHash{s}.ID(req.GetNode()), ch)
	}
	return create(narrowed)
}

// answerStart answers a narrowed first cluster request that has nothing
// to send (a group whose clusters are all on demand). The cache no longer
// sees a wildcard watch, so it would not answer it, and Envoy waits for
// that answer to finish starting. It is queued before the watch opens, so
// an answer of the watch comes after it.
func (s *Server) answerStart(req *cache.DeltaRequest, sub onDemandSubscription, key string, ch chan cache.DeltaResponse) {
	if len(sub.Subscription.ReturnedResources()) > 0 {
		return // a client coming back with what it holds has started already
	}
	view, ok := sub.sets.view(sub.group, sub.Subscription.SubscribedResources(), nil)
	if !ok {
		return
	}
	snap, err := s.cache.GetSnapshot(key)
	if err != nil {
		return // no snapshot yet: its first one answers
	}
	have := snap.GetResources(req.GetTypeUrl())
	for name := range view {
		if _, ok := have[name]; ok {
			return // the cache answers with it
		}
	}
	select {
	case ch <- emptyDeltaResponse{req: req, version: snap.GetVersion(req.GetTypeUrl())}:
	default:
		// The stream's buffer holds two responses per type and this
		// type's watch is not open, so this does not happen.
		s.log.Warn("on-demand clusters: the first answer could not be queued", "group", sub.group)
	}
}

// emptyDeltaResponse answers a first delta request with no resources.
type emptyDeltaResponse struct {
	req     *cache.DeltaRequest
	version string
}

var _ cache.DeltaResponse = emptyDeltaResponse{}

func (e emptyDeltaResponse) GetDeltaDiscoveryResponse() (*discovery.DeltaDiscoveryResponse, error) {
	return &discovery.DeltaDiscoveryResponse{TypeUrl: e.req.GetTypeUrl(), SystemVersionInfo: e.version}, nil
}
func (e emptyDeltaResponse) GetDeltaRequest() *cache.DeltaRequest { return e.req }
func (e emptyDeltaResponse) GetSystemVersion() (string, error)    { return e.version, nil }
func (e emptyDeltaResponse) GetResponseVersion() string           { return e.version }

// The client holds nothing of the type after it; a non-nil map, since
// go-control-plane writes into it on an unsubscribe.
func (e emptyDeltaResponse) GetNextVersionMap() map[string]string    { return map[string]string{} }
func (e emptyDeltaResponse) GetReturnedResources() map[string]string { return map[string]string{} }
func (e emptyDeltaResponse) GetContext() context.Context             { return context.Background() }

// applyOnDemand records, before the groups are published, which clusters
// each group's Envoys load on demand, as the source's outcome says; a
// group without (or a source that cannot say) has none.
func (s *Server) applyOnDemand(groups map[string]Resources, out Outcome) {
	var sets map[string][]string
	if od, ok := out.(OnDemander); ok {
		sets = od.OnDemand()
	}
	for name, res := range groups {
		s.setOnDemand(name, res, sets[name])
	}
	s.mu.RLock()
	var gone []string
	for name := range s.groups {
		if _, ok := groups[name]; !ok {
			gone = append(gone, name)
		}
	}
	s.mu.RUnlock()
	for _, name := range gone {
		s.setOnDemand(name, nil, nil)
	}
}
