package registry

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dubbogo/go-zookeeper/zk"
)

type cacheKind uint8

const (
	kindData cacheKind = iota
	kindChildren
)

type cacheKey struct {
	path string
	kind cacheKind
}

// cached is one answer of ZooKeeper, current while its watch is live.
type cached struct {
	data     []byte
	children []string
	exists   bool
	tooLarge bool             // data over maxNodeData: not used
	parsed   any              // what the reader made of data, once
	dep      zk.WatchPathType // the watch that keeps this answer current
}

// errAppeared: the node was created between a read and the check that
// followed; read again.
var errAppeared = errors.New("created while being read")

// readLoop is the one goroutine that reads ZooKeeper.
func (w *Watcher) readLoop() {
	defer w.wg.Done()
	warn := time.NewTimer(warnAfter)
	defer warn.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	everConnected := false
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-w.wake:
		case <-retry.C:
		case <-warn.C:
			if !everConnected && !w.unreachable {
				w.log.Warn("ZooKeeper is unreachable; retrying", "waited", warnAfter)
				w.unreachable = true
			}
			continue
		}
		snap := w.ev.take()
		w.noteConnection(snap)
		everConnected = everConnected || w.connected
		w.markStale(snap)
		if !w.connected {
			continue // the next session's resync reads everything
		}
		if !w.readStale() {
			retry.Reset(retryAfter)
		}
	}
}

// noteConnection logs one WARN when the registry goes away and one INFO
// when it is back, whatever the retries in between.
func (w *Watcher) noteConnection(s snapshot) {
	if s.lost && !w.unreachable {
		w.log.Warn("ZooKeeper is unreachable; the last known providers stay in use until it is back")
		w.unreachable = true
	}
	w.connected = s.connected
	if w.connected && w.unreachable {
		w.log.Info("ZooKeeper is reachable again; reading the providers again")
		w.unreachable = false
	}
}

// markStale decides which wanted interfaces to read: all after a new
// session, the new ones after Want, those a fired watch concerns.
func (w *Watcher) markStale(s snapshot) {
	w.mu.RLock()
	wanted := make(map[string]bool, len(w.wanted))
	unread := map[string]bool{}
	for svc := range w.wanted {
		wanted[svc] = true
		if _, ok := w.providers[svc]; !ok {
			unread[svc] = true
		}
	}
	w.mu.RUnlock()
	for svc := range w.stale {
		if !wanted[svc] {
			delete(w.stale, svc)
		}
	}
	if s.resync {
		clear(w.cache) // the watches were kept, but read everything afresh
	}
	for svc := range unread {
		w.stale[svc] = true
	}
	for _, p := range s.dirty {
		delete(w.cache, cacheKey{p, kindData})
		delete(w.cache, cacheKey{p, kindChildren})
	}
	for svc := range wanted {
		if s.resync || w.concerns(svc, s.dirty) {
			w.stale[svc] = true
		}
	}
}

// concerns tells whether a fired path can change an interface's
// providers. At application level any can (an application serves many
// interfaces; the cache keeps the reads that follow cheap).
func (w *Watcher) concerns(svc string, dirty []string) bool {
	if len(dirty) == 0 {
		return false
	}
	if w.appLevel {
		return true
	}
	return slices.Contains(dirty, providersPath(svc))
}

// readStale reads the stale interfaces; it reports false when some read
// failed (they stay stale).
func (w *Watcher) readStale() bool {
	names := make([]string, 0, len(w.stale))
	for svc := range w.stale {
		names = append(names, svc)
	}
	slices.Sort(names)
	changed := false
	for _, svc := range names {
		ps, err := w.readService(svc)
		if err != nil {
			w.readFailed(svc, err)
			return false
		}
		delete(w.stale, svc)
		delete(w.failing, svc)
		changed = w.publish(svc, ps) || changed
	}
	if w.markReady() {
		changed = true
	}
	if changed {
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
	return true
}

// readFailed logs a failed read once until the interface reads again; a
// lost connection is logged by noteConnection instead.
func (w *Watcher) readFailed(svc string, err error) {
	if isConnectionError(err) || w.failing[svc] {
		w.log.Debug("reading the registry failed; retrying", "interface", svc, "err", err)
		return
	}
	w.failing[svc] = true
	w.log.Warn("reading the registry failed; retrying every second", "interface", svc, "err", err)
}

func (w *Watcher) readService(svc string) ([]Provider, error) {
	if w.appLevel {
		return w.readApplication(svc)
	}
	return w.readInterface(svc)
}

// markReady records the first full read; it reports whether this was it.
func (w *Watcher) markReady() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	first := !w.ready
	w.ready = true
	return first
}

// publish stores an interface's providers; it reports whether they
// changed.
func (w *Watcher) publish(svc string, ps []Provider) bool {
	ps = sortProviders(ps)
	if len(ps) > maxProviders {
		if !w.capped[svc] {
			w.log.Warn("too many providers; using the first ones", "interface", svc, "found", len(ps), "kept", maxProviders)
			w.capped[svc] = true
		}
		ps = ps[:maxProviders:maxProviders]
	} else {
		delete(w.capped, svc)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.wanted[svc] {
		return false
	}
	old := w.providers[svc]
	w.providers[svc] = ps
	return !slices.Equal(old, ps)
}

// read answers a node's data or children, from the cache while its watch
// is live, else from ZooKeeper, setting the watch. An absent node is an
// answer too (exists false), watched for its creation.
func (w *Watcher) read(path string, kind cacheKind) (cached, error) {
	key := cacheKey{path, kind}
	if c, ok := w.cache[key]; ok && w.ev.isLive(c.dep) {
		return c, nil
	}
	for range 3 {
		c, err := w.readNode(path, kind)
		if errors.Is(err, zk.ErrNoNode) {
			c, err = w.readAbsent(path)
		}
		if errors.Is(err, errAppeared) {
			continue
		}
		if err != nil {
			return cached{}, fmt.Errorf("reading %s: %w", path, err)
		}
		w.cache[key] = c
		return c, nil
	}
	return cached{}, fmt.Errorf("reading %s: it keeps being created and deleted", path)
}

func (w *Watcher) readNode(path string, kind cacheKind) (cached, error) {
	c := cached{exists: true, dep: zk.WatchPathType{Path: path, WType: zk.WatchTypeData}}
	if kind == kindChildren {
		c.dep.WType = zk.WatchTypeChild
	}
	watch := w.ev.claim(c.dep)
	var err error
	switch {
	case kind == kindData && watch:
		c.data, _, _, err = w.conn.GetW(path)
	case kind == kindData:
		c.data, _, err = w.conn.Get(path)
	case watch:
		c.children, _, _, err = w.conn.ChildrenW(path)
	default:
		c.children, _, err = w.conn.Children(path)
	}
	if err != nil {
		if watch {
			w.ev.unclaim(c.dep)
		}
		return cached{}, err
	}
	if len(c.data) > maxNodeData {
		w.log.Warn("a registry node holds more data than is read; ignoring it", "path", path, "bytes", len(c.data), "limit", maxNodeData)
		c.data, c.tooLarge = nil, true
	}
	return c, nil
}

// readAbsent watches a node found missing for its creation.
func (w *Watcher) readAbsent(path string) (cached, error) {
	dep := zk.WatchPathType{Path: path, WType: zk.WatchTypeExist}
	watch := w.ev.claim(dep)
	var exists bool
	var err error
	if watch {
		exists, _, _, err = w.conn.ExistsW(path)
	} else {
		exists, _, err = w.conn.Exists(path)
	}
	if err != nil || exists {
		if watch {
			// On an existing node the client set a data watch instead,
			// which the next read sets (again) itself.
			w.ev.unclaim(dep)
		}
		if err == nil {
			err = errAppeared
		}
		return cached{}, err
	}
	return cached{dep: dep}, nil
}

// parsed returns what parse makes of a node's data, parsing it once per
// version of the node; nil when the node is absent, too large or does not
// parse (logged once per version).
func (w *Watcher) parsed(path string, parse func([]byte) (any, error)) (any, error) {
	c, err := w.read(path, kindData)
	if err != nil || !c.exists || c.tooLarge {
		return nil, err
	}
	if c.parsed == nil {
		v, perr := parse(c.data)
		if perr != nil {
			w.log.Warn("ignoring a registry node that does not parse", "path", path, "err", perr)
			v = unparsable{}
		}
		c.parsed, c.data = v, nil // the parsed form is all that is used again
		w.cache[cacheKey{path, kindData}] = c
	}
	if _, bad := c.parsed.(unparsable); bad {
		return nil, nil
	}
	return c.parsed, nil
}

type unparsable struct{}
