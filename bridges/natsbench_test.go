package bridges

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/protogate/protogate/config"
	natsproto "github.com/protogate/protogate/protocols/nats"
)

// BenchmarkNATSBridgeLoopback drives the bridge's HTTP server through real
// loopback sockets, with keep-alive connections, to a nats-server running
// as its own process, so what this process spends is the bridge's (plus a
// minimal raw HTTP client and, for request-reply, the responder).
//
// Besides ns/op and allocs/op it reports, per request: cpu-µs (this
// process's user+system time), http-writes (write calls on the bridge's
// accepted connections), other-writes (every other write(2) of the process
// besides the client's own, from /proc/self/io: NATS flushes and runtime
// wake-ups) and, for the direct nats.go publishers, the same for a client
// that needs no HTTP at all.
func BenchmarkNATSBridgeLoopback(b *testing.B) {
	ns := startBenchNATS(b)
	h := startLoopBridge(b, ns.url())
	payload := bytes.Repeat([]byte("x"), 256)
	for _, c := range []int{1, 32} {
		b.Run(fmt.Sprintf("jetstream/c=%d", c), func(b *testing.B) {
			h.run(b, c, rawRequest("POST", "/js/k", h.addr, payload), 201)
		})
	}
	b.Run("core/c=32", func(b *testing.B) {
		h.run(b, 32, rawRequest("POST", "/core", h.addr, payload), 202)
	})
	b.Run("request/c=32", func(b *testing.B) {
		stop := startEchoResponder(b, ns.url())
		defer stop()
		h.run(b, 32, rawRequest("POST", "/req", h.addr, payload), 200)
	})
	b.Run("noop-http/c=32", func(b *testing.B) {
		// The floor of any HTTP bridge: net/http with a handler that reads
		// the body and answers a fixed 201, through the same client.
		n := startNoopHTTP(b)
		n.run(b, 32, rawRequest("POST", "/js/k", n.addr, payload), 201)
	})
	b.Run("direct-jetstream/c=32", func(b *testing.B) {
		nc, err := nats.Connect(ns.url())
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			b.Fatal(err)
		}
		benchWorkers(b, 32, nil, func(int) error {
			_, err := js.Publish(context.Background(), "bench.direct.created", payload)
			return err
		})
	})
}

// loopBridge is a bridge served on a listener that counts its writes.
type loopBridge struct {
	srv    *Server
	addr   string
	writes atomic.Int64
}

func startLoopBridge(b *testing.B, natsURL string) *loopBridge {
	mapping := fmt.Sprintf(`
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - { name: js, match: { path: "/js/{k}", methods: [POST] }, nats: { upstream: bus, subject: "bench.{k}.created", timeout: 5s } }
      - { name: core, match: { path: /core, methods: [POST] }, nats: { upstream: bus, subject: bench.core, mode: core } }
      - { name: req, match: { path: /req, methods: [POST] }, nats: { upstream: bus, subject: echo.bench, mode: request, timeout: 5s } }
upstreams:
  nats:
    - name: bus
      urls: [ %q ]
      provision: true
      streams: [ { name: BENCH, subjects: [ "bench.>" ], storage: memory } ]
bridge:
  address: 127.0.0.1:0
  max_in_flight: 1024
`, natsURL)
	cfg, err := config.LoadBytes("bench.yaml", []byte(mapping))
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := New(cfg.Bridge, tableOf(b, cfg), Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	h := &loopBridge{srv: srv, addr: lis.Addr().String()}
	srv.lis = lis
	go func() { _ = srv.http.Serve(&countingListener{Listener: lis, writes: &h.writes}) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ok, _ := srv.Ready(); ok {
			return h
		}
		if time.Now().After(deadline) {
			b.Fatal("the bridge never became ready")
		}
	}
}

// startNoopHTTP serves a handler that does nothing but read the body and
// answer as the bridge's JetStream route does, on a counting listener.
func startNoopHTTP(b *testing.B) *loopBridge {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	h := &loopBridge{addr: lis.Addr().String()}
	ack := []byte(`{"stream":"BENCH","seq":1,"duplicate":false}` + "\n")
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(ack)
	})}
	go func() { _ = hs.Serve(&countingListener{Listener: lis, writes: &h.writes}) }()
	b.Cleanup(func() { _ = hs.Close() })
	return h
}

// run sends req over c keep-alive connections, b.N times in all, and
// checks every answer's status.
func (h *loopBridge) run(b *testing.B, c int, req []byte, want int) {
	conns := make([]*rawConn, c)
	for i := range conns {
		rc, err := dialRaw(h.addr)
		if err != nil {
			b.Fatal(err)
		}
		defer rc.Close()
		conns[i] = rc
	}
	// One request per connection first: connection set-up is not measured.
	for _, rc := range conns {
		if err := rc.roundTrip(req, want); err != nil {
			b.Fatal(err)
		}
	}
	h.writes.Store(0)
	benchWorkers(b, c, &h.writes, func(w int) error { return conns[w].roundTrip(req, want) })
}

// benchWorkers runs op b.N times over c goroutines and reports the
// process's CPU and write calls per operation. httpWrites, when given,
// counts the bridge's HTTP writes; the raw client's writes (one per
// request) are taken out of other-writes.
func benchWorkers(b *testing.B, c int, httpWrites *atomic.Int64, op func(worker int) error) {
	var next atomic.Int64
	var failed atomic.Pointer[error]
	cpu0, w0 := processCPU(b), writeCalls(b)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range c {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := op(w); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	n := float64(b.N)
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(time.Microsecond)/n, "cpu-µs/op")
	writes := float64(writeCalls(b) - w0)
	if httpWrites != nil {
		hw := float64(httpWrites.Load())
		b.ReportMetric(hw/n, "http-writes/op")
		writes -= hw + n // the client writes each request once
	}
	b.ReportMetric(writes/n, "other-writes/op")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writeCalls is the process's write system calls so far (syscw).
func writeCalls(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Fatal(err)
	}
	for line := range bytes.Lines(raw) {
		if v, ok := bytes.CutPrefix(line, []byte("syscw: ")); ok {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no syscw in /proc/self/io")
	return 0
}

// countingListener counts the writes on the connections it accepts.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, writes: l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func rawRequest(method, path, host string, body []byte) []byte {
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", method, path, host, len(body))
	return append([]byte(head), body...)
}

// rawConn is an HTTP/1.1 client of the fewest allocations: a fixed request
// written whole, the answer's status and Content-Length read, its body
// discarded.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func dialRaw(addr string) (*rawConn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &rawConn{Conn: c, r: bufio.NewReaderSize(c, 4096)}, nil
}

func (c *rawConn) roundTrip(req []byte, want int) error {
	if _, err := c.Write(req); err != nil {
		return err
	}
	status, length := 0, -1
	for first := true; ; first = false {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case first:
			if len(line) < 12 {
				return fmt.Errorf("status line %q", line)
			}
			status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
			continue
		case len(line) == 0:
		case len(line) > 16 && bytes.EqualFold(line[:16], []byte("Content-Length: ")):
			if length, err = strconv.Atoi(string(line[16:])); err != nil {
				return fmt.Errorf("content length %q", line)
			}
			continue
		default:
			continue
		}
		break
	}
	if length < 0 {
		return fmt.Errorf("an answer (status %d) without Content-Length", status)
	}
	if _, err := c.r.Discard(length); err != nil {
		return err
	}
	if status != want {
		return fmt.Errorf("status %d, want %d", status, want)
	}
	return nil
}

// benchNATS is a nats-server process with JetStream on loopback.
type benchNATS struct{ port int }

func (n *benchNATS) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func startBenchNATS(b *testing.B) *benchNATS {
	bin := ""
	done := make(chan struct{})
	go func() { // natsServerBinary takes a *testing.T; its error is in natsBinErr
		defer close(done)
		bin = natsServerBinary(&testing.T{})
	}()
	<-done
	if natsBinErr != nil {
		b.Fatal(natsBinErr)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := b.TempDir()
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", filepath.Join(dir, "js"))
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", port)); err == nil {
			nc.Close()
			return &benchNATS{port: port}
		}
		if time.Now().After(deadline) {
			b.Fatal("nats-server did not serve within 15s")
		}
	}
}

// startEchoResponder answers every request on echo.bench with its data.
func startEchoResponder(b *testing.B, url string) func() {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := nc.Subscribe("echo.bench", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	return nc.Close
}

// The answers the benchmark's hot path writes without encoding/json must
// be the bytes encoding/json wrote before, whatever the stream or subject
// holds (HTML characters, quotes, non-ASCII, invalid UTF-8).
func TestFastAnswersAreEncodingJSONs(t *testing.T) {
	for _, name := range []string{"ORDERS", "", "a<b>&c", `q"uote`, `back\slash`, "ünïcode", "tab\there", "bad\xffutf8"} {
		ack := &natsproto.Ack{Stream: name, Sequence: 18446744073709551615, Duplicate: name == ""}
		got := httptest.NewRecorder()
		writeAck(got, ack)
		want := httptest.NewRecorder()
		writeJSON(want, http.StatusCreated, ack)
		sameAnswer(t, "ack of "+name, got, want)

		got = httptest.NewRecorder()
		writeAccepted(got, name)
		want = httptest.NewRecorder()
		writeJSON(want, http.StatusAccepted, map[string]string{"subject": name, "delivery": "at-most-once"})
		sameAnswer(t, "core answer for "+name, got, want)
	}
}

func sameAnswer(t *testing.T, what string, got, want *httptest.ResponseRecorder) {
	t.Helper()
	if got.Code != want.Code || got.Body.String() != want.Body.String() ||
		got.Header().Get("Content-Type") != "application/json" || got.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: %d %q %v, want %d %q", what, got.Code, got.Body, got.Header(), want.Code, want.Body)
	}
}

// A reply too large for net/http to measure before answering still goes
// out with a Content-Length, never chunked; a small one has one too.
func TestNATSRepliesAreNotChunked(t *testing.T) {
	ns := startNATS(t, -1, t.TempDir(), 0)
	b := startBridge(t, testMapping(ns.url()))
	b.waitReady()
	nc, _ := ns.client()
	big := bytes.Repeat([]byte("q"), 5000)
	if _, err := nc.Subscribe("quotes.*", func(m *nats.Msg) {
		data := []byte(`{"price": 1}`)
		if m.Subject == "quotes.BIG" {
			data = big
		}
		_ = m.Respond(data)
	}); err != nil {
		t.Fatal(err)
	}
	subscribed(t, nc)
	for symbol, size := range map[string]int{"BIG": len(big), "SMALL": len(`{"price": 1}`)} {
		resp, err := http.Get(b.url + "/quotes/" + symbol)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || len(body) != size || resp.ContentLength != int64(size) || len(resp.TransferEncoding) != 0 {
			t.Errorf("%s: %d, %d bytes, Content-Length %d, Transfer-Encoding %v; want 200 and %d bytes with their length",
				symbol, resp.StatusCode, len(body), resp.ContentLength, resp.TransferEncoding, size)
		}
	}
}
