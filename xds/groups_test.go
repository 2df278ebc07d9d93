package xds_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"

	"github.com/protogate/protogate/xds"
)

// openDeltaAs is a raw delta stream of one type for a node of group.
func openDeltaAs(t *testing.T, conn *grpc.ClientConn, id, group string, typ resource.Type) *deltaStream {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := &deltaStream{t: t, s: s, r: make(chan *discovery.DeltaDiscoveryResponse, 8)}
	go func() {
		for {
			resp, err := s.Recv()
			if err != nil {
				close(d.r)
				return
			}
			d.r <- resp
		}
	}()
	if err := s.Send(&discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: id, Cluster: group}, TypeUrl: typ}); err != nil {
		t.Fatal(err)
	}
	return d
}

// withLate adds a group late with the public listener.
var withLate = strings.Replace(mapping, "    - { name: rpc, listeners: [ rpc ] }",
	"    - { name: rpc, listeners: [ rpc ] }\n    - { name: late, listeners: [ public ] }", 1)

// TestNodeGetsItsGroupWhenCreated: nodes that connected before their
// group existed, SotW and delta, get the group's configuration when a
// reload creates it, without reconnecting, and /status stops calling them
// fallback nodes.
func TestNodeGetsItsGroupWhenCreated(t *testing.T) {
	path := mappingFile(t, mapping)
	p := start(t, "127.0.0.1:0", path)
	conn := dial(t, p.srv.XDSAddr())
	sotw := newClient(t, conn, "sotw-early", "late", resource.ListenerType)
	if got, ok := sotw.next(5 * time.Second); !ok || len(got) != 0 {
		t.Fatalf("SotW node of no group: %v (ok %v), want an empty configuration", got, ok)
	}
	sotw.ack()
	delta := openDeltaAs(t, conn, "delta-early", "late", resource.ListenerType)
	// An empty first answer or none: either way no listener.
	if changed, _, ok := delta.next(time.Second); ok && len(changed) != 0 {
		t.Fatalf("delta node of no group got %v", changed)
	}
	p.waitNode(t, "sotw-early", func(n xds.NodeStatus) bool { return n.Fallback })

	writeFile(t, path, withLate)
	got, ok := sotw.next(5 * time.Second)
	if !ok || !slices.Equal(got, []string{"public"}) {
		t.Fatalf("SotW node after its group was created: %v (ok %v), want [public]", got, ok)
	}
	sotw.ack()
	var changed []string
	for deadline := time.Now().Add(5 * time.Second); len(changed) == 0 && time.Now().Before(deadline); {
		changed, _, _ = delta.next(time.Until(deadline))
	}
	if !slices.Equal(changed, []string{"public"}) {
		t.Fatalf("delta node after its group was created: %v, want [public]", changed)
	}
	for _, id := range []string{"sotw-early", "delta-early"} {
		p.waitNode(t, id, func(n xds.NodeStatus) bool { return !n.Fallback && n.Group == "late" })
	}
}

// retiring is a source's outcome that names the groups its mapping
// retires, as the pipeline's does from xds.retired_groups.
type retiring []string

func (r retiring) Commit()                 {}
func (r retiring) Discard()                {}
func (r retiring) RetiredGroups() []string { return r }

// TestReloadThatEmptiesAGroupIsRefused: a reload that would leave the
// connected nodes of a group with no listeners, the group removed or
// emptied, is refused with the reason on /status and in metrics, and the
// nodes keep what they have; listed in retired_groups it goes through.
func TestReloadThatEmptiesAGroupIsRefused(t *testing.T) {
	removed := strings.Replace(mapping, "    - { name: rpc, listeners: [ rpc ] }\n", "", 1)
	removed = strings.Replace(removed, `  - name: rpc
    address: 127.0.0.1:20881
    protocol: dubbo
    routes: [ { match: { service: com.example.UserService }, upstream: users } ]
`, "", 1)
	emptied := strings.Replace(mapping, "    - { name: rpc, listeners: [ rpc ] }", "    - { name: rpc, listeners: [ ] }\n    - { name: spare, listeners: [ rpc ] }", 1)
	for _, tt := range []struct{ name, mapping string }{
		{"removed", removed},
		{"emptied", emptied},
		{"whole groups block dropped", strings.Split(mapping, "xds:\n")[0]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := mappingFile(t, mapping)
			p := start(t, "127.0.0.1:0", path)
			conn := dial(t, p.srv.XDSAddr())
			c := newClient(t, conn, "rpc-1", "rpc", resource.ListenerType)
			if got, ok := c.next(5 * time.Second); !ok || !slices.Equal(got, []string{"rpc"}) {
				t.Fatalf("rpc node's listeners = %v", got)
			}
			c.ack()
			p.waitNode(t, "rpc-1", func(n xds.NodeStatus) bool { return n.LastACK[resource.ListenerType].Version != "" })
			version := p.version("rpc")

			writeFile(t, path, tt.mapping)
			err := p.srv.Reload("edit", source(path))
			if err == nil || !strings.Contains(err.Error(), `group "rpc": 1 connected node(s) would be left with no listeners`) ||
				!strings.Contains(err.Error(), "xds.retired_groups") {
				t.Fatalf("reload = %v, want it refused naming the group", err)
			}
			if got, ok := c.next(300 * time.Millisecond); ok {
				t.Fatalf("the rpc node was pushed %v by a refused reload", got)
			}
			if p.version("rpc") != version || p.srv.Status().LastReload.OK {
				t.Fatalf("after the refused reload: rpc version %s (was %s), last reload %+v", p.version("rpc"), version, p.srv.Status().LastReload)
			}
			if got := p.metric(t, `protogate_xds_reloads_refused_total{group="rpc"}`); got == "" || got == "0" {
				t.Fatalf("refused reloads metric = %q", got)
			}

			// Listed as retired: the reload goes through and the node is
			// served an empty configuration.
			src := source(path)
			done := make(chan error, 1)
			go func() {
				done <- p.srv.Reload("retire", func() (map[string]xds.Resources, xds.Outcome, error) {
					g, _, err := src()
					return g, retiring{"rpc"}, err
				})
			}()
			if got, ok := c.next(5 * time.Second); !ok || len(got) != 0 {
				t.Fatalf("rpc node after its retirement: %v (ok %v), want an empty configuration", got, ok)
			}
			c.ack() // the reload waits for it before it withdraws the clusters
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}
