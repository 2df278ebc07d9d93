package test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
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
	applied atomic.Int32 // tables the bridge took
	stop    context.CancelFunc
}

func startFleet(t *testing.T, routes ...string) *fleet {
	t.Helper()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream saw "+r.URL.Path)
	}))
	t.Cleanup(web.Close)
	f := &fleet{t: t, web: strings.TrimPrefix(web.URL, "http://")}
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
		cfg, err := config.LoadBytes("mapping.yaml", []byte(tableMapping(f.web, embedded, routes...)))
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
	t := f.t
	settings, err := config.BridgeSettings()
	if err != nil {
		t.Fatal(err)
	}
	settings.Address = "127.0.0.1:0"
	f.bridge, err = bridges.New(settings, nil, bridges.Options{Logger: quiet(), AwaitTable: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.bridge.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.stop = cancel
	tc := &xds.TableClient{Address: cpAddr, NodeID: "bridge-1", Group: config.DefaultGroup, BridgeAddress: f.bridge.Addr(), Logger: quiet(),
		Apply: func(r *routetablepb.RouteTable) error {
			tb, err := routetable.FromResource(r)
			if err == nil {
				err = f.bridge.Apply(tb)
			}
			if err == nil {
				f.applied.Add(1)
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
		f.bridge.Shutdown(sctx)
	})
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
