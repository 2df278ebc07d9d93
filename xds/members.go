package xds

import (
	"context"
	"slices"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/protogate/protogate/config"
)

// Bridges that announce themselves (bridge.discovery xds) are the
// endpoints of their group's bridge clusters: those connected, holding a
// route table, and not leaving. A bridge whose stream drops without
// leaving stays listed for BridgeLinger, so a blip between it and the
// control plane does not take it away from Envoy; one that leaves (it
// unsubscribes from its table as it starts shutting down) goes at once.
const BridgeLinger = 30 * time.Second

// BridgeStartupGrace: after a start, a group with announced bridges is
// not sent bridge endpoints while none has connected yet (bridges
// reconnect within seconds), so an Envoy that reconnects first keeps the
// endpoints it has instead of being sent none.
const BridgeStartupGrace = 10 * time.Second

// lingering remembers bridges whose stream dropped: group → address → when.
type lingering map[string]map[string]time.Time

// members lists the addresses of group's bridges, sorted; t.mu is held.
func (t *tracker) members(group string) []string {
	seen := map[string]bool{}
	for _, st := range t.streams {
		if st.bridge && st.group == group && !st.leaving && st.addr != "" && (st.acked[TableType] != "" || st.resumed) {
			seen[st.addr] = true
		}
	}
	for addr, at := range t.gone[group] {
		if time.Since(at) < BridgeLinger {
			seen[addr] = true
		}
	}
	out := make([]string, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Members lists the announced bridges of a group.
func (s *Server) Members(group string) []string {
	s.tracker.mu.Lock()
	defer s.tracker.mu.Unlock()
	return s.tracker.members(group)
}

// membersChanged is called (without t.mu) when a bridge of group joined,
// left or stopped lingering.
func (s *Server) membersChanged(group string) {
	// One at a time: members read earlier must not be set after members
	// read later.
	s.membersMu.Lock()
	defer s.membersMu.Unlock()
	m := s.Members(group) // before s.mu: the tracker takes s.mu under its own lock
	if s.setMembers(group, m) {
		// Wake endpoint watches held for this group (after s.mu).
		s.tracker.mu.Lock()
		s.tracker.signal()
		s.tracker.mu.Unlock()
	}
}

// setMembers publishes group's snapshot with bridge endpoints m, and
// reports whether it changed.
func (s *Server) setMembers(group string, m []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.groups[group]
	tbl := s.served[group]
	if !ok || tbl == nil || len(tbl.BridgeClusters) == 0 {
		return false
	}
	if slices.Equal(p.members, m) {
		return false
	}
	np, err := snapshotOf(withBridgeEndpoints(p.res, tbl.BridgeClusters, m))
	if err != nil {
		s.log.Error("bridge endpoints", "group", group, "err", err)
		return false
	}
	np.res, np.members = p.res, m
	if err := s.cache.SetSnapshot(context.Background(), group, np.snapshot); err != nil {
		s.log.Error("bridge endpoints", "group", group, "err", err)
		return false
	}
	s.groups[group] = np
	s.setCanaryMembers(group, np, m)
	s.log.Info("bridge endpoints changed", "group", group, "bridges", len(m), "version", np.Version)
	return true
}

// setCanaryMembers gives the canaries' key the same bridge endpoints: the
// group's new snapshot outside a rollout, the candidate's with them during
// one (whose stable version is the new snapshot). s.mu is held.
func (s *Server) setCanaryMembers(group string, np *published, m []string) {
	if s.opts.Rollout == nil {
		return
	}
	r := s.inRollout[group]
	if r == nil {
		_ = s.cache.SetSnapshot(context.Background(), canaryKey(group), np.snapshot)
		return
	}
	r.stable = np
	clusters := s.served[group].BridgeClusters
	if r.candidateTable != nil {
		clusters = r.candidateTable.BridgeClusters
	}
	cp, err := snapshotOf(withBridgeEndpoints(r.candidate.res, clusters, m))
	if err != nil {
		s.log.Error("bridge endpoints", "group", group, "err", err)
		return
	}
	cp.res, cp.members = r.candidate.res, m
	r.candidate = cp
	_ = s.cache.SetSnapshot(context.Background(), canaryKey(group), cp.snapshot)
}

// withBridgeEndpoints is res with the bridge clusters' assignments set to
// the announced bridges.
func withBridgeEndpoints(res Resources, clusters, members []string) Resources {
	out := make(Resources, len(res))
	for typ, list := range res {
		out[typ] = list
	}
	var eps []types.Resource
	for _, r := range res[resource.EndpointType] {
		if !slices.Contains(clusters, cache.GetResourceName(r)) {
			eps = append(eps, r)
		}
	}
	for _, c := range clusters {
		eps = append(eps, assignment(c, members))
	}
	out[resource.EndpointType] = eps
	return out
}

func assignment(cluster string, addrs []string) *endpoint.ClusterLoadAssignment {
	var lbs []*endpoint.LbEndpoint
	for _, a := range addrs {
		host, port, err := config.SplitEndpoint(a)
		if err != nil || port <= 0 {
			continue
		}
		lbs = append(lbs, &endpoint.LbEndpoint{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
			Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
				Address: host, PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)},
			}}},
		}}})
	}
	return &endpoint.ClusterLoadAssignment{ClusterName: cluster, Endpoints: []*endpoint.LocalityLbEndpoints{{LbEndpoints: lbs}}}
}

// holdEndpoints reports whether an endpoint watch of group waits for the
// group's bridges to announce themselves (see BridgeStartupGrace).
func (s *Server) holdEndpoints(group string) bool {
	if time.Since(s.started) > BridgeStartupGrace {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	tbl, p := s.served[group], s.groups[group]
	// What counts is what the snapshot holds, not the tracker: a watch
	// created before the snapshot has its bridges would send none.
	return tbl != nil && len(tbl.BridgeClusters) > 0 && p != nil && len(p.members) == 0
}

// heldWatch creates a watch once group has bridges or the grace is over;
// the returned cancel stops either.
func (s *Server) heldWatch(group string, create func() (func(), error)) (func(), error) {
	ctx, stop := context.WithDeadline(context.Background(), s.started.Add(BridgeStartupGrace))
	var (
		mu       sync.Mutex
		cancel   func()
		canceled bool
	)
	go func() {
		defer stop()
		for s.holdEndpoints(group) {
			s.tracker.mu.Lock()
			ch := s.tracker.acked
			s.tracker.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if !canceled {
			cancel, _ = create()
		}
	}()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		canceled = true
		stop()
		if cancel != nil {
			cancel()
		}
	}, nil
}
