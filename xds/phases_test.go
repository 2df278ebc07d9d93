package xds_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// renameMapping routes /web to the HTTP upstream named upstream.
func renameMapping(upstream string) string {
	return fmt.Sprintf(`
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - { name: web, match: { prefix: /web }, http: { upstream: %[1]s } }
upstreams:
  http: [ { name: %[1]s, endpoints: [ "127.0.0.1:8080" ] } ]
`, upstream)
}

// envoyView is what an Envoy holds, built from the responses it takes in
// order: the invariant is checked after each.
type envoyView struct {
	clusters  map[string]bool
	endpoints map[string]bool
	routes    map[string][]string // route configuration → clusters its routes name
	seen      []string            // the sequence taken, for the failure message
}

func newEnvoyView() *envoyView {
	return &envoyView{clusters: map[string]bool{}, endpoints: map[string]bool{}, routes: map[string][]string{}}
}

// take applies resources of typ (a full set for SotW; for delta the
// changed ones and the removed names).
func (v *envoyView) take(t *testing.T, typ string, full bool, res []*anypb.Any, removed []string) {
	t.Helper()
	var got []string
	switch typ {
	case resource.ClusterType, resource.EndpointType:
		m := v.clusters
		if typ == resource.EndpointType {
			m = v.endpoints
		}
		if full {
			clear(m)
		}
		for _, a := range res {
			name := ""
			if typ == resource.ClusterType {
				var c cluster.Cluster
				if err := a.UnmarshalTo(&c); err != nil {
					t.Fatal(err)
				}
				name = c.GetName()
			} else {
				var e endpoint.ClusterLoadAssignment
				if err := a.UnmarshalTo(&e); err != nil {
					t.Fatal(err)
				}
				name = e.GetClusterName()
			}
			m[name] = true
			got = append(got, name)
		}
		for _, n := range removed {
			delete(m, n)
		}
	case resource.RouteType:
		if full {
			clear(v.routes)
		}
		for _, a := range res {
			var rc route.RouteConfiguration
			if err := a.UnmarshalTo(&rc); err != nil {
				t.Fatal(err)
			}
			var named []string
			for _, vh := range rc.GetVirtualHosts() {
				for _, r := range vh.GetRoutes() {
					if c := r.GetRoute().GetCluster(); c != "" {
						named = append(named, c)
					}
				}
			}
			v.routes[rc.GetName()] = named
			got = append(got, fmt.Sprintf("%s→%v", rc.GetName(), named))
		}
		for _, n := range removed {
			delete(v.routes, n)
		}
	}
	slices.Sort(got)
	v.seen = append(v.seen, fmt.Sprintf("%s %v -%v", typ[strings.LastIndex(typ, ".")+1:], got, removed))
}

// check: every cluster a held route names is held, with its endpoints.
func (v *envoyView) check(t *testing.T) {
	t.Helper()
	for rc, named := range v.routes {
		for _, c := range named {
			if !v.clusters[c] || !v.endpoints[c] {
				t.Fatalf("route configuration %s names cluster %s, which the node lacks (cluster %v, endpoints %v); the sequence:\n%s",
					rc, c, v.clusters[c], v.endpoints[c], strings.Join(v.seen, "\n"))
			}
		}
	}
}

var envoyOrder = []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType}

// TestRenameNeverStrandsARoute: an upstream rename, seen by a SotW and a
// delta Envoy stand-in that take each response as Envoy would, never
// leaves a route naming a cluster the node lacks, and ends with the new
// cluster only.
func TestRenameNeverStrandsARoute(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(map[bool]string{false: "sotw", true: "delta"}[delta], func(t *testing.T) {
			path := mappingFile(t, renameMapping("web"))
			p := start(t, "127.0.0.1:0", path)
			conn := dial(t, p.srv.XDSAddr())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ads := discovery.NewAggregatedDiscoveryServiceClient(conn)
			node := &core.Node{Id: "envoy-rename", Cluster: "default"}
			v := newEnvoyView()
			type resp struct {
				typ, nonce, version string
				res                 []*anypb.Any
				removed             []string
			}
			responses := make(chan resp, 16)
			var send func(typ, version, nonce string) error
			if delta {
				s, err := ads.DeltaAggregatedResources(ctx)
				if err != nil {
					t.Fatal(err)
				}
				go func() {
					for {
						r, err := s.Recv()
						if err != nil {
							close(responses)
							return
						}
						var res []*anypb.Any
						for _, x := range r.GetResources() {
							res = append(res, x.GetResource())
						}
						responses <- resp{r.GetTypeUrl(), r.GetNonce(), r.GetSystemVersionInfo(), res, r.GetRemovedResources()}
					}
				}()
				send = func(typ, _, nonce string) error {
					return s.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: typ, ResponseNonce: nonce})
				}
			} else {
				s, err := ads.StreamAggregatedResources(ctx)
				if err != nil {
					t.Fatal(err)
				}
				go func() {
					for {
						r, err := s.Recv()
						if err != nil {
							close(responses)
							return
						}
						responses <- resp{r.GetTypeUrl(), r.GetNonce(), r.GetVersionInfo(), r.GetResources(), nil}
					}
				}()
				send = func(typ, version, nonce string) error {
					return s.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: typ, VersionInfo: version, ResponseNonce: nonce})
				}
			}
			takeNext := func(wait time.Duration) (string, bool) {
				select {
				case r, ok := <-responses:
					if !ok {
						t.Fatal("the stream ended")
					}
					v.take(t, r.typ, !delta, r.res, r.removed)
					if err := send(r.typ, r.version, r.nonce); err != nil { // ACK
						t.Fatal(err)
					}
					return r.typ, true
				case <-time.After(wait):
					return "", false
				}
			}
			// Subscribe as Envoy does: each type once the one before it came.
			for _, typ := range envoyOrder {
				if err := send(typ, "", ""); err != nil {
					t.Fatal(err)
				}
				if got, ok := takeNext(5 * time.Second); !ok || got != typ {
					t.Fatalf("subscribing to %s: got %q", typ, got)
				}
			}
			v.check(t)

			writeFile(t, path, renameMapping("site"))
			for deadline := time.Now().Add(10 * time.Second); ; {
				if _, ok := takeNext(300 * time.Millisecond); ok {
					v.check(t)
					continue
				}
				if v.clusters["http/site"] && !v.clusters["http/web"] && slices.Equal(v.routes["public"], []string{"http/site"}) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the rename never settled; the sequence:\n%s", strings.Join(v.seen, "\n"))
				}
			}
			t.Logf("sequence:\n%s", strings.Join(v.seen, "\n"))
		})
	}
}
