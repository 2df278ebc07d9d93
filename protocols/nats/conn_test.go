package nats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/protogate/protogate/config"
)

// syncBuffer is a log destination that nats.go's callback goroutine and the
// test can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testServer is a real NATS server with JetStream on loopback that can be
// stopped and started again on the same port and store.
type testServer struct {
	t    *testing.T
	opts *server.Options
	srv  *server.Server
}

func newTestServer(t *testing.T, port int) *testServer {
	t.Helper()
	s := &testServer{t: t, opts: &server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
	}}
	t.Cleanup(s.stop)
	return s
}

func (s *testServer) start() {
	s.t.Helper()
	srv, err := server.NewServer(s.opts)
	if err != nil {
		s.t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		s.t.Fatal("nats-server did not start")
	}
	s.srv = srv
	s.opts.Port = srv.Addr().(*net.TCPAddr).Port // the same port on restart
}

func (s *testServer) stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

func (s *testServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port) }

// freePort is a loopback port nothing listens on (yet).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// load makes requests in every mode until stopped, counting those made
// while the connection was down.
type load struct {
	c        *Conn
	stopped  atomic.Bool
	done     chan struct{}
	calls    atomic.Int64
	downHits atomic.Int64
}

func startLoad(c *Conn) *load {
	l := &load{c: c, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for !l.stopped.Load() {
			l.once()
			time.Sleep(time.Millisecond)
		}
	}()
	return l
}

// once makes one call in each mode. Nothing answers them (no stream, no
// responder): failures are what must not be logged.
func (l *load) once() {
	m := &Message{Subject: "orders.eu.created", Data: []byte(`{}`)}
	errs := []error{l.c.PublishCore(m)}
	withTimeout := func(call func(ctx context.Context) error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		errs = append(errs, call(ctx))
	}
	withTimeout(func(ctx context.Context) error { _, err := l.c.PublishJetStream(ctx, 0, m, Expect{}); return err })
	withTimeout(func(ctx context.Context) error {
		_, err := l.c.Request(ctx, 0, &Message{Subject: "quotes.x", Data: []byte(`{}`)})
		return err
	})
	for _, err := range errs {
		l.calls.Add(1)
		if errors.Is(err, ErrNotConnected) {
			l.downHits.Add(1)
		}
	}
}

func (l *load) stop() {
	l.stopped.Store(true)
	<-l.done
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting until %s", what)
}

// waitCalls waits until the load made at least n more calls.
func waitCalls(t *testing.T, l *load, counter *atomic.Int64, n int64) {
	t.Helper()
	start := counter.Load()
	waitUntil(t, fmt.Sprintf("%d more calls", n), func() bool { return counter.Load()-start >= n })
}

// TestStateChangesLoggedOnce stops and restarts a real NATS server while
// requests flow: each outage is one "unavailable" and one "available again"
// line, whatever the number of calls and reconnect attempts in between.
func TestStateChangesLoggedOnce(t *testing.T) {
	for _, tc := range []struct {
		name        string
		downAtStart bool
		outages     int
	}{
		{"up at start, two outages", false, 2},
		{"down at start, then one outage", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf syncBuffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
			srv := newTestServer(t, freePort(t))
			if !tc.downAtStart {
				srv.start()
			}
			u := &config.NATSUpstream{Name: "events", ConnectionName: "test",
				ConnectTimeout: config.Duration(time.Second), ReconnectWait: config.Duration(20 * time.Millisecond)}
			c, err := Connect(u, []string{srv.url()}, log)
			if err != nil {
				t.Fatal(err)
			}
			drained := false
			t.Cleanup(func() {
				if !drained {
					c.Drain(time.Second)
				}
			})
			l := startLoad(c)
			defer l.stop()

			outages := tc.outages
			if tc.downAtStart {
				waitCalls(t, l, &l.downHits, 50)
				srv.start()
			}
			waitUntil(t, "connected", c.connectedNow)
			for i := 0; i < outages; i++ {
				waitCalls(t, l, &l.calls, 50)
				srv.stop()
				waitUntil(t, "disconnected", func() bool { return !c.connectedNow() })
				waitCalls(t, l, &l.downHits, 50)
				srv.start()
				waitUntil(t, "reconnected", c.connectedNow)
			}
			waitCalls(t, l, &l.calls, 50)
			l.stop()
			c.Drain(time.Second)
			drained = true

			wantDown := outages
			if tc.downAtStart {
				wantDown++
			}
			checkTransitions(t, buf.String(), !tc.downAtStart, wantDown)
		})
	}
}

// checkTransitions wants, at INFO and above, only: "upstream connected"
// first when the server was up at start, then wantDown pairs of
// "upstream unavailable" and "upstream available again", each naming the
// upstream; nothing else, and no terminal colour codes.
func checkTransitions(t *testing.T, out string, connectedFirst bool, wantDown int) {
	t.Helper()
	if strings.Contains(out, "\x1b[") {
		t.Errorf("terminal escape codes in the log:\n%s", out)
	}
	var want []string
	if connectedFirst {
		want = append(want, `level=INFO msg="upstream connected"`)
	}
	for i := 0; i < wantDown; i++ {
		want = append(want, `level=WARN msg="upstream unavailable"`, `level=INFO msg="upstream available again"`)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d log lines, want %d (%v):\n%s", len(lines), len(want), want, out)
	}
	for i, line := range lines {
		if !strings.Contains(line, want[i]) || !strings.Contains(line, "upstream=events protocol=nats") {
			t.Errorf("line %d = %s\nwant %s naming upstream=events protocol=nats", i+1, line, want[i])
		}
	}
	if wantDown > 0 && !strings.Contains(out, "reason=") {
		t.Errorf("an unavailable line gives no reason:\n%s", out)
	}
}

// TestClosedConnectionIsReplaced: a connection nats.go gives up on (here
// the server refused a protocol line over its limit, which the mapping's
// max_control_line let through on purpose) is one ERROR line, then a new
// connection serves and says so once; publishes in between fail at once
// without sending.
func TestClosedConnectionIsReplaced(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv := newTestServer(t, freePort(t))
	srv.start()
	u := &config.NATSUpstream{Name: "events", ConnectionName: "test", MaxControlLine: 1 << 20,
		ConnectTimeout: config.Duration(time.Second), ReconnectWait: config.Duration(20 * time.Millisecond)}
	c, err := Connect(u, []string{srv.url()}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Drain(time.Second) })
	waitUntil(t, "connected", c.connectedNow)
	first := c.cur.Load()
	_ = c.PublishCore(&Message{Subject: "orders." + strings.Repeat("x", 5000), Data: []byte(`{}`)})
	waitUntil(t, "closed", first.nc.IsClosed)
	waitUntil(t, "replaced and serving", func() bool {
		return c.cur.Load() != first && c.connectedNow() && strings.Contains(buf.String(), "available again")
	})
	if err := c.PublishCore(&Message{Subject: "orders.eu", Data: []byte(`{}`)}); err != nil {
		t.Fatalf("publish on the replacement: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], `msg="upstream connected"`) ||
		!strings.Contains(lines[1], `level=ERROR msg="upstream connection closed by the NATS client; replacing it"`) ||
		!strings.Contains(lines[1], "upstream=events protocol=nats") || !strings.Contains(lines[1], "reason=") ||
		!strings.Contains(lines[2], `msg="upstream available again"`) {
		t.Fatalf("want connected, closed, available again, got:\n%s", buf.String())
	}
}

// TestLimitsRefusedBeforeSending: what the server would answer with a
// closed connection is refused here, naming the field, and the connection
// stays up.
func TestLimitsRefusedBeforeSending(t *testing.T) {
	srv := newTestServer(t, freePort(t))
	srv.opts.MaxPayload = 1024
	srv.start()
	u := &config.NATSUpstream{Name: "events", ConnectionName: "test", MaxControlLine: 4096,
		ConnectTimeout: config.Duration(time.Second), ReconnectWait: config.Duration(20 * time.Millisecond)}
	c, err := Connect(u, []string{srv.url()}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Drain(time.Second) })
	waitUntil(t, "connected", c.connectedNow)
	big := nats.Header{"X-Big": []string{strings.Repeat("h", 900)}}
	for _, tc := range []struct {
		name  string
		m     *Message
		field string
	}{
		{"subject", &Message{Subject: "orders." + strings.Repeat("x", 4000)}, "subject"},
		{"body", &Message{Subject: "orders.eu", Data: make([]byte, 1025)}, "body"},
		{"headers", &Message{Subject: "orders.eu", Header: big, Data: make([]byte, 200)}, "headers"},
	} {
		var le *LimitError
		for name, err := range map[string]error{
			"core":    c.PublishCore(tc.m),
			"request": func() error { _, err := c.Request(context.Background(), 0, tc.m); return err }(),
			"js": func() error {
				_, err := c.PublishJetStream(context.Background(), 0, tc.m, Expect{MsgID: "k"})
				return err
			}(),
		} {
			if !errors.As(err, &le) || le.Field != tc.field {
				t.Errorf("%s %s: got %v, want a limit error on the %s", tc.name, name, err, tc.field)
			}
		}
	}
	if !c.connectedNow() {
		t.Fatal("the connection dropped")
	}
}

// TestRepeatedAsyncErrors: the same asynchronous error (one per publish,
// say) is news once a minute, a different one at once.
func TestRepeatedAsyncErrors(t *testing.T) {
	s := &linkState{}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, tc := range []struct {
		msg  string
		at   time.Duration
		want bool
	}{
		{"permissions violation", 0, false},
		{"permissions violation", time.Second, true},
		{"permissions violation", 59 * time.Second, true},
		{"slow consumer", 59 * time.Second, false},
		{"permissions violation", 60 * time.Second, false},
		{"permissions violation", 61 * time.Second, true},
	} {
		if got := s.repeated(tc.msg, t0.Add(tc.at)); got != tc.want {
			t.Errorf("%d: repeated(%q at %v) = %v, want %v", i, tc.msg, tc.at, got, tc.want)
		}
	}
}
