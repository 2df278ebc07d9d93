package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// runNATS measures, at each concurrency, HTTP → bridge → JetStream (with
// ack) and → core publish, direct nats.go publishers of both kinds, and a
// no-op Go HTTP handler. nats-server is its own process on the peers'
// core, so its CPU per message is read for each path.
func runNATS(b *binaries, dir string, o options) error {
	ns, url, err := startNATSServer(b, filepath.Join(dir, "js"))
	if err != nil {
		return err
	}
	defer ns.stop()
	br, brAddr, err := startBridge(b, dir, "nats-bridge", natsMapping(url))
	if err != nil {
		return err
	}
	defer br.stop()
	if err := waitStream(url, "BENCH"); err != nil {
		return err
	}
	noop, noopAddr, err := startNoop(b)
	if err != nil {
		return err
	}
	defer noop.stop()
	js, err := startClient(b, "nats-js", url, o.size)
	if err != nil {
		return err
	}
	defer js.close()
	core, err := startClient(b, "nats-core", url, o.size)
	if err != nil {
		return err
	}
	defer core.close()

	payload := bytes.Repeat([]byte("x"), o.size)
	jsReq := newHTTPReq(brAddr, "POST", "/js/k", "application/octet-stream", payload, 201)
	coreReq := newHTTPReq(brAddr, "POST", "/core/k", "application/octet-stream", payload, 202)
	noopReq := newHTTPReq(noopAddr, "POST", "/js/k", "application/octet-stream", payload, 201)

	fmt.Printf("\n== NATS: %d-byte publishes, nats-server as its own process, %v per row ==\n", o.size, o.duration)
	fmt.Println("under test: the bridge, the direct publisher's process (its own load generator) or the no-op HTTP server; loadgen: this process (HTTP client)")
	printHeader("nats-server µs")
	for _, c := range o.natsConc {
		var rows []row
		for _, m := range []struct {
			label string
			http  *httpReq
			ut    *proc
			cl    *childProc
		}{
			{"HTTP → bridge → JetStream (ack)", &jsReq, br, nil},
			{"direct nats.go JetStream publish", nil, nil, js},
			{"HTTP → bridge → core publish", &coreReq, br, nil},
			{"direct nats.go core publish", nil, nil, core},
			{"no-op Go HTTP handler", &noopReq, noop, nil},
		} {
			var r row
			if m.cl != nil {
				r, err = clientRow(m.label, c, o, m.cl, ns)
			} else {
				r, err = httpRow(m.label, c, o, m.ut, ns, *m.http)
			}
			if err != nil {
				return err
			}
			rows = append(rows, r)
		}
		printRows(rows)
		bjs, djs, bcore, dcore, nop := rows[0], rows[1], rows[2], rows[3], rows[4]
		fmt.Printf("  -> c=%d JetStream: bridge/direct rps %s, bridge/no-op HTTP rps %s; bridge CPU %.1f µs/publish (direct %.1f, bridge/direct %s); nats-server µs/msg bridge %.1f vs direct %.1f (%s)\n",
			c, ratio(bjs.rps(), djs.rps()), ratio(bjs.rps(), nop.rps()), bjs.ut, djs.ut, ratio(bjs.ut, djs.ut), bjs.peer, djs.peer, ratio(bjs.peer, djs.peer))
		addSummary(fmt.Sprintf("NATS JetStream bridge rps / direct nats.go publishers, c=%d", c), "%s", ratio(bjs.rps(), djs.rps()))
		addSummary(fmt.Sprintf("NATS JetStream bridge CPU µs per publish, c=%d", c), "%.1f (direct %.1f; nats-server %.1f vs %.1f)", bjs.ut, djs.ut, bjs.peer, djs.peer)
		fmt.Printf("  -> c=%d core:      bridge/direct rps %s, bridge/no-op HTTP rps %s; bridge CPU %.1f µs/publish (direct %.1f, no-op HTTP %.1f); nats-server µs/msg bridge %.1f vs direct %.1f (%s)\n",
			c, ratio(bcore.rps(), dcore.rps()), ratio(bcore.rps(), nop.rps()), bcore.ut, dcore.ut, nop.ut, bcore.peer, dcore.peer, ratio(bcore.peer, dcore.peer))
	}
	return nil
}

// natsMapping publishes POST /js/{k} to JetStream and POST /core/{k} as a
// core publish to a subject no stream holds (so nats-server stores
// nothing for it).
func natsMapping(url string) string {
	return fmt.Sprintf(`
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: js
        match: { path: "/js/{k}", methods: [POST] }
        nats: { upstream: events, subject: "bench.{k}.created", mode: jetstream, timeout: 10s }
      - name: core
        match: { path: "/core/{k}", methods: [POST] }
        nats: { upstream: events, subject: "core.{k}.sent", mode: core }
upstreams:
  nats:
    - name: events
      urls: [ %q ]
      provision: true
      streams: [ { name: BENCH, subjects: [ "bench.>" ] } ]
`, url)
}

// startNATSServer runs nats-server built from the module, JetStream on,
// its store in dir, on a free loopback port and the peers' core.
func startNATSServer(b *binaries, dir string) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := startProc("nats-server", cpuPeers, false, false, b.ns, "-a", "127.0.0.1", "-p", port(addr), "-js", "-sd", dir,
		"-l", filepath.Join(filepath.Dir(dir), "nats-server.log"))
	if err != nil {
		return nil, "", err
	}
	url := "nats://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err := jetStreamUp(url); err == nil {
			return p, url, nil
		} else if !p.alive() || time.Now().After(deadline) {
			p.stop()
			return nil, "", fmt.Errorf("nats-server at %s not serving JetStream: %w", url, err)
		}
	}
}

func jetStreamUp(url string) error {
	nc, err := nats.Connect(url, nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

// waitStream waits until the bridge has provisioned the stream the direct
// publishers also write to.
func waitStream(url, name string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.Stream(ctx, name)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stream %s not provisioned by the bridge: %w", name, err)
		}
	}
}

// startNoop runs the no-op HTTP server child on the core under test.
func startNoop(b *binaries) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := startProc("noop-http", cpuUnderTest, true, false, b.self, "-child", "noop-http", "-target", addr)
	if err != nil {
		return nil, "", err
	}
	if err := p.waitLine("listening", 30*time.Second); err != nil {
		p.stop()
		return nil, "", err
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
		p.stop()
		return nil, "", fmt.Errorf("no-op server: %w", err)
	} else {
		c.Close()
	}
	return p, strings.TrimSpace(addr), nil
}
