package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The direct-client rows run in a child process of their own (this binary
// again, with -child), pinned like the bridge, so that "direct" and
// "bridge" are each one process on the core under test. A client child
// reads commands on stdin:
//
//	run C WARM     make C workers, warm each up WARM times, print "warm"
//	go DURATION    measure, print the result as one JSON line
//
// so the parent can read its peers' CPU between the warm-up and the
// measurement. The noop-http child is a server instead: it prints its
// address and serves until killed.

// The lines a client child answers with (libraries may print to stdout
// too: these prefixes are the bench's own).
const (
	childReady        = "bench-child: ready"
	childWarm         = "bench-child: warm"
	childResultPrefix = "bench-child: result "
)

// childResult is a result on the wire between child and parent.
type childResult struct {
	N        int           `json:"n"`
	Elapsed  time.Duration `json:"elapsed"`
	P50      time.Duration `json:"p50"`
	P99      time.Duration `json:"p99"`
	Errors   int           `json:"errors"`
	FirstErr string        `json:"first_err,omitempty"`
}

// childMain is the process's whole life as a child of kind.
func childMain(kind, target string, size int) error {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if kind == "noop-http" {
		return serveNoop(target)
	}
	mk, closeFn, err := childClient(kind, target, size, quiet)
	if err != nil {
		return err
	}
	defer closeFn()
	fmt.Println(childReady)
	return childLoop(mk, kind)
}

// childClient builds the client a kind of child measures.
func childClient(kind, target string, size int, log *slog.Logger) (opFactory, func(), error) {
	switch kind {
	case "dubbogo-dubbo", "dubbogo-triple":
		return dubboGoClient(strings.TrimPrefix(kind, "dubbogo-"), target, log)
	case "wire":
		return wireClient(target, log)
	case "nats-js", "nats-core":
		return natsClient(kind == "nats-js", target, size)
	}
	return nil, nil, fmt.Errorf("unknown child kind %q", kind)
}

// childLoop serves the parent's run/go commands until stdin closes.
func childLoop(mk opFactory, kind string) error {
	in := bufio.NewScanner(os.Stdin)
	var ops []func() error
	var dones []func()
	release := func() {
		for _, d := range dones {
			d()
		}
		ops, dones = nil, nil
	}
	defer release()
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 3 && f[0] == "run":
			release()
			c, _ := strconv.Atoi(f[1])
			warm, _ := strconv.Atoi(f[2])
			for w := range c {
				op, done, err := mk(w)
				if err != nil {
					return fmt.Errorf("%s worker %d: %w", kind, w, err)
				}
				ops = append(ops, op)
				if done != nil {
					dones = append(dones, done)
				}
			}
			if err := warmUp(ops, warm); err != nil {
				return fmt.Errorf("%s: %w", kind, err)
			}
			fmt.Println(childWarm)
		case len(f) == 2 && f[0] == "go":
			d, err := time.ParseDuration(f[1])
			if err != nil {
				return err
			}
			r := measureOps(ops, d)
			if flush != nil {
				flush() // what was queued reaches the peer before its CPU is read
			}
			out, _ := json.Marshal(childResult{N: r.n, Elapsed: r.elapsed, P50: r.p50, P99: r.p99, Errors: r.errors, FirstErr: r.firstErr})
			fmt.Println(childResultPrefix + string(out))
		default:
			return fmt.Errorf("%s: unknown command %q", kind, in.Text())
		}
	}
	return in.Err()
}

// flush, when set by a client kind, is called after each measurement.
var flush func()

// natsClient publishes from workers sharing one connection, as an
// application (and the bridge) does.
func natsClient(withAck bool, url string, size int) (opFactory, func(), error) {
	nc, err := nats.Connect(url, nats.Name("bench-direct"))
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to %s: %w", url, err)
	}
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = 'x'
	}
	if !withAck {
		flush = func() { _ = nc.Flush() }
		return func(int) (func() error, func(), error) {
			return func() error { return nc.Publish("core.direct.sent", payload) }, nil, nil
		}, nc.Close, nil
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return func(int) (func() error, func(), error) {
		return func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := js.Publish(ctx, "bench.direct.created", payload)
			return err
		}, nil, nil
	}, nc.Close, nil
}

// serveNoop is a no-op Go HTTP handler: the cost of HTTP alone, answered
// as the JetStream route answers.
func serveNoop(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("no-op server: %w", err)
	}
	fmt.Println("listening", l.Addr())
	answer := []byte(`{"stream":"BENCH","seq":1,"duplicate":false}`)
	return http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(answer)
	}))
}

// childProc is the parent's side of a client child.
type childProc struct{ *proc }

// startClient runs a client child on the core under test and waits until
// it has connected.
func startClient(b *binaries, kind, target string, size int) (*childProc, error) {
	p, err := startProc(kind, cpuUnderTest, true, true, b.self, "-child", kind, "-target", target, "-size", strconv.Itoa(size))
	if err != nil {
		return nil, err
	}
	c := &childProc{p}
	if _, err := c.next(childReady, 60*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return c, nil
}

// next waits for the child's next line, which must start with want.
func (c *childProc) next(want string, within time.Duration) (string, error) {
	for {
		select {
		case line := <-c.out.feed:
			if strings.HasPrefix(line, want) {
				return line, nil
			}
			// anything else is a library's chatter on stdout
		case <-c.exited:
			return "", fmt.Errorf("%s exited (waiting for %q)", c.name, want)
		case <-time.After(within):
			return "", fmt.Errorf("%s: no %q within %v", c.name, want, within)
		}
	}
}

// prepare makes the child's workers and warms them up.
func (c *childProc) prepare(conc, warm int) error {
	if _, err := fmt.Fprintf(c.stdin, "run %d %d\n", conc, warm); err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	_, err := c.next(childWarm, 2*time.Minute)
	return err
}

// measure runs the warmed-up workers for d.
func (c *childProc) measure(d time.Duration) (result, error) {
	if _, err := fmt.Fprintf(c.stdin, "go %s\n", d); err != nil {
		return result{}, fmt.Errorf("%s: %w", c.name, err)
	}
	line, err := c.next(childResultPrefix, d+time.Minute)
	if err != nil {
		return result{}, err
	}
	var r childResult
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, childResultPrefix)), &r); err != nil {
		return result{}, fmt.Errorf("%s: result %q: %w", c.name, line, err)
	}
	return result{n: r.N, elapsed: r.Elapsed, p50: r.P50, p99: r.P99, errors: r.Errors, firstErr: r.FirstErr}, nil
}

func (c *childProc) close() {
	_ = c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(2 * time.Second):
	}
	c.stop()
}
