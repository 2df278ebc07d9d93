package xds

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/protogate/protogate/internal/promreg"
	"github.com/protogate/protogate/routetable"
	"github.com/protogate/protogate/routetable/routetablepb"
)

// rolloutState is what the state file keeps: the versions the canaries
// rejected, and of each rollout in progress its stable resources, so a
// restarted control plane serves them to every node but the canaries.
type rolloutState struct {
	Rejected map[string][]string     `json:"rejected,omitempty"`
	Stable   map[string]stableRecord `json:"stable,omitempty"`
}

type stableRecord struct {
	Version   string              `json:"version"`
	Candidate string              `json:"candidate"`
	Resources map[string][][]byte `json:"resources"` // type URL → each resource as an encoded Any
}

func (s *Server) statePath() string {
	if p := s.opts.Rollout.StateFile; p != "" {
		return p
	}
	return filepath.Join(os.TempDir(), "protogate-rollout.json")
}

// saveRollouts writes the state file (atomically); a failure is logged:
// the rollout goes on, only a restart would forget it.
func (s *Server) saveRollouts() {
	if s.opts.Rollout == nil {
		return
	}
	s.mu.RLock()
	st := rolloutState{Rejected: map[string][]string{}, Stable: map[string]stableRecord{}}
	for g, v := range s.rejected {
		st.Rejected[g] = slices.Clone(v)
	}
	var err error
	for g, r := range s.inRollout {
		rec := stableRecord{Version: r.stable.Version, Candidate: r.candidate.Version, Resources: map[string][][]byte{}}
		for typ, list := range r.stable.res {
			for _, res := range list {
				a, aerr := anypb.New(res)
				if aerr != nil {
					err = aerr
					break
				}
				b, merr := proto.Marshal(a)
				if merr != nil {
					err = merr
					break
				}
				rec.Resources[typ] = append(rec.Resources[typ], b)
			}
		}
		st.Stable[g] = rec
	}
	s.mu.RUnlock()
	if err == nil {
		err = writeState(s.statePath(), st)
	}
	if err != nil {
		s.log.Error("rollout state not saved; a restart would forget the rollout", "path", s.statePath(), "err", err)
	}
}

func writeState(path string, st rolloutState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// loadRollouts restores, before the first reload, the stable version of
// each group whose rollout was under way, and the rejected versions: the
// first reload then starts the rollout again from the stable version, and
// no node but the canaries is sent the candidate.
func (s *Server) loadRollouts() error {
	if s.opts.Rollout == nil {
		return nil
	}
	raw, err := os.ReadFile(s.statePath())
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rollout state %s: %w", s.statePath(), err)
	}
	var st rolloutState
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("rollout state %s: %w", s.statePath(), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for g, v := range st.Rejected {
		s.rejected[g] = v
	}
	for g, rec := range st.Stable {
		res := Resources{}
		for typ, list := range rec.Resources {
			for _, b := range list {
				var a anypb.Any
				if err := proto.Unmarshal(b, &a); err != nil {
					return fmt.Errorf("rollout state, group %q: %w", g, err)
				}
				m, err := a.UnmarshalNew()
				if err != nil {
					return fmt.Errorf("rollout state, group %q: %w", g, err)
				}
				res[typ] = append(res[typ], types.Resource(m))
			}
		}
		p, err := snapshotOf(res)
		if err != nil {
			return fmt.Errorf("rollout state, group %q: %w", g, err)
		}
		p.res = res
		if p.Version != rec.Version {
			return fmt.Errorf("rollout state, group %q: its stable resources hash to %s, not %s", g, p.Version, rec.Version)
		}
		if list := res[TableType]; len(list) == 1 {
			if tr, ok := list[0].(*routetablepb.RouteTable); ok {
				if t, err := routetable.FromResource(tr); err == nil {
					s.served[g] = t
				}
			}
		}
		s.groups[g] = p
		_ = s.cache.SetSnapshot(context.Background(), g, p.snapshot)
		_ = s.cache.SetSnapshot(context.Background(), canaryKey(g), p.snapshot)
		s.log.Warn("a rollout was under way when the control plane stopped: every node but the canaries keeps the stable version, and the rollout starts again",
			"group", g, "stable", rec.Version, "candidate", rec.Candidate)
	}
	return nil
}

// bridgeErrors sums the bridges' answers on routes, all and 5xx: from the
// bridges in this process, or by reading the /metrics of the group's
// announced bridges. Bridges that cannot be read count for nothing.
func (s *Server) bridgeErrors(group string, routes []string) errorCounts {
	if len(routes) == 0 {
		return errorCounts{}
	}
	if s.opts.BridgeErrors != nil {
		total, failed := s.opts.BridgeErrors(routes)
		return errorCounts{total, failed}
	}
	var c errorCounts
	client := &http.Client{Timeout: 2 * time.Second}
	for _, addr := range s.Members(group) {
		if host, _, err := net.SplitHostPort(addr); err != nil || net.ParseIP(host).IsUnspecified() {
			continue // an address only the bridge itself means
		}
		resp, err := client.Get("http://" + addr + "/metrics")
		if err != nil {
			continue
		}
		var parser expfmt.TextParser
		fams, err := parser.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			continue
		}
		t, f := promreg.Answers(fams[promreg.RequestsTotal].GetMetric(), routes)
		c.total += t
		c.failed += f
	}
	return c
}
