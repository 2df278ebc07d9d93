// Package pipeline is protogate's one reload path: load the mapping,
// validate it, translate it (Envoy resources and route tables per group),
// prepare the bridges that serve it in this process, publish, then commit,
// or discard what was prepared when publishing fails. protogate run,
// controlplane and bridge, and the tests, all reload through it, so a
// mapping is never read, checked or applied two different ways.
package pipeline

import (
	"log/slog"
	"strings"

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
}

// Change is a translated mapping, prepared and not yet committed.
type Change struct {
	Config *config.Config
	Result *translator.Result
	// Table is what the in-process bridges serve.
	Table    *routetable.Table
	bridges  *bridges.Server
	prepared *bridges.Prepared
}

// Load reads and validates the mapping.
func (p *Pipeline) Load() (*config.Config, error) { return config.Load(p.Path) }

// Prepare translates a loaded mapping and prepares the in-process bridges
// for it; nothing serving changes. On failure nothing is left open.
func (p *Pipeline) Prepare(cfg *config.Config) (*Change, error) {
	res, err := translator.Translate(cfg)
	if err != nil {
		return nil, err
	}
	c := &Change{Config: cfg, Result: res, bridges: p.Bridges}
	if c.Table, err = routetable.FromConfig(cfg, p.Group); err != nil {
		return nil, err
	}
	if p.Bridges != nil {
		if c.prepared, err = p.Bridges.Prepare(c.Table); err != nil {
			return nil, err
		}
	}
	if p.Running != nil {
		if fields := config.RestartNeeded(p.Running, cfg); len(fields) > 0 {
			p.log().Warn("these settings changed but apply only after a restart", "fields", strings.Join(fields, ", "))
		}
	}
	return c, nil
}

// Commit switches the in-process bridges to the change.
func (c *Change) Commit() {
	if c.prepared != nil {
		c.bridges.Commit(c.prepared)
	}
}

// Discard releases what Prepare opened.
func (c *Change) Discard() {
	if c.prepared != nil {
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
// is not read and validated twice). Bridges built from it already serve
// it, so there is nothing to prepare for them.
func (p *Pipeline) LoadedSource(cfg *config.Config) xds.Source {
	return func() (map[string]xds.Resources, xds.Outcome, error) {
		res, err := translator.Translate(cfg)
		if err != nil {
			return nil, nil, err
		}
		return res.ByGroup(), nil, nil
	}
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
