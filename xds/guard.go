package xds

import (
	"fmt"
	"slices"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
)

// Retirer is an Outcome that knows which groups its mapping means to
// leave with no listeners (xds.retired_groups).
type Retirer interface {
	RetiredGroups() []string
}

// guardMetrics counts reloads refused because they would empty a group.
type guardMetrics struct {
	refused *prometheus.CounterVec
}

func newGuardMetrics(reg prometheus.Registerer) *guardMetrics {
	m := &guardMetrics{refused: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "protogate_xds_reloads_refused_total",
		Help: "Reloads refused because they would leave connected nodes of a group with no listeners, by group.",
	}, []string{"group"})}
	reg.MustRegister(m.refused)
	return m
}

// checkRemovals refuses a reload that leaves a group with connected
// nodes no listeners, the group removed or emptied, unless the mapping
// lists it in xds.retired_groups: a typo in xds.groups must not wipe the
// configuration of a fleet at once.
func (s *Server) checkRemovals(groups map[string]Resources, out Outcome) error {
	var retired []string
	if r, ok := out.(Retirer); ok {
		retired = r.RetiredGroups()
	}
	s.mu.RLock()
	var emptied []string
	for name, p := range s.groups {
		if len(p.res[resource.ListenerType]) == 0 || slices.Contains(retired, name) {
			continue // it had none, or leaving it is intended
		}
		if next, ok := groups[name]; !ok || len(next[resource.ListenerType]) == 0 {
			emptied = append(emptied, name)
		}
	}
	s.mu.RUnlock()
	slices.Sort(emptied)
	var problems []string
	for _, name := range emptied {
		n := s.connectedNodes(name)
		if n == 0 {
			continue
		}
		s.guard.refused.WithLabelValues(name).Inc()
		problems = append(problems, fmt.Sprintf("group %q: %d connected node(s) would be left with no listeners; "+
			"list it in xds.retired_groups if that is intended", name, n))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// connectedNodes counts the open streams' distinct nodes of a group.
func (s *Server) connectedNodes(group string) int {
	s.tracker.mu.Lock()
	defer s.tracker.mu.Unlock()
	seen := map[string]bool{}
	for _, st := range s.tracker.streams {
		if st.group == group && st.node != "" && !st.bridge { // bridges are served tables, not listeners
			seen[st.node] = true
		}
	}
	return len(seen)
}
