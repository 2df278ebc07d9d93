package registry

import (
	"sync"

	"github.com/dubbogo/go-zookeeper/zk"
)

// eventState is what the ZooKeeper client's callback leaves for the reader.
// The callback runs on the client's own goroutines and must not block, so
// it only updates these fields under mu.
type eventState struct {
	mu sync.Mutex
	// live holds the watches the client has set and that have not fired:
	// while one is live, a cached answer for its path is current. It
	// mirrors the client's own bookkeeping (which watch types an event
	// ends) so that a path is watched once, not once per read.
	live        map[zk.WatchPathType]bool
	dirty       map[string]bool // paths whose watch fired
	resync      bool            // a session came up: read everything again
	connected   bool            // a session is up now
	lost        bool            // a session went down since the reader last looked
	wantChanged bool
}

// snapshot is what the reader takes from eventState in one go.
type snapshot struct {
	dirty       []string
	resync      bool
	connected   bool
	lost        bool
	wantChanged bool
}

func (e *eventState) init() {
	e.live = map[zk.WatchPathType]bool{}
	e.dirty = map[string]bool{}
}

func (e *eventState) mark(f func(*eventState)) {
	e.mu.Lock()
	f(e)
	e.mu.Unlock()
}

// take returns and clears what happened since the last take.
func (e *eventState) take() snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := snapshot{resync: e.resync, connected: e.connected, lost: e.lost, wantChanged: e.wantChanged}
	for p := range e.dirty {
		s.dirty = append(s.dirty, p)
	}
	clear(e.dirty)
	e.resync, e.lost, e.wantChanged = false, false, false
	return s
}

// claim marks a watch as about to be set and reports whether it must be
// (false: it is already live, a plain read suffices). Marking before the
// read matters: an event that arrives between the answer and the mark
// would otherwise leave a fired watch taken for live.
func (e *eventState) claim(w zk.WatchPathType) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.live[w] {
		return false
	}
	e.live[w] = true
	return true
}

func (e *eventState) unclaim(w zk.WatchPathType) {
	e.mu.Lock()
	delete(e.live, w)
	e.mu.Unlock()
}

func (e *eventState) isLive(w zk.WatchPathType) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.live[w]
}

// onEvent is the client's callback: session changes and fired watches.
func (w *Watcher) onEvent(ev zk.Event) {
	e := &w.ev
	e.mu.Lock()
	switch ev.Type {
	case zk.EventSession:
		if !e.session(ev.State) {
			e.mu.Unlock()
			return
		}
	case zk.EventNodeCreated, zk.EventNodeDeleted, zk.EventNodeDataChanged, zk.EventNodeChildrenChanged:
		e.fired(ev)
	default:
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	w.poke()
}

// session records a session state; it reports whether the reader should
// look.
func (e *eventState) session(s zk.State) bool {
	switch s {
	case zk.StateHasSession:
		e.connected, e.resync = true, true
	case zk.StateDisconnected:
		if e.connected {
			e.lost = true
		}
		e.connected = false
	case zk.StateExpired:
		// The client drops every watch of an expired session.
		clear(e.live)
		e.connected = false
	default:
		return false
	}
	return true
}

// fired ends the watches the client ends for this event (the same types
// its receive loop removes) and marks the path for a new read.
func (e *eventState) fired(ev zk.Event) {
	types := []zk.WatchType{zk.WatchTypeChild}
	switch ev.Type {
	case zk.EventNodeCreated:
		types = []zk.WatchType{zk.WatchTypeExist}
	case zk.EventNodeDeleted, zk.EventNodeDataChanged:
		types = []zk.WatchType{zk.WatchTypeExist, zk.WatchTypeData, zk.WatchTypeChild}
	}
	for _, t := range types {
		delete(e.live, zk.WatchPathType{Path: ev.Path, WType: t})
	}
	e.dirty[ev.Path] = true
}
