package dubbo

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Outlier ejection, as Envoy does it for its clusters: a provider whose
// calls keep failing at the gateway level is put last in the turn for a
// while, so the others take its calls; it is tried again when the time has
// passed, and ejected for longer each time it fails again. Ejected
// providers still come last rather than not at all, so an upstream whose
// providers all fail is still called (Envoy's max ejection percent, at its
// safest).
const (
	// ejectAfter consecutive failures (timeouts, lost connections,
	// overloaded or broken providers) eject a provider; one it cannot be
	// reached at all ejects it at once.
	ejectAfter = 3
	// baseEjection doubles with each ejection in a row, up to maxEjection.
	baseEjection = 250 * time.Millisecond
	maxEjection  = 5 * time.Second
	// maxProbeInterval bounds how long a provider that could not be
	// reached waits between background connection attempts: it is used
	// again within that long of accepting connections.
	maxProbeInterval = time.Second
)

// failureKind says what a call's outcome tells about its provider.
type failureKind int

const (
	answered    failureKind = iota // an answer or an exception: the provider works
	unreachable                    // no connection could be made
	gateway                        // timed out, lost its connection, or the provider was overloaded or broken
	neutral                        // says nothing about the provider (the caller gave up, a limit on this side)
)

// prober connects to a provider off the request path. The dubbo-protocol
// transport is one; triple has none, so its first call after an ejection
// is the probe.
type prober interface {
	Connected(addr string) bool
	Connect(addr string)
}

type outliers struct {
	log *slog.Logger
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*outlier // provider address; a provider with nothing to remember has no entry
	// n is len(m), read without mu: while no provider has an entry, a
	// call's order and an answer's bookkeeping take no lock.
	n atomic.Int32
}

type outlier struct {
	failures  int // consecutive
	ejections int // in a row, since the last answer
	until     time.Time
	down      bool // ejected as unreachable: back once a connection is open
	// trial: the ejection is over and one call was let through to see
	// whether the provider works again; the others wait for its outcome,
	// so a hung provider costs one call per ejection, not one per caller.
	trial bool
}

func newOutliers(log *slog.Logger) *outliers {
	return &outliers{log: log, now: time.Now, m: map[string]*outlier{}}
}

// order returns addrs turned to start at start, ejected providers last.
// One provider whose ejection is over comes first instead, its trial: the
// caller must try it first and report the outcome. A provider ejected as
// unreachable is not tried by calls: pr dials it in the background, and it
// is back once a connection is open.
func (o *outliers) order(addrs []string, start int, pr prober) []string {
	if o.n.Load() == 0 {
		return turned(addrs, start)
	}
	out := make([]string, 0, len(addrs))
	var last []string
	trial := ""
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	for i := range addrs {
		addr := addrs[(start+i)%len(addrs)]
		switch o.state(addr, now, pr) {
		case inTurn:
			out = append(out, addr)
		case tryable:
			if trial == "" {
				trial = addr
				o.m[addr].trial = true
				continue
			}
			last = append(last, addr)
		default:
			last = append(last, addr)
		}
	}
	if trial != "" {
		out = append([]string{trial}, out...)
	}
	return append(out, last...)
}

// turned is addrs starting at start; addrs itself when there is one.
func turned(addrs []string, start int) []string {
	if len(addrs) == 1 {
		return addrs
	}
	out := make([]string, len(addrs))
	for i := range addrs {
		out[i] = addrs[(start+i)%len(addrs)]
	}
	return out
}

type turnState int

const (
	inTurn  turnState = iota
	ejected           // out of the turn
	tryable           // ejected, its time over, and no trial under way
)

// state says where addr stands; o.mu is held.
func (o *outliers) state(addr string, now time.Time, pr prober) turnState {
	st := o.m[addr]
	if st == nil || st.until.IsZero() {
		return inTurn
	}
	if st.down && pr != nil {
		if pr.Connected(addr) {
			o.reinstate(addr, st, "a connection to it is open")
			return inTurn
		}
		if !now.Before(st.until) {
			pr.Connect(addr)
			st.until = now.Add(min(ejection(st.ejections), maxProbeInterval))
		}
		return ejected
	}
	if now.Before(st.until) || st.trial {
		return ejected
	}
	return tryable
}

// observe records a call's outcome at addr.
func (o *outliers) observe(addr string, kind failureKind) {
	if (kind == neutral || kind == answered) && o.n.Load() == 0 {
		return // nothing remembered that either could change
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	st := o.m[addr]
	if kind == neutral {
		if st != nil {
			st.trial = false // another call may try it
			o.forgetIfClear(addr, st)
		}
		return
	}
	if kind == answered {
		if st != nil && !st.until.IsZero() {
			o.reinstate(addr, st, "it answered")
		}
		if st != nil {
			st.failures = 0
			o.forgetIfClear(addr, st)
		}
		return
	}
	if st == nil {
		st = &outlier{}
		o.m[addr] = st
		o.n.Store(int32(len(o.m)))
	}
	st.failures++
	now := o.now()
	if kind != unreachable && st.failures < ejectAfter {
		return
	}
	if !st.until.IsZero() && !st.trial {
		return // already out; calls that were under way when it was ejected
	}
	st.trial = false
	st.ejections++
	st.down = kind == unreachable
	d := ejection(st.ejections)
	if st.down {
		d = min(d, maxProbeInterval)
	}
	st.until = now.Add(d)
	// DEBUG: the upstream's health says once, at WARN, that it lost its
	// providers; which provider is out when is detail.
	o.log.Debug("dubbo provider ejected", "addr", addr, "for", d.String(), "unreachable", st.down,
		"failures", st.failures, "ejections", st.ejections)
}

// reinstate puts a provider back in the turn; o.mu is held.
func (o *outliers) reinstate(addr string, st *outlier, why string) {
	o.log.Debug("dubbo provider back in the turn", "addr", addr, "because", why)
	*st = outlier{}
	o.forgetIfClear(addr, st)
}

// forgetIfClear drops the entry of a provider with nothing left to
// remember: no entry and a zero one mean the same; o.mu is held.
func (o *outliers) forgetIfClear(addr string, st *outlier) {
	if *st == (outlier{}) && o.m[addr] == st {
		delete(o.m, addr)
		o.n.Store(int32(len(o.m)))
	}
}

// retain forgets the providers not in keep.
func (o *outliers) retain(keep map[string]bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for addr := range o.m {
		if !keep[addr] {
			delete(o.m, addr)
		}
	}
	o.n.Store(int32(len(o.m)))
}

// ejection is how long the n-th ejection in a row lasts.
func ejection(n int) time.Duration {
	d := baseEjection
	for i := 1; i < n && d < maxEjection; i++ {
		d *= 2
	}
	return min(d, maxEjection)
}
