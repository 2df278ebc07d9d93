package xds

import (
	"context"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// Nodes that ask for a group the mapping does not define are served the
// empty fallback configuration. So that a reload creating the group
// reaches them without a reconnect, SotW and delta alike, the fallback is
// served to them under their group's own name in the snapshot cache: their
// watches are then keyed by the group, and setting its real snapshot
// answers them as it answers the group's other nodes. go-control-plane's
// cache offers no way to move a watch from one key to another.
//
// Group names come from clients, so at most maxWaitingGroups are kept this
// way (the others share FallbackGroup and get their group on reconnecting),
// and one no stream has used for waitingGroupIdle is dropped.
const (
	maxWaitingGroups = 64
	waitingGroupIdle = time.Minute
)

// waitFor makes the node's unknown group a waiting group, if there is room,
// before a watch of the node is created; it reports the cache key.
func (s *Server) waitFor(node *core.Node) {
	name := s.requestedGroup(node)
	if name == "" || name == FallbackGroup || s.knownGroup(name) {
		return // the common case, under the read lock: every request passes here
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, known := s.groups[name]; known {
		return
	}
	if _, ok := s.waiting[name]; ok {
		s.waiting[name] = time.Now()
		return
	}
	if len(s.waiting) >= maxWaitingGroups {
		s.sweepWaiting()
	}
	if len(s.waiting) >= maxWaitingGroups {
		if !s.waitingFull {
			s.waitingFull = true
			s.log.Warn("too many unknown groups asked for; nodes of further ones get their group only when they reconnect after it is created",
				"max", maxWaitingGroups)
		}
		return
	}
	if err := s.cache.SetSnapshot(context.Background(), name, fallbackSnapshot(sortedKeys(s.groups))); err != nil {
		return // an empty snapshot is always valid
	}
	s.waiting[name] = time.Now()
}

// sweepWaiting drops waiting groups no watch has been created for in a
// while; s.mu is held. Every watch creation refreshes its group's time
// under s.mu before the watch exists, so a group is never dropped under a
// watch that was just made; a stream idle for that long holds a watch of a
// dropped key, which the cache then never answers: such a node gets its
// group on its next request or reconnect.
func (s *Server) sweepWaiting() {
	for name, at := range s.waiting {
		if time.Since(at) > waitingGroupIdle {
			s.cache.ClearSnapshot(name)
			delete(s.waiting, name)
		}
	}
	s.waitingFull = false
}

// settleWaiting runs as a reload publishes (s.mu held): waiting groups the
// mapping now defines have their real snapshot already and stop waiting;
// the others get the new fallback snapshot (it names the groups).
func (s *Server) settleWaiting(groups []string) {
	fallback := fallbackSnapshot(groups)
	for name := range s.waiting {
		if _, known := s.groups[name]; known {
			delete(s.waiting, name)
			continue
		}
		_ = s.cache.SetSnapshot(context.Background(), name, fallback)
	}
}

// requestedGroup is the group a node names, known or not.
func (s *Server) requestedGroup(node *core.Node) string {
	if key := s.opts.GroupMetadataKey; key != "" {
		return node.GetMetadata().GetFields()[key].GetStringValue()
	}
	return node.GetCluster()
}

// knownGroup reports whether the mapping defines the group.
func (s *Server) knownGroup(name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.groups[name]
	return ok
}
