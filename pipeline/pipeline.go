// Package pipeline is protogate's one reload path: load the mapping,
// validate it, translate it (Envoy resources and route tables per group),
// prepare the bridges that serve it in this process, publish, then commit,
// or discard what was prepared when publishing fails. protogate run,
// controlplane and bridge, and the tests, all reload through it, so a
// mapping is never read, checked or applied two different ways.
package pipeline

import (
	"errors"
	"log/slog"
	"strings"
	"sync"

	"github.com/protogate/protogate/bridges"
	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/routetable"
	"github.com/protogate/protogate/translator"
	"github.com/protogate/protogate/xds"
)

// Pipeline reloads one mapping path.
type Pipeline struct {
	Path string
	Log  *slog.Logger
	// Bridges, when set, are bridges in this process fed by the same
	// mapping (protogate run, or protogate bridge -c).
	Bridges *bridges.Server
	// Group limits those bridges to one node group's listeners; "" gives
	// them every HTTP listener.
	Group string
	// Running is the mapping the process started with: settings that
	// apply only at start are compared with it.
	Running *config.Config
	// Registries, when set, follows the registries of the mapping's Dubbo
	// upstreams; what they hold goes into every translation.
	Registries *Registries

	// applyMu runs Apply and ApplyRefresh one at a time: a refresh of the
	// last mapping must not commit over a newer file's.
	applyMu sync.Mutex
	mu      sync.Mutex
	last    *config.Config    // the mapping last committed
	table   *routetable.Table // the in-process bridges' table last committed
}

// Change is a translated mapping, prepared and not yet committed.
type Change struct {
	Config *config.Config
	Result *translator.Result
	// Table is what the in-process bridges serve.
	Table    *routetable.Table
	bridges  *bridges.Server
	prepared *bridges.Prepared
	pipeline *Pipeline
	// before is what the in-process bridges served until Bridge switched
	// them to the bridging table; nil while Bridge has not.
	before *bridges.Prepared
}

// Load reads and validates the mapping.
func (p *Pipeline) Load() (*config.Config, error) { return config.Load(p.Path) }

// Prepare translates a loaded mapping and prepares the in-process bridges
// for it; nothing serving changes. On failure nothing is left open.
func (p *Pipeline) Prepare(cfg *config.Config) (*Change, error) {
	var disc routetable.Discovered
	if p.Registries != nil {
		p.Registries.Follow(cfg)
		disc = p.Registries
	}
	res, err := translator.TranslateWith(cfg, disc)
	if err != nil {
		return nil, err
	}
	c := &Change{Config: cfg, Result: res, bridges: p.Bridges}
	if c.Table, err = routetable.FromConfigWith(cfg, p.Group, disc); err != nil {
		return nil, err
	}
	if p.Bridges != nil {
		if c.prepared, err = p.Bridges.Prepare(c.Table); err != nil {
			return nil, err
		}
	}
	if p.Running != nil && p.Running != cfg {
		if fields := config.RestartNeeded(p.Running, cfg); len(fields) > 0 {
			p.log().Warn("these settings changed but apply only after a restart", "fields", strings.Join(fields, ", "))
		}
	}
	c.pipeline = p
	return c, nil
}

// OnDemand are, per group, the clusters its Envoys load on demand.
func (c *Change) OnDemand() map[string][]string { return c.Result.OnDemand() }

// RetiredGroups are the groups the change's mapping means to leave with
// no listeners.
func (c *Change) RetiredGroups() []string { return c.Config.XDS.RetiredGroups }

// Bridge is make-before-break for the in-process bridges, as the control
// plane does it for bridges of its fleet: it switches them to a table
// serving both the change's routes and the ones it drops, before any
// Envoy is sent the change. Commit then leaves the change's routes alone,
// once the Envoys hold it; Discard goes back.
func (c *Change) Bridge() error {
	if c.prepared == nil {
		return nil
	}
	c.pipeline.mu.Lock()
	old := c.pipeline.table
	c.pipeline.mu.Unlock()
	if old == nil || old.Version() == c.Table.Version() {
		return nil
	}
	b, err := c.bridges.PrepareAlongside(routetable.Bridging(old, c.Table), c.prepared)
	if err != nil {
		return err
	}
	c.before = c.bridges.Current()
	c.bridges.Commit(b)
	return nil
}

// Commit switches the in-process bridges to the change, which becomes the
// mapping a Refresh starts from.
func (c *Change) Commit() {
	if c.prepared != nil {
		c.bridges.Commit(c.prepared)
	}
	c.pipeline.mu.Lock()
	c.pipeline.last, c.pipeline.table = c.Config, c.Table
	c.pipeline.mu.Unlock()
}

// Discard releases what Prepare opened, and puts back the table Bridge
// replaced.
func (c *Change) Discard() {
	switch {
	case c.before != nil:
		// Back to the table served before, prepared anew: switching to the
		// bridging table released what it did not share (an upstream whose
		// settings changed), so the old state cannot simply come back. What
		// the change opened is released by this switch.
		c.pipeline.mu.Lock()
		old := c.pipeline.table
		c.pipeline.mu.Unlock()
		if p, err := c.bridges.Prepare(old); err == nil {
			c.bridges.Commit(p)
		} else {
			c.pipeline.log().Error("the bridges could not go back to the table they served", "err", err)
		}
	case c.prepared != nil:
		c.bridges.Discard(c.prepared)
	}
}

// Source is the pipeline as the control plane reloads it: every reload
// loads the file afresh.
func (p *Pipeline) Source() xds.Source {
	return func() (map[string]xds.Resources, xds.Outcome, error) {
		cfg, err := p.Load()
		if err != nil {
			return nil, nil, err
		}
		return p.sourceOf(cfg)
	}
}

// LoadedSource publishes a mapping already loaded (at start, so the file
// is not read and validated twice).
func (p *Pipeline) LoadedSource(cfg *config.Config) xds.Source {
	return func() (map[string]xds.Resources, xds.Outcome, error) { return p.sourceOf(cfg) }
}

// ChangeSource publishes a change already prepared (at start: the bridges
// built from it serve it already).
func (c *Change) Source() xds.Source {
	return func() (map[string]xds.Resources, xds.Outcome, error) { return c.Result.ByGroup(), c, nil }
}

// Refresh is the source of a reload that reads no file: the last mapping
// again, with what the registries hold now.
func (p *Pipeline) Refresh() xds.Source {
	return func() (map[string]xds.Resources, xds.Outcome, error) {
		p.mu.Lock()
		cfg := p.last
		p.mu.Unlock()
		if cfg == nil {
			return nil, nil, errors.New("no mapping has been loaded yet")
		}
		return p.sourceOf(cfg)
	}
}

// ApplyRefresh is Refresh for bridges with no control plane in the process.
func (p *Pipeline) ApplyRefresh() error {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	p.mu.Lock()
	cfg := p.last
	p.mu.Unlock()
	if cfg == nil {
		return errors.New("no mapping has been loaded yet")
	}
	c, err := p.Prepare(cfg)
	if err != nil {
		return err
	}
	c.Commit()
	return nil
}

func (p *Pipeline) sourceOf(cfg *config.Config) (map[string]xds.Resources, xds.Outcome, error) {
	c, err := p.Prepare(cfg)
	if err != nil {
		return nil, nil, err
	}
	return c.Result.ByGroup(), c, nil
}

// Apply is the reload of bridges with no control plane in the process:
// load, prepare, commit.
func (p *Pipeline) Apply() error {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	cfg, err := p.Load()
	if err != nil {
		return err
	}
	c, err := p.Prepare(cfg)
	if err != nil {
		return err
	}
	c.Commit()
	return nil
}

func (p *Pipeline) log() *slog.Logger {
	if p.Log == nil {
		return slog.Default()
	}
	return p.Log
}
