package xds_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/protogate/protogate/xds"
)

// benchClientsEnv makes the test binary an ADS client process for
// BenchmarkIdleStreamMemory: "ADDRESS COUNT".
const benchClientsEnv = "PROTOGATE_BENCH_IDLE_CLIENTS"

func TestMain(m *testing.M) {
	if spec := os.Getenv(benchClientsEnv); spec != "" {
		os.Exit(idleClients(spec))
	}
	if spec := os.Getenv(largeClientsEnv); spec != "" {
		os.Exit(largeClients(spec))
	}
	os.Exit(m.Run())
}

// realisticMapping is one group with 200 routes over 50 upstreams: 100
// HTTP routes to 25 HTTP services and 100 NATS request routes to 25 NATS
// upstreams.
func realisticMapping() string {
	var b strings.Builder
	b.WriteString("listeners:\n  - name: public\n    address: 127.0.0.1:10000\n    routes:\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, "      - name: web-%03d\n        match: { prefix: /web/%03d/ }\n        http: { upstream: web-%02d }\n", i, i, i%25)
		fmt.Fprintf(&b, "      - name: ask-%03d\n        match: { path: \"/ask/%03d/{id}\" }\n        nats: { upstream: bus-%02d, subject: \"ask.%03d.{id}\", mode: request }\n", i, i, i%25, i)
	}
	b.WriteString("upstreams:\n  http:\n")
	for i := 0; i < 25; i++ {
		fmt.Fprintf(&b, "    - { name: web-%02d, endpoints: [ \"127.0.0.1:%d\" ] }\n", i, 9000+i)
	}
	b.WriteString("  nats:\n")
	for i := 0; i < 25; i++ {
		fmt.Fprintf(&b, "    - { name: bus-%02d, urls: [ \"nats://127.0.0.1:%d\" ] }\n", i, 4300+i)
	}
	b.WriteString("xds:\n  groups:\n    - { name: edge, listeners: [ public ] }\n")
	return b.String()
}

// BenchmarkIdleStreamMemory connects idle ADS clients, each on its own
// connection as Envoys are, holding clusters, endpoints, listeners and
// routes of a realistic group, and reports the control plane's memory per
// stream. The clients run in another process so only the server's memory
// is counted. Run it with -benchtime=1x.
func BenchmarkIdleStreamMemory(b *testing.B) {
	const clients = 200
	path := writeBenchMapping(b)
	srv := xds.New(xds.Options{
		Address: "127.0.0.1:0", AdminAddress: "127.0.0.1:0", MaxMessageSize: 16 << 20, MaxStreamsPerPeer: 16,
		KeepaliveTime: 30 * time.Second, KeepaliveTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err := srv.Reload("bench", source(path)); err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	for i := 0; i < b.N; i++ {
		before, goroutines := memNow(), runtime.NumGoroutine()
		stop := startIdleClients(b, srv.XDSAddr(), clients)
		waitAllACKed(b, srv, clients)
		after := memNow()
		b.ReportMetric(float64(after.total()-before.total())/clients, "B/stream")
		b.ReportMetric(float64(after.heap-before.heap)/clients, "heap-B/stream")
		b.ReportMetric(float64(after.stack-before.stack)/clients, "stack-B/stream")
		b.ReportMetric(float64(runtime.NumGoroutine()-goroutines)/clients, "goroutines/stream")
		stop()
	}
}

func writeBenchMapping(b *testing.B) string {
	path := b.TempDir() + "/mapping.yaml"
	if err := os.WriteFile(path, []byte(realisticMapping()), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// mem is the live heap and the goroutine stacks.
type mem struct{ heap, stack int64 }

func (m mem) total() int64 { return m.heap + m.stack }

// memNow is mem after a collection.
func memNow() mem {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return mem{int64(m.HeapAlloc), int64(m.StackInuse)}
}

// startIdleClients runs the client process and waits until every client
// holds its configuration; stop ends the process.
func startIdleClients(b *testing.B, addr string, n int) (stop func()) {
	return startClientProcess(b, benchClientsEnv+"="+addr+" "+strconv.Itoa(n))
}

// startClientProcess runs this test binary as a client process, env
// saying which, and waits for its "ready"; stop closes its stdin and waits.
func startClientProcess(b *testing.B, env string) (stop func()) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), env)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		_ = cmd.Process.Kill()
		b.Fatalf("client process: %q %v", line, err)
	}
	return func() {
		in.Close()
		_ = cmd.Wait()
	}
}

// waitAllACKed waits until the server has recorded every client's ACK of
// all four types.
func waitAllACKed(b *testing.B, srv *xds.Server, n int) {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		done := 0
		for _, node := range srv.Nodes() {
			if node.Streams == 1 && len(node.LastACK) == len(xds.Types) {
				done++
			}
		}
		if done == n {
			return
		}
	}
	b.Fatal("the clients never all ACKed")
}

// idleClients is the client process: n ADS clients, each subscribing to
// every type and ACKing, then idle until stdin closes.
func idleClients(spec string) int {
	addr, count, _ := strings.Cut(spec, " ")
	n, err := strconv.Atoi(count)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for i := 0; i < n; i++ {
		if err := idleClient(addr, fmt.Sprintf("envoy-%03d", i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

func idleClient(addr, id string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(context.Background())
	if err != nil {
		return err
	}
	node := &core.Node{Id: id, Cluster: "edge"}
	for _, typ := range []resource.Type{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType} {
		if err := s.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: typ}); err != nil {
			return err
		}
		resp, err := s.Recv()
		if err != nil {
			return fmt.Errorf("%s %s: %w", id, typ, err)
		}
		if err := s.Send(&discovery.DiscoveryRequest{TypeUrl: typ, VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}); err != nil {
			return err
		}
	}
	return nil
}
