package xds

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// Make before break per node. Envoy routes to a cluster it does not hold
// with a 503, and go-control-plane's cache answers a node's watches of
// every type at once, in no set order. So a reload that adds clusters
// first serves them, with their endpoints, beside the old listeners and
// routes, until the group's Envoys hold them; and one that removes clusters
// keeps them beside the new listeners and routes until the Envoys hold
// routes that no longer name them. Each wait is bounded by
// EnvoyAckTimeout: a stuck Envoy delays a reload, never stops it.

// stageClusters serves the interim snapshots of every group whose clusters
// change, before publishEnvoy sets the final ones.
func (s *Server) stageClusters(next map[string]*published) {
	for _, name := range sortedKeys(next) {
		s.mu.RLock()
		old := s.groups[name]
		s.mu.RUnlock()
		if p := next[name]; old != nil && old.Version != p.Version {
			s.stageTo(name, old, p)
		}
	}
}

// stageTo is make-before-break from one version to another under a cache
// key (a group's, or its canaries'), waiting on the streams that key
// serves.
func (s *Server) stageTo(key string, from, to *published) {
	group, _ := strings.CutSuffix(key, CanarySuffix)
	added, removed := clusterChanges(from.served, to.served)
	// Clusters loaded on demand are fetched at first use: no Envoy is sent
	// them here, so none is waited for.
	added = s.upFrontOnly(group, added)
	if len(added) > 0 {
		// The new clusters and endpoints, the old listeners and routes.
		s.stage(key, "clusters added", withClusters(from.served, to.served), resource.ClusterType, resource.EndpointType)
	}
	if len(removed) > 0 {
		// The new listeners and routes, the old clusters still there.
		s.stage(key, "clusters removed", withClusters(to.served, from.served), resource.ListenerType, resource.RouteType)
	}
}

// stage serves a cache key an interim configuration and waits until the
// Envoys it serves hold the given types of it.
func (s *Server) stage(key, why string, res Resources, wait ...resource.Type) {
	p, err := snapshotOf(res)
	if err == nil {
		err = s.cache.SetSnapshot(context.Background(), key, p.snapshot)
	}
	if err != nil {
		s.log.Error("interim configuration", "key", key, "step", why, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.EnvoyAckTimeout)
	defer cancel()
	for _, typ := range wait {
		if err := s.waitEnvoyType(ctx, key, typ, p.Types[typ]); err != nil {
			s.log.Warn("going on with the reload", "key", key, "step", why, "reason", err.Error())
			return
		}
	}
	s.log.Debug("interim configuration taken", "key", key, "step", why, "version", p.Version)
}

// clusterChanges lists the clusters next adds to old and those it drops.
func clusterChanges(old, next Resources) (added, removed []string) {
	was, is := names(old[resource.ClusterType]), names(next[resource.ClusterType])
	for _, n := range is {
		if !slices.Contains(was, n) {
			added = append(added, n)
		}
	}
	for _, n := range was {
		if !slices.Contains(is, n) {
			removed = append(removed, n)
		}
	}
	return added, removed
}

// withClusters is base with the clusters and endpoints of extra that base
// lacks added (base's own kept as they are).
func withClusters(base, extra Resources) Resources {
	out := make(Resources, len(base))
	for typ, list := range base {
		out[typ] = list
	}
	for _, typ := range []resource.Type{resource.ClusterType, resource.EndpointType} {
		have := names(base[typ])
		list := slices.Clone(base[typ])
		for _, r := range extra[typ] {
			if !slices.Contains(have, cache.GetResourceName(r)) {
				list = append(list, r)
			}
		}
		out[typ] = list
	}
	return out
}

func names(list []types.Resource) []string {
	out := make([]string, 0, len(list))
	for _, r := range list {
		out = append(out, cache.GetResourceName(r))
	}
	return out
}

// waitEnvoyType waits until every Envoy stream a cache key serves that
// asked for typ holds version v of it, or has rejected it (the final
// configuration follows either way), or ctx ends.
func (s *Server) waitEnvoyType(ctx context.Context, key string, typ resource.Type, v string) error {
	serves := s.servedBy(key)
	return s.tracker.wait(ctx, func(st *streamState) (bool, string) {
		return !serves(st) || st.took(typ, v), ""
	}, fmt.Sprintf("Envoys of %s to take %s %s", key, typ, v))
}

// servedBy picks the Envoy streams a cache key serves: a group's canaries
// under its canary key; under the group's key every other node, or every
// node when no rollout is configured.
func (s *Server) servedBy(key string) func(*streamState) bool {
	group, canaries := strings.CutSuffix(key, CanarySuffix)
	rollout := s.opts.Rollout != nil
	return func(st *streamState) bool {
		return !st.bridge && st.group == group && (!rollout || st.canary == canaries)
	}
}

// took reports whether the stream holds or rejected version v of typ; a
// stream never sent typ counts as holding it.
func (st *streamState) took(typ, v string) bool {
	if _, asked := st.sent[typ]; !asked {
		return true
	}
	if n, ok := st.nacked[typ]; ok && n.Version == v {
		return true
	}
	return st.acked[typ] == v
}
