package wire

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// call is one request waiting for its answer.
type call struct {
	id   int64
	sent atomic.Bool // the frame was handed to the socket
	done chan reply  // buffered: exactly one reply is ever delivered
	// maxResponse bounds the answer's body; 0: the connection's default.
	maxResponse int
}

// calls recycles calls that were answered; see roundTrip for when one
// is put back.
var calls = sync.Pool{New: func() any { return &call{done: make(chan reply, 1)} }}

func newCall(id int64, maxResponse int) *call {
	c := calls.Get().(*call)
	c.id, c.maxResponse = id, maxResponse
	c.sent.Store(false)
	return c
}

func putCall(c *call) { calls.Put(c) }

// reply is what the read loop (or a failing connection) hands a call. The
// body is decoded by the caller, on its own goroutine, so one big answer
// never holds up the others on the connection.
type reply struct {
	status byte
	body   []byte
	err    error
	pooled *[]byte // body's buffer, back to its pool once decoded
}

// outFrame is a frame waiting to be written; c is nil for heartbeats.
// A frame from the pool goes back to it once written.
type outFrame struct {
	b      []byte
	c      *call
	pooled *[]byte
}

// conn is one multiplexed connection to a provider: calls are matched to
// answers by request id; one goroutine reads, writers take turns.
type conn struct {
	nc   net.Conn
	pool *pool
	slot int
	log  *slog.Logger
	opts *Options

	mu      sync.Mutex
	pending map[int64]*call
	dead    bool
	closing bool      // the provider announced its shutdown here
	since   time.Time // when closing was announced

	wmu      sync.Mutex
	queue    []outFrame
	spare    []outFrame
	bufs     net.Buffers
	flushing bool

	lastRead atomic.Int64 // unix nanoseconds of the last frame read (or of the dial)
}

var errConnClosed = errors.New("connection closed")

func newConn(nc net.Conn, p *pool, slot int) *conn {
	cn := &conn{nc: nc, pool: p, slot: slot, log: p.cl.opts.Logger, opts: &p.cl.opts, pending: map[int64]*call{}}
	cn.lastRead.Store(time.Now().UnixNano())
	return cn
}

// register adds c to the pending calls; false if the connection is dead.
// A registered call is always answered: by the read loop or by fail.
func (cn *conn) register(c *call) bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.dead {
		return false
	}
	cn.pending[c.id] = c
	return true
}

// take removes and returns the pending call id, nil if there is none (it
// timed out, or the id is a heartbeat's).
func (cn *conn) take(id int64) *call {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	c := cn.pending[id]
	delete(cn.pending, id)
	return c
}

func (cn *conn) forget(id int64) { cn.take(id) }

func (cn *conn) pendingCount() int {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return len(cn.pending)
}

// send queues frame and, unless another caller is already writing, writes
// everything queued: concurrent calls share one writev. It never reports
// an error: a failed write fails the connection, which answers every
// pending call.
func (cn *conn) send(c *call, frame []byte) { cn.enqueue(outFrame{b: frame, c: c}) }

// sendPooled sends a frame of the pool, which is put back once written.
func (cn *conn) sendPooled(c *call, frame *[]byte) {
	cn.enqueue(outFrame{b: *frame, c: c, pooled: frame})
}

func (cn *conn) enqueue(f outFrame) {
	cn.wmu.Lock()
	cn.queue = append(cn.queue, f)
	if cn.flushing {
		cn.wmu.Unlock()
		return
	}
	cn.flushing = true
	for len(cn.queue) > 0 {
		batch := cn.queue
		cn.queue = cn.spare[:0]
		cn.wmu.Unlock()
		err := cn.writeBatch(batch)
		for _, f := range batch {
			if f.pooled != nil {
				putFrame(f.pooled)
			}
		}
		cn.wmu.Lock()
		clear(batch)
		cn.spare = batch[:0]
		if err != nil {
			cn.flushing = false
			cn.wmu.Unlock()
			cn.fail(fmt.Errorf("writing: %w", err))
			return
		}
	}
	cn.flushing = false
	cn.wmu.Unlock()
}

// writeBatch writes frames in one go; only the flushing caller runs it.
func (cn *conn) writeBatch(batch []outFrame) error {
	cn.bufs = cn.bufs[:0]
	for _, f := range batch {
		if f.c != nil {
			// Before the write: a call whose bytes may be on the wire
			// counts as sent (fail closes the socket before it reads
			// these flags, so a false one was never written).
			f.c.sent.Store(true)
		}
		cn.bufs = append(cn.bufs, f.b)
	}
	if err := cn.nc.SetWriteDeadline(time.Now().Add(cn.opts.WriteTimeout)); err != nil {
		return err
	}
	bufs := cn.bufs // WriteTo consumes its receiver
	_, err := bufs.WriteTo(cn.nc)
	clear(cn.bufs) // the frames go back to their pool
	return err
}

// markClosing records the provider's shutdown announcement: the address
// takes no new calls while this connection lives.
func (cn *conn) markClosing(how string) {
	cn.mu.Lock()
	if cn.dead || cn.closing {
		cn.mu.Unlock()
		return
	}
	cn.closing, cn.since = true, time.Now()
	cn.mu.Unlock()
	cn.pool.closing.Add(1)
	cn.log.Debug("dubbo provider is shutting down", "addr", cn.pool.addr, "signal", how)
}

// closingSince is when the provider announced its shutdown here; zero if
// it has not.
func (cn *conn) closingSince() time.Time {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if !cn.closing {
		return time.Time{}
	}
	return cn.since
}

// fail ends the connection once: the socket is closed first, so no frame
// is written after the sent flags are read, then every pending call gets
// a ConnectionLostError saying whether its request was written.
func (cn *conn) fail(cause error) {
	cn.mu.Lock()
	if cn.dead {
		cn.mu.Unlock()
		return
	}
	cn.dead = true
	// Out of its slot before anyone can see it dead: a call that finds it
	// dead (register fails) and tries again gets another connection.
	cn.pool.remove(cn)
	pending, wasClosing := cn.pending, cn.closing
	cn.pending = nil
	cn.mu.Unlock()

	_ = cn.nc.Close()
	if wasClosing {
		cn.pool.closing.Add(-1)
	}
	for _, c := range pending {
		c.done <- reply{err: &ConnectionLostError{Sent: c.sent.Load(), Cause: cause}}
	}
	// Per connection, and so DEBUG: the caller reports an upstream going
	// away once, whatever the number of its connections.
	cn.log.Debug("dubbo connection closed", "addr", cn.pool.addr, "pending", len(pending), "reason", cause.Error())
}
