package xds

import (
	"context"
	"fmt"
	"slices"

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
		p := next[name]
		if old == nil || old.Version == p.Version {
			continue
		}
		added, removed := clusterChanges(old.served, p.served)
		// Clusters loaded on demand are fetched at first use: no Envoy is
		// sent them here, so none is waited for.
		added = s.upFrontOnly(name, added)
		if len(added) > 0 {
			// The new clusters and endpoints, the old listeners and routes.
			s.stage(name, "clusters added", withClusters(old.served, p.served), resource.ClusterType, resource.EndpointType)
		}
		if len(removed) > 0 {
			// The new listeners and routes, the old clusters still there.
			s.stage(name, "clusters removed", withClusters(p.served, old.served), resource.ListenerType, resource.RouteType)
		}
	}
}

// stage serves group an interim configuration and waits until its Envoys
// hold the given types of it.
func (s *Server) stage(group, why string, res Resources, wait ...resource.Type) {
	p, err := snapshotOf(res)
	if err != nil {
		s.log.Error("interim configuration", "group", group, "step", why, "err", err)
		return
	}
	if err := s.cache.SetSnapshot(context.Background(), group, p.snapshot); err != nil {
		s.log.Error("interim configuration", "group", group, "step", why, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.EnvoyAckTimeout)
	defer cancel()
	for _, typ := range wait {
		if err := s.waitEnvoyType(ctx, group, typ, p.Types[typ]); err != nil {
			s.log.Warn("going on with the reload", "group", group, "step", why, "reason", err.Error())
			return
		}
	}
	s.log.Debug("interim configuration taken", "group", group, "step", why, "version", p.Version)
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

// waitEnvoyType waits until every Envoy stream of group that asked for
// typ holds version v of it, or has rejected it (the final configuration
// follows either way), or ctx ends.
func (s *Server) waitEnvoyType(ctx context.Context, group string, typ resource.Type, v string) error {
	return s.tracker.wait(ctx, func(st *streamState) (bool, string) {
		if st.bridge || st.group != group {
			return true, ""
		}
		if _, asked := st.sent[typ]; !asked {
			return true, ""
		}
		if n, ok := st.nacked[typ]; ok && n.Version == v {
			return true, ""
		}
		return st.acked[typ] == v, ""
	}, fmt.Sprintf("Envoys of group %s to take %s %s", group, typ, v))
}
