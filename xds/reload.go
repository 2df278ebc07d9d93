package xds

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/protogate/protogate/config"
)

// Source produces every group's resources from the mapping: load, validate,
// translate, prepare. An error stops the reload; config.Problems are listed
// one by one on /status. The Outcome, when not nil, is committed once the
// groups are published (whatever else serves the same mapping, in-process
// bridges, switches with Envoy) or discarded when publishing fails.
type Source func() (groups map[string]Resources, out Outcome, err error)

// Outcome is what a Source prepared beside the resources.
type Outcome interface {
	Commit()
	Discard()
}

// OnDemander is an Outcome that knows, per group, the clusters its
// Envoys load on demand (listeners with on_demand_clusters).
type OnDemander interface {
	OnDemand() map[string][]string
}

// Bridger is an Outcome with bridges in this process. Bridge is called
// once the fleet's bridges hold their bridging tables and before any Envoy
// is sent the change, so the in-process bridges know a new route before an
// Envoy does too; Commit comes after the Envoys took the change.
type Bridger interface {
	Outcome
	Bridge() error
}

// Reload runs the source and publishes what it gives. On any failure every
// problem is logged and recorded, and the last good snapshot keeps serving.
// Reloads run one at a time.
func (s *Server) Reload(reason string, src Source) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if !s.stateLoaded {
		// Before anything is published: a rollout a previous run left
		// under way keeps its stable version for all but the canaries.
		if err := s.loadRollouts(); err != nil {
			s.RecordReload(reason, []string{err.Error()})
			return err
		}
		s.stateLoaded = true
	}
	groups, out, err := src()
	if err == nil {
		err = s.publish(groups, out)
		if err != nil && out != nil {
			out.Discard()
		}
	}
	if err == nil {
		if out != nil {
			out.Commit()
		}
		s.log.Info("reloaded", "reason", reason)
		s.RecordReload(reason, nil)
		return nil
	}
	var problems []string
	var probs config.Problems
	if errors.As(err, &probs) {
		for _, p := range probs {
			problems = append(problems, p.String())
		}
	} else {
		problems = []string{err.Error()}
	}
	for _, p := range problems {
		s.log.Error("reload rejected; still serving the last good mapping", "reason", reason, "problem", p)
	}
	s.RecordReload(reason, problems)
	return err
}

// Watch reloads when the mapping at path changes (debounced) and on SIGHUP,
// until ctx ends.
func (s *Server) Watch(ctx context.Context, path string, debounce time.Duration, src Source) {
	if err := config.Watch(ctx, path, debounce, func() { _ = s.Reload("file change", src) }); err != nil {
		s.log.Error("cannot watch the mapping; reload with SIGHUP", "path", path, "err", err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = s.Reload("SIGHUP", src)
			}
		}
	}()
}
