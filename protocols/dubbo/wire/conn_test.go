package wire

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	hessian "github.com/apache/dubbo-go-hessian2"
)

// A provider killed mid-call fails every pending call at once, saying the
// requests were sent; the address is then unreachable (nothing sent),
// and a provider restarted on it is used again within a second.
func TestProviderKilled(t *testing.T) {
	p := startProvider(t)
	c := newTestClient(t, Options{RedialBackoff: 100 * time.Millisecond})
	pl := warm(t, c, p.addr)

	const calls = 4
	type result struct {
		err error
		at  time.Time
	}
	results := make(chan result, calls)
	for range calls {
		go func() {
			_, _, err := c.Call(within(t, 10*time.Second), p.addr, userService("slow", []string{"long"}, int64(5000)))
			results <- result{err, time.Now()}
		}()
	}
	waitFor(t, "calls pending", func() bool { return pendingTotal(pl) == calls })
	time.Sleep(100 * time.Millisecond) // the provider has read them
	killed := time.Now()
	p.kill()
	for range calls {
		r := <-results
		var cl *ConnectionLostError
		if !errors.As(r.err, &cl) || !cl.Sent || NotSent(r.err) {
			t.Fatalf("error %T %v, want connection lost after sending", r.err, r.err)
		}
		if late := r.at.Sub(killed); late > time.Second {
			t.Fatalf("a pending call failed %s after the kill", late)
		}
	}

	// Both read loops see the end of their streams; a call made before
	// the second did could still go out on it (and be lost, sent).
	waitFor(t, "the connections to close", func() bool { return len(pl.conns()) == 0 })
	start := time.Now()
	_, _, err := c.Call(within(t, 10*time.Second), p.addr, userService("lastCall", nil))
	if !errors.Is(err, ErrUnreachable) || !NotSent(err) || time.Since(start) > time.Second {
		t.Fatalf("after the kill: %T %v after %s, want unreachable at once", err, err, time.Since(start))
	}

	restarted := restartProvider(t, p)
	ready := time.Now()
	for {
		_, _, err := c.Call(within(t, 10*time.Second), restarted.addr, userService("lastCall", nil))
		if err == nil {
			break
		}
		if time.Since(ready) > time.Second {
			t.Fatalf("the restarted provider is not used a second after it is ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Many goroutines share the connections; every answer reaches its caller.
func TestConcurrentCalls(t *testing.T) {
	p := sharedProvider(t)
	c := newTestClient(t, Options{})
	const workers, each = 64, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for g := range workers {
		wg.Go(func() {
			for i := range each {
				want := int64(g*1000 + i)
				inv := userService("echoLong", []string{"long"}, want)
				if i%2 == 1 {
					inv = userService("echoString", []string{"java.lang.String"}, strconv.FormatInt(want, 10))
				}
				v, _, err := c.Call(within(t, 10*time.Second), p.addr, inv)
				if err != nil {
					errs <- err
					return
				}
				if v != want && v != strconv.FormatInt(want, 10) {
					errs <- fmt.Errorf("worker %d call %d got %#v", g, i, v)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := len(c.pool(p.addr).conns()); n != DefaultConnsPerAddr {
		t.Fatalf("%d connections, want %d", n, DefaultConnsPerAddr)
	}
}

// The first calls of a fresh client race to fill its slots; every
// connection made must stay in a slot, where Close finds it: one that
// escaped would keep its read loop, and Close would wait for ever.
func TestFirstCallsFillSlotsOnce(t *testing.T) {
	p := sharedProvider(t)
	for round := range 20 {
		c, err := NewClient(Options{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				if _, _, err := c.Call(within(t, 10*time.Second), p.addr, userService("lastCall", nil)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		closed := make(chan struct{})
		go func() {
			_ = c.Close()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Close still waits after 5s: a connection escaped its pool", round)
		}
	}
}

// Idle connections live on heartbeats the provider answers: with a 60 ms
// interval, a connection that heard nothing for 180 ms would be closed.
func TestHeartbeatKeepsIdleConnection(t *testing.T) {
	p := sharedProvider(t)
	c := newTestClient(t, Options{HeartbeatInterval: 60 * time.Millisecond, ConnsPerAddr: 1})
	pl := warm(t, c, p.addr)
	before := pl.conns()
	time.Sleep(600 * time.Millisecond)
	after := pl.conns()
	if len(before) != 1 || len(after) != 1 || before[0] != after[0] {
		t.Fatalf("connections %p then %p: the idle one was replaced", before, after)
	}
	if idle := time.Since(time.Unix(0, after[0].lastRead.Load())); idle > 120*time.Millisecond {
		t.Fatalf("nothing read for %s while idle: no heartbeat answers", idle)
	}
}

func TestUnreachable(t *testing.T) {
	port, err := freePort() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c := newTestClient(t, Options{})
	for i := range 2 { // the second within the redial backoff
		start := time.Now()
		_, _, err := c.Call(within(t, 10*time.Second), addr, userService("lastCall", nil))
		var ue *UnreachableError
		if !errors.As(err, &ue) || !NotSent(err) || ue.Addr != addr {
			t.Fatalf("call %d: %T %v, want unreachable", i, err, err)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("call %d took %s", i, took)
		}
	}
}

// Once the provider has announced its shutdown on a connection, calls to
// the address fail unsent, so callers go to another provider; when the
// provider has closed its connections and comes back, it is used again.
// (The example provider sends no announcement: the mark is set here as
// the read loop sets it on a readonly event or closing attachment.)
func TestProviderClosing(t *testing.T) {
	p := startProvider(t)
	c := newTestClient(t, Options{RedialBackoff: 50 * time.Millisecond})
	pl := warm(t, c, p.addr)
	for _, cn := range pl.conns() {
		cn.markClosing("test")
	}
	if !c.Closing(p.addr) {
		t.Fatal("the address is not marked closing")
	}
	_, _, err := c.Call(within(t, 10*time.Second), p.addr, userService("lastCall", nil))
	if !errors.Is(err, ErrProviderClosing) || !NotSent(err) {
		t.Fatalf("error %T %v, want provider closing, not sent", err, err)
	}
	p.stop()
	waitFor(t, "the closing connections to end", func() bool { return !c.Closing(p.addr) })
	restarted := restartProvider(t, p)
	waitFor(t, "a call to the restarted provider", func() bool {
		_, _, err := c.Call(within(t, 10*time.Second), restarted.addr, userService("lastCall", nil))
		return err == nil
	})
}

func TestReadonlyEvent(t *testing.T) {
	for _, tt := range []struct {
		body any
		want bool
	}{{"R", true}, {nil, false}, {"H", false}, {int32(1), false}} {
		e := hessian.NewEncoder()
		if err := e.Encode(tt.body); err != nil {
			t.Fatal(err)
		}
		if got := isReadonlyEvent(e.Buffer()); got != tt.want {
			t.Errorf("event body %#v: readonly %v, want %v", tt.body, got, tt.want)
		}
	}
}

// warm makes one call so the pool has a connection, and returns the pool.
func warm(t *testing.T, c *Client, addr string) *pool {
	t.Helper()
	if _, _, err := c.Call(within(t, 10*time.Second), addr, userService("lastCall", nil)); err != nil {
		t.Fatal(err)
	}
	return c.pool(addr)
}

func pendingTotal(p *pool) int {
	n := 0
	for _, cn := range p.conns() {
		n += cn.pendingCount()
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
