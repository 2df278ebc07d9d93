package xds_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/protogate/protogate/xds"
)

const vhdsMapping = `listeners:
  - name: public
    address: 127.0.0.1:10000
    on_demand_hosts: true
    routes:
      - name: users
        match: { path: "USERS", hosts: [ api.example.com ] }
        http: { upstream: web }
      - name: carts
        match: { prefix: /cart/, hosts: [ "*.shop.example.com" ] }
        http: { upstream: web }
      - name: health
        match: { path: "HEALTH" }
        http: { upstream: web }
upstreams:
  http: [ { name: web, endpoints: [ "127.0.0.1:9001" ] } ]
xds:
  groups: [ { name: edge, listeners: [ public ] } ]
`

func vhdsFile(users, health string) string {
	return strings.NewReplacer("USERS", users, "HEALTH", health).Replace(vhdsMapping)
}

// vhdsClient is a delta stream as Envoy drives it for a listener with
// on_demand_hosts: routes, then virtual hosts by name.
type vhdsClient struct {
	t    *testing.T
	s    discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	resp chan *discovery.DeltaDiscoveryResponse
}

func openVHDS(t *testing.T, addr string) *vhdsClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &vhdsClient{t: t, s: s, resp: make(chan *discovery.DeltaDiscoveryResponse, 16)}
	go func() {
		for {
			r, err := s.Recv()
			if err != nil {
				close(c.resp)
				return
			}
			c.resp <- r
		}
	}()
	return c
}

func (c *vhdsClient) subscribe(typ string, names ...string) {
	c.t.Helper()
	if err := c.s.Send(&discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: "vhds", Cluster: "edge"}, TypeUrl: typ, ResourceNamesSubscribe: names}); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next response of typ, ACKed; nil if none came within d.
func (c *vhdsClient) next(typ string, d time.Duration) *discovery.DeltaDiscoveryResponse {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case r, ok := <-c.resp:
			if !ok {
				c.t.Fatal("stream closed")
			}
			if err := c.s.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce()}); err != nil {
				c.t.Fatal(err)
			}
			if r.GetTypeUrl() == typ {
				return r
			}
		case <-deadline:
			return nil
		}
	}
}

// hosts decodes a virtual-host response: each resource's name, and for
// each populated one its domains and route names.
func hostsOf(t *testing.T, r *discovery.DeltaDiscoveryResponse) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, res := range r.GetResources() {
		if !slices.Contains(res.GetAliases(), res.GetName()) {
			t.Fatalf("%s: aliases %v do not name it", res.GetName(), res.GetAliases())
		}
		if res.GetResource() == nil {
			out[res.GetName()] = "(unknown)"
			continue
		}
		var vh route.VirtualHost
		if err := res.GetResource().UnmarshalTo(&vh); err != nil {
			t.Fatal(err)
		}
		if vh.GetName() != res.GetName() {
			t.Fatalf("virtual host %q in resource %q", vh.GetName(), res.GetName())
		}
		var routes []string
		for _, rt := range vh.GetRoutes() {
			routes = append(routes, rt.GetName())
		}
		out[res.GetName()] = strings.Join(vh.GetDomains(), ",") + " " + strings.Join(routes, ",")
	}
	return out
}

// TestVHDS: a delta Envoy of a listener with on_demand_hosts gets its route
// configuration without virtual hosts, each host's routes on request (the
// exact host's, the wildcard's, or those for any host), and after an edit
// only the hosts whose routes changed; a state-of-the-world Envoy gets the
// whole table, and the edit.
func TestVHDS(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mapping.yaml")
	writeFile(t, path, vhdsFile("/users", "/healthz"))
	p := start(t, "127.0.0.1:0", path)

	c := openVHDS(t, p.srv.XDSAddr())
	c.subscribe(resource.RouteType, "public")
	rr := c.next(resource.RouteType, 5*time.Second)
	if rr == nil || len(rr.GetResources()) != 1 {
		t.Fatalf("no route configuration: %v", rr)
	}
	var rc route.RouteConfiguration
	if err := rr.GetResources()[0].GetResource().UnmarshalTo(&rc); err != nil {
		t.Fatal(err)
	}
	if rc.GetVhds() == nil || len(rc.GetVirtualHosts()) != 0 {
		t.Fatalf("a delta Envoy got vhds %v and %d virtual hosts; want VHDS and none", rc.GetVhds(), len(rc.GetVirtualHosts()))
	}

	// Envoy subscribes to the configuration's namespace first: answered
	// with nothing, so that it stops waiting.
	c.subscribe(resource.VirtualHostType, "public")
	if r := c.next(resource.VirtualHostType, 5*time.Second); r == nil || len(r.GetResources()) != 0 {
		t.Fatalf("namespace subscription answered %v, want an empty answer", r)
	}
	c.subscribe(resource.VirtualHostType, "public/api.example.com", "public/a.b.shop.example.com", "public/a.shop.example.com:8443", "public/elsewhere.test", "nope/api.example.com")
	got := hostsOf(t, c.next(resource.VirtualHostType, 5*time.Second))
	want := map[string]string{
		"public/api.example.com":         "api.example.com users,health",
		"public/a.b.shop.example.com":    "a.b.shop.example.com carts,health",
		"public/a.shop.example.com:8443": "a.shop.example.com:8443 health", // Envoy matches domains port included
		"public/elsewhere.test":          "elsewhere.test health",
		"nope/api.example.com":           "(unknown)",
	}
	if !mapsEqual(got, want) {
		t.Fatalf("virtual hosts %v, want %v", got, want)
	}

	sotw := openSotw(t, p.srv.XDSAddr(), "sotw")
	sr, sres := sotw.take(t, resource.RouteType, []string{"public"}, "", "")
	whole := sres["public"].(*route.RouteConfiguration)
	if whole.GetVhds() != nil || len(whole.GetVirtualHosts()) != 3 {
		t.Fatalf("a state-of-the-world Envoy got vhds %v and %d virtual hosts; want no VHDS and 3", whole.GetVhds(), len(whole.GetVirtualHosts()))
	}

	// One host's route changes: only its virtual host is resent, and the
	// delta Envoy's route configuration is not.
	writeFile(t, path, vhdsFile("/users/v2", "/healthz"))
	got = hostsOf(t, c.next(resource.VirtualHostType, 5*time.Second))
	if len(got) != 1 || got["public/api.example.com"] != "api.example.com users,health" {
		t.Fatalf("after an edit of api.example.com's route: %v, want that host alone", got)
	}
	if r := c.next(resource.RouteType, 300*time.Millisecond); r != nil {
		t.Fatalf("the delta Envoy was resent its route configuration: %v", r.GetResources())
	}
	next, sres := sotw.take(t, resource.RouteType, []string{"public"}, sr.GetVersionInfo(), sr.GetNonce())
	if next.GetVersionInfo() == sr.GetVersionInfo() || !strings.Contains(sres["public"].(*route.RouteConfiguration).String(), "/users/v2") {
		t.Fatal("the state-of-the-world Envoy did not get the edit")
	}

	// A route for any host changes: every host loaded is resent.
	writeFile(t, path, vhdsFile("/users/v2", "/health"))
	got = hostsOf(t, c.next(resource.VirtualHostType, 5*time.Second))
	if len(got) != 4 {
		t.Fatalf("after an edit of a route for any host: %v, want the 4 hosts loaded", got)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestVHDSBoundsHostsPerEnvoy: random Host headers cannot grow what one
// Envoy is served without end: past the bound a new host is answered as
// one the server does not know, and the hosts already served stay.
func TestVHDSBoundsHostsPerEnvoy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mapping.yaml")
	writeFile(t, path, vhdsFile("/users", "/healthz"))
	p := start(t, "127.0.0.1:0", path)
	c := openVHDS(t, p.srv.XDSAddr())
	names := []string{"public/api.example.com"}
	for i := 0; i < xds.MaxVHDSPerStream+9; i++ {
		names = append(names, fmt.Sprintf("public/h%d.test", i))
	}
	c.subscribe(resource.VirtualHostType, names[:1]...)
	if got := hostsOf(t, c.next(resource.VirtualHostType, 5*time.Second)); got["public/api.example.com"] != "api.example.com users,health" {
		t.Fatalf("first host: %v", got)
	}
	c.subscribe(resource.VirtualHostType, names[1:]...)
	got := hostsOf(t, c.next(resource.VirtualHostType, 5*time.Second))
	served, unknown := 0, 0
	for _, v := range got {
		if v == "(unknown)" {
			unknown++
		} else {
			served++
		}
	}
	if served != xds.MaxVHDSPerStream-1 || unknown != 10 {
		t.Fatalf("served %d and refused %d new hosts; want %d and 10", served, unknown, xds.MaxVHDSPerStream-1)
	}
	// The edit of the first host's routes still reaches it.
	writeFile(t, path, vhdsFile("/users/v2", "/healthz"))
	if got := hostsOf(t, c.next(resource.VirtualHostType, 5*time.Second)); len(got) != 1 || got["public/api.example.com"] == "" {
		t.Fatalf("after the edit: %d hosts %v", len(got), got["public/api.example.com"])
	}
}
