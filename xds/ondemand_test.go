package xds

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/translator"
)

// onDemandMapping has n HTTP upstreams, each routed to by the on-demand
// listener "public" (group lazy, with a bridge route too) and by the
// listener "internal" (group eager, not on demand). The upstreams in
// changed get another connect timeout (their cluster changes) and port
// (their endpoints change).
func onDemandMapping(n int, changed ...int) string {
	var public, internal, ups strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&public, "      - { name: r-%04d, match: { prefix: /u%04d/ }, http: { upstream: u%04d } }\n", i, i, i)
		fmt.Fprintf(&internal, "      - { name: i-%04d, match: { prefix: /u%04d/ }, http: { upstream: u%04d } }\n", i, i, i)
		timeout, port := "1s", 20000+i
		if slices.Contains(changed, i) {
			timeout, port = "2s", 40000+i
		}
		fmt.Fprintf(&ups, "    - { name: u%04d, endpoints: [ \"127.0.0.1:%d\" ], connect_timeout: %s }\n", i, port, timeout)
	}
	return `
listeners:
  - name: public
    address: 127.0.0.1:10000
    on_demand_clusters: true
    routes:
      - { name: ping, match: { path: /ping }, nats: { upstream: events, subject: health.ping, mode: request } }
` + public.String() + `
  - name: internal
    address: 127.0.0.1:10001
    routes:
` + internal.String() + `
upstreams:
  nats: [ { name: events, urls: [ "nats://127.0.0.1:4222" ] } ]
  http:
` + ups.String() + `
xds:
  groups:
    - { name: lazy, listeners: [ public ] }
    - { name: eager, listeners: [ internal ] }
`
}

// startOnDemand runs a control plane serving mapping.
func startOnDemand(t testing.TB, mapping string) *Server {
	t.Helper()
	s := New(Options{
		Address: "127.0.0.1:0", AdminAddress: "127.0.0.1:0", MaxMessageSize: 64 << 20, MaxStreamsPerPeer: 64,
		KeepaliveTime: 30 * time.Second, KeepaliveTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	publishOnDemand(t, s, mapping)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

// publishOnDemand translates mapping and publishes it, telling the server
// each group's on-demand clusters first.
func publishOnDemand(t testing.TB, s *Server, mapping string) {
	t.Helper()
	cfg, err := config.LoadBytes("m.yaml", []byte(mapping))
	if err != nil {
		t.Fatal(err)
	}
	res, err := translator.Translate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	groups := res.ByGroup()
	// As the pipeline does: the outcome says which clusters are on demand.
	if err := s.Reload("test", func() (map[string]Resources, Outcome, error) {
		return groups, onDemandOutcome(res.OnDemand()), nil
	}); err != nil {
		t.Fatal(err)
	}
}

// adsDelta is one delta ADS stream, as an Envoy holds: every type on it.
type adsDelta struct {
	t      testing.TB
	s      discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	node   *core.Node
	byType map[string]chan *discovery.DeltaDiscoveryResponse
	// what the client was sent, for the benchmark
	bytes, resources atomic.Int64
	close            func()
}

func openADSDelta(t testing.TB, addr, group string) *adsDelta {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	closeAll := func() { cancel(); conn.Close() }
	t.Cleanup(closeAll)
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := &adsDelta{t: t, s: s, node: &core.Node{Id: "envoy-" + group, Cluster: group},
		byType: map[string]chan *discovery.DeltaDiscoveryResponse{}, close: closeAll}
	for _, typ := range []string{resource.ClusterType, resource.EndpointType} {
		d.byType[typ] = make(chan *discovery.DeltaDiscoveryResponse, 16)
	}
	go func() {
		for {
			resp, err := s.Recv()
			if err != nil {
				for _, ch := range d.byType {
					close(ch)
				}
				return
			}
			d.bytes.Add(int64(proto.Size(resp)))
			d.resources.Add(int64(len(resp.Resources)))
			if ch, ok := d.byType[resp.TypeUrl]; ok {
				ch <- resp
			}
		}
	}()
	return d
}

// send asks for typ: names to add and to drop (none of either, on a
// type's first request: a wildcard subscription).
func (d *adsDelta) send(typ string, subscribe, unsubscribe []string) {
	d.t.Helper()
	if err := d.s.Send(&discovery.DeltaDiscoveryRequest{Node: d.node, TypeUrl: typ,
		ResourceNamesSubscribe: subscribe, ResourceNamesUnsubscribe: unsubscribe}); err != nil {
		d.t.Fatal(err)
	}
}

// next returns the next response of typ, sorted names changed and removed,
// and ACKs it. It fails the test if none comes within 10 s.
func (d *adsDelta) next(typ string) (changed, removed []string) {
	d.t.Helper()
	select {
	case resp, open := <-d.byType[typ]:
		if !open {
			d.t.Fatal("delta stream closed")
		}
		for _, r := range resp.Resources {
			changed = append(changed, r.Name)
		}
		removed = resp.RemovedResources
		slices.Sort(changed)
		slices.Sort(removed)
		if err := d.s.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: typ, ResponseNonce: resp.Nonce}); err != nil {
			d.t.Fatal(err)
		}
		return changed, removed
	case <-time.After(10 * time.Second):
		d.t.Fatalf("no %s response", typ)
		return nil, nil
	}
}

func upstreamClusters(ids ...int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = fmt.Sprintf("http/u%04d", id)
	}
	slices.Sort(out)
	return out
}

// head shows the first names of a long list.
func head(names []string) string {
	if len(names) > 5 {
		return strings.Join(names[:5], ", ") + ", …"
	}
	return strings.Join(names, ", ")
}

// TestOnDemandClusters: an on-demand Envoy of a group with 2,000 upstreams
// gets only what it names, and stops getting what it drops.
func TestOnDemandClusters(t *testing.T) {
	const n = 2000
	s := startOnDemand(t, onDemandMapping(n))
	envoy := openADSDelta(t, s.XDSAddr(), "lazy")

	// Wildcard, as Envoy's bootstrap subscribes: the bridge cluster only.
	envoy.send(resource.ClusterType, nil, nil)
	if changed, _ := envoy.next(resource.ClusterType); !slices.Equal(changed, []string{translator.BridgeNATSCluster}) {
		t.Fatalf("wildcard clusters: got %d (%s), want only %s", len(changed), head(changed), translator.BridgeNATSCluster)
	}
	envoy.send(resource.EndpointType, nil, nil)
	if changed, _ := envoy.next(resource.EndpointType); !slices.Equal(changed, []string{translator.BridgeNATSCluster}) {
		t.Fatalf("wildcard endpoints: got %d (%s), want only %s", len(changed), head(changed), translator.BridgeNATSCluster)
	}

	// Ten routes used: exactly those clusters, then their endpoints.
	ten := upstreamClusters(3, 4, 17, 250, 999, 1000, 1500, 1777, 1999, 2000)
	envoy.send(resource.ClusterType, ten, nil)
	if changed, removed := envoy.next(resource.ClusterType); !slices.Equal(changed, ten) || len(removed) != 0 {
		t.Fatalf("named clusters: got %v removed %v, want %v", changed, removed, ten)
	}
	envoy.send(resource.EndpointType, ten, nil)
	if changed, removed := envoy.next(resource.EndpointType); !slices.Equal(changed, ten) || len(removed) != 0 {
		t.Fatalf("named endpoints: got %v removed %v, want %v", changed, removed, ten)
	}

	// One dropped and another used, in one request (so its answer shows
	// the server took the drop): the new one alone arrives.
	dropped, kept, added := upstreamClusters(3), upstreamClusters(4), upstreamClusters(5)
	for _, typ := range []string{resource.ClusterType, resource.EndpointType} {
		envoy.send(typ, added, dropped)
		if changed, removed := envoy.next(typ); !slices.Equal(changed, added) || len(removed) != 0 {
			t.Fatalf("%s after a drop: got %v removed %v, want %v", typ, changed, removed, added)
		}
	}
	// A reload changes the dropped one and a kept one: only the kept one
	// arrives, cluster and endpoints.
	publishOnDemand(t, s, onDemandMapping(n, 3, 4))
	for _, typ := range []string{resource.ClusterType, resource.EndpointType} {
		if changed, removed := envoy.next(typ); !slices.Equal(changed, kept) || len(removed) != 0 {
			t.Fatalf("%s after the reload: got %v removed %v, want %v", typ, changed, removed, kept)
		}
	}
}

// TestWildcardClientsGetEverything: a delta client of a group with no
// on-demand listener, and a state-of-the-world client of one with, are
// served every cluster (state of the world cannot name clusters beside a
// wildcard).
func TestWildcardClientsGetEverything(t *testing.T) {
	const n = 2000
	s := startOnDemand(t, onDemandMapping(n))
	t.Run("delta, group without on-demand", func(t *testing.T) {
		envoy := openADSDelta(t, s.XDSAddr(), "eager")
		envoy.send(resource.ClusterType, nil, nil)
		if changed, _ := envoy.next(resource.ClusterType); len(changed) != n {
			t.Fatalf("got %d clusters, want %d", len(changed), n)
		}
	})
	t.Run("state of the world, on-demand group", func(t *testing.T) {
		conn, err := grpc.NewClient(s.XDSAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		str, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := str.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: "sotw", Cluster: "lazy"}, TypeUrl: resource.ClusterType}); err != nil {
			t.Fatal(err)
		}
		resp, err := str.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Resources) != n+1 {
			t.Fatalf("got %d clusters, want %d (every upstream and the bridge)", len(resp.Resources), n+1)
		}
	})
}

// TestOnDemandFirstAnswer: in a group whose clusters are all on demand, a
// wildcard cluster request still gets a first (empty) answer, which Envoy
// waits for to finish starting; a named cluster arrives after it.
func TestOnDemandFirstAnswer(t *testing.T) {
	s := startOnDemand(t, `
listeners:
  - name: public
    address: 127.0.0.1:10000
    on_demand_clusters: true
    routes:
      - { name: a, match: { prefix: /a/ }, http: { upstream: a } }
      - { name: b, match: { prefix: /b/ }, http: { upstream: b } }
upstreams:
  http:
    - { name: a, endpoints: [ "127.0.0.1:9001" ] }
    - { name: b, endpoints: [ "127.0.0.1:9002" ] }
`)
	envoy := openADSDelta(t, s.XDSAddr(), config.DefaultGroup)
	envoy.send(resource.ClusterType, nil, nil)
	if changed, removed := envoy.next(resource.ClusterType); len(changed)+len(removed) != 0 {
		t.Fatalf("first answer: %v removed %v, want nothing", changed, removed)
	}
	envoy.send(resource.ClusterType, []string{"http/b"}, nil)
	if changed, _ := envoy.next(resource.ClusterType); !slices.Equal(changed, []string{"http/b"}) {
		t.Fatalf("named: %v, want [http/b]", changed)
	}
}

// TestUpFrontOnly: a reload's added clusters, less the on-demand ones.
func TestUpFrontOnly(t *testing.T) {
	s := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s.setOnDemand("lazy", nil, []string{"http/a", "http/b"})
	tests := []struct {
		group string
		added []string
		want  []string
	}{
		{"lazy", []string{"http/a", "protogate/bridge-nats", "http/b"}, []string{"protogate/bridge-nats"}},
		{"lazy", []string{"http/a"}, nil},
		{"eager", []string{"http/a"}, []string{"http/a"}},
	}
	for _, tt := range tests {
		if got := s.upFrontOnly(tt.group, tt.added); !slices.Equal(got, tt.want) {
			t.Errorf("group %s, added %v: got %v, want %v", tt.group, tt.added, got, tt.want)
		}
	}
}

// onDemandOutcome is a source's outcome naming the on-demand clusters.
type onDemandOutcome map[string][]string

func (o onDemandOutcome) Commit()                       {}
func (o onDemandOutcome) Discard()                      {}
func (o onDemandOutcome) OnDemand() map[string][]string { return o }
