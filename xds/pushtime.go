package xds

import (
	"context"
	"time"
)

// pushTimeout bounds how long a push is followed for its latency metric.
const pushTimeout = 2 * time.Minute

// followPush records, once every connected Envoy of group holds every type
// of version p (or rejected it), how long that took since start. A
// version superseded before that, or a group no Envoy is connected to,
// records nothing.
func (s *Server) followPush(group string, p *published, start time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	defer cancel()
	envoys := 0
	err := s.tracker.wait(ctx, func(st *streamState) (bool, string) {
		if st.bridge || st.group != group {
			return true, ""
		}
		if cur := s.publishedVersion(group); cur != p.Version {
			return false, "superseded"
		}
		envoys++
		for typ, v := range p.Types {
			if !st.took(typ, v) {
				return false, ""
			}
		}
		return true, ""
	}, "Envoys of group "+group+" to take version "+p.Version)
	if err == nil && envoys > 0 {
		s.metrics.push.WithLabelValues(s.groupLabel(group)).Observe(time.Since(start).Seconds())
	}
}

func (s *Server) publishedVersion(group string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p := s.groups[group]; p != nil {
		return p.Version
	}
	return ""
}
