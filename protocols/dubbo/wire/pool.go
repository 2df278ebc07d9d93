package wire

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// pool holds the connections to one provider address, a fixed number of
// slots filled on demand and refilled after a connection breaks.
type pool struct {
	addr    string
	cl      *Client
	slots   []slot
	rr      atomic.Uint32
	closing atomic.Int32 // live connections on which the provider announced its shutdown
	dropped atomic.Bool  // Forget or Close: no connection may be added

	mu         sync.Mutex
	dialErr    error
	dialFailed time.Time
}

type slot struct {
	cur     atomic.Pointer[conn]
	mu      sync.Mutex
	dialing chan struct{} // while a dial into the slot runs; closed at its end
}

func newPool(cl *Client, addr string) *pool {
	return &pool{addr: addr, cl: cl, slots: make([]slot, cl.opts.ConnsPerAddr)}
}

// get returns a live connection, round robin. A call never waits for a
// dial while a live connection exists: an empty slot is then filled in the
// background.
func (p *pool) get(ctx context.Context) (*conn, error) {
	if p.closing.Load() > 0 {
		return nil, &ProviderClosingError{Addr: p.addr}
	}
	i := int(p.rr.Add(1) % uint32(len(p.slots)))
	s := &p.slots[i]
	if cn := s.cur.Load(); cn != nil {
		return cn, nil
	}
	if other := p.anyLive(); other != nil {
		p.fill(s, i)
		return other, nil
	}
	return p.dialWait(ctx, s, i)
}

// dialWait dials into s, or waits (as long as ctx allows) for the dial
// another call started, then looks again.
func (p *pool) dialWait(ctx context.Context, s *slot, i int) (*conn, error) {
	for {
		if err := p.backoff(); err != nil {
			return nil, err
		}
		cn, done, mine := s.beginDial()
		if cn != nil {
			return cn, nil
		}
		if !mine {
			select {
			case <-done:
				continue
			case <-ctx.Done():
				return nil, ctxError(ctx, false, 0)
			}
		}
		cn, err := p.dial(ctx, i)
		s.endDial(done)
		return cn, err
	}
}

// fill dials into an empty slot in the background, unless a dial runs.
func (p *pool) fill(s *slot, i int) {
	if p.backoff() != nil || p.cl.closed.Load() {
		return
	}
	cn, done, mine := s.beginDial()
	if cn != nil || !mine {
		return
	}
	started := p.cl.spawn(func() {
		defer s.endDial(done)
		ctx, cancel := context.WithTimeout(context.Background(), p.cl.opts.DialTimeout)
		defer cancel()
		_, _ = p.dial(ctx, i) // a failure is recorded for the backoff
	})
	if !started {
		s.endDial(done)
	}
}

// beginDial claims the slot's dial. It returns instead the connection
// the slot holds, or (mine false) the end signal of a dial that runs. The
// slot is looked at under the lock a dial ends with, so a dial that just
// filled it is seen and the slot is never dialled twice.
func (s *slot) beginDial() (cn *conn, done chan struct{}, mine bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cn := s.cur.Load(); cn != nil {
		return cn, nil, false
	}
	if s.dialing != nil {
		return nil, s.dialing, false
	}
	s.dialing = make(chan struct{})
	return nil, s.dialing, true
}

func (s *slot) endDial(done chan struct{}) {
	s.mu.Lock()
	s.dialing = nil
	s.mu.Unlock()
	close(done)
}

func (p *pool) anyLive() *conn {
	for i := range p.slots {
		if cn := p.slots[i].cur.Load(); cn != nil {
			return cn
		}
	}
	return nil
}

// backoff is the last dial error while RedialBackoff has not passed.
func (p *pool) backoff() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dialErr != nil && time.Since(p.dialFailed) < p.cl.opts.RedialBackoff {
		return p.dialErr
	}
	return nil
}

// dial connects slot i and starts its read loop. A dial cut short by the
// caller's deadline is a timeout, not an unreachable provider.
func (p *pool) dial(ctx context.Context, i int) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, p.cl.opts.DialTimeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(dctx, "tcp", p.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx, false, 0)
		}
		uerr := &UnreachableError{Addr: p.addr, Cause: err}
		p.mu.Lock()
		p.dialErr, p.dialFailed = uerr, time.Now()
		p.mu.Unlock()
		p.cl.opts.Logger.Debug("dubbo dial failed", "addr", p.addr, "err", err)
		return nil, uerr
	}
	p.mu.Lock()
	p.dialErr = nil
	p.mu.Unlock()
	cn := newConn(nc, p, i)
	if !p.slots[i].cur.CompareAndSwap(nil, cn) {
		// Never replace a connection: one out of its slot is out of
		// reach of Close and of the keeper.
		_ = nc.Close()
		if cur := p.slots[i].cur.Load(); cur != nil {
			return cur, nil
		}
		return nil, &ConnectionLostError{Cause: errConnClosed}
	}
	// Stored first, checked after: Forget and Close mark the pool dropped
	// (or the client closed) first and close the stored connections
	// after, so one of the two sees the other.
	if p.dropped.Load() {
		cn.fail(errUnused)
		return nil, &UnreachableError{Addr: p.addr, Cause: errUnused}
	}
	if !p.cl.spawn(cn.readLoop) {
		cn.fail(ErrClientClosed)
		return nil, ErrClientClosed
	}
	p.cl.opts.Logger.Debug("dubbo connection opened", "addr", p.addr, "slot", i)
	return cn, nil
}

// remove empties the slot of a dead connection, so the next call redials.
func (p *pool) remove(cn *conn) {
	p.slots[cn.slot].cur.CompareAndSwap(cn, nil)
}

// conns is a snapshot of the live connections.
func (p *pool) conns() []*conn {
	var out []*conn
	for i := range p.slots {
		if cn := p.slots[i].cur.Load(); cn != nil {
			out = append(out, cn)
		}
	}
	return out
}

// close fails every connection with cause; none is added after.
func (p *pool) close(cause error) {
	p.dropped.Store(true)
	for _, cn := range p.conns() {
		cn.fail(cause)
	}
}

var errUnused = errors.New("address no longer used")
