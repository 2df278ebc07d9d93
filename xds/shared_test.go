package xds_test

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/translator"
	"github.com/protogate/protogate/xds"
)

// translated is the edge group's resources as the translator makes them,
// by type and name: what every client must end up holding.
func translated(t *testing.T, path string) map[string]map[string]types.Resource {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := translator.Translate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]types.Resource{}
	for typ, items := range res.ByGroup()["edge"] {
		out[typ] = map[string]types.Resource{}
		for _, r := range items {
			out[typ][cache.GetResourceName(r)] = r
		}
	}
	return out
}

// sotwStream is a raw state-of-the-world ADS stream.
type sotwStream struct {
	s    discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	node *core.Node
}

func openSotw(t *testing.T, addr, id string, opts ...grpc.DialOption) *sotwStream {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &sotwStream{s: s, node: &core.Node{Id: id, Cluster: "edge"}}
}

// take asks for typ (by names when given), then reads and ACKs one
// response of typ, and returns its resources by name.
func (c *sotwStream) take(t *testing.T, typ string, names []string, version, nonce string) (*discovery.DiscoveryResponse, map[string]types.Resource) {
	t.Helper()
	if err := c.s.Send(&discovery.DiscoveryRequest{Node: c.node, TypeUrl: typ, ResourceNames: names, VersionInfo: version, ResponseNonce: nonce}); err != nil {
		t.Fatal(err)
	}
	resp, err := c.s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetTypeUrl() != typ {
		t.Fatalf("asked for %s, got %s", typ, resp.GetTypeUrl())
	}
	return resp, decode(t, resp.GetResources())
}

func decode(t *testing.T, anys []*anypb.Any) map[string]types.Resource {
	t.Helper()
	out := map[string]types.Resource{}
	for _, a := range anys {
		m, err := a.UnmarshalNew()
		if err != nil {
			t.Fatal(err)
		}
		out[cache.GetResourceName(m)] = m
	}
	return out
}

// TestClientsShareOneEncoding: state-of-the-world clients of a group, and
// delta ones, are all sent exactly the translated resources, while each
// version of each type is marshalled once for all of them; after an edit
// they hold the new routes.
func TestClientsShareOneEncoding(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mapping.yaml")
	writeFile(t, path, largeMapping(300, 60, "/s0/items/{id}"))
	p := start(t, "127.0.0.1:0", path)
	want := translated(t, path)
	built, deltaBuilt := xds.FrozenBuilds(), xds.DeltaBuilds()

	check := func(who, typ string, got map[string]types.Resource) {
		t.Helper()
		if len(got) != len(want[typ]) {
			t.Fatalf("%s: %d %s resources, want %d", who, len(got), typ, len(want[typ]))
		}
		for name, w := range want[typ] {
			if !proto.Equal(w, got[name]) {
				t.Fatalf("%s: %s %q differs from the translation", who, typ, name)
			}
		}
	}
	refs := cache.GetResourceReferences(withTTL(want[resource.ClusterType], want[resource.ListenerType]))
	const clients = 6
	streams := make([]*sotwStream, clients)
	routeNonce := make([]string, clients)
	routeVersion := make([]string, clients)
	for i := range streams {
		c := openSotw(t, p.srv.XDSAddr(), fmt.Sprintf("envoy-%d", i))
		streams[i] = c
		for _, typ := range xds.Types {
			var names []string
			for n := range refs[typ] {
				names = append(names, n)
			}
			resp, got := c.take(t, typ, names, "", "")
			check(c.node.Id, typ, got)
			if typ == resource.RouteType {
				routeNonce[i], routeVersion[i] = resp.GetNonce(), resp.GetVersionInfo()
			}
		}
	}
	for i := 0; i < 2; i++ {
		d := openRawDelta(t, p.srv.XDSAddr(), fmt.Sprintf("delta-%d", i))
		for _, typ := range xds.Types {
			check(d.node.Id, typ, d.take(t, typ))
		}
	}
	if n := xds.FrozenBuilds() - built; n > len(xds.Types) {
		t.Fatalf("%d resource sets were marshalled for 8 clients of one version; want at most one per type (%d)", n, len(xds.Types))
	}
	if n := xds.DeltaBuilds() - deltaBuilt; n > len(xds.Types) {
		t.Fatalf("%d delta resource sets were marshalled for 2 delta clients of one version; want at most one per type (%d)", n, len(xds.Types))
	}

	// One route changes: every client gets the new routes, marshalled once.
	built = xds.FrozenBuilds()
	writeFile(t, path, largeMapping(300, 60, "/s0/items/{id}/v2"))
	want = translated(t, path)
	for i, c := range streams {
		var names []string
		for n := range refs[resource.RouteType] {
			names = append(names, n)
		}
		resp, got := c.take(t, resource.RouteType, names, routeVersion[i], routeNonce[i])
		if resp.GetVersionInfo() == routeVersion[i] {
			t.Fatalf("%s: the edit did not reach it", c.node.Id)
		}
		check(c.node.Id, resource.RouteType, got)
	}
	if n := xds.FrozenBuilds() - built; n != 1 {
		t.Fatalf("the edit marshalled %d resource sets for %d clients; want 1 (routes)", n, clients)
	}
}

func withTTL(sets ...map[string]types.Resource) map[string]types.ResourceWithTTL {
	out := map[string]types.ResourceWithTTL{}
	for _, set := range sets {
		for n, r := range set {
			out[n] = types.ResourceWithTTL{Resource: r}
		}
	}
	return out
}

type rawDelta struct {
	s    discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	node *core.Node
}

// openRawDelta opens a delta ADS stream that a stuck test gives up after
// a minute.
func openRawDelta(t *testing.T, addr, id string) *rawDelta {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &rawDelta{s: s, node: &core.Node{Id: id, Cluster: "edge"}}
}

// take subscribes to every resource of typ and returns what the first
// response holds, ACKing it.
func (d *rawDelta) take(t *testing.T, typ string) map[string]types.Resource {
	t.Helper()
	if err := d.s.Send(&discovery.DeltaDiscoveryRequest{Node: d.node, TypeUrl: typ, ResourceNamesSubscribe: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
	resp, err := d.s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var anys []*anypb.Any
	for _, r := range resp.GetResources() {
		anys = append(anys, r.GetResource())
	}
	if err := d.s.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: typ, ResponseNonce: resp.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	return decode(t, anys)
}

// TestDeltaEditSendsOnlyTheChange: after an edit that moves one
// upstream's endpoint and drops another upstream, a delta client
// subscribed to everything is sent only resources that changed and the
// names of those gone, and ends up holding exactly the new translation.
func TestDeltaEditSendsOnlyTheChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mapping.yaml")
	writeFile(t, path, largeMapping(300, 60, "/s0/items/{id}"))
	p := start(t, "127.0.0.1:0", path)
	want := translated(t, path)

	d := openRawDelta(t, p.srv.XDSAddr(), "delta-edit")
	held := map[string]map[string]types.Resource{}
	for _, typ := range xds.Types {
		held[typ] = d.take(t, typ)
	}
	if diff := differences(held, want); diff != "" {
		t.Fatalf("before the edit: %s", diff)
	}

	// u2 (HTTP) moves, u59 (HTTP) is dropped.
	edited := strings.Replace(largeMapping(300, 59, "/s0/items/{id}"), `"127.0.2.1:8080"`, `"127.0.2.9:8080"`, 1)
	writeFile(t, path, edited)
	next := translated(t, path)
	var removed []string
	for typ := range want {
		for name := range want[typ] {
			if _, ok := next[typ][name]; !ok {
				removed = append(removed, typ+" "+name)
			}
		}
	}
	if !slices.Contains(removed, resource.ClusterType+" http/u59") || proto.Equal(want[resource.EndpointType]["http/u2"], next[resource.EndpointType]["http/u2"]) {
		t.Fatalf("the edit does not drop cluster u59 and move u2's endpoint (removed: %v)", removed)
	}
	var gone []string
	for differences(held, next) != "" {
		resp, err := d.s.Recv()
		if err != nil {
			t.Fatalf("before holding the edit (%s): %v", differences(held, next), err)
		}
		typ := resp.GetTypeUrl()
		for _, r := range resp.GetResources() {
			m, err := r.GetResource().UnmarshalNew()
			if err != nil {
				t.Fatal(err)
			}
			if old, ok := held[typ][r.GetName()]; ok && proto.Equal(old, m) {
				t.Fatalf("%s %q was sent again unchanged", typ, r.GetName())
			}
			held[typ][r.GetName()] = m
		}
		for _, name := range resp.GetRemovedResources() {
			if _, ok := held[typ][name]; !ok {
				t.Fatalf("%s %q was removed, but the client did not hold it", typ, name)
			}
			delete(held[typ], name)
			gone = append(gone, typ+" "+name)
		}
		if err := d.s.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: typ, ResponseNonce: resp.GetNonce()}); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(removed)
	slices.Sort(gone)
	if !slices.Equal(gone, removed) {
		t.Fatalf("removals sent: %v, want %v", gone, removed)
	}
}

// differences says how held differs from want, or "".
func differences(held, want map[string]map[string]types.Resource) string {
	for _, typ := range slices.Sorted(maps.Keys(want)) {
		if typ == xds.TableType {
			continue // the bridges' type, not an Envoy's
		}
		if len(held[typ]) != len(want[typ]) {
			return fmt.Sprintf("%d %s resources, want %d", len(held[typ]), typ, len(want[typ]))
		}
		for name, w := range want[typ] {
			if !proto.Equal(w, held[typ][name]) {
				return fmt.Sprintf("%s %q differs from the translation", typ, name)
			}
		}
	}
	return ""
}

// TestSlowClientDoesNotHoldOthers: a client that stops reading in the
// middle of a large route table holds up nobody: the others take an edit
// at once, a client connecting meanwhile is served, and the slow one gets
// the latest routes once it reads again.
func TestSlowClientDoesNotHoldOthers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mapping.yaml")
	writeFile(t, path, largeMapping(2000, 60, "/s0/items/{id}"))
	p := start(t, "127.0.0.1:0", path)
	want := translated(t, path)
	var routeNames []string
	for n := range cache.GetResourceReferences(withTTL(want[resource.ListenerType]))[resource.RouteType] {
		routeNames = append(routeNames, n)
	}
	if size := proto.Size(want[resource.RouteType][routeNames[0]]); size < 256<<10 {
		t.Fatalf("the route table is %d bytes; the test needs one well past the flow-control window", size)
	}

	// The slow client: fixed 64 KiB windows (no growth), and it never
	// reads its route table.
	slow := openSotw(t, p.srv.XDSAddr(), "slow", grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err := slow.s.Send(&discovery.DiscoveryRequest{Node: slow.node, TypeUrl: resource.RouteType, ResourceNames: routeNames}); err != nil {
		t.Fatal(err)
	}
	fast := openSotw(t, p.srv.XDSAddr(), "fast")
	resp, _ := fast.take(t, resource.RouteType, routeNames, "", "")

	writeFile(t, path, largeMapping(2000, 60, "/s0/items/{id}/v2"))
	next, got := fast.take(t, resource.RouteType, routeNames, resp.GetVersionInfo(), resp.GetNonce())
	if next.GetVersionInfo() == resp.GetVersionInfo() {
		t.Fatal("the edit did not reach the fast client")
	}
	want = translated(t, path)
	if !proto.Equal(want[resource.RouteType][routeNames[0]], got[routeNames[0]]) {
		t.Fatal("the fast client's routes differ from the translation")
	}
	late := openSotw(t, p.srv.XDSAddr(), "late")
	if r, _ := late.take(t, resource.RouteType, routeNames, "", ""); r.GetVersionInfo() != next.GetVersionInfo() {
		t.Fatalf("a client connecting meanwhile got version %s, want %s", r.GetVersionInfo(), next.GetVersionInfo())
	}

	// The slow client reads again: its stream is alive, and after the
	// table it was being sent it holds the latest.
	first, err := slow.s.Recv()
	if err != nil {
		t.Fatalf("the slow client's stream: %v", err)
	}
	version := first.GetVersionInfo()
	if version != next.GetVersionInfo() {
		if err := slow.s.Send(&discovery.DiscoveryRequest{TypeUrl: resource.RouteType, ResourceNames: routeNames,
			VersionInfo: version, ResponseNonce: first.GetNonce()}); err != nil {
			t.Fatal(err)
		}
		latest, err := slow.s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		version = latest.GetVersionInfo()
	}
	if version != next.GetVersionInfo() {
		t.Fatalf("the slow client ends with version %s, want %s", version, next.GetVersionInfo())
	}
}
