package xds_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/xds"
)

// firstAnswer opens a delta stream for node and waits for the server's
// first answer: nil when it sent a response, else the stream's status.
func firstAnswer(t *testing.T, ctx context.Context, conn *grpc.ClientConn, node *core.Node, opts ...grpc.CallOption) error {
	t.Helper()
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx, opts...)
	if err != nil {
		return err
	}
	// A stream the server ended already fails Send with EOF; Recv has
	// the status it ended with.
	if err := s.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: resource.ListenerType}); err != nil && err != io.EOF {
		return err
	}
	resp, err := s.Recv()
	if err != nil {
		return err
	}
	return s.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.ListenerType, ResponseNonce: resp.GetNonce()})
}

// served opens a stream that is answered, kept open until the test ends
// or stop is called.
func served(t *testing.T, conn *grpc.ClientConn, node *core.Node) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := firstAnswer(t, ctx, conn, node); err != nil {
		t.Fatalf("node %s: %v", node.GetId(), err)
	}
	return cancel
}

func wantRefused(t *testing.T, err error, code codes.Code, mention string) {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || st.Code() != code || !strings.Contains(st.Message(), mention) {
		t.Fatalf("got %v, want %s mentioning %s", err, code, mention)
	}
}

// TestStreamLimit: max_streams counts the streams of both kinds; one past
// it is refused with RESOURCE_EXHAUSTED, and a closed stream frees its
// place.
func TestStreamLimit(t *testing.T) {
	tests := []struct {
		name      string
		sotwFirst bool // the streams at the limit: one SotW and one delta, or two delta
		extraSotW bool
	}{
		{"delta streams, a delta one more", false, false},
		{"both kinds, a SotW one more", true, true},
		{"both kinds, a delta one more", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startLimited(t, mappingFile(t, mapping), config.XDSLimits{MaxStreams: 2}, 16, nil)
			conn := dial(t, p.srv.XDSAddr())
			var stop func()
			if tt.sotwFirst {
				c := newClient(t, conn, "s-0", "edge", resource.ListenerType)
				if _, ok := c.next(5 * time.Second); !ok {
					t.Fatal("first stream not served")
				}
				stop = served(t, conn, &core.Node{Id: "d-1", Cluster: "edge"})
			} else {
				served(t, conn, &core.Node{Id: "d-0", Cluster: "edge"})
				stop = served(t, conn, &core.Node{Id: "d-1", Cluster: "edge"})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var err error
			if tt.extraSotW {
				var s discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient
				if s, err = discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx); err == nil {
					_ = s.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: "x", Cluster: "edge"}, TypeUrl: resource.ListenerType})
					_, err = s.Recv()
				}
			} else {
				err = firstAnswer(t, ctx, conn, &core.Node{Id: "x", Cluster: "edge"})
			}
			wantRefused(t, err, codes.ResourceExhausted, "xds.limits.max_streams")
			if got := p.metric(t, `protogate_xds_limit_refusals_total{limit="streams"}`); got != "1" {
				t.Errorf("refusals counted: %q, want 1", got)
			}
			stop()
			eventually(t, "a stream after one closed is served", func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				return firstAnswer(t, ctx, conn, &core.Node{Id: "y", Cluster: "edge"}) == nil
			})
		})
	}
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("never: %s", what)
}

// metadataOf is node metadata whose encoded size is exactly n bytes.
func metadataOf(t *testing.T, n int) *structpb.Struct {
	t.Helper()
	for l := 0; l < n; l++ {
		m, _ := structpb.NewStruct(map[string]any{"k": strings.Repeat("x", l)})
		if proto.Size(m) == n {
			return m
		}
	}
	t.Fatalf("no metadata of %d bytes", n)
	return nil
}

// TestNodeLimits: a node id, group or metadata at its limit is served;
// one byte more is refused on the first request with INVALID_ARGUMENT,
// naming the setting.
func TestNodeLimits(t *testing.T) {
	lim := config.XDSLimits{MaxNodeIDLength: 32, MaxNodeMetadataSize: 1024}
	p := startLimited(t, mappingFile(t, mapping), lim, 64, nil)
	conn := dial(t, p.srv.XDSAddr())
	id := func(n int) string { return strings.Repeat("n", n) }
	tests := []struct {
		name    string
		node    *core.Node
		mention string // "" served
	}{
		{"id at the limit", &core.Node{Id: id(32), Cluster: "edge"}, ""},
		{"id one over", &core.Node{Id: id(33), Cluster: "edge"}, "xds.limits.max_node_id_length"},
		{"group at the limit", &core.Node{Id: "g-32", Cluster: id(32)}, ""},
		{"group one over", &core.Node{Id: "g-33", Cluster: id(33)}, "xds.limits.max_node_id_length"},
		{"metadata at the limit", &core.Node{Id: "m-1024", Cluster: "edge", Metadata: metadataOf(t, 1024)}, ""},
		{"metadata one over", &core.Node{Id: "m-1025", Cluster: "edge", Metadata: metadataOf(t, 1025)}, "xds.limits.max_node_metadata_size"},
	}
	refused := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := firstAnswer(t, ctx, conn, tt.node)
			if tt.mention == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			refused++
			wantRefused(t, err, codes.InvalidArgument, tt.mention)
		})
	}
	for _, n := range p.srv.Status().Nodes {
		if len(n.ID) > 32 || len(n.Group) > 32 || n.ID == "m-1025" {
			t.Errorf("a refused node is remembered: %s/%s", n.ID, n.Group)
		}
	}
	got := p.metric(t, `protogate_xds_limit_refusals_total{limit="node_id"}`) + "," + p.metric(t, `protogate_xds_limit_refusals_total{limit="node_metadata"}`)
	if got != "2,1" || refused != 3 {
		t.Errorf("refusals counted (node_id,node_metadata) = %s, want 2,1", got)
	}
}

// TestConnectionLimit: one connection past max_connections is closed at
// once; a connection that closes frees its place.
func TestConnectionLimit(t *testing.T) {
	p := startLimited(t, mappingFile(t, mapping), config.XDSLimits{MaxConnections: 2}, 16, nil)
	first := dial(t, p.srv.XDSAddr())
	served(t, first, &core.Node{Id: "c-1", Cluster: "edge"})
	served(t, dial(t, p.srv.XDSAddr()), &core.Node{Id: "c-2", Cluster: "edge"})
	if got := p.metric(t, "protogate_xds_connections"); got != "2" {
		t.Errorf("protogate_xds_connections = %q, want 2", got)
	}
	third := dial(t, p.srv.XDSAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := firstAnswer(t, ctx, third, &core.Node{Id: "c-3", Cluster: "edge"})
	if code := status.Code(err); code != codes.Unavailable {
		t.Fatalf("a third connection: %v, want UNAVAILABLE", err)
	}
	third.Close()
	if got := p.metric(t, `protogate_xds_limit_refusals_total{limit="connections"}`); got == "" {
		t.Error("the refused connection is not counted")
	}
	first.Close()
	eventually(t, "a connection after one closed is served", func() bool {
		conn := dial(t, p.srv.XDSAddr())
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return firstAnswer(t, ctx, conn, &core.Node{Id: "c-4", Cluster: "edge"}) == nil
	})
}

// TestStreamsPerConnection: xds.max_streams_per_peer streams are served on
// one connection; one more waits (HTTP/2 queues it) until one closes.
func TestStreamsPerConnection(t *testing.T) {
	p := startLimited(t, mappingFile(t, mapping), config.XDSLimits{}, 2, nil)
	conn := dial(t, p.srv.XDSAddr())
	served(t, conn, &core.Node{Id: "p-1", Cluster: "edge"})
	stop := served(t, conn, &core.Node{Id: "p-2", Cluster: "edge"})
	third := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		third <- firstAnswer(t, ctx, conn, &core.Node{Id: "p-3", Cluster: "edge"})
	}()
	select {
	case err := <-third:
		t.Fatalf("a third stream on the connection was answered at once: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	stop()
	select {
	case err := <-third:
		if err != nil {
			t.Fatalf("the third stream, once one closed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the third stream was not served after one closed")
	}
}

// TestForgetAfter: a node whose streams closed is shown, then forgotten
// after forget_after; a connected node is kept however long it is idle.
func TestForgetAfter(t *testing.T) {
	p := startLimited(t, mappingFile(t, mapping), config.XDSLimits{ForgetAfter: config.Duration(200 * time.Millisecond)}, 16, nil)
	conn := dial(t, p.srv.XDSAddr())
	served(t, conn, &core.Node{Id: "stays", Cluster: "edge"})
	stop := served(t, conn, &core.Node{Id: "leaves", Cluster: "edge"})
	stop()
	waitStatus(t, p, func(nodes []xds.NodeStatus) string {
		for _, n := range nodes {
			if n.ID == "leaves" && n.Streams == 0 {
				return ""
			}
		}
		return "the node that left is not shown as disconnected"
	})
	waitStatus(t, p, func(nodes []xds.NodeStatus) string {
		if len(nodes) != 1 || nodes[0].ID != "stays" || nodes[0].Streams != 1 {
			return fmt.Sprintf("nodes %+v, want only the connected one", nodes)
		}
		return ""
	})
}

// TestChurnStaysBounded: thousands of node ids, most in groups the mapping
// does not define, connect and leave. /status keeps at most
// max_disconnected_nodes of them (the latest), the metrics label only the
// defined groups and "unknown", and undefined groups are logged once
// each, up to a bound, not once per node.
func TestChurnStaysBounded(t *testing.T) {
	logs := &syncBuffer{}
	p := startLimited(t, mappingFile(t, mapping), config.XDSLimits{MaxDisconnectedNodes: 50}, 64, logs)
	const nodes, unknownGroups = 3000, 1201 // 1201 ≡ 1 (mod 5): every residue has a node outside edge
	group := func(i int) string {
		if i%5 == 0 {
			return "edge"
		}
		return fmt.Sprintf("made-up-%d", i%unknownGroups)
	}
	var wg sync.WaitGroup
	errs := make(chan error, nodes)
	for w := 0; w < 8; w++ {
		conn := dial(t, p.srv.XDSAddr())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < nodes; i += 8 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := firstAnswer(t, ctx, conn, &core.Node{Id: fmt.Sprintf("churn-%04d", i), Cluster: group(i)})
				cancel()
				if err != nil {
					errs <- fmt.Errorf("node %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	eventually(t, "every churned stream closed", func() bool { return p.metric(t, "protogate_xds_streams") == "0" })
	_, body := adminGet(t, p, "/status?limit=1000")
	var st struct {
		Nodes []xds.NodeStatus `json:"nodes"`
		Total int              `json:"nodes_total"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Total > 50 || st.Total == 0 || len(st.Nodes) != st.Total {
		t.Fatalf("/status keeps %d nodes (%d listed), want at most 50", st.Total, len(st.Nodes))
	}
	if got := p.metric(t, "protogate_xds_nodes"); got != fmt.Sprint(st.Total) {
		t.Errorf("protogate_xds_nodes = %s, /status has %d", got, st.Total)
	}
	for _, n := range st.Nodes {
		// Each worker's last nodes closed last: those are the ones kept.
		var i int
		if _, err := fmt.Sscanf(n.ID, "churn-%d", &i); err != nil || i < nodes-500 {
			t.Errorf("/status kept %s, not one of the latest to leave", n.ID)
		}
	}
	_, metrics := adminGet(t, p, "/metrics")
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "protogate_xds_") && strings.Contains(line, `group="`) &&
			!strings.Contains(line, `group="edge"`) && !strings.Contains(line, `group="rpc"`) && !strings.Contains(line, `group="unknown"`) {
			t.Errorf("a metric labels a group the mapping does not define: %s", line)
		}
	}
	if n := strings.Count(metrics, "protogate_xds_pushes_total{"); n != 2 {
		t.Errorf("%d push series, want 2 (edge and unknown, listeners)", n)
	}
	if n, want := logs.lines("does not define", "group=made-up-"), 1000; n != want {
		t.Errorf("%d log lines name an undefined group, want %d (one per group up to the bound)", n, want)
	}
	if n := logs.lines("no more such groups are logged"); n != 1 {
		t.Errorf("the bound on logged groups is said %d times, want once", n)
	}
}

// TestStatusQuery: /status filters by node and group and pages, with the
// total of what matched.
func TestStatusQuery(t *testing.T) {
	p := startLimited(t, mappingFile(t, mapping), config.XDSLimits{}, 16, nil)
	conn := dial(t, p.srv.XDSAddr())
	for i := 1; i <= 5; i++ {
		served(t, conn, &core.Node{Id: fmt.Sprintf("a%d", i), Cluster: "edge"})
	}
	served(t, conn, &core.Node{Id: "a3", Cluster: "rpc"})
	tests := []struct {
		query string
		code  int
		want  string // "id/group,…" then the total and next offset
	}{
		{"", 200, "a1/edge,a2/edge,a3/edge,a3/rpc,a4/edge,a5/edge total 6 next 0"},
		{"?group=rpc", 200, "a3/rpc total 1 next 0"},
		{"?node=a3", 200, "a3/edge,a3/rpc total 2 next 0"},
		{"?node=a3&group=edge", 200, "a3/edge total 1 next 0"},
		{"?node=nobody", 200, " total 0 next 0"},
		{"?limit=2", 200, "a1/edge,a2/edge total 6 next 2"},
		{"?limit=2&offset=2", 200, "a3/edge,a3/rpc total 6 next 4"},
		{"?limit=2&offset=4", 200, "a4/edge,a5/edge total 6 next 0"},
		{"?offset=9", 200, " total 6 next 0"},
		{"?group=edge&limit=3&offset=3", 200, "a4/edge,a5/edge total 5 next 0"},
		{"?limit=0", 400, ""},
		{"?limit=1001", 400, ""},
		{"?offset=-1", 400, ""},
		{"?limit=ten", 400, ""},
	}
	for _, tt := range tests {
		code, body := adminGet(t, p, "/status"+tt.query)
		if code != tt.code {
			t.Errorf("/status%s = %d %s, want %d", tt.query, code, body, tt.code)
			continue
		}
		if code != 200 {
			if !strings.Contains(body, `"error"`) {
				t.Errorf("/status%s: %s, want an error", tt.query, body)
			}
			continue
		}
		var st struct {
			Nodes []xds.NodeStatus `json:"nodes"`
			Total int              `json:"nodes_total"`
			Next  int              `json:"next_offset"`
		}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range st.Nodes {
			got = append(got, n.ID+"/"+n.Group)
		}
		if s := fmt.Sprintf("%s total %d next %d", strings.Join(got, ","), st.Total, st.Next); s != tt.want {
			t.Errorf("/status%s = %s, want %s", tt.query, s, tt.want)
		}
	}
}

// TestLimitsConfig: xds.limits defaults are the server's defaults, and
// values out of range or a metadata limit no message could carry are
// refused with their field path.
func TestLimitsConfig(t *testing.T) {
	cfg, err := config.LoadBytes("mapping.yaml", []byte(mapping))
	if err != nil {
		t.Fatal(err)
	}
	want := config.XDSLimits{
		MaxConnections: xds.DefaultMaxConnections, MaxStreams: xds.DefaultMaxStreams,
		MaxNodeMetadataSize: xds.DefaultMaxNodeMetadataSize, MaxNodeIDLength: xds.DefaultMaxNodeIDLength,
		ForgetAfter: config.Duration(xds.DefaultForgetAfter), MaxDisconnectedNodes: xds.DefaultMaxDisconnectedNodes,
	}
	if cfg.XDS.Limits != want {
		t.Errorf("xds.limits defaults %+v, want the server's %+v", cfg.XDS.Limits, want)
	}
	tests := []struct{ limits, problem string }{
		{"{ max_node_metadata_size: 16MiB }", "xds.limits.max_node_metadata_size: 16MiB must be below xds.max_message_size (16MiB)"},
		{"{ max_streams: 0 }", "xds.limits.max_streams: 0 is below the minimum 1"},
		{"{ forget_after: 500ms }", "xds.limits.forget_after"},
		{"{ max_connections: 2000000 }", "xds.limits.max_connections: 2000000 is above the maximum 1000000"},
	}
	for _, tt := range tests {
		body := strings.Replace(mapping, "xds:\n", "xds:\n  limits: "+tt.limits+"\n", 1)
		_, err := config.LoadBytes("mapping.yaml", []byte(body))
		if err == nil || !strings.Contains(err.Error(), tt.problem) {
			t.Errorf("limits %s: %v, want %q", tt.limits, err, tt.problem)
		}
	}
}
