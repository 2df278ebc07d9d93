package wire

import (
	"errors"
	"time"
)

// closingHold: a connection on which the provider announced its shutdown
// is closed by the client after this long once it has no call pending, in
// case the provider never closes it itself.
const closingHold = 30 * time.Second

var (
	errSilent      = errors.New("the provider answered no heartbeat")
	errClosingHeld = errors.New("the provider announced its shutdown and kept the connection open")
)

// keep is the client's one maintenance goroutine: it sends heartbeats on
// connections that have read nothing for an interval, and closes those
// silent for three.
func (c *Client) keep() {
	every := c.opts.HeartbeatInterval
	t := time.NewTicker(max(every/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-t.C:
			c.pools.Range(func(_, p any) bool {
				for _, cn := range p.(*pool).conns() {
					c.check(cn, now)
				}
				return true
			})
		}
	}
}

func (c *Client) check(cn *conn, now time.Time) {
	every := c.opts.HeartbeatInterval
	idle := now.Sub(time.Unix(0, cn.lastRead.Load()))
	switch {
	case idle >= 3*every:
		cn.fail(errSilent)
		return
	case idle >= every:
		c.heartbeat(cn)
	}
	if since := cn.closingSince(); !since.IsZero() && now.Sub(since) >= closingHold && cn.pendingCount() == 0 {
		cn.fail(errClosingHeld)
	}
}

// heartbeat sends a two-way heartbeat; its answer only refreshes lastRead.
func (c *Client) heartbeat(cn *conn) {
	frame, err := encodeHeartbeat(c.nextID.Add(1))
	if err != nil {
		c.opts.Logger.Warn("dubbo heartbeat not encoded", "err", err)
		return
	}
	cn.send(nil, frame)
}
