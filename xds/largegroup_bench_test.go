package xds_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	grpcmem "google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	protobuf "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/protogate/protogate/internal/testmapping"
	"github.com/protogate/protogate/xds"
)

// largeClientsEnv makes the test binary the ADS client process of
// BenchmarkLargeGroup: "ADDRESS COUNT".
const largeClientsEnv = "PROTOGATE_BENCH_LARGE_CLIENTS"

// largeMapping is one group ("edge") of routes over upstreams of every
// protocol, the first route's path being firstPath.
func largeMapping(routes, upstreams int, firstPath string) string {
	return testmapping.Large{Routes: routes, Upstreams: upstreams, Paths: map[int]string{0: firstPath}, Group: "edge"}.YAML()
}

// BenchmarkLargeGroup serves one group of 10,000 routes over 2,000
// upstreams to state-of-the-world ADS clients that ask for endpoints and
// routes by name, as Envoy does. The clients run in another process, so
// what is counted is the server's: its live heap and stacks per client
// beyond the configuration, its CPU per connecting client, and for a
// one-route edit the time until the last client ACKed the new routes and
// the CPU per client of the push (the reload's own is reported apart). Run it with -benchtime=1x;
// PROTOGATE_BENCH_CLIENTS sets the number of clients (default 200). The
// delta sub-benchmark's clients subscribe to "*" of every type over the
// incremental protocol instead.
func BenchmarkLargeGroup(b *testing.B) {
	b.Run("sotw", func(b *testing.B) { benchLargeGroup(b, false) })
	b.Run("delta", func(b *testing.B) { benchLargeGroup(b, true) })
}

func benchLargeGroup(b *testing.B, delta bool) {
	clients := 200
	if v, err := strconv.Atoi(os.Getenv("PROTOGATE_BENCH_CLIENTS")); err == nil && v > 0 {
		clients = v
	}
	path := b.TempDir() + "/mapping.yaml"
	write := func(first string) {
		if err := os.WriteFile(path, []byte(largeMapping(10000, 2000, first)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	write("/s0/items/{id}")
	srv := xds.New(xds.Options{
		Address: "127.0.0.1:0", AdminAddress: "127.0.0.1:0", MaxMessageSize: 64 << 20, MaxStreamsPerPeer: 16,
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
		before, cpu0 := memNow(), cpuNow()
		stop := startLargeClients(b, srv.XDSAddr(), clients, delta)
		waitTypeACKed(b, srv, clients, "", "")
		cpu1, after := cpuNow(), memNow()
		b.ReportMetric(float64(after.total()-before.total())/float64(clients), "B/client")
		b.ReportMetric(float64(cpu1-cpu0)/float64(clients)/1e3, "connect-µs/client")

		write(fmt.Sprintf("/s0/items/{id}/v%d", i+2))
		start := time.Now()
		if err := srv.Reload("edit", source(path)); err != nil {
			b.Fatal(err)
		}
		cpu2 := cpuNow()
		version := srv.Status().Groups["edge"].Types[resource.RouteType]
		waitTypeACKed(b, srv, clients, resource.RouteType, version)
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "edit-ms")
		b.ReportMetric(float64(cpu2-cpu1)/1e6, "reload-cpu-ms")
		b.ReportMetric(float64(cpuNow()-cpu2)/float64(clients)/1e3, "push-µs/client")
		stop()
	}
}

// cpuNow is this process's CPU time in nanoseconds.
func cpuNow() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// waitTypeACKed waits until n nodes hold every type (typeURL ""), or
// until they ACKed version of typeURL.
func waitTypeACKed(b *testing.B, srv *xds.Server, n int, typeURL, version string) {
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		done := 0
		for _, node := range srv.Nodes() {
			if node.Streams != 1 {
				continue
			}
			if typeURL == "" && len(node.LastACK) == len(xds.Types) || typeURL != "" && node.LastACK[typeURL].Version == version {
				done++
			}
		}
		if done == n {
			return
		}
	}
	b.Fatal("the clients never all ACKed")
}

func startLargeClients(b *testing.B, addr string, n int, delta bool) (stop func()) {
	mode := "sotw"
	if delta {
		mode = "delta"
	}
	return startClientProcess(b, largeClientsEnv+"="+addr+" "+strconv.Itoa(n)+" "+mode)
}

// largeClients is the client process ("ADDRESS COUNT MODE"). In sotw
// mode the first client decodes what it is sent to learn the endpoint and
// route names the group's clusters and listeners name; the others, like
// it, ask for those by name and decode only a response's version and
// nonce, so that this process keeps up. In delta mode every client
// subscribes to everything and decodes as little.
func largeClients(spec string) int {
	fields := strings.Fields(spec)
	if len(fields) != 3 {
		fmt.Fprintln(os.Stderr, "want ADDRESS COUNT MODE, got", spec)
		return 2
	}
	addr, mode := fields[0], fields[2]
	n, err := strconv.Atoi(fields[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	client := largeDeltaClient
	if mode == "sotw" {
		names, err := referencedNames(addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		client = func(addr, id string) error { return largeClient(addr, id, names) }
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := client(addr, fmt.Sprintf("envoy-%04d", i)); err != nil {
				errs <- err
			}
		}()
		if i%50 == 49 {
			wg.Wait()
		}
	}
	wg.Wait()
	select {
	case err := <-errs:
		fmt.Fprintln(os.Stderr, err)
		return 1
	default:
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// referencedNames asks once for clusters and listeners and returns the
// endpoint and route names they reference, by type.
func referencedNames(addr string) (map[string][]string, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(context.Background())
	if err != nil {
		return nil, err
	}
	node := &core.Node{Id: "names", Cluster: "edge"}
	all := map[string]types.ResourceWithTTL{}
	for _, typ := range []string{resource.ClusterType, resource.ListenerType} {
		if err := s.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: typ}); err != nil {
			return nil, err
		}
		resp, err := s.Recv()
		if err != nil {
			return nil, err
		}
		for i, a := range resp.GetResources() {
			m, err := anypb.UnmarshalNew(a, protobuf.UnmarshalOptions{})
			if err != nil {
				return nil, err
			}
			all[fmt.Sprint(typ, i)] = types.ResourceWithTTL{Resource: m}
		}
	}
	out := map[string][]string{}
	for typ, set := range cache.GetResourceReferences(all) {
		for name := range set {
			out[typ] = append(out[typ], name)
		}
	}
	return out, nil
}

// largeClient subscribes to every type, by name where Envoy names them,
// and ACKs each response for as long as the process runs.
func largeClient(addr, id string, names map[string][]string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.ForceCodecV2(shallowCodec{encoding.GetCodecV2(proto.Name)})))
	if err != nil {
		return err
	}
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(context.Background())
	if err != nil {
		return err
	}
	node := &core.Node{Id: id, Cluster: "edge"}
	for _, typ := range xds.Types {
		if err := s.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: typ, ResourceNames: names[typ]}); err != nil {
			return err
		}
	}
	held := 0
	for held < len(xds.Types) {
		resp, err := s.Recv()
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		if err := s.Send(&discovery.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(),
			ResponseNonce: resp.GetNonce(), ResourceNames: names[resp.GetTypeUrl()]}); err != nil {
			return err
		}
		held++
	}
	go func() {
		for {
			resp, err := s.Recv()
			if err != nil {
				return
			}
			_ = s.Send(&discovery.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(),
				ResponseNonce: resp.GetNonce(), ResourceNames: names[resp.GetTypeUrl()]})
		}
	}()
	return nil
}

// shallowCodec decodes a DiscoveryResponse's version, type and nonce, or
// a DeltaDiscoveryResponse's, and skips their resources.
type shallowCodec struct{ encoding.CodecV2 }

func (c shallowCodec) Unmarshal(data grpcmem.BufferSlice, v any) error {
	switch resp := v.(type) {
	case *discovery.DiscoveryResponse:
		return shallowDecode(data.Materialize(), func(num protowire.Number, val string) {
			switch num {
			case 1:
				resp.VersionInfo = val
			case 4:
				resp.TypeUrl = val
			case 5:
				resp.Nonce = val
			}
		})
	case *discovery.DeltaDiscoveryResponse:
		return shallowDecode(data.Materialize(), func(num protowire.Number, val string) {
			switch num {
			case 1:
				resp.SystemVersionInfo = val
			case 4:
				resp.TypeUrl = val
			case 5:
				resp.Nonce = val
			}
		})
	}
	return c.CodecV2.Unmarshal(data, v)
}

// shallowDecode hands set the top-level string fields of an encoded
// message but its resources (field 2).
func shallowDecode(b []byte, set func(protowire.Number, string)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		val, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if num != 2 {
			set(num, string(val))
		}
	}
	return nil
}

// largeDeltaClient subscribes to "*" of every type over the incremental
// protocol and ACKs each response for as long as the process runs.
func largeDeltaClient(addr, id string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.ForceCodecV2(shallowCodec{encoding.GetCodecV2(proto.Name)})))
	if err != nil {
		return err
	}
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(context.Background())
	if err != nil {
		return err
	}
	node := &core.Node{Id: id, Cluster: "edge"}
	for _, typ := range xds.Types {
		if err := s.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: typ, ResourceNamesSubscribe: []string{"*"}}); err != nil {
			return err
		}
	}
	for held := 0; held < len(xds.Types); held++ {
		resp, err := s.Recv()
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		if err := s.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}); err != nil {
			return err
		}
	}
	go func() {
		for {
			resp, err := s.Recv()
			if err != nil {
				return
			}
			_ = s.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()})
		}
	}()
	return nil
}
