package xds_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/translator"
	"github.com/protogate/protogate/xds"
)

const mapping = `
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: ping
        match: { path: /ping }
        nats: { upstream: events, subject: health.ping, mode: request }
  - name: nats-in
    address: 127.0.0.1:4223
    protocol: tcp
    upstream: events
  - name: rpc
    address: 127.0.0.1:20881
    protocol: dubbo
    routes: [ { match: { service: com.example.UserService }, upstream: users } ]
upstreams:
  nats: [ { name: events, urls: [ "nats://127.0.0.1:4222" ] } ]
  dubbo: [ { name: users, urls: [ "dubbo://127.0.0.1:20880" ] } ]
xds:
  groups:
    - { name: edge, listeners: [ public, nats-in ] }
    - { name: rpc, listeners: [ rpc ] }
`

// A second route on the public listener.
var withPong = strings.Replace(mapping, "  - name: nats-in", `      - name: pong
        match: { path: /pong }
        nats: { upstream: events, subject: health.pong, mode: request }
  - name: nats-in`, 1)

// source is the product's pipeline: load, validate, translate.
func source(path string) xds.Source {
	return func() (map[string]xds.Resources, xds.Outcome, error) {
		cfg, err := config.Load(path)
		if err != nil {
			return nil, nil, err
		}
		res, err := translator.Translate(cfg)
		if err != nil {
			return nil, nil, err
		}
		return res.ByGroup(), nil, nil
	}
}

type plane struct {
	srv  *xds.Server
	path string
	src  xds.Source
}

// start runs a control plane on addr (127.0.0.1:0 for a free port) serving
// the mapping at path, watching it with a short debounce.
func start(t *testing.T, addr, path string) *plane {
	t.Helper()
	srv := xds.New(xds.Options{
		Address: addr, AdminAddress: "127.0.0.1:0", MaxMessageSize: 16 << 20, MaxStreamsPerPeer: 16,
		KeepaliveTime: 30 * time.Second, KeepaliveTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	p := &plane{srv: srv, path: path, src: source(path)}
	if err := srv.Reload("start", p.src); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv.Watch(ctx, path, 50*time.Millisecond, p.src)
	t.Cleanup(func() {
		cancel()
		sctx, c := context.WithTimeout(context.Background(), time.Second)
		defer c()
		srv.Shutdown(sctx)
	})
	return p
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // as editors and ConfigMaps do
		t.Fatal(err)
	}
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// client is go-control-plane's ADS client with one pending Fetch kept
// across calls, so a "nothing arrives" check does not block the next one.
type client struct {
	t       *testing.T
	c       sotw.ADSClient
	pending chan fetched
}

type fetched struct {
	names []string
	err   error
}

func newClient(t *testing.T, conn *grpc.ClientConn, nodeID, group string, typ resource.Type) *client {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := &client{t: t, c: sotw.NewADSClient(ctx, &core.Node{Id: nodeID, Cluster: group}, typ)}
	c.connect(conn)
	return c
}

func (c *client) connect(conn *grpc.ClientConn) {
	if err := c.c.InitConnect(conn, grpc.WaitForReady(true)); err != nil {
		c.t.Fatal(err)
	}
}

// next waits up to d for a response; ok is false if none came.
func (c *client) next(d time.Duration) (names []string, ok bool) {
	c.t.Helper()
	if c.pending == nil {
		ch := make(chan fetched, 1)
		c.pending = ch
		go func() {
			resp, err := c.c.Fetch()
			var f fetched
			f.err = err
			if resp != nil {
				for _, r := range resp.Resources {
					m, err := r.UnmarshalNew()
					if err != nil {
						f.err = err
						break
					}
					f.names = append(f.names, cache.GetResourceName(m))
				}
			}
			ch <- f
		}()
	}
	select {
	case f := <-c.pending:
		c.pending = nil
		if f.err != nil {
			c.t.Fatalf("fetch: %v", f.err)
		}
		slices.Sort(f.names)
		return f.names, true
	case <-time.After(d):
		return nil, false
	}
}

// broken waits for the pending fetch to fail, as it does when the server
// goes away.
func (c *client) broken(d time.Duration) bool {
	if c.pending == nil {
		return false
	}
	select {
	case f := <-c.pending:
		c.pending = nil
		return f.err != nil
	case <-time.After(d):
		return false
	}
}

func (c *client) ack() {
	if err := c.c.Ack(); err != nil {
		c.t.Fatal(err)
	}
}

func mappingFile(t *testing.T, body string) string {
	path := filepath.Join(t.TempDir(), "mapping.yaml")
	writeFile(t, path, body)
	return path
}

// TestGroupsAndFallback: each group's node gets its own resources; a node of
// no group gets a valid, empty configuration and shows up as such.
func TestGroupsAndFallback(t *testing.T) {
	p := start(t, "127.0.0.1:0", mappingFile(t, mapping))
	conn := dial(t, p.srv.XDSAddr())
	want := map[string]map[resource.Type]string{
		"edge": {
			resource.ListenerType: "nats-in,public",
			resource.RouteType:    "public",
			resource.ClusterType:  "nats/events,protogate/bridge-nats",
			resource.EndpointType: "nats/events,protogate/bridge-nats",
		},
		"rpc": {
			resource.ListenerType: "rpc",
			resource.RouteType:    "",
			resource.ClusterType:  "dubbo/users",
			resource.EndpointType: "dubbo/users",
		},
		"nobody-knows": {
			resource.ListenerType: "", resource.RouteType: "", resource.ClusterType: "", resource.EndpointType: "",
		},
	}
	for group, types := range want {
		for typ, names := range types {
			c := newClient(t, conn, "node-"+group, group, typ)
			got, ok := c.next(5 * time.Second)
			if !ok {
				t.Fatalf("%s %s: no response", group, typ)
			}
			if strings.Join(got, ",") != names {
				t.Errorf("%s %s = %v, want %s", group, typ, got, names)
			}
			c.ack()
		}
	}
	routes := p.srv.Status().Groups["edge"].Types[resource.RouteType]
	// /status and the versions agree: a fallback node holds a fallback
	// version, a group's node never does.
	p.waitNode(t, "node-nobody-knows", func(n xds.NodeStatus) bool {
		return n.Fallback && strings.HasPrefix(n.LastACK[resource.RouteType].Version, xds.FallbackVersionPrefix)
	})
	if strings.HasPrefix(routes, xds.FallbackVersionPrefix) {
		t.Errorf("group edge is served a fallback version %s", routes)
	}
	p.waitNode(t, "node-edge", func(n xds.NodeStatus) bool {
		return !n.Fallback && n.LastACK[resource.RouteType].Version == routes
	})
}

// TestDumpKnowsTheFallback: Dump tells a node of no group from a group
// that serves nothing of a type, and names the groups there are, also
// after a reload changes them.
func TestDumpKnowsTheFallback(t *testing.T) {
	path := mappingFile(t, mapping)
	p := start(t, "127.0.0.1:0", path)
	dump := func(group string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := xds.Dump(ctx, p.srv.XDSAddr(), &core.Node{Id: "dump-" + group, Cluster: group}, xds.Types)
		return err
	}
	// rpc has no routes: an empty RDS answer, but a real group.
	if err := dump("rpc"); err != nil {
		t.Fatalf("dump of group rpc: %v", err)
	}
	tests := []struct {
		mapping string
		want    []string
	}{
		{mapping, []string{"edge", "rpc"}},
		{strings.Replace(mapping, "    - { name: rpc, listeners: [ rpc ] }",
			"    - { name: rpc, listeners: [ rpc ] }\n    - { name: spare, listeners: [ ] }", 1), []string{"edge", "rpc", "spare"}},
	}
	for i, tt := range tests {
		if i > 0 {
			writeFile(t, path, tt.mapping)
			p.waitGroups(t, len(tt.want))
		}
		err := dump("nobody-knows")
		var unknown *xds.UnknownGroupError
		if !errors.As(err, &unknown) || !unknown.Listed || !slices.Equal(unknown.Groups, tt.want) || unknown.Group != "nobody-knows" {
			t.Fatalf("dump of an unknown group: %v (%+v), want groups %v", err, unknown, tt.want)
		}
	}
}

// waitGroups waits until n groups are published.
func (p *plane) waitGroups(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if len(p.srv.Status().Groups) == n {
			return
		}
	}
	t.Fatalf("never published %d groups: %+v", n, p.srv.Status().LastReload)
}

func TestFallbackGroups(t *testing.T) {
	tests := []struct {
		version          string
		groups           []string
		listed, fallback bool
	}{
		{"0123456789abcdef", nil, false, false},
		{"", nil, false, false},
		{"fallback-groups=", []string{}, true, true},
		{"fallback-groups=edge,rpc", []string{"edge", "rpc"}, true, true},
		{"fallback-groups=a+b%2Cc,edge", []string{"a b,c", "edge"}, true, true},
		{"fallback-0123456789abcdef", nil, false, true},
		{"fallback-groups=%zz", nil, false, true},
	}
	for _, tt := range tests {
		groups, listed, fallback := xds.FallbackGroups(tt.version)
		if !slices.Equal(groups, tt.groups) || listed != tt.listed || fallback != tt.fallback || (groups == nil) != (tt.groups == nil) {
			t.Errorf("FallbackGroups(%q) = %q %v %v, want %q %v %v", tt.version, groups, listed, fallback, tt.groups, tt.listed, tt.fallback)
		}
	}
}

// TestFallbackVersionOfManyGroups: a list too long to send with every
// response becomes a hash, and Dump still says the group is unknown.
func TestFallbackVersionOfManyGroups(t *testing.T) {
	body := mapping
	var extra strings.Builder
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&extra, "    - { name: group-with-a-long-name-%02d, listeners: [ ] }\n", i)
	}
	body = strings.Replace(body, "    - { name: rpc, listeners: [ rpc ] }\n", "    - { name: rpc, listeners: [ rpc ] }\n"+extra.String(), 1)
	p := start(t, "127.0.0.1:0", mappingFile(t, body))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := xds.Dump(ctx, p.srv.XDSAddr(), &core.Node{Id: "n", Cluster: "nope"}, []resource.Type{resource.ListenerType})
	var unknown *xds.UnknownGroupError
	if !errors.As(err, &unknown) || unknown.Listed || !strings.Contains(err.Error(), "its /status shows them") {
		t.Fatalf("got %v", err)
	}
}

// waitNode waits for /status to show a node in the wanted state; ACKs are
// processed after the client sent them, so this is eventually true.
func (p *plane) waitNode(t *testing.T, id string, ok func(xds.NodeStatus) bool) {
	t.Helper()
	var last []xds.NodeStatus
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		last = p.srv.Status().Nodes
		for _, n := range last {
			if n.ID == id && ok(n) {
				return
			}
		}
	}
	t.Fatalf("node %s never reached the wanted state: %+v", id, last)
}

func adminGet(t *testing.T, p *plane, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + p.srv.AdminAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHotReload: an edit reaches connected clients within a second; an
// invalid file changes nothing for them and is reported; fixing it resumes.
func TestHotReload(t *testing.T) {
	path := mappingFile(t, mapping)
	p := start(t, "127.0.0.1:0", path)
	c := newClient(t, dial(t, p.srv.XDSAddr()), "envoy-1", "edge", resource.RouteType)
	if _, ok := c.next(5 * time.Second); !ok {
		t.Fatal("no initial routes")
	}
	c.ack()
	before := p.version("edge")

	began := time.Now()
	writeFile(t, path, withPong)
	if _, ok := c.next(time.Second); !ok {
		t.Fatal("an edit was not pushed within a second")
	}
	t.Logf("edit pushed after %v", time.Since(began))
	c.ack()
	if p.version("edge") == before {
		t.Fatal("version did not change")
	}

	good := p.version("edge")
	writeFile(t, path, strings.Replace(withPong, "upstream: events, subject: health.pong", "upstream: nowhere, subject: health.pong", 1))
	if names, ok := c.next(700 * time.Millisecond); ok {
		t.Fatalf("an invalid file was pushed: %v", names)
	}
	if p.version("edge") != good {
		t.Fatal("an invalid file changed the served version")
	}
	_, body := adminGet(t, p, "/status")
	var st struct {
		LastReload struct {
			OK       bool     `json:"ok"`
			Problems []string `json:"problems"`
			Serving  string   `json:"serving"`
		} `json:"last_reload"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.LastReload.OK || len(st.LastReload.Problems) != 1 ||
		!strings.HasSuffix(st.LastReload.Problems[0], `listeners[0].routes[1].nats.upstream: no upstream is named "nowhere"`) ||
		st.LastReload.Serving != "the last good mapping" {
		t.Fatalf("/status last_reload = %+v", st.LastReload)
	}
	_, metrics := adminGet(t, p, "/metrics")
	if !strings.Contains(metrics, "protogate_config_last_reload_success 0") || !strings.Contains(metrics, `protogate_config_reloads_total{result="failure"} 1`) {
		t.Fatal("the failed reload is not in the metrics")
	}

	writeFile(t, path, mapping)
	names, ok := c.next(time.Second)
	if !ok || strings.Join(names, ",") != "public" {
		t.Fatalf("fixing the file did not resume pushes: %v %v", names, ok)
	}
	c.ack()
	if p.version("edge") != before {
		t.Fatal("the original content did not get its original version back")
	}
}

// TestIdenticalPublishPushesNothing: republishing the same translation, or a
// reload of an unchanged file, sends clients nothing.
func TestIdenticalPublishPushesNothing(t *testing.T) {
	path := mappingFile(t, mapping)
	p := start(t, "127.0.0.1:0", path)
	c := newClient(t, dial(t, p.srv.XDSAddr()), "envoy-1", "edge", resource.ListenerType)
	if _, ok := c.next(5 * time.Second); !ok {
		t.Fatal("no initial listeners")
	}
	c.ack()
	if err := p.srv.Reload("test", p.src); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, mapping+"\n# a comment changes the file, not the config\n")
	if names, ok := c.next(700 * time.Millisecond); ok {
		t.Fatalf("identical content was pushed: %v", names)
	}
	// A route-only change does not move the listener version either.
	writeFile(t, path, withPong)
	if names, ok := c.next(700 * time.Millisecond); ok {
		t.Fatalf("a route change pushed listeners: %v", names)
	}
}

// TestNACK: a rejection is counted, visible with Envoy's reason, and not
// answered by resending the same version; a new version still arrives.
func TestNACK(t *testing.T) {
	path := mappingFile(t, mapping)
	p := start(t, "127.0.0.1:0", path)
	c := newClient(t, dial(t, p.srv.XDSAddr()), "envoy-1", "edge", resource.RouteType)
	if _, ok := c.next(5 * time.Second); !ok {
		t.Fatal("no initial routes")
	}
	rejected := p.srv.Status().Groups["edge"].Types[resource.RouteType]
	if err := c.c.Nack("route public: regex too large"); err != nil {
		t.Fatal(err)
	}
	if names, ok := c.next(time.Second); ok {
		t.Fatalf("the NACKed version was sent again: %v", names)
	}
	if got := p.metric(t, `protogate_xds_nacks_total{group="edge",type_url="`+resource.RouteType+`"}`); got != "1" {
		t.Fatalf("nack counter = %q, want 1", got)
	}
	var node xds.NodeStatus
	for _, n := range p.srv.Status().Nodes {
		if n.ID == "envoy-1" {
			node = n
		}
	}
	nack := node.LastNACK[resource.RouteType]
	if nack.Error != "route public: regex too large" || nack.Version != rejected || node.NACKCount != 1 {
		t.Fatalf("NACK status = %+v (count %d), want version %s", nack, node.NACKCount, rejected)
	}
	if got := p.metric(t, `protogate_xds_pushes_total{group="edge",type_url="`+resource.RouteType+`"}`); got != "1" {
		t.Fatalf("route responses sent = %s, want 1 (no resend loop)", got)
	}
	writeFile(t, path, withPong)
	if _, ok := c.next(time.Second); !ok {
		t.Fatal("a new version did not reach the client after its NACK")
	}
	c.ack()
}

// version is the group's published version, as /status shows it.
func (p *plane) version(group string) string { return p.srv.Status().Groups[group].Version }

// metric reads one sample from /metrics as an operator would.
func (p *plane) metric(t *testing.T, series string) string {
	t.Helper()
	_, body := adminGet(t, p, "/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// deltaStream is the generated ADS client's delta stream for one type.
type deltaStream struct {
	t *testing.T
	s discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	r chan *discovery.DeltaDiscoveryResponse
}

func openDelta(t *testing.T, conn *grpc.ClientConn, typ resource.Type) *deltaStream {
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
	if err := s.Send(&discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: "delta-1", Cluster: "edge"}, TypeUrl: typ}); err != nil {
		t.Fatal(err)
	}
	return d
}

// next returns the next response's changed and removed names, ACKing it.
func (d *deltaStream) next(wait time.Duration) (changed, removed []string, ok bool) {
	select {
	case resp, open := <-d.r:
		if !open {
			d.t.Fatal("delta stream closed")
		}
		for _, r := range resp.Resources {
			changed = append(changed, r.Name)
		}
		removed = resp.RemovedResources
		slices.Sort(changed)
		slices.Sort(removed)
		if err := d.s.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resp.TypeUrl, ResponseNonce: resp.Nonce}); err != nil {
			d.t.Fatal(err)
		}
		return changed, removed, true
	case <-time.After(wait):
		return nil, nil, false
	}
}

// TestDelta: after a one-route change a delta client gets only the changed
// resource; a removed listener arrives as a removal.
func TestDelta(t *testing.T) {
	path := mappingFile(t, mapping)
	p := start(t, "127.0.0.1:0", path)
	conn := dial(t, p.srv.XDSAddr())
	routes := openDelta(t, conn, resource.RouteType)
	listeners := openDelta(t, conn, resource.ListenerType)
	clusters := openDelta(t, conn, resource.ClusterType)
	for _, d := range []*deltaStream{routes, listeners, clusters} {
		if _, _, ok := d.next(5 * time.Second); !ok {
			t.Fatal("no initial delta response")
		}
	}

	// One route changes: only the route configuration holding it arrives.
	writeFile(t, path, withPong)
	changed, removed, ok := routes.next(time.Second)
	if !ok || strings.Join(changed, ",") != "public" || len(removed) != 0 {
		t.Fatalf("route delta = %v removed %v (ok %v), want [public]", changed, removed, ok)
	}
	if c, r, ok := listeners.next(500 * time.Millisecond); ok {
		t.Fatalf("unchanged listeners were sent: %v removed %v", c, r)
	}
	if c, r, ok := clusters.next(200 * time.Millisecond); ok {
		t.Fatalf("unchanged clusters were sent: %v removed %v", c, r)
	}

	// The tcp listener leaves the edge group: a removal, nothing else.
	writeFile(t, path, strings.Replace(withPong, "    - { name: edge, listeners: [ public, nats-in ] }",
		"    - { name: edge, listeners: [ public ] }\n    - { name: spare, listeners: [ nats-in ] }", 1))
	changed, removed, ok = listeners.next(time.Second)
	if !ok || len(changed) != 0 || strings.Join(removed, ",") != "nats-in" {
		t.Fatalf("listener delta = %v removed %v (ok %v), want removal of nats-in", changed, removed, ok)
	}
}

// TestRestartKeepsVersions: a control plane restarted on the same input
// serves the same versions, and a reconnecting client gets no update.
func TestRestartKeepsVersions(t *testing.T) {
	path := mappingFile(t, mapping)
	first := start(t, "127.0.0.1:0", path)
	addr := first.srv.XDSAddr()
	conn := dial(t, addr)
	c := newClient(t, conn, "envoy-1", "edge", resource.ListenerType)
	if _, ok := c.next(5 * time.Second); !ok {
		t.Fatal("no initial listeners")
	}
	c.ack()
	version := first.srv.Status().Groups["edge"].Types[resource.ListenerType]
	if names, ok := c.next(200 * time.Millisecond); ok { // leaves a Fetch waiting
		t.Fatalf("unexpected push: %v", names)
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	first.srv.Shutdown(sctx)
	cancel()
	if !c.broken(2 * time.Second) {
		t.Fatal("the stream did not end when the server stopped")
	}

	second := start(t, addr, path)
	if got := second.srv.Status().Groups["edge"].Types[resource.ListenerType]; got != version {
		t.Fatalf("restart changed the version: %s → %s", version, got)
	}
	c.connect(conn)
	if names, ok := c.next(time.Second); ok {
		t.Fatalf("the reconnecting client was sent what it already had: %v", names)
	}
	second.waitNode(t, "envoy-1", func(n xds.NodeStatus) bool { return n.LastACK[resource.ListenerType].Version == version })
}

// TestAdmin: health, readiness, and a config dump that is exactly what the
// node is served.
func TestAdmin(t *testing.T) {
	p := start(t, "127.0.0.1:0", mappingFile(t, mapping))
	if code, _ := adminGet(t, p, "/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	if code, _ := adminGet(t, p, "/readyz"); code != 200 {
		t.Fatalf("/readyz = %d", code)
	}
	if code, _ := adminGet(t, p, "/config_dump?node=ghost"); code != 404 {
		t.Fatalf("/config_dump of an unknown node = %d, want 404", code)
	}
	c := newClient(t, dial(t, p.srv.XDSAddr()), "envoy-1", "rpc", resource.ClusterType)
	if _, ok := c.next(5 * time.Second); !ok {
		t.Fatal("no clusters")
	}
	code, body := adminGet(t, p, "/config_dump?node=envoy-1")
	var dump struct {
		Group     string `json:"group"`
		Resources map[string]struct {
			Version   string            `json:"version"`
			Resources []json.RawMessage `json:"resources"`
		} `json:"resources"`
	}
	if err := json.Unmarshal([]byte(body), &dump); err != nil || code != 200 {
		t.Fatalf("/config_dump: %d %v", code, err)
	}
	cl := dump.Resources[resource.ClusterType]
	var first struct {
		Type string `json:"@type"`
		Name string `json:"name"`
	}
	if len(cl.Resources) == 1 {
		_ = json.Unmarshal(cl.Resources[0], &first)
	}
	if dump.Group != "rpc" || len(cl.Resources) != 1 || first.Name != "dubbo/users" ||
		first.Type != resource.ClusterType || cl.Version != p.srv.Status().Groups["rpc"].Types[resource.ClusterType] {
		t.Fatalf("/config_dump: group %q, clusters %d, first %+v, version %s", dump.Group, len(cl.Resources), first, cl.Version)
	}

	unready := xds.New(xds.Options{Address: "127.0.0.1:0", AdminAddress: "127.0.0.1:0", MaxMessageSize: 1 << 20, MaxStreamsPerPeer: 1,
		KeepaliveTime: time.Minute, KeepaliveTimeout: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := unready.Start(); err != nil {
		t.Fatal(err)
	}
	defer unready.Shutdown(context.Background())
	resp, err := http.Get("http://" + unready.AdminAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("/readyz before any publish = %d, want 503", resp.StatusCode)
	}
}

// TestDumpACKsEveryType: when Dump returns, the server has recorded its
// ACK of every type, so /status shows what the dump received.
func TestDumpACKsEveryType(t *testing.T) {
	p := start(t, "127.0.0.1:0", mappingFile(t, mapping))
	for i := 0; i < 5; i++ {
		id := fmt.Sprintf("dump-%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := xds.Dump(ctx, p.srv.XDSAddr(), &core.Node{Id: id, Cluster: "edge"}, xds.Types)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var node *xds.NodeStatus
		for _, n := range p.srv.Status().Nodes {
			if n.ID == id {
				node = &n
			}
		}
		if node == nil || len(node.LastACK) != len(xds.Types) {
			t.Fatalf("dump %d: /status has %+v, want an ACK of each of %d types", i, node, len(xds.Types))
		}
	}
}
