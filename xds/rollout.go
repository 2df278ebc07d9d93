package xds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strings"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/protogate/protogate/routetable"
)

// Canary rollout. With xds.rollout set, the canary nodes of a group are
// served under their own cache key, CanarySuffix after the group's name,
// at all times: outside a rollout that key holds the group's version, so
// their watches never have to move. A reload that changes a group makes
// the new version its candidate: the canary key gets it, the group's key
// keeps the stable version, and the bridges hold a table serving both.
// After the bake time it is promoted if the connected canaries took it and
// the bridges' error ratio on the routes it adds or changes stayed low; a
// canary's NACK, or a breach, puts the canaries back on the stable version
// and marks the candidate rejected. The state is kept in a file, so a
// restarted control plane goes on serving the stable version to every
// node but the canaries.

// CanarySuffix ends the cache key of a group's canary nodes.
const CanarySuffix = "/canary"

// rollout is one group's rollout in progress.
type rollout struct {
	group     string
	stable    *published
	candidate *published
	// stableTable and candidateTable are the bridges' tables of each.
	stableTable, candidateTable *routetable.Table
	started                     time.Time
	bakeUntil                   time.Time
	baseline                    errorCounts
	done                        chan struct{} // closed when the rollout ends
	// ended by promote, rollback or abort (they race the bake timer).
	ended bool
}

// errorCounts are the bridges' answers on a rollout's routes.
type errorCounts struct{ total, failed float64 }

// RolloutStatus is what /rollout shows of a group.
type RolloutStatus struct {
	Group     string    `json:"group"`
	Stable    string    `json:"stable"`
	Candidate string    `json:"candidate,omitempty"`
	Rejected  []string  `json:"rejected,omitempty"`
	Started   time.Time `json:"started,omitempty"`
	BakeUntil time.Time `json:"bake_until,omitempty"`
	// Nodes says which version each connected node holds (of its listeners).
	Nodes []RolloutNode `json:"nodes,omitempty"`
}

// RolloutNode is one node of a group in a rollout.
type RolloutNode struct {
	ID      string `json:"id"`
	Canary  bool   `json:"canary"`
	Version string `json:"version"` // its listeners' version: "stable", "candidate" or a version
}

type rolloutMetrics struct {
	ended     *prometheus.CounterVec
	baking    *prometheus.GaugeVec
	rejection *prometheus.CounterVec
}

func newRolloutMetrics(reg prometheus.Registerer) *rolloutMetrics {
	m := &rolloutMetrics{
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "protogate_xds_rollouts_total", Help: "Rollouts that ended, by group and result (promoted, rolled_back, aborted, superseded).",
		}, []string{"group", "result"}),
		baking: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "protogate_xds_rollout_in_progress", Help: "1 while a group's candidate version is baking on its canaries.",
		}, []string{"group"}),
		rejection: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "protogate_xds_rollout_reloads_refused_total", Help: "Reloads refused because they gave a version the canaries rejected, by group.",
		}, []string{"group"}),
	}
	reg.MustRegister(m.ended, m.baking, m.rejection)
	return m
}

// isCanary says whether a node is one of its group's canaries.
func (s *Server) isCanary(node *core.Node) bool {
	r := s.opts.Rollout
	if r == nil || node == nil {
		return false
	}
	if r.CanaryLabel != "" {
		v := node.GetMetadata().GetFields()[r.CanaryLabel]
		return v.GetStringValue() == "true" || v.GetBoolValue()
	}
	h := fnv.New32a()
	h.Write([]byte(node.GetId()))
	return float64(h.Sum32()%10000) < r.CanaryPercent*100
}

// canaryKey is the cache key of a group's canaries.
func canaryKey(group string) string { return group + CanarySuffix }

// beginRollouts takes, out of next, the groups whose version changes
// while a rollout is configured: their candidate goes to the canary key
// only, and next keeps their stable version. It refuses a version the
// canaries rejected before. Called without s.mu, before publishEnvoy.
func (s *Server) beginRollouts(next map[string]*published, tables map[string]*groupTable) (map[string]*rollout, error) {
	if s.opts.Rollout == nil {
		return nil, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	started := map[string]*rollout{}
	for _, name := range sortedKeys(next) {
		p := next[name]
		if slices.Contains(s.rejected[name], p.Version) {
			s.rollouts.rejection.WithLabelValues(name).Inc() // a mapping group: a label of its own
			return nil, fmt.Errorf("group %q: version %s was rejected by its canaries; change the mapping (or abort and publish another)", name, p.Version)
		}
		stable := s.groups[name]
		if r := s.inRollout[name]; r != nil {
			stable = r.stable
		}
		if stable == nil || stable.Version == p.Version {
			continue // a new group, or back to the stable version
		}
		r := &rollout{group: name, stable: stable, candidate: p, started: time.Now(), done: make(chan struct{}),
			stableTable: s.servedStable(name), bakeUntil: time.Now().Add(s.opts.Rollout.BakeTime.Std())}
		if gt := tables[name]; gt != nil {
			r.candidateTable = gt.table
		}
		started[name] = r
		next[name] = stable
	}
	return started, nil
}

// servedStable is the stable table of a group's bridges; s.mu is held.
func (s *Server) servedStable(group string) *routetable.Table {
	if r := s.inRollout[group]; r != nil {
		return r.stableTable
	}
	return s.served[group]
}

// startRollouts serves each new candidate to its group's canaries and
// starts its bake. A rollout already under way for the group is replaced.
func (s *Server) startRollouts(started map[string]*rollout) {
	for _, name := range sortedKeys(started) {
		r := started[name]
		s.mu.Lock()
		if old := s.inRollout[name]; old != nil {
			s.endLocked(old, "superseded")
		}
		s.inRollout[name] = r
		s.mu.Unlock()
		s.stageTo(canaryKey(name), r.stable, r.candidate)
		if err := s.cache.SetSnapshot(context.Background(), canaryKey(name), r.candidate.snapshot); err != nil {
			s.log.Error("rollout", "group", name, "err", err)
		}
		r.baseline = s.bridgeErrors(name, changedRoutes(r.stableTable, r.candidateTable))
		s.rollouts.baking.WithLabelValues(s.groupLabel(name)).Set(1)
		s.log.Info("rollout started: the canaries get the new version", "group", name, "stable", r.stable.Version,
			"candidate", r.candidate.Version, "bake_until", r.bakeUntil.Format(time.RFC3339))
		s.saveRollouts()
		s.bakes.Add(1)
		go func() { defer s.bakes.Done(); s.bake(r) }()
	}
}

// bake watches the canaries until the bake time is over: a NACK of the
// candidate rolls back at once; then a clean bake promotes.
func (s *Server) bake(r *rollout) {
	timer := time.NewTimer(time.Until(r.bakeUntil))
	defer timer.Stop()
	for {
		s.tracker.mu.Lock()
		ch := s.tracker.acked
		s.tracker.mu.Unlock()
		if why := s.canaryNACK(r); why != "" {
			s.Rollback(r.group, why)
			return
		}
		select {
		case <-r.done:
			return
		case <-s.stopped:
			return // the state file keeps it for the next start
		case <-ch:
		case <-timer.C:
			if s.finishBake(r) {
				return
			}
			s.mu.RLock()
			until := r.bakeUntil
			s.mu.RUnlock()
			timer.Reset(time.Until(until)) // no canary held it: bake on
		}
	}
}

// finishBake promotes a candidate that baked cleanly, or rolls it back;
// false: no canary holds it yet, and it bakes on.
func (s *Server) finishBake(r *rollout) bool {
	if why := s.canaryNACK(r); why != "" {
		s.Rollback(r.group, why)
		return true
	}
	now := s.bridgeErrors(r.group, changedRoutes(r.stableTable, r.candidateTable))
	total, failed := now.total-r.baseline.total, now.failed-r.baseline.failed
	if max := s.opts.Rollout.MaxErrorRatio; total > 0 && failed/total > max {
		s.Rollback(r.group, fmt.Sprintf("the bridges answered %.0f of %.0f requests on the changed routes with 5xx (more than %.0f%%)", failed, total, max*100))
		return true
	}
	if held := s.canariesHolding(r); held == 0 {
		s.log.Warn("rollout: no canary node holds the candidate; it keeps baking until one does, or until promoted by hand",
			"group", r.group, "candidate", r.candidate.Version)
		s.mu.Lock() // RolloutStatuses reads it
		r.bakeUntil = time.Now().Add(s.opts.Rollout.BakeTime.Std())
		s.mu.Unlock()
		return false
	}
	if err := s.Promote(r.group); err != nil {
		s.log.Error("rollout: promotion failed", "group", r.group, "err", err)
	}
	return true
}

// canaryNACK names a canary stream that rejected the candidate.
func (s *Server) canaryNACK(r *rollout) string {
	s.tracker.mu.Lock()
	defer s.tracker.mu.Unlock()
	for _, st := range s.tracker.streams {
		if st.bridge || st.group != r.group || !st.canary {
			continue
		}
		for typ, v := range r.candidate.Types {
			if n, ok := st.nacked[typ]; ok && n.Version == v {
				return fmt.Sprintf("canary %s rejected %s: %s", st.node, typ, n.Error)
			}
		}
	}
	return ""
}

// canariesHolding counts the canary streams that ACKed the candidate's
// listeners (or routes, for a client that asked for those only).
func (s *Server) canariesHolding(r *rollout) int {
	s.tracker.mu.Lock()
	defer s.tracker.mu.Unlock()
	n := 0
	for _, st := range s.tracker.streams {
		if st.bridge || st.group != r.group || !st.canary {
			continue
		}
		holds := false
		for typ, v := range r.candidate.Types {
			if _, asked := st.sent[typ]; asked {
				holds = st.acked[typ] == v
				if !holds {
					break
				}
			}
		}
		if holds {
			n++
		}
	}
	return n
}

// ErrNoRollout: the group has no rollout in progress.
var ErrNoRollout = errors.New("no rollout in progress")

// Promote serves a group's candidate to every node and ends its rollout.
func (s *Server) Promote(group string) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.mu.RLock()
	r := s.inRollout[group]
	s.mu.RUnlock()
	if r == nil {
		return fmt.Errorf("group %q: %w", group, ErrNoRollout)
	}
	s.membersMu.Lock()
	s.stageTo(group, r.stable, r.candidate)
	err := s.cache.SetSnapshot(context.Background(), group, r.candidate.snapshot)
	s.mu.Lock()
	if err == nil {
		s.groups[group] = r.candidate
		s.endLocked(r, "promoted")
	}
	s.mu.Unlock()
	s.membersMu.Unlock()
	if err != nil {
		return fmt.Errorf("group %q: %w", group, err)
	}
	s.log.Info("rollout promoted: every node gets the new version", "group", group, "version", r.candidate.Version)
	if r.candidateTable != nil {
		// The stable Envoys hold the candidate's routes now: the routes
		// only the stable version had leave the bridges.
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.EnvoyAckTimeout)
		_ = s.waitEnvoys(ctx, group, envoyRouteVersion(r.candidate))
		cancel()
		_ = s.setTable(group, r.candidateTable)
	}
	s.saveRollouts()
	return nil
}

// Rollback puts a group's canaries back on the stable version and marks
// the candidate rejected.
func (s *Server) Rollback(group, why string) {
	if err := s.endCanaries(group, "rolled_back", true); err == nil {
		s.log.Warn("rollout rolled back: the canaries are back on the stable version", "group", group, "reason", why)
	}
}

// Abort ends a group's rollout as Rollback does, without marking the
// candidate rejected.
func (s *Server) Abort(group string) error {
	err := s.endCanaries(group, "aborted", false)
	if err == nil {
		s.log.Info("rollout aborted: the canaries are back on the stable version", "group", group)
	}
	return err
}

func (s *Server) endCanaries(group, result string, reject bool) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.mu.RLock()
	r := s.inRollout[group]
	s.mu.RUnlock()
	if r == nil {
		return fmt.Errorf("group %q: %w", group, ErrNoRollout)
	}
	s.membersMu.Lock()
	s.stageTo(canaryKey(group), r.candidate, r.stable)
	_ = s.cache.SetSnapshot(context.Background(), canaryKey(group), r.stable.snapshot)
	s.mu.Lock()
	if reject {
		s.rejected[group] = append(s.rejected[group], r.candidate.Version)
	}
	s.endLocked(r, result)
	s.mu.Unlock()
	s.membersMu.Unlock()
	if r.stableTable != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.EnvoyAckTimeout)
		_ = s.waitEnvoys(ctx, group, envoyRouteVersion(r.stable))
		cancel()
		_ = s.setTable(group, r.stableTable)
		s.mu.Lock()
		s.served[group] = r.stableTable
		s.mu.Unlock()
	}
	s.saveRollouts()
	return nil
}

// endLocked closes a rollout; s.mu is held.
func (s *Server) endLocked(r *rollout, result string) {
	if r.ended {
		return
	}
	r.ended = true
	close(r.done)
	if s.inRollout[r.group] == r {
		delete(s.inRollout, r.group)
	}
	// r.group is a mapping group, so it is its own label (groupLabel
	// would take s.mu again).
	s.rollouts.ended.WithLabelValues(r.group, result).Inc()
	s.rollouts.baking.WithLabelValues(r.group).Set(0)
}

// changedRoutes are the routes next adds or changes.
func changedRoutes(old, next *routetable.Table) []string {
	if next == nil {
		return nil
	}
	changed := map[string]bool{}
	for _, f := range routetable.Bridging(old, next).Former {
		changed[f.Name] = true
	}
	var out []string
	for _, r := range next.Routes {
		if old == nil || old.Route(r.Name) == nil || changed[r.Name] {
			out = append(out, r.Name)
		}
	}
	return out
}

// RolloutStatuses lists each group's rollout state.
func (s *Server) RolloutStatuses() []RolloutStatus {
	s.mu.RLock()
	var out []RolloutStatus
	for _, name := range sortedKeys(s.groups) {
		st := RolloutStatus{Group: name, Stable: s.groups[name].Version, Rejected: slices.Clone(s.rejected[name])}
		if r := s.inRollout[name]; r != nil {
			st.Stable, st.Candidate, st.Started, st.BakeUntil = r.stable.Version, r.candidate.Version, r.started, r.bakeUntil
		}
		out = append(out, st)
	}
	rolls := map[string]*rollout{}
	for k, v := range s.inRollout {
		rolls[k] = v
	}
	s.mu.RUnlock()
	s.tracker.mu.Lock()
	defer s.tracker.mu.Unlock()
	for i := range out {
		r := rolls[out[i].Group]
		for _, st := range s.tracker.streams {
			if st.bridge || st.group != out[i].Group || !st.named {
				continue
			}
			typ := resource.RouteType
			if _, asked := st.sent[typ]; !asked {
				typ = resource.ListenerType
			}
			v, label := st.acked[typ], st.acked[typ]
			switch {
			case r == nil:
			case v == r.candidate.Types[typ] && v != r.stable.Types[typ]:
				label = "candidate"
			case v == r.stable.Types[typ]:
				label = "stable"
			}
			out[i].Nodes = append(out[i].Nodes, RolloutNode{ID: st.node, Canary: st.canary, Version: label})
		}
		slices.SortFunc(out[i].Nodes, func(a, b RolloutNode) int {
			if a.ID < b.ID {
				return -1
			}
			if a.ID > b.ID {
				return 1
			}
			return 0
		})
	}
	return out
}

// rolloutPage is GET /rollout: each group's stable, candidate and
// rejected versions and which node holds which.
func (s *Server) rolloutPage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"enabled": s.opts.Rollout != nil, "groups": s.RolloutStatuses()})
}

// rolloutAction is POST /rollout/promote?group=G and /rollout/abort?group=G.
func (s *Server) rolloutAction(w http.ResponseWriter, r *http.Request) {
	group := r.URL.Query().Get("group")
	if group == "" {
		http.Error(w, `{"error":{"code":"missing_group","message":"say which group: ?group=NAME"}}`, http.StatusBadRequest)
		return
	}
	var err error
	if strings.HasSuffix(r.URL.Path, "/promote") {
		err = s.Promote(group)
	} else {
		err = s.Abort(group)
	}
	w.Header().Set("Content-Type", "application/json")
	if errors.Is(err, ErrNoRollout) {
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "no_rollout", "message": err.Error()}})
		return
	}
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "rollout_failed", "message": err.Error()}})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "group": group})
}

// nodeCacheKey is the cache key a node of group is served under.
func (s *Server) nodeCacheKey(group string, canary bool) string {
	key := s.cacheKey(group)
	if canary && s.opts.Rollout != nil && key == group {
		return canaryKey(group)
	}
	return key
}
