package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"dubbo.apache.org/dubbo-go/v3"
	"dubbo.apache.org/dubbo-go/v3/client"
	"dubbo.apache.org/dubbo-go/v3/common/constant"
	"dubbo.apache.org/dubbo-go/v3/graceful_shutdown"
	// dubbo-go registers its protocols, filters and clusters through
	// these side effects; without them there is no dubbo protocol.
	_ "dubbo.apache.org/dubbo-go/v3/imports"
	hessian "github.com/apache/dubbo-go-hessian2"

	dubboproto "github.com/protogate/protogate/protocols/dubbo"
	"github.com/protogate/protogate/protocols/dubbo/wire"
)

// runDubbo measures echoString("hello") on the example provider over dubbo
// and triple, at each concurrency: HTTP → bridge (protogate bridge, its own
// transport) → provider; dubbo-go's generic client called directly; and,
// over dubbo, protogate's wire client called directly. The bridge and the
// direct clients are each a process on the core under test; the provider
// and this process (the HTTP load generator) share the other.
func runDubbo(b *binaries, dir string, o options) error {
	dubboAddr, err := freeAddr()
	if err != nil {
		return err
	}
	tripleAddr, err := freeAddr()
	if err != nil {
		return err
	}
	prov, err := startProvider(b, dubboAddr, tripleAddr)
	if err != nil {
		return err
	}
	defer prov.stop()
	br, brAddr, err := startBridge(b, dir, "dubbo-bridge", dubboMapping(dubboAddr, tripleAddr))
	if err != nil {
		return err
	}
	defer br.stop()

	clients := map[string]*childProc{}
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	for kind, target := range map[string]string{"dubbogo-dubbo": dubboAddr, "dubbogo-triple": tripleAddr, "wire": dubboAddr} {
		c, err := startClient(b, kind, target, 0)
		if err != nil {
			return err
		}
		clients[kind] = c
	}

	fmt.Printf("\n== Dubbo: echoString(\"hello\") on the example provider, %v per row ==\n", o.duration)
	fmt.Println("under test: the bridge process, or the direct client's process (its own load generator); loadgen: this process (HTTP client)")
	printHeader("provider µs")
	for _, c := range o.dubboConc {
		for _, proto := range []string{"dubbo", "triple"} {
			path := "/echo"
			if proto == "triple" {
				path = "/echo-tri"
			}
			req := newHTTPReq(brAddr, "POST", path, "application/json", []byte(`"hello"`), 200)
			bridge, err := httpRow(proto+" HTTP → bridge → provider", c, o, br, prov, req)
			if err != nil {
				return err
			}
			direct, err := clientRow(proto+" dubbo-go generic, direct", c, o, clients["dubbogo-"+proto], prov)
			if err != nil {
				return err
			}
			rows := []row{bridge, direct}
			var own row
			if proto == "dubbo" {
				if own, err = clientRow(proto+" protogate wire, direct", c, o, clients["wire"], prov); err != nil {
					return err
				}
				rows = append(rows, own)
			}
			printRows(rows)
			fmt.Printf("  -> %s c=%d: bridge/dubbo-go rps %s", proto, c, ratio(bridge.rps(), direct.rps()))
			if proto == "dubbo" {
				fmt.Printf(", bridge/wire rps %s", ratio(bridge.rps(), own.rps()))
			}
			fmt.Printf("; bridge CPU %.1f µs/call (HTTP included), dubbo-go's %.1f (bridge/dubbo-go %s); provider µs/call bridge/dubbo-go %s\n",
				bridge.ut, direct.ut, ratio(bridge.ut, direct.ut), ratio(bridge.peer, direct.peer))
			addSummary(fmt.Sprintf("Dubbo bridge rps / direct dubbo-go %s client, c=%d", proto, c), "%s", ratio(bridge.rps(), direct.rps()))
			addSummary(fmt.Sprintf("Dubbo bridge CPU µs per call (HTTP included), %s, c=%d", proto, c), "%.1f (direct dubbo-go %.1f)", bridge.ut, direct.ut)
		}
	}
	return nil
}

// dubboMapping serves POST /echo over dubbo and POST /echo-tri over
// triple, each as echoString to a provider listed by address.
func dubboMapping(dubboAddr, tripleAddr string) string {
	return fmt.Sprintf(`
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: echo
        match: { path: /echo, methods: [POST] }
        dubbo: { upstream: bench, service: com.example.UserService, method: echoString, params: [ { from: body, type: java.lang.String } ], timeout: 10s }
      - name: echo-tri
        match: { path: /echo-tri, methods: [POST] }
        dubbo: { upstream: bench-tri, service: com.example.UserService, method: echoString, params: [ { from: body, type: java.lang.String } ], timeout: 10s }
upstreams:
  dubbo:
    - { name: bench, protocol: dubbo, urls: [ "dubbo://%s" ] }
    - { name: bench-tri, protocol: triple, urls: [ "tri://%s" ] }
`, dubboAddr, tripleAddr)
}

// startProvider runs the example provider on the peers' core, both
// protocols on the given addresses.
func startProvider(b *binaries, dubboAddr, tripleAddr string) (*proc, error) {
	p, err := startProc("dubbo-provider", cpuPeers, false, false, b.provider,
		"-dubbo-port", port(dubboAddr), "-triple-port", port(tripleAddr), "-log-level", "warn")
	if err != nil {
		return nil, err
	}
	if err := p.waitLine("provider ready", 60*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// startBridge writes mapping (with a bridge address of its own) and runs
// protogate bridge on it, on the core under test, until /readyz answers.
func startBridge(b *binaries, dir, name, mapping string) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	file := filepath.Join(dir, name+".yaml")
	mapping += fmt.Sprintf("bridge:\n  address: %s\n", addr)
	if err := os.WriteFile(file, []byte(mapping), 0o600); err != nil {
		return nil, "", fmt.Errorf("writing the bridge's mapping: %w", err)
	}
	p, err := startProc(name, cpuUnderTest, true, false, b.protogate, "bridge", "-c", file, "--log-level", "warn")
	if err != nil {
		return nil, "", err
	}
	if err := p.waitHTTP("http://"+addr+"/readyz", 60*time.Second); err != nil {
		p.stop()
		return nil, "", err
	}
	return p, addr, nil
}

func port(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[i+1:]
		}
	}
	return addr
}

// dubboGoClient is a dubbo-go generic reference to the provider, as an
// application using dubbo-go's generic client directly would make one for
// a direct URL (failfast, no retries); its workers share it.
func dubboGoClient(proto, addr string, log *slog.Logger) (opFactory, func(), error) {
	ins, err := dubbo.NewInstance(
		dubbo.WithName("protogate-bench"),
		dubboproto.LoggerOption(log),
		dubbo.WithShutdown(graceful_shutdown.WithoutInternalSignal()),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("dubbo-go instance: %w", err)
	}
	protoOpt, scheme := client.WithClientProtocolDubbo(), "dubbo://"
	if proto == "triple" {
		protoOpt, scheme = client.WithClientProtocolTriple(), "tri://"
	}
	cli, err := ins.NewClient(protoOpt, client.WithClientSerialization(constant.Hessian2Serialization))
	if err != nil {
		return nil, nil, fmt.Errorf("dubbo-go client: %w", err)
	}
	gs, err := cli.NewGenericService("com.example.UserService", client.WithURL(scheme+addr),
		client.WithRequestTimeout(10*time.Second), client.WithRetries(0), client.WithClusterFailFast())
	if err != nil {
		return nil, nil, fmt.Errorf("dubbo-go generic reference: %w", err)
	}
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, err := gs.Invoke(ctx, "echoString", []string{"java.lang.String"}, []hessian.Object{"hello"})
		if err == nil && got != "hello" {
			err = fmt.Errorf("echoString answered %v", got)
		}
		return err
	}
	return func(int) (func() error, func(), error) { return call, nil, nil }, func() {}, nil
}

// wireClient is protogate's own dubbo transport called directly.
func wireClient(addr string, log *slog.Logger) (opFactory, func(), error) {
	wc, err := wire.NewClient(wire.Options{Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("wire client: %w", err)
	}
	inv := wire.Invocation{Service: "com.example.UserService", Method: "echoString", Types: []string{"java.lang.String"}, Args: []any{"hello"}}
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, _, err := wc.Call(ctx, addr, inv)
		if err == nil && got != "hello" {
			err = fmt.Errorf("echoString answered %v", got)
		}
		return err
	}
	return func(int) (func() error, func(), error) { return call, nil, nil }, func() { _ = wc.Close() }, nil
}

// warmFor is how many uncounted calls each of c workers makes first.
func warmFor(c int) int { return max(10, 400/c) }
