package pipeline

import (
	"context"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/protocols/dubbo/registry"
)

// Registries follows every ZooKeeper the mapping's Dubbo upstreams name,
// for the services routed to them: the control plane is the one reader of
// the registry, and what it finds reaches Envoy (EDS) and the bridges (their
// route tables).
type Registries struct {
	Log *slog.Logger
	// OnChange runs when a followed service's providers change (debounced
	// by the watchers); the control plane then publishes again.
	OnChange func()

	mu       sync.Mutex
	watchers map[registryKey]*registry.Watcher
	ctx      context.Context
	cancel   context.CancelFunc
}

type registryKey struct{ addr, registration string }

// firstReadWait bounds how long a new registry may take to be read before
// the translation goes on without it (its providers arrive as a change).
const firstReadWait = 3 * time.Second

// Follow starts watching the registries cfg names, wants the services its
// routes call on each, and stops watching those no longer named.
func (r *Registries) Follow(cfg *config.Config) {
	r.mu.Lock()
	if r.watchers == nil {
		r.watchers = map[registryKey]*registry.Watcher{}
		r.ctx, r.cancel = context.WithCancel(context.Background())
	}
	wanted := map[registryKey][]string{}
	for i := range cfg.Upstreams.Dubbo {
		u := &cfg.Upstreams.Dubbo[i]
		if u.Registry == "" {
			continue
		}
		k := keyOf(u)
		for _, s := range cfg.DubboServices(u.Name) {
			wanted[k] = append(wanted[k], s.Service)
		}
	}
	var fresh []*registry.Watcher
	for k, services := range wanted {
		w, ok := r.watchers[k]
		if !ok {
			var err error
			w, err = registry.Watch(r.ctx, k.addr, k.registration, r.log(), r.changed)
			if err != nil {
				r.log().Error("cannot follow the registry", "registry", k.addr, "err", err)
				continue
			}
			r.watchers[k] = w
			fresh = append(fresh, w)
		}
		slices.Sort(services)
		w.Want(slices.Compact(services)...)
	}
	var gone []*registry.Watcher
	for k, w := range r.watchers {
		if _, ok := wanted[k]; !ok {
			gone = append(gone, w)
			delete(r.watchers, k)
		}
	}
	r.mu.Unlock()
	// Closed without r.mu: Close waits for the watcher's notices, and one
	// may be in OnChange, reloading, which calls Follow.
	for _, w := range gone {
		w.Close()
	}
	// A registry read for the first time gets a moment, so the first
	// translation already has its providers.
	deadline := time.Now().Add(firstReadWait)
	for _, w := range fresh {
		for !w.Ready() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Providers answers routetable.Discovered.
func (r *Registries) Providers(u *config.DubboUpstream, service, version, group, protocol string) []string {
	r.mu.Lock()
	w := r.watchers[keyOf(u)]
	r.mu.Unlock()
	if w == nil {
		return nil
	}
	var out []string
	for _, p := range w.Providers(service, version, group, protocol) {
		out = append(out, p.Addr)
	}
	return out
}

// Close stops every watcher.
func (r *Registries) Close() {
	r.mu.Lock()
	ws := r.watchers
	r.watchers = map[registryKey]*registry.Watcher{}
	if r.cancel != nil {
		r.cancel()
	}
	r.mu.Unlock()
	for _, w := range ws { // without r.mu, as in Follow
		w.Close()
	}
}

func (r *Registries) changed() {
	if r.OnChange != nil {
		r.OnChange()
	}
}

func (r *Registries) log() *slog.Logger {
	if r.Log == nil {
		return slog.Default()
	}
	return r.Log
}

func keyOf(u *config.DubboUpstream) registryKey {
	addr := u.Registry
	if pu, err := url.Parse(u.Registry); err == nil && pu.Host != "" {
		addr = pu.Host
	}
	return registryKey{addr: addr, registration: u.Registration}
}
