package bridges

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// overloadedBody is what a connection past max_connections gets before it
// is closed, as a whole HTTP response, so the client sees a status it can
// act on instead of a reset.
const overloadedBody = `{"error":{"code":"overloaded","message":"the bridge holds as many connections as it is allowed to; retry shortly"}}` + "\n"

var overloadedResponse = fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"+
	"X-Content-Type-Options: nosniff\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(overloadedBody), overloadedBody)

// limitListener accepts every connection but serves at most max at once;
// one more is answered 503 and closed.
func limitListener(l net.Listener, max int, log *slog.Logger, refused func()) net.Listener {
	if max <= 0 {
		return l
	}
	return &limitedListener{Listener: l, max: int64(max), log: log, refused: refused}
}

type limitedListener struct {
	net.Listener
	max     int64
	open    atomic.Int64
	log     *slog.Logger
	refused func()       // counts a refused connection
	warned  atomic.Int64 // unix seconds of the last log line, to log once a minute at most
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			go refuse(c)
			l.refused()
			if now := time.Now().Unix(); now-l.warned.Load() >= 60 {
				l.warned.Store(now)
				l.log.Warn("bridge connection limit reached; refusing connections with 503", "max_connections", l.max)
			}
			continue
		}
		return &countedConn{Conn: c, l: l}, nil
	}
}

func refuse(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write([]byte(overloadedResponse))
	_ = c.Close()
}

type countedConn struct {
	net.Conn
	l    *limitedListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}
