package wire

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	hessian "github.com/apache/dubbo-go-hessian2"
)

// closingAttachment is the response attachment a dubbo-go provider adds
// while it shuts down gracefully (its graceful-shutdown filter).
const closingAttachment = "closing"

// Client calls Dubbo providers over the dubbo protocol with hessian2: a
// few multiplexed connections per provider address, answers matched by
// request id, deadlines from the caller's context. Safe for concurrent use.
type Client struct {
	opts   Options
	nextID atomic.Int64
	pools  sync.Map // addr → *pool
	closed atomic.Bool
	stop   chan struct{}
	gate   sync.Mutex     // orders goroutine starts before Close's Wait
	wg     sync.WaitGroup // the keeper, read loops and background dials
}

// NewClient returns a client; zero options take their defaults.
func NewClient(opts Options) (*Client, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("dubbo client options: %w", err)
	}
	c := &Client{opts: o, stop: make(chan struct{})}
	c.spawn(c.keep)
	return c, nil
}

// spawn runs f on a goroutine Close waits for; false once Close has begun.
func (c *Client) spawn(f func()) bool {
	c.gate.Lock()
	defer c.gate.Unlock()
	if c.closed.Load() {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// Call invokes inv on the provider at addr (host:port) and returns the
// decoded result (nil for null and void) and the response attachments.
// The deadline is ctx's (DefaultTimeout if it has none); the provider is
// told it as the timeout attachment, in milliseconds. A request that was
// certainly not written (its connection died first) is tried again, at
// most twice, on another connection; nothing else is retried.
func (c *Client) Call(ctx context.Context, addr string, inv Invocation) (any, map[string]string, error) {
	if c.closed.Load() {
		return nil, nil, ErrClientClosed
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.DefaultTimeout)
		defer cancel()
	}
	p := c.pool(addr)
	for attempt := 0; ; attempt++ {
		cn, r, err := c.roundTrip(ctx, p, &inv)
		if err != nil {
			if unsentLoss(err) && attempt < 2 && ctx.Err() == nil {
				continue
			}
			return nil, nil, err
		}
		v, att, err := decodeReply(r, &inv)
		putBody(r.pooled)
		if att[closingAttachment] == "true" {
			cn.markClosing("closing attachment")
		}
		return v, att, err
	}
}

// unsentLoss reports a connection lost before the request was written.
func unsentLoss(err error) bool {
	var cl *ConnectionLostError
	return errors.As(err, &cl) && !cl.Sent
}

// roundTrip sends one request on a connection of p and waits for its
// answer or the deadline; the pending map and ctx are all it waits on.
func (c *Client) roundTrip(ctx context.Context, p *pool, inv *Invocation) (*conn, reply, error) {
	cn, err := p.get(ctx)
	if err != nil {
		return nil, reply{}, err
	}
	timeout := remaining(ctx)
	if timeout <= 0 {
		return cn, reply{}, ctxError(ctx, false, 0)
	}
	id := c.nextID.Add(1)
	frame, err := encodeRequest(inv, id, timeout)
	if err != nil {
		return cn, reply{}, err
	}
	if n := len(*frame) - hessian.HEADER_LENGTH; n > c.opts.MaxRequestBytes {
		putFrame(frame)
		return cn, reply{}, &TooLargeError{Size: n, Limit: c.opts.MaxRequestBytes}
	}
	cl := newCall(id, inv.MaxResponseBytes)
	if !cn.register(cl) {
		putFrame(frame)
		putCall(cl)
		return cn, reply{}, &ConnectionLostError{Cause: errConnClosed}
	}
	cn.sendPooled(cl, frame)
	select {
	case r := <-cl.done:
		if r.err == nil {
			// An answer came: its request was written, and the read
			// loop, which took the call out of the pending ones, is done
			// with it. (A failure may come while a writer still holds
			// the call, so a failed call is not reused.)
			putCall(cl)
		}
		return cn, r, r.err
	case <-ctx.Done():
		cn.forget(id)
		return cn, reply{}, ctxError(ctx, cl.sent.Load(), timeout)
	}
}

// remaining is the time left to ctx's deadline, rounded up to the
// millisecond the protocol counts in: a 10 s route's provider is told
// 10000, not 9999.
func remaining(ctx context.Context) time.Duration {
	dl, _ := ctx.Deadline()
	left := time.Until(dl)
	if left <= 0 {
		return 0
	}
	return (left + time.Millisecond - 1).Truncate(time.Millisecond)
}

// ctxError is the error of a call whose context ended.
func ctxError(ctx context.Context, sent bool, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &TimeoutError{Timeout: timeout, Sent: sent}
	}
	return fmt.Errorf("the call was cancelled: %w", ctx.Err())
}

// pool returns the address's pool, creating it (without connecting).
func (c *Client) pool(addr string) *pool {
	if p, ok := c.pools.Load(addr); ok {
		return p.(*pool)
	}
	p, _ := c.pools.LoadOrStore(addr, newPool(c, addr))
	return p.(*pool)
}

// Closing reports whether the provider at addr has announced it is
// shutting down (a readonly event, or dubbo-go's closing attachment) on a
// connection still open: calls to it fail with ErrProviderClosing, unsent,
// until the provider has closed those connections.
func (c *Client) Closing(addr string) bool {
	p, ok := c.pools.Load(addr)
	return ok && p.(*pool).closing.Load() > 0
}

// Connected reports whether a live connection to addr is open.
func (c *Client) Connected(addr string) bool {
	p, ok := c.pools.Load(addr)
	return ok && p.(*pool).anyLive() != nil
}

// Connect dials addr in the background unless a connection to it is open
// or a dial runs, so that a provider thought to be down is tried without a
// call waiting on the attempt.
func (c *Client) Connect(addr string) {
	p := c.pool(addr)
	if p.anyLive() == nil {
		p.fill(&p.slots[0], 0)
	}
}

// Forget closes the connections to addr, a provider no longer used; its
// pending calls fail with ErrConnectionLost.
func (c *Client) Forget(addr string) {
	if p, ok := c.pools.LoadAndDelete(addr); ok {
		p.(*pool).close(errUnused)
	}
}

// Addrs lists the provider addresses the client holds connections for,
// sorted.
func (c *Client) Addrs() []string {
	var out []string
	c.pools.Range(func(addr, _ any) bool {
		out = append(out, addr.(string))
		return true
	})
	slices.Sort(out)
	return out
}

// Retain forgets every provider address not in keep: a reload that moved
// an upstream's providers leaves no connection to the old ones.
func (c *Client) Retain(keep map[string]bool) {
	c.pools.Range(func(addr, _ any) bool {
		if !keep[addr.(string)] {
			c.Forget(addr.(string))
		}
		return true
	})
}

// Close closes every connection, failing pending calls, and waits for
// the client's goroutines to end.
func (c *Client) Close() error {
	c.gate.Lock()
	already := c.closed.Swap(true)
	c.gate.Unlock()
	if already {
		return nil
	}
	close(c.stop)
	c.pools.Range(func(_, p any) bool {
		p.(*pool).close(ErrClientClosed)
		return true
	})
	c.wg.Wait()
	return nil
}
