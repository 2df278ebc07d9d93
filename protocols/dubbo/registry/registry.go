// Package registry follows Dubbo providers in ZooKeeper, so the control plane
// is the one reader of the registry: it watches the interfaces it is told
// to want, at interface level (/dubbo/<interface>/providers) or application
// level (/dubbo/mapping, /services, the revision metadata), and answers the
// current providers of a service key.
//
// One goroutine does every ZooKeeper read. The client's event callback only
// records which watched paths fired and how the session is doing; a read
// whose watch is still set is answered from a cache, so a change anywhere
// costs the reads of what changed. While ZooKeeper is unreachable the last
// known providers stay as they are.
package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dubbogo/go-zookeeper/zk"
)

const (
	// maxProviders caps the providers kept per interface, and the
	// instances read per application.
	maxProviders = 10_000
	// maxNodeData is the most data of one node used; ZooKeeper's own
	// default limit (jute.maxbuffer) is just under 1 MiB.
	maxNodeData = 1 << 20
	// maxPacket bounds what the client buffers for one answer (a children
	// list of maxProviders long provider URLs fits many times over).
	maxPacket = 64 << 20
	// sessionTimeout is asked of ZooKeeper, which clamps it to its own
	// minSessionTimeout..maxSessionTimeout.
	sessionTimeout = 10 * time.Second
	// dialTimeout bounds one connection attempt.
	dialTimeout = 5 * time.Second
	// warnAfter is how long a first connection may take before the
	// registry is reported unreachable.
	warnAfter = 5 * time.Second
	// debounce gathers the changes of one burst into one onChange call.
	debounce = 75 * time.Millisecond
	// retryAfter spaces the reads retried after a failure on a live
	// connection.
	retryAfter = time.Second
)

// Provider is one endpoint of a service.
type Provider struct {
	Protocol string // "dubbo" or "tri"
	Addr     string // HOST:PORT
	Version  string // "" when the provider declares none
	Group    string // "" when the provider declares none
}

// Watcher follows the providers of the wanted interfaces in one ZooKeeper.
type Watcher struct {
	log      *slog.Logger
	appLevel bool
	onChange func()
	conn     *zk.Conn
	connDone <-chan zk.Event // closed once the client's goroutines are gone

	ctx       context.Context
	cancel    context.CancelFunc
	stopAfter func() bool // undoes the Close registered on the caller's ctx
	wg        sync.WaitGroup
	closeOnce sync.Once

	ev      eventState    // written by the client's callback
	wake    chan struct{} // the callback or Want has something for the reader
	changed chan struct{} // the reader published a change

	// Only the reader goroutine uses these.
	cache       map[cacheKey]cached
	stale       map[string]bool // wanted interfaces whose read is due
	unreachable bool            // a WARN was logged and no INFO since
	connected   bool
	capped      map[string]bool // interfaces whose last read was capped
	failing     map[string]bool // interfaces whose read failure was logged

	mu        sync.RWMutex
	wanted    map[string]bool
	providers map[string][]Provider // by interface, sorted, all versions, groups and protocols
	ready     bool
}

// Watch connects to the ZooKeeper at zkAddr (HOST:PORT) and follows the
// providers registered there at registration level "interface" or
// "application". It returns at once, also while ZooKeeper is down: the
// client keeps retrying, and Ready says when the first full read is done.
// onChange (may be nil) is called, debounced and never concurrently with
// itself, whenever the providers of a wanted interface change (a vanished
// ephemeral node included, and the difference found after an outage), and
// once when the watcher first becomes ready; it must not call Close.
// Cancelling ctx closes the watcher.
func Watch(ctx context.Context, zkAddr, registration string, log *slog.Logger, onChange func()) (*Watcher, error) {
	appLevel, err := parseRegistration(registration)
	if err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(zkAddr); err != nil {
		return nil, fmt.Errorf("zookeeper address %q: want HOST:PORT", zkAddr)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("registry", "zookeeper://"+zkAddr, "registration", registration)
	if onChange == nil {
		onChange = func() {}
	}
	w := &Watcher{
		log: log, appLevel: appLevel, onChange: onChange,
		wake: make(chan struct{}, 1), changed: make(chan struct{}, 1),
		cache: map[cacheKey]cached{}, stale: map[string]bool{}, capped: map[string]bool{}, failing: map[string]bool{},
		wanted: map[string]bool{}, providers: map[string][]Provider{},
	}
	w.ev.init()
	w.ctx, w.cancel = context.WithCancel(ctx)
	conn, events, err := zk.Connect([]string{zkAddr}, sessionTimeout,
		zk.WithEventCallback(w.onEvent),
		zk.WithLogger(clientLogger{log}),
		zk.WithLogInfo(false),
		zk.WithMaxBufferSize(maxPacket),
		zk.WithDialer(func(network, addr string, _ time.Duration) (net.Conn, error) {
			return net.DialTimeout(network, addr, dialTimeout)
		}))
	if err != nil {
		w.cancel()
		return nil, fmt.Errorf("zookeeper client for %s: %w", zkAddr, err)
	}
	w.conn, w.connDone = conn, events
	w.wg.Add(2)
	go w.readLoop()
	go w.notifyLoop()
	w.stopAfter = context.AfterFunc(ctx, w.Close)
	return w, nil
}

func parseRegistration(registration string) (appLevel bool, err error) {
	switch registration {
	case "interface":
		return false, nil
	case "application":
		return true, nil
	}
	return false, fmt.Errorf("registration %q: use interface or application", registration)
}

// Want sets the interfaces to follow, replacing the previous set; new
// ones are read at once. Names that cannot be a ZooKeeper node are logged
// and skipped.
func (w *Watcher) Want(services ...string) {
	next := map[string]bool{}
	for _, s := range services {
		if !validName(s) {
			w.log.Warn("not following an interface whose name cannot be a registry node", "interface", s)
			continue
		}
		next[s] = true
	}
	w.mu.Lock()
	w.wanted = next
	for s := range w.providers {
		if !next[s] {
			delete(w.providers, s)
		}
	}
	w.mu.Unlock()
	w.ev.mark(func(e *eventState) { e.wantChanged = true })
	w.poke()
}

// validName accepts what can be one path segment: no slash, not empty,
// not . or .., no control characters.
func validName(s string) bool {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// Ready reports whether the wanted interfaces have been read in full at
// least once. It stays true afterwards, through outages and later Wants
// (whose new interfaces answer no providers until read).
func (w *Watcher) Ready() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.ready
}

// Providers returns the current providers of a service key, de-duplicated
// and sorted by protocol, address (as text), version and group. Matching follows Dubbo: version and group match exactly,
// so "" matches only providers that declare none; "*" matches any (as a
// Dubbo consumer's version="*" / group="*" does). Protocol is "dubbo" or
// "tri" ("triple" is taken for "tri"); "" matches both.
func (w *Watcher) Providers(service, version, group, protocol string) []Provider {
	if protocol == "triple" {
		protocol = "tri"
	}
	w.mu.RLock()
	all := w.providers[service]
	w.mu.RUnlock()
	var out []Provider
	for _, p := range all {
		if matches(p.Version, version) && matches(p.Group, group) && (protocol == "" || p.Protocol == protocol) {
			out = append(out, p)
		}
	}
	return out
}

func matches(have, want string) bool { return want == "*" || have == want }

// Close stops watching and releases the connection and every goroutine.
// It is safe to call more than once and after ctx ended.
func (w *Watcher) Close() {
	w.closeOnce.Do(func() {
		w.stopAfter()
		w.cancel()
		w.conn.Close() // first: a read in flight then fails at once
		w.wg.Wait()
		// The client closes its event channel once its own goroutines are
		// gone; bounded in case it never does.
		timeout := time.After(5 * time.Second)
		for {
			select {
			case _, ok := <-w.connDone:
				if ok {
					continue
				}
			case <-timeout:
				w.log.Warn("the ZooKeeper client did not stop within 5s")
			}
			return
		}
	})
}

func (w *Watcher) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// notifyLoop calls onChange once per burst of changes: debounce after the
// first change of a burst, whatever else arrives meanwhile.
func (w *Watcher) notifyLoop() {
	defer w.wg.Done()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-w.changed:
		}
		t := time.NewTimer(debounce)
		select {
		case <-w.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		select { // what arrived during the wait is covered by this call
		case <-w.changed:
		default:
		}
		w.onChange()
	}
}

// clientLogger sends the ZooKeeper client's own lines (one per retry) to
// DEBUG; the watcher logs the state changes that matter itself.
type clientLogger struct{ log *slog.Logger }

func (l clientLogger) Printf(format string, args ...any) {
	l.log.Debug("zookeeper client: " + fmt.Sprintf(format, args...))
}

// isConnectionError tells a read that failed because the registry could
// not be asked from one whose answer was a refusal.
func isConnectionError(err error) bool {
	return errors.Is(err, zk.ErrConnectionClosed) || errors.Is(err, zk.ErrNoServer) ||
		errors.Is(err, zk.ErrSessionExpired) || errors.Is(err, zk.ErrClosing) || errors.Is(err, zk.ErrSessionMoved)
}

// sortProviders sorts and de-duplicates in place.
func sortProviders(ps []Provider) []Provider {
	slices.SortFunc(ps, func(a, b Provider) int {
		return cmp.Or(strings.Compare(a.Protocol, b.Protocol), strings.Compare(a.Addr, b.Addr),
			strings.Compare(a.Version, b.Version), strings.Compare(a.Group, b.Group))
	})
	return slices.Compact(ps)
}
