package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"dubbo.apache.org/dubbo-go/v3"
	"dubbo.apache.org/dubbo-go/v3/client"
	"dubbo.apache.org/dubbo-go/v3/common/constant"
	"dubbo.apache.org/dubbo-go/v3/filter/generic"
	"dubbo.apache.org/dubbo-go/v3/graceful_shutdown"
	// dubbo-go registers its protocols, filters and clusters through
	// these side effects; without them there is no dubbo protocol.
	_ "dubbo.apache.org/dubbo-go/v3/imports"
	hessian "github.com/apache/dubbo-go-hessian2"

	"github.com/protogate/protogate/bridges"
	"github.com/protogate/protogate/config"
	dubboproto "github.com/protogate/protogate/protocols/dubbo"
	"github.com/protogate/protogate/protocols/dubbo/wire"
	"github.com/protogate/protogate/routetable"
)

// dubboRow is one measured path, with the CPU it cost per call.
type dubboRow struct {
	result
	selfUs, provUs float64 // CPU µs per call: this process, the provider
}

// runDubbo measures echoString on the example provider three ways, at each
// concurrency: HTTP through an in-process bridge (its own transport to the
// provider), dubbo-go's generic client called directly, and protogate's
// wire client called directly. CPU per call is this process's (getrusage;
// for the bridge row that includes the HTTP client) and the provider's
// (/proc/PID/stat, in 10 ms ticks).
func runDubbo(d time.Duration, providerBin string) error {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	prov, err := startBenchProvider(providerBin)
	if err != nil {
		return err
	}
	defer prov.stop()

	br, err := startDubboBridge(prov.addr, quiet)
	if err != nil {
		return err
	}
	defer br.Shutdown(context.Background())
	gs, err := dubboGoGeneric(prov.addr, quiet)
	if err != nil {
		return err
	}
	wc, err := wire.NewClient(wire.Options{Logger: quiet})
	if err != nil {
		return fmt.Errorf("wire client: %w", err)
	}
	defer wc.Close()

	viaDubboGo := func(int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := gs.Invoke(ctx, "echoString", []string{"java.lang.String"}, []hessian.Object{"hello"})
		return err
	}
	inv := wire.Invocation{Service: "com.example.UserService", Method: "echoString", Types: []string{"java.lang.String"}, Args: []any{"hello"}}
	viaWire := func(int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _, err := wc.Call(ctx, prov.addr, inv)
		return err
	}

	fmt.Printf("echoString(\"hello\") on the example provider (pid %d), %v per measurement, %d cores\n", prov.cmd.Process.Pid, d, runtime.NumCPU())
	fmt.Printf("CPU per call: bench = this process (for the bridge: HTTP client, bridge and its transport), provider = the provider process\n\n")
	fmt.Printf("%-30s %5s %9s %10s %10s %11s %11s %7s\n", "path", "conc", "req/s", "p50", "p99", "bench µs", "provider µs", "errors")
	for _, c := range []int{1, 16, 64} {
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}, Timeout: 10 * time.Second}
		rows := []dubboRow{
			measure(prov, "HTTP → bridge → provider", c, d, postEcho(hc, "http://"+br.Addr()+"/echo")),
			measure(prov, "dubbo-go generic client", c, d, viaDubboGo),
			measure(prov, "protogate wire client", c, d, viaWire),
		}
		hc.CloseIdleConnections()
		for _, r := range rows {
			fmt.Printf("%-30s %5d %9.0f %10v %10v %11.1f %11.1f %7d\n", r.name, r.concurrency, r.rps(), r.p50.Round(time.Microsecond),
				r.p99.Round(time.Microsecond), r.selfUs, r.provUs, r.errors)
		}
		bridge, direct, own := rows[0], rows[1], rows[2]
		fmt.Printf("  concurrency %d: bridge/dubbo-go throughput %.2f, bridge/wire %.2f; bench CPU per call bridge/dubbo-go %.2f; p50 bridge-dubbo-go %v\n\n",
			c, bridge.rps()/direct.rps(), bridge.rps()/own.rps(), bridge.selfUs/direct.selfUs, (bridge.p50 - direct.p50).Round(time.Microsecond))
	}
	return nil
}

// measure warms op up, then runs it and takes the CPU both processes spent.
func measure(prov *benchProvider, name string, c int, d time.Duration, op func(int) error) dubboRow {
	for i := range 200 {
		if err := op(i); err != nil {
			fmt.Fprintf(os.Stderr, "%s: warm-up call failed: %v\n", name, err)
			break
		}
	}
	self, other := cpuSelf(), cpuOf(prov.cmd.Process.Pid)
	r := run(name, c, d, op)
	row := dubboRow{result: r}
	if r.n > 0 {
		row.selfUs = float64(cpuSelf()-self) / float64(r.n) / 1e3
		row.provUs = float64(cpuOf(prov.cmd.Process.Pid)-other) / float64(r.n) / 1e3
	}
	return row
}

func postEcho(hc *http.Client, url string) func(int) error {
	body := []byte(`"hello"`)
	return func(int) error {
		resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(bytes.TrimSpace(got), body) {
			return fmt.Errorf("status %d: %s", resp.StatusCode, got)
		}
		return nil
	}
}

// startDubboBridge serves POST /echo as echoString over the dubbo protocol,
// a provider listed by address: the bridge's own transport.
func startDubboBridge(addr string, log *slog.Logger) (*bridges.Server, error) {
	mapping := fmt.Sprintf(`
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: echo
        match: { path: /echo, methods: [POST] }
        dubbo: { upstream: bench, service: com.example.UserService, method: echoString, params: [ { from: body, type: java.lang.String } ], timeout: 10s }
upstreams:
  dubbo:
    - { name: bench, protocol: dubbo, urls: [ "dubbo://%s" ] }
bridge:
  address: 127.0.0.1:0
`, addr)
	cfg, err := config.LoadBytes("bench-dubbo.yaml", []byte(mapping))
	if err != nil {
		return nil, fmt.Errorf("bench mapping: %w", err)
	}
	table, err := routetable.FromConfig(cfg, "")
	if err != nil {
		return nil, fmt.Errorf("bench mapping: %w", err)
	}
	br, err := bridges.New(cfg.Bridge, table, bridges.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	if err := br.Start(); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	return br, nil
}

// dubboGoGeneric is a dubbo-go generic reference to the provider, as an
// application using dubbo-go's generic client directly would make one for a
// direct URL (failfast, no retries).
func dubboGoGeneric(addr string, log *slog.Logger) (*generic.GenericService, error) {
	ins, err := dubbo.NewInstance(
		dubbo.WithName("protogate-bench"),
		dubboproto.LoggerOption(log),
		dubbo.WithShutdown(graceful_shutdown.WithoutInternalSignal()),
	)
	if err != nil {
		return nil, fmt.Errorf("dubbo-go instance: %w", err)
	}
	cli, err := ins.NewClient(client.WithClientProtocolDubbo(), client.WithClientSerialization(constant.Hessian2Serialization))
	if err != nil {
		return nil, fmt.Errorf("dubbo-go client: %w", err)
	}
	gs, err := cli.NewGenericService("com.example.UserService", client.WithURL("dubbo://"+addr),
		client.WithRequestTimeout(10*time.Second), client.WithRetries(0), client.WithClusterFailFast())
	if err != nil {
		return nil, fmt.Errorf("dubbo-go generic reference: %w", err)
	}
	return gs, nil
}

// benchProvider is the example provider, run as a child process.
type benchProvider struct {
	addr   string
	cmd    *exec.Cmd
	exited chan struct{}
	tmp    string
}

// startBenchProvider runs bin (built from examples/dubbo-provider when
// empty) on a free loopback port, the dubbo protocol only, and waits for
// its ready line and its port.
func startBenchProvider(bin string) (*benchProvider, error) {
	p := &benchProvider{exited: make(chan struct{})}
	if bin == "" {
		var err error
		if bin, p.tmp, err = buildProvider(); err != nil {
			return nil, err
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p.cmd = exec.Command(bin, "-dubbo-port", strconv.Itoa(port), "-triple-port", "0", "-log-level", "warn")
	ready := &readyLine{seen: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = ready, os.Stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlives the bench
	if err := p.cmd.Start(); err != nil {
		p.removeTmp()
		return nil, fmt.Errorf("starting the provider: %w", err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	select {
	case <-ready.seen:
	case <-p.exited:
		p.removeTmp()
		return nil, fmt.Errorf("the provider exited before it was ready")
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("the provider was not ready within 30s")
	}
	c, err := net.DialTimeout("tcp", p.addr, time.Second)
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("the provider is ready but does not accept connections: %w", err)
	}
	c.Close()
	return p, nil
}

// readyLine closes seen once the provider has printed its ready line.
type readyLine struct {
	seen chan struct{}
	buf  []byte
	done bool
}

func (r *readyLine) Write(b []byte) (int, error) {
	if !r.done {
		r.buf = append(r.buf, b...)
		if bytes.Contains(r.buf, []byte("provider ready")) {
			r.done, r.buf = true, nil
			close(r.seen)
		}
	}
	return len(b), nil
}

func (p *benchProvider) stop() {
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.removeTmp()
}

func (p *benchProvider) removeTmp() {
	if p.tmp != "" {
		_ = os.RemoveAll(p.tmp)
	}
}

// buildProvider builds examples/dubbo-provider of this module into a
// temporary directory.
func buildProvider() (bin, dir string, err error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" {
		return "", "", fmt.Errorf("finding the module root (go env GOMOD): %v", err)
	}
	dir, err = os.MkdirTemp("", "protogate-bench-provider-")
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "dubbo-provider")
	build := exec.Command("go", "build", "-o", bin, "./examples/dubbo-provider")
	build.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := build.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return "", "", fmt.Errorf("building the example provider: %w\n%s", err, out)
	}
	return bin, dir, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("choosing a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// cpuSelf is this process's user+system CPU time in nanoseconds.
func cpuSelf() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// cpuOf is a process's user+system CPU time in nanoseconds, from
// /proc/PID/stat (utime and stime, in clock ticks of 10 ms).
func cpuOf(pid int) int64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // after the command name
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return (ut + st) * int64(tick)
}
