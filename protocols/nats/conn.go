// Package nats publishes to NATS for the bridge: one shared connection per
// upstream, JetStream publishes that wait for the stream's ack, core
// publishes, and request-reply, with errors classified so callers can tell a
// missing stream from a timeout from an outage. It knows nothing of HTTP.
package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/protogate/protogate/config"
)

// Conn is the shared connection to one NATS upstream. nats.go reconnects
// on its own after an outage, but gives a connection up for good on some
// server answers (a protocol line over the server's limit, two
// authorization violations in a row, reconnect attempts exhausted); Conn
// then dials a new one, with backoff and jitter, so no request and no
// server event leaves the upstream unusable once the cause is gone.
type Conn struct {
	Upstream    string
	u           *config.NATSUpstream
	urls        []string
	log         *slog.Logger
	state       *linkState
	cur         atomic.Pointer[link]
	stopped     atomic.Bool // Drain was asked: closes are ours, nothing is replaced
	replacing   atomic.Bool
	failures    atomic.Int32 // replacements since the upstream last served
	provisionMu sync.Mutex
	provisioned atomic.Bool
	streamsMu   sync.Mutex
	streams     map[string]jetstream.Stream // for checking duplicates against what is stored
}

// link is one nats.go connection and the JetStream context on it.
type link struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	built chan struct{} // closed once nc and js are set and the link is current (or given up)
	// episode ends when the connection is lost, so a publish waiting for
	// its ack learns at once that its outcome is unknown.
	episode atomic.Pointer[episode]
}

type episode struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func newEpisode() *episode {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &episode{ctx: ctx, cancel: cancel}
}

// errLost ends an episode.
var errLost = errors.New("the connection to NATS was lost")

// Connect opens the upstream's connection. A server that is down does not
// fail it: the connection keeps trying, with backoff and jitter, and Ready
// says when it is up. Only unreadable credentials fail here.
func Connect(u *config.NATSUpstream, urls []string, log *slog.Logger) (*Conn, error) {
	log = log.With("upstream", u.Name, "protocol", "nats")
	c := &Conn{Upstream: u.Name, u: u, urls: urls, log: log, state: &linkState{log: log}, streams: map[string]jetstream.Stream{}}
	l, err := c.dial()
	if err != nil {
		return nil, err
	}
	c.install(l)
	// A server down at start calls no handler until it is up.
	c.state.downAtStart(func() bool { return l.nc.Status() == nats.CONNECTED }, reason(l.nc.LastError(), "no server answered"))
	return c, nil
}

// dial makes a link. Credentials are read anew each time, so a rotated
// token or creds file is picked up by the replacement connection.
func (c *Conn) dial() (*link, error) {
	u := c.u
	l := &link{built: make(chan struct{})}
	l.episode.Store(newEpisode())
	maxReconnects := u.MaxReconnects
	if maxReconnects == 0 {
		maxReconnects = -1 // a model built by hand, without defaults
	}
	opts := []nats.Option{
		nats.Name(u.ConnectionName),
		nats.Timeout(u.ConnectTimeout.Std()),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(maxReconnects),
		nats.ReconnectWait(u.ReconnectWait.Std()),
		nats.ReconnectJitter(u.ReconnectWait.Std()/2, u.ReconnectWait.Std()),
		// A publish while disconnected fails at once instead of sitting in
		// a buffer that vanishes if the process stops.
		nats.ReconnectBufSize(-1),
		// nats.go calls these once per change, in order, from one
		// goroutine: not per reconnect attempt and not per publish.
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			l.lost()
			<-l.built
			if nc.IsClosed() || !c.current(l) {
				return // a close, reported by the closed handler or asked for by Drain
			}
			c.state.down(reason(err, "the connection was lost"))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { c.connected(l) }),
		nats.ConnectHandler(func(nc *nats.Conn) { c.connected(l) }),
		nats.ClosedHandler(func(nc *nats.Conn) {
			l.lost()
			<-l.built
			if c.stopped.Load() || !c.current(l) {
				return
			}
			c.state.closed(reason(nc.LastError(), "the connection was closed"))
			go c.replace()
		}),
		nats.ErrorHandler(func(nc *nats.Conn, _ *nats.Subscription, err error) { c.asyncError(nc, err) }),
	}
	auth, err := authOptions(u)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", u.Name, err)
	}
	opts = append(opts, auth...)
	nc, err := nats.Connect(strings.Join(c.urls, ","), opts...)
	if err != nil {
		close(l.built)
		return nil, fmt.Errorf("upstream %q: %w", u.Name, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		close(l.built) // its handlers find a link that never became current
		nc.Close()
		return nil, fmt.Errorf("upstream %q: %w", u.Name, err)
	}
	l.nc, l.js = nc, js
	return l, nil
}

// install makes l the current link, then lets its handlers run. nats.go
// can call them before dial returns (the connect callback of a first
// connect that succeeded at once always races it); run earlier, they would
// find another link current and drop the event: an upstream never
// provisioned and never ready, or a close never replaced.
func (c *Conn) install(l *link) (old *link) {
	old = c.cur.Swap(l)
	close(l.built)
	return old
}

func (c *Conn) current(l *link) bool { return c.cur.Load() == l }

// lost ends the current episode and starts the next, so publishes waiting
// on this one answer now and later ones wait on a fresh one.
func (l *link) lost() {
	if old := l.episode.Swap(newEpisode()); old != nil {
		old.cancel(errLost)
	}
}

// connected runs each time a link is up: it reports the change, and
// provisions the upstream's streams when asked to (a server that was down
// at start, or that lost its state, gets them as soon as it is back).
func (c *Conn) connected(l *link) {
	<-l.built
	if !c.current(l) {
		return
	}
	c.failures.Store(0)
	c.state.up(l.nc.ConnectedUrlRedacted())
	if !c.u.Provision {
		return
	}
	go func() {
		c.provisionMu.Lock()
		defer c.provisionMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Every reconnect provisions again (the server may have lost its
		// state); only the first time is news at INFO.
		first := !c.provisioned.Load()
		if err := c.provision(ctx, l.js, c.u.Streams, first); err != nil {
			c.log.Error("stream provisioning failed; publishes to those streams will fail", "err", err)
			return
		}
		c.provisioned.Store(true)
	}()
}

// maxReplaceWait caps the backoff between replacement connections.
const maxReplaceWait = 30 * time.Second

// replace dials new connections, waiting longer after each one that is
// given up on again, until one is made (it then reconnects on its own).
func (c *Conn) replace() {
	if !c.replacing.CompareAndSwap(false, true) {
		return
	}
	defer c.replacing.Store(false)
	for !c.stopped.Load() {
		n := c.failures.Add(1)
		time.Sleep(backoff(c.u.ReconnectWait.Std(), int(n)))
		if c.stopped.Load() {
			return
		}
		l, err := c.dial()
		if err != nil {
			c.log.Debug("replacing the NATS connection failed", "err", err)
			continue
		}
		old := c.install(l)
		old.nc.Close()
		if c.stopped.Load() {
			// Drain ran while this one was dialled and drained the old.
			l.nc.Close()
			return
		}
		c.log.Debug("NATS connection replaced", "attempt", n)
		return
	}
}

// backoff doubles base per failure up to maxReplaceWait, with jitter of up
// to half the wait so a fleet of bridges does not dial in step.
func backoff(base time.Duration, failures int) time.Duration {
	if base <= 0 {
		base = 100 * time.Millisecond
	}
	d := base
	for i := 1; i < failures && d < maxReplaceWait; i++ {
		d *= 2
	}
	d = min(d, maxReplaceWait)
	return d/2 + rand.N(d/2+1)
}

// asyncError logs an error the server sent outside any request (a
// permission violation, say). One that closes the connection is told by
// the closed handler; the same error again within repeatQuiet is DEBUG, as
// it can come once per publish.
func (c *Conn) asyncError(nc *nats.Conn, err error) {
	// nats.go hands over a fatal server error before it closes the
	// connection, so IsClosed may not be true yet: the closed line tells it.
	if nc.IsClosed() || strings.Contains(err.Error(), "maximum control line exceeded") || c.state.repeated(err.Error(), time.Now()) {
		c.log.Debug("NATS error", "err", err)
		return
	}
	c.log.Warn("NATS error", "err", err)
}

// repeatQuiet is how long the same asynchronous error is logged only once.
const repeatQuiet = time.Minute

// Ready reports whether the connection is up and, when the mapping asks
// for provisioning, the streams exist.
func (c *Conn) Ready() bool {
	ok, _ := c.Usable()
	return ok
}

// Usable is Ready with the reason when it is not.
func (c *Conn) Usable() (bool, string) {
	l := c.cur.Load()
	switch {
	case l.nc.Status() != nats.CONNECTED:
		why := c.state.reason()
		if why == "" {
			why = "connecting"
		}
		return false, "not connected: " + why
	case c.u.Provision && !c.provisioned.Load():
		return false, "streams not provisioned yet"
	}
	return true, ""
}

// connectedNow is the connection state alone, for publishing: a publish does
// not wait for provisioning, the server tells if a stream is missing.
func (c *Conn) connectedNow() bool { return c.cur.Load().nc.Status() == nats.CONNECTED }

// MaxPayload is the largest message the server accepts (0 until connected).
func (c *Conn) MaxPayload() int64 { return c.cur.Load().nc.MaxPayload() }

// Drain lets in-flight requests finish, then closes the connection. No
// replacement follows.
func (c *Conn) Drain(timeout time.Duration) {
	c.stopped.Store(true)
	nc := c.cur.Load().nc
	done := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(done) })
	if nc.IsClosed() {
		return
	}
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	select {
	case <-done:
	case <-time.After(timeout):
		nc.Close()
	}
}
