package test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/protogate/protogate/bridges"
	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/routetable"
	"github.com/protogate/protogate/routetable/routetablepb"
	"github.com/protogate/protogate/translator"
	"github.com/protogate/protogate/xds"
)

// tableMapping has the routes names lists, each proxying /NAME to the
// HTTP upstream web, and optionally an embedded NATS upstream (which a
// bridge outside protogate run cannot serve, so it rejects the table).
func tableMapping(web string, embedded bool, names ...string) string {
	var b strings.Builder
	b.WriteString("listeners:\n  - name: public\n    address: 127.0.0.1:10000\n    routes:\n")
	for _, n := range names {
		if strings.HasPrefix(n, "pub-") {
			// A NATS route, to upstream bus (which the extra part of the
			// mapping declares): it needs the bridge cluster.
			fmt.Fprintf(&b, "      - { name: %[1]s, match: { path: /%[1]s, methods: [POST] }, nats: { upstream: bus, subject: app.%[1]s, mode: core } }\n", n)
			continue
		}
		fmt.Fprintf(&b, "      - { name: %[1]s, match: { path: /%[1]s, methods: [GET] }, http: { upstream: web } }\n", n)
	}
	if embedded {
		b.WriteString("      - { name: events, match: { path: /events, methods: [POST] }, nats: { upstream: dev, subject: dev.events } }\n")
	}
	fmt.Fprintf(&b, "upstreams:\n  http: [ { name: web, endpoints: [ %q ] } ]\n", web)
	if embedded {
		b.WriteString("  nats: [ { name: dev, embedded: true } ]\n")
	}
	return b.String()
}

// fleet is a control plane, a bridge following it over ADS, and an HTTP
// upstream, all in this process on loopback ports.
type fleet struct {
	t       *testing.T
	cp      *xds.Server
	bridge  *bridges.Server
	web     string
	applied atomic.Int32 // tables the first bridge took
	stop    context.CancelFunc
	// extra is appended to every mapping (bridge discovery settings).
	extra string
}

// member is one more bridge of the fleet.
type member struct {
	srv  *bridges.Server
	tc   *xds.TableClient
	stop context.CancelFunc
}

func startFleet(t *testing.T, routes ...string) *fleet {
	return startFleetWith(t, "", routes...)
}

func startFleetWith(t *testing.T, extra string, routes ...string) *fleet {
	t.Helper()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream saw "+r.URL.Path)
	}))
	t.Cleanup(web.Close)
	f := &fleet{t: t, web: strings.TrimPrefix(web.URL, "http://"), extra: extra}
	f.cp = xds.New(xds.Options{Address: "127.0.0.1:0", AdminAddress: "127.0.0.1:0", MaxMessageSize: 4 << 20, MaxStreamsPerPeer: 16,
		KeepaliveTime: time.Minute, KeepaliveTimeout: 10 * time.Second, Logger: quiet(),
		BridgeAckTimeout: 5 * time.Second, EnvoyAckTimeout: 5 * time.Second})
	if err := f.cp.Reload("start", f.source(false, routes...)); err != nil {
		t.Fatal(err)
	}
	if err := f.cp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		f.cp.Shutdown(ctx)
	})
	f.startBridge(f.cp.XDSAddr())
	return f
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (f *fleet) source(embedded bool, routes ...string) xds.Source {
	return func() (map[string]xds.Resources, xds.Outcome, error) {
		cfg, err := config.LoadBytes("mapping.yaml", []byte(tableMapping(f.web, embedded, routes...)+f.extra))
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

func (f *fleet) startBridge(cpAddr string) {
	m := f.addBridge(cpAddr, "bridge-1", &f.applied)
	f.bridge, f.stop = m.srv, m.stop
}

// addBridge starts a bridge that follows the control plane at cpAddr.
func (f *fleet) addBridge(cpAddr, id string, applied *atomic.Int32) *member {
	t := f.t
	settings, err := config.BridgeSettings()
	if err != nil {
		t.Fatal(err)
	}
	settings.Address = "127.0.0.1:0"
	srv, err := bridges.New(settings, nil, bridges.Options{Logger: quiet(), AwaitTable: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tc := &xds.TableClient{Address: cpAddr, NodeID: id, Group: config.DefaultGroup, BridgeAddress: srv.Addr(), Logger: quiet(),
		Apply: func(r *routetablepb.RouteTable) error {
			tb, err := routetable.FromResource(r)
			if err == nil {
				err = srv.Apply(tb)
			}
			if err == nil && applied != nil {
				applied.Add(1)
			}
			return err
		}}
	done := make(chan struct{})
	go func() { tc.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
	})
	return &member{srv: srv, tc: tc, stop: cancel}
}

// call asks the bridge for route name as Envoy would: the route header set.
func (f *fleet) call(name string) (int, string) {
	req, _ := http.NewRequest("GET", "http://"+f.bridge.Addr()+"/"+name, nil)
	req.Header.Set("x-protogate-route", name)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *fleet) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// envoy is go-control-plane's ADS client standing in for an Envoy of the
// group, on the route type.
type envoy struct {
	c    sotw.ADSClient
	conn *grpc.ClientConn
}

func connectEnvoy(t *testing.T, addr string) *envoy {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); conn.Close() })
	c := sotw.NewADSClient(ctx, &core.Node{Id: "envoy-1", Cluster: config.DefaultGroup}, resource.RouteType)
	if err := c.InitConnect(conn); err != nil {
		t.Fatal(err)
	}
	return &envoy{c: c, conn: conn}
}

// routes receives the next route push, not yet ACKed, and lists its routes.
func (e *envoy) routes(t *testing.T) []string {
	t.Helper()
	resp, err := e.c.Fetch()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range resp.Resources {
		var rc route.RouteConfiguration
		if err := a.UnmarshalTo(&rc); err != nil {
			t.Fatal(err)
		}
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				names = append(names, r.GetName())
			}
		}
	}
	slices.Sort(names)
	return names
}

// TestBridgeFollowsControlPlane: a bridge with no mapping file takes its
// group's table over ADS and serves it; an Envoy is sent a new route only
// once the bridge serves it, and a dropped route leaves the bridge only
// after the Envoy has taken routes without it.
func TestBridgeFollowsControlPlane(t *testing.T) {
	f := startFleet(t, "keep", "old")
	f.waitFor("the bridge to take the first table", func() bool { return f.applied.Load() == 1 })
	if code, body := f.call("old"); code != 200 || body != "upstream saw /old" {
		t.Fatalf("old = %d %q", code, body)
	}
	e := connectEnvoy(t, f.cp.XDSAddr())
	if got := e.routes(t); !slices.Equal(got, []string{"keep", "old"}) {
		t.Fatalf("Envoy's first routes = %v", got)
	}
	if err := e.c.Ack(); err != nil {
		t.Fatal(err)
	}

	reloaded := make(chan error, 1)
	go func() { reloaded <- f.cp.Reload("edit", f.source(false, "keep", "new")) }()
	got := e.routes(t)
	if !slices.Equal(got, []string{"keep", "new"}) {
		t.Fatalf("Envoy's routes after the edit = %v", got)
	}
	// Envoy holds the new route now and has not ACKed: the bridge must
	// serve the new route already, and still the dropped one.
	if code, body := f.call("new"); code != 200 || body != "upstream saw /new" {
		t.Fatalf("new, as Envoy first sees it = %d %q", code, body)
	}
	if code, _ := f.call("old"); code != 200 {
		t.Fatalf("old, before Envoy took routes without it = %d", code)
	}
	if err := e.c.Ack(); err != nil {
		t.Fatal(err)
	}
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	f.waitFor("the bridge to forget the dropped route", func() bool {
		code, body := f.call("old")
		return code == 404 && strings.Contains(body, "unknown_route")
	})
	if code, _ := f.call("keep"); code != 200 {
		t.Fatalf("keep = %d", code)
	}
}

// TestBridgeNACKStopsTheReload: a table a bridge cannot serve is NACKed
// with its reason; the reload fails naming the bridge, Envoy is sent
// nothing, and the bridge keeps serving what it had.
func TestBridgeNACKStopsTheReload(t *testing.T) {
	f := startFleet(t, "keep")
	f.waitFor("the first table", func() bool { return f.applied.Load() == 1 })
	e := connectEnvoy(t, f.cp.XDSAddr())
	e.routes(t)
	if err := e.c.Ack(); err != nil {
		t.Fatal(err)
	}
	err := f.cp.Reload("edit", f.source(true, "keep", "new"))
	if err == nil || !strings.Contains(err.Error(), "bridge bridge-1 rejected route table") || !strings.Contains(err.Error(), "embedded") {
		t.Fatalf("reload = %v, want the bridge's rejection with its reason", err)
	}
	if code, _ := f.call("keep"); code != 200 {
		t.Fatalf("keep after the rejected reload = %d", code)
	}
	if code, _ := f.call("new"); code != 404 {
		t.Fatalf("new after the rejected reload = %d", code)
	}
	// A good reload after it goes through: Envoy's next push is it.
	go func() { _ = f.cp.Reload("fix", f.source(false, "keep", "new")) }()
	if got := e.routes(t); !slices.Equal(got, []string{"keep", "new"}) {
		t.Fatalf("Envoy's routes after the fix = %v (the rejected version must never have been sent)", got)
	}
}

// TestBridgeOutlivesControlPlane: with the control plane gone the bridge
// serves its last table; a control plane back on the same address with
// the same mapping does not send it again.
func TestBridgeOutlivesControlPlane(t *testing.T) {
	f := startFleet(t, "keep")
	f.waitFor("the first table", func() bool { return f.applied.Load() == 1 })
	addr := f.cp.XDSAddr()
	// Gone at once, as a crashed control plane would be.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	f.cp.Shutdown(ctx)
	cancel()
	time.Sleep(300 * time.Millisecond) // the bridge notices and retries
	if code, _ := f.call("keep"); code != 200 {
		t.Fatalf("keep with the control plane down = %d", code)
	}
	// The same mapping on the same address.
	cp := xds.New(xds.Options{Address: addr, AdminAddress: "127.0.0.1:0", MaxMessageSize: 4 << 20, MaxStreamsPerPeer: 16,
		KeepaliveTime: time.Minute, KeepaliveTimeout: 10 * time.Second, Logger: quiet()})
	if err := cp.Reload("start", f.source(false, "keep")); err != nil {
		t.Fatal(err)
	}
	if err := listenAgain(t, cp); err != nil {
		t.Fatal(err)
	}
	defer func() {
		f.stop() // the bridge's stream ends first: the server then stops at once
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cp.Shutdown(ctx)
	}()
	f.waitFor("the bridge to be back on the control plane", func() bool {
		for _, n := range cp.Nodes() {
			if n.ID == "bridge-1" && n.Streams > 0 {
				return true
			}
		}
		return false
	})
	time.Sleep(200 * time.Millisecond)
	if n := f.applied.Load(); n != 1 {
		t.Fatalf("the bridge took %d tables; an unchanged table must not be sent again", n)
	}
}

// listenAgain starts cp, retrying briefly while the old listener's port
// is released.
func listenAgain(t *testing.T, cp *xds.Server) error {
	var err error
	for range 50 {
		if err = cp.Start(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// bridgeEndpoints receives the next endpoint push, not yet ACKed, and
// lists the addresses of the NATS bridge cluster's endpoints.
func bridgeEndpoints(t *testing.T, c sotw.ADSClient) []string {
	t.Helper()
	resp, err := c.Fetch()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range resp.Resources {
		var cla endpoint.ClusterLoadAssignment
		if err := a.UnmarshalTo(&cla); err != nil {
			t.Fatal(err)
		}
		if cla.GetClusterName() != translator.BridgeNATSCluster {
			continue
		}
		for _, l := range cla.GetEndpoints() {
			for _, e := range l.GetLbEndpoints() {
				sa := e.GetEndpoint().GetAddress().GetSocketAddress()
				out = append(out, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestBridgesAreTheEndpoints: with bridge.discovery xds, the bridge
// cluster's endpoints are the group's bridges that hold a table; a bridge
// that leaves is taken out at once and keeps serving while it drains; one
// whose stream merely drops stays listed for a while.
func TestBridgesAreTheEndpoints(t *testing.T) {
	f := startFleetWith(t, "  nats: [ { name: bus, urls: [ \"nats://127.0.0.1:1\" ] } ]\nbridge:\n  discovery: xds\n", "keep", "pub-events")
	f.waitFor("the first bridge's table", func() bool { return f.applied.Load() == 1 })
	var second atomic.Int32
	b2 := f.addBridge(f.cp.XDSAddr(), "bridge-2", &second)
	f.waitFor("the second bridge's table", func() bool { return second.Load() == 1 })
	both := []string{f.bridge.Addr(), b2.srv.Addr()}
	slices.Sort(both)

	conn, err := grpc.NewClient(f.cp.XDSAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	eds := sotw.NewADSClient(ctx, &core.Node{Id: "envoy-1", Cluster: config.DefaultGroup}, resource.EndpointType)
	if err := eds.InitConnect(conn); err != nil {
		t.Fatal(err)
	}
	if got := bridgeEndpoints(t, eds); !slices.Equal(got, both) {
		t.Fatalf("bridge endpoints = %v, want both bridges %v", got, both)
	}
	if err := eds.Ack(); err != nil {
		t.Fatal(err)
	}

	if err := b2.tc.Leave(); err != nil {
		t.Fatal(err)
	}
	if got := bridgeEndpoints(t, eds); !slices.Equal(got, []string{f.bridge.Addr()}) {
		t.Fatalf("after bridge-2 left: endpoints = %v, want only %s", got, f.bridge.Addr())
	}
	if err := eds.Ack(); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+b2.srv.Addr()+"/keep", nil)
	req.Header.Set("x-protogate-route", "keep")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a draining bridge must still serve: %v %v", resp, err)
	}
	resp.Body.Close()

	// bridge-1's stream drops without leaving: it stays an endpoint.
	f.stop()
	f.waitFor("the control plane to see bridge-1's stream end", func() bool {
		for _, n := range f.cp.Nodes() {
			if n.ID == "bridge-1" && n.Streams == 0 {
				return true
			}
		}
		return false
	})
	if got := f.cp.Members(config.DefaultGroup); !slices.Equal(got, []string{f.bridge.Addr()}) {
		t.Fatalf("members after bridge-1's stream dropped = %v, want it lingering", got)
	}
}

// TestBridgeEndpointsSurviveARestart: an Envoy that reaches a restarted
// control plane before the bridges do is not sent empty bridge endpoints;
// its first push lists the bridge once it is back.
func TestBridgeEndpointsSurviveARestart(t *testing.T) {
	extra := "  nats: [ { name: bus, urls: [ \"nats://127.0.0.1:1\" ] } ]\nbridge:\n  discovery: xds\n"
	f := startFleetWith(t, extra, "keep", "pub-events")
	f.waitFor("the first table", func() bool { return f.applied.Load() == 1 })
	addr := f.cp.XDSAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	f.cp.Shutdown(ctx)
	cancel()

	cp := xds.New(xds.Options{Address: addr, AdminAddress: "127.0.0.1:0", MaxMessageSize: 4 << 20, MaxStreamsPerPeer: 16,
		KeepaliveTime: time.Minute, KeepaliveTimeout: 10 * time.Second, Logger: quiet()})
	if err := cp.Reload("start", f.source(false, "keep", "pub-events")); err != nil {
		t.Fatal(err)
	}
	if err := listenAgain(t, cp); err != nil {
		t.Fatal(err)
	}
	defer func() {
		f.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cp.Shutdown(ctx)
	}()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ectx, ecancel := context.WithCancel(context.Background())
	defer ecancel()
	eds := sotw.NewADSClient(ectx, &core.Node{Id: "envoy-1", Cluster: config.DefaultGroup}, resource.EndpointType)
	if err := eds.InitConnect(conn); err != nil {
		t.Fatal(err)
	}
	if got := bridgeEndpoints(t, eds); !slices.Equal(got, []string{f.bridge.Addr()}) {
		t.Fatalf("the Envoy's first endpoints from the restarted control plane = %v, want the bridge %s", got, f.bridge.Addr())
	}
}

// TestStoppedBridgeLeavesBeforeClosing: a bridge process that gets
// SIGTERM leaves its group's bridge endpoints before its listener closes;
// a load that sends only to the endpoints the Envoy stand-in holds loses
// no request.
func TestStoppedBridgeLeavesBeforeClosing(t *testing.T) {
	extra := "  nats: [ { name: bus, urls: [ \"nats://127.0.0.1:1\" ] } ]\nbridge:\n  discovery: xds\n"
	f := startFleetWith(t, extra, "keep", "pub-events")
	f.waitFor("the in-process bridge's table", func() bool { return f.applied.Load() == 1 })
	port := freePort(t)
	addr2 := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(protogateBinary(t), "bridge", "--xds", f.cp.XDSAddr(), "--node-group", config.DefaultGroup,
		"--node-id", "bridge-2", "--bridge-address", addr2)
	cmd.Env = append(os.Environ(), "PROTOGATE_BRIDGE_DRAIN_WINDOW=1s")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	conn, err := grpc.NewClient(f.cp.XDSAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	eds := sotw.NewADSClient(ctx, &core.Node{Id: "envoy-1", Cluster: config.DefaultGroup}, resource.EndpointType)
	if err := eds.InitConnect(conn); err != nil {
		t.Fatal(err)
	}
	// The Envoy stand-in's current endpoints, as the load sees them.
	var current atomic.Pointer[[]string]
	both := []string{f.bridge.Addr(), addr2}
	slices.Sort(both)
	for {
		got := bridgeEndpoints(t, eds)
		if err := eds.Ack(); err != nil {
			t.Fatal(err)
		}
		if slices.Equal(got, both) {
			current.Store(&got)
			break
		}
	}

	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		client := &http.Client{Timeout: 2 * time.Second}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			eps := *current.Load()
			req, _ := http.NewRequest("GET", "http://"+eps[i%len(eps)]+"/keep", nil)
			req.Header.Set("x-protogate-route", "keep")
			resp, err := client.Do(req)
			sent.Add(1)
			if err != nil || resp.StatusCode != 200 {
				if failed.Add(1) == 1 {
					firstFailure.Store(fmt.Sprintf("%v %v", resp, err))
				}
			}
			if resp != nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	got := bridgeEndpoints(t, eds)
	select {
	case <-exited:
		t.Fatal("the bridge exited before it left the endpoints")
	default:
	}
	if !slices.Equal(got, []string{f.bridge.Addr()}) {
		t.Fatalf("endpoints after SIGTERM = %v, want only %s", got, f.bridge.Addr())
	}
	current.Store(&got)
	if err := eds.Ack(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the bridge did not exit after its drain window")
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	<-loadDone
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed; first: %v", n, sent.Load(), firstFailure.Load())
	}
	if sent.Load() < 20 {
		t.Fatalf("only %d requests were sent", sent.Load())
	}
}
