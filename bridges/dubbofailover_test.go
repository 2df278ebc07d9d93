package bridges

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/protocols/dubbo/wire"
	"github.com/protogate/protogate/test/nodeprovider"
)

// failoverPeer is one provider of the failover upstream: the Go example
// provider or the Node provider, each its own process, which the test
// kills, restarts on the same port and stops gracefully.
type failoverPeer interface {
	addr() string
	kill(t *testing.T)    // SIGKILL: its connections drop without a word
	stop(t *testing.T)    // SIGTERM, and wait for it to exit
	restart(t *testing.T) // on the same port, once it listens
	// hits is the number of getUser and echoInt calls it received since
	// it (re)started.
	hits(t *testing.T) int64
}

// probe is a Dubbo client of the test's own, apart from the bridge's, so
// that asking a provider something opens no connection the bridge uses.
func probe(t *testing.T) *wire.Client {
	t.Helper()
	c, err := wire.NewClient(wire.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// goPeer is the example provider on a fixed dubbo port.
type goPeer struct {
	bin    string
	port   int
	probe  *wire.Client
	cmd    *exec.Cmd
	exited chan struct{}
	ready  chan struct{}
}

func newGoPeer(t *testing.T, c *wire.Client) *goPeer {
	p := &goPeer{bin: providerBinary(t), port: freePort(t), probe: c}
	p.launch(t)
	return p
}

func (p *goPeer) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

// launch starts the process; await waits for it to answer.
func (p *goPeer) launch(t *testing.T) {
	t.Helper()
	p.cmd = exec.Command(p.bin, "-dubbo-port", strconv.Itoa(p.port), "-triple-port", "0", "-log-level", "warn")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlives a test binary that panics
	p.ready, p.exited = make(chan struct{}), make(chan struct{})
	p.cmd.Stdout = &lineWatch{want: "provider ready", found: p.ready}
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd, exited := p.cmd, p.exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
}

func (p *goPeer) await(t *testing.T) {
	t.Helper()
	select {
	case <-p.ready:
	case <-p.exited:
		t.Fatalf("the example provider exited before it was ready: %v", p.cmd.ProcessState)
	case <-time.After(30 * time.Second):
		t.Fatal("the example provider did not start")
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := p.call("hits"); err == nil {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("the example provider does not answer: %v", err)
		}
	}
}

func (p *goPeer) call(method string) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	v, _, err := p.probe.Call(ctx, p.addr(), wire.Invocation{Service: "com.example.UserService", Method: method})
	return v, err
}

func (p *goPeer) kill(t *testing.T) { p.signal(t, syscall.SIGKILL) }
func (p *goPeer) stop(t *testing.T) { p.signal(t, syscall.SIGTERM) }

func (p *goPeer) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("the example provider ignored %v", sig)
	}
}

func (p *goPeer) restart(t *testing.T) {
	t.Helper()
	p.launch(t)
	p.await(t)
}

func (p *goPeer) hits(t *testing.T) int64 {
	t.Helper()
	v, err := p.call("hits")
	n, ok := v.(int64)
	if err != nil || !ok {
		t.Fatalf("hits = %v (%T), %v", v, v, err)
	}
	return n
}

// lineWatch closes found at the first output line holding want.
type lineWatch struct {
	want  string
	found chan struct{}
	buf   []byte
	done  bool
}

func (w *lineWatch) Write(b []byte) (int, error) {
	if !w.done {
		w.buf = append(w.buf, b...)
		if bytes.Contains(w.buf, []byte(w.want)) {
			w.done = true
			close(w.found)
		}
	}
	return len(b), nil
}

// nodePeer is the Node provider; it stops gracefully with a READONLY event.
type nodePeer struct {
	p     *nodeprovider.Provider
	probe *wire.Client
}

func newNodePeer(t *testing.T, c *wire.Client) *nodePeer {
	return &nodePeer{p: nodeprovider.Start(t), probe: c}
}

func (n *nodePeer) addr() string       { return n.p.Addr() }
func (n *nodePeer) kill(*testing.T)    { n.p.Kill() }
func (n *nodePeer) stop(*testing.T)    { n.p.Stop() }
func (n *nodePeer) restart(*testing.T) { n.p.Restart() }

func (n *nodePeer) hits(t *testing.T) int64 {
	var c int64
	for _, call := range n.p.Received(t, 0).Calls {
		if call.Method == "getUser" || call.Method == "echoInt" {
			c++
		}
	}
	return c
}

// startLoggedBridge is startBridge with the bridge's DEBUG lines of failed
// calls and transport events kept, and shown if the test fails.
func startLoggedBridge(t *testing.T, mapping string) *bridge {
	t.Helper()
	cfg, err := config.LoadBytes("mapping.yaml", []byte(mapping))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []string
	keep := writerTo(func(b []byte) {
		l := string(b)
		if strings.Contains(l, "component=dubbo-wire") || strings.Contains(l, "dubbo call failed") {
			mu.Lock()
			lines = append(lines, strings.TrimSpace(l))
			mu.Unlock()
		}
	})
	srv, err := New(cfg.Bridge, tableOf(t, cfg), Options{Logger: slog.New(slog.NewTextHandler(keep, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if t.Failed() {
			mu.Lock()
			t.Logf("the bridge's transport log (last 60 lines):\n%s", strings.Join(lines[max(0, len(lines)-60):], "\n"))
			mu.Unlock()
		}
	})
	return &bridge{t: t, srv: srv, url: "http://" + srv.Addr()}
}

type writerTo func([]byte)

func (f writerTo) Write(b []byte) (int, error) {
	f(b)
	return len(b), nil
}

// failoverMapping: one upstream over both providers, an idempotent route
// with a retry and a non-idempotent one.
func failoverMapping(addrs ...string) string {
	urls := make([]string, len(addrs))
	for i, a := range addrs {
		urls[i] = strconv.Quote("dubbo://" + a)
	}
	return `
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: get-user
        match: { path: "/users/{id}", methods: [GET] }
        dubbo: { upstream: pool, service: com.example.UserService, method: getUser, params: [ { from: path.id, type: long } ], idempotent: true, retries: 1, timeout: 3s }
      - name: echo-int
        match: { path: /echoInt, methods: [POST] }
        dubbo: { upstream: pool, service: com.example.UserService, method: echoInt, params: [ { from: body, type: int } ], timeout: 3s }
upstreams:
  dubbo:
    - { name: pool, protocol: dubbo, urls: [ ` + strings.Join(urls, ", ") + ` ] }
bridge:
  address: 127.0.0.1:0
`
}

// loadStats are the answers of one phase, by route.
type loadStats struct {
	// outage: a provider goes away during the phase, and calls on its
	// connections may be lost; in other phases every call succeeds.
	outage bool
	status map[string]map[int]int // route → HTTP status → count
	bad    []string               // answers a route must never give
}

// load runs workers against the bridge until stop is called, filing
// every answer under the phase current at the time the request was sent.
type load struct {
	mu      sync.Mutex
	phase   string
	phases  map[string]*loadStats
	order   []string
	stopc   chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
	client  *http.Client
	url     string
	hidden  []string // what no error body may show
}

func startLoad(url string, hidden []string, workers int) *load {
	l := &load{phases: map[string]*loadStats{}, stopc: make(chan struct{}), url: url, hidden: hidden,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}}
	l.enter("warm", false)
	for w := range workers {
		idempotent := w%2 == 0
		l.wg.Go(func() { l.work(w, idempotent) })
	}
	return l
}

func (l *load) enter(phase string, outage bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phase = phase
	l.phases[phase] = &loadStats{outage: outage, status: map[string]map[int]int{}}
	l.order = append(l.order, phase)
}

// stop ends the load and returns what it got; it may be called again.
func (l *load) stop() map[string]*loadStats {
	l.stopped.Do(func() {
		close(l.stopc)
		l.wg.Wait()
		l.client.CloseIdleConnections()
	})
	return l.phases
}

func (l *load) work(w int, idempotent bool) {
	for i := 0; ; i++ {
		select {
		case <-l.stopc:
			return
		default:
		}
		l.mu.Lock()
		sent := l.phases[l.phase]
		l.mu.Unlock()
		route, code, body, err := l.once(w, i, idempotent)
		// Filed where it ended; a call that overlapped an outage may
		// have been on a connection that went.
		l.mu.Lock()
		st := l.phases[l.phase]
		if st.status[route] == nil {
			st.status[route] = map[int]int{}
		}
		st.status[route][code]++
		if why := l.judge(st.outage || sent.outage, idempotent, code, body, err); why != "" {
			st.bad = append(st.bad, fmt.Sprintf("%s: %d %s (%s)", route, code, body, why))
		}
		l.mu.Unlock()
	}
}

func (l *load) once(w, i int, idempotent bool) (route string, code int, body []byte, err error) {
	var req *http.Request
	if idempotent {
		route = "get-user"
		req, err = http.NewRequest("GET", fmt.Sprintf("%s/users/%d", l.url, w*100000+i), nil)
	} else {
		route = "echo-int"
		req, err = http.NewRequest("POST", l.url+"/echoInt", strings.NewReader(strconv.Itoa(i)))
		req.Header.Set("Content-Type", "application/json")
	}
	if err != nil {
		return route, 0, nil, err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return route, 0, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return route, resp.StatusCode, body, err
}

// judge says what is wrong with an answer. While a provider goes away an
// idempotent call must succeed (it fails over), a non-idempotent one
// succeeds or is a clean 503 naming the upstream, never a timeout or an
// internal error; otherwise every call succeeds.
func (l *load) judge(outage, idempotent bool, code int, body []byte, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case code == http.StatusOK:
		return ""
	case !outage:
		return "a call failed with no provider going away"
	case idempotent:
		return "an idempotent call did not fail over"
	case code != http.StatusServiceUnavailable:
		return "want 200 or 503"
	}
	var r response
	if json.Unmarshal(body, &r) != nil || r.Error.Code != "no_provider" || r.Error.Upstream != "pool" || r.Error.Route != "echo-int" {
		return "not a no_provider error naming the route and upstream"
	}
	for _, h := range l.hidden {
		if strings.Contains(string(body), h) {
			return "the body shows " + h
		}
	}
	return ""
}

// TestDubboFailoverUnderLoad: two providers on one upstream under load.
// The victim is killed, restarted on its port, then stopped gracefully;
// idempotent calls fail over every time, non-idempotent ones answer 200 or
// a clean 503, and the restarted provider gets calls again within a second
// of answering. The Go provider exits at once on SIGTERM; the Node
// provider first sends a READONLY event and finishes the calls in flight.
func TestDubboFailoverUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		name   string
		victim func(*testing.T, *wire.Client) failoverPeer
	}{
		{"go provider", func(t *testing.T, c *wire.Client) failoverPeer { return newGoPeer(t, c) }},
		{"node provider", func(t *testing.T, c *wire.Client) failoverPeer { return newNodePeer(t, c) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := probe(t)
			survivor := newGoPeer(t, c)
			victim := tc.victim(t, c)
			survivor.await(t)
			if g, ok := victim.(*goPeer); ok {
				g.await(t)
			}
			b := startLoggedBridge(t, failoverMapping(victim.addr(), survivor.addr()))
			runFailover(t, b, victim, survivor)
		})
	}
}

func runFailover(t *testing.T, b *bridge, victim, survivor failoverPeer) {
	hidden := []string{"127.0.0.1", victim.addr(), survivor.addr()}
	l := startLoad(b.url, hidden, 8)
	defer l.stop()
	waitHits(t, "both providers to get calls", time.Now().Add(5*time.Second), victim, survivor)
	time.Sleep(300 * time.Millisecond)

	l.enter("killed", true)
	victim.kill(t)
	time.Sleep(700 * time.Millisecond)

	l.enter("restarted", false)
	victim.restart(t)
	answering := time.Now()
	waitHits(t, "calls to reach the restarted provider", answering.Add(time.Second), victim)
	t.Logf("the restarted provider had calls %v after it answered", time.Since(answering).Round(time.Millisecond))

	l.enter("stopping", true)
	victim.stop(t)
	time.Sleep(300 * time.Millisecond)

	l.enter("stopped", false)
	time.Sleep(300 * time.Millisecond)
	phases := l.stop()
	for _, phase := range l.order {
		st := phases[phase]
		t.Logf("%-9s %v", phase, st.status)
		for _, bad := range st.bad[:min(len(st.bad), 5)] {
			t.Errorf("%s: %s", phase, bad)
		}
		if len(st.bad) > 5 {
			t.Errorf("%s: %d more bad answers", phase, len(st.bad)-5)
		}
		// The load went on: no phase was spent waiting on a dead socket.
		for _, route := range []string{"get-user", "echo-int"} {
			if n := sum(st.status[route]); n < 10 {
				t.Errorf("%s: only %d answers on %s", phase, n, route)
			}
		}
	}
}

// waitHits waits until each provider has received calls, up to deadline.
func waitHits(t *testing.T, what string, deadline time.Time, peers ...failoverPeer) {
	t.Helper()
	for _, p := range peers {
		for p.hits(t) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("waited in vain for %s (%s has had none)", what, p.addr())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func sum(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
