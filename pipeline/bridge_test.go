package pipeline

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/nats-io/nats-server/v2/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/xds"
)

// TestRunBridgesMakeBeforeBreak: protogate run's way, a control plane and
// bridges in one process on one pipeline. A reload that adds a route and
// drops one reaches the Envoy stand-in only when the in-process bridges
// serve the new route, and they forget the dropped one only after the
// Envoy took routes without it.
func TestRunBridgesMakeBeforeBreak(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer web.Close()
	host := strings.TrimPrefix(web.URL, "http://")
	path := filepath.Join(t.TempDir(), "mapping.yaml")
	write(t, path, mapping(host, "", "keep", "old"))
	pl, srv := start(t, path)
	cfg, err := pl.Load()
	if err != nil {
		t.Fatal(err)
	}
	first, err := pl.Prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cp := xds.New(xds.Options{Address: "127.0.0.1:0", AdminAddress: "127.0.0.1:0", MaxMessageSize: 4 << 20, MaxStreamsPerPeer: 16,
		KeepaliveTime: time.Minute, KeepaliveTimeout: 10 * time.Second, Logger: quiet(),
		BridgeAckTimeout: 5 * time.Second, EnvoyAckTimeout: 5 * time.Second})
	if err := cp.Reload("start", first.Source()); err != nil {
		t.Fatal(err)
	}
	if err := cp.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cp.Shutdown(ctx)
	}()

	conn, err := grpc.NewClient(cp.XDSAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	envoy := sotw.NewADSClient(ctx, &core.Node{Id: "envoy-1", Cluster: config.DefaultGroup}, resource.RouteType)
	if err := envoy.InitConnect(conn); err != nil {
		t.Fatal(err)
	}
	if got := routeNames(t, envoy); !slices.Equal(got, []string{"keep", "old"}) {
		t.Fatalf("Envoy's first routes = %v", got)
	}
	if err := envoy.Ack(); err != nil {
		t.Fatal(err)
	}

	write(t, path, mapping(host, "", "keep", "new"))
	reloaded := make(chan error, 1)
	go func() { reloaded <- cp.Reload("edit", pl.Source()) }()
	if got := routeNames(t, envoy); !slices.Equal(got, []string{"keep", "new"}) {
		t.Fatalf("Envoy's routes after the edit = %v", got)
	}
	// Sent, not yet ACKed: the bridges serve the new route already, and
	// the dropped one still.
	if code := get(t, srv, "/new"); code != 200 {
		t.Fatalf("/new as Envoy first sees it = %d, want 200", code)
	}
	if code := get(t, srv, "/old"); code != 200 {
		t.Fatalf("/old before Envoy took routes without it = %d, want 200", code)
	}
	if err := envoy.Ack(); err != nil {
		t.Fatal(err)
	}
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	if code := get(t, srv, "/old"); code != 404 {
		t.Fatalf("/old once Envoy holds routes without it = %d, want 404", code)
	}
	if code := get(t, srv, "/new"); code != 200 {
		t.Fatalf("/new after the reload = %d", code)
	}
}

// routeNames receives the next route push, not yet ACKed.
func routeNames(t *testing.T, c sotw.ADSClient) []string {
	t.Helper()
	resp, err := c.Fetch()
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

// TestDiscardAfterBridge: a change whose bridging table was served and
// that is then discarded (the reload failed after it) puts back the routes
// served before and releases the connections the change opened.
func TestDiscardAfterBridge(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer web.Close()
	host := strings.TrimPrefix(web.URL, "http://")
	path := filepath.Join(t.TempDir(), "mapping.yaml")
	// Connections a switch leaves unused are drained once requests that
	// started before it can have finished: write_timeout.
	const short = "  write_timeout: 200ms\n"
	write(t, path, mapping(host, "", "old")+short)
	pl, srv := start(t, path)
	if err := pl.Apply(); err != nil { // committed: the pipeline knows what serves
		t.Fatal(err)
	}

	write(t, path, mapping(host, ns.ClientURL(), "new")+short)
	cfg, err := pl.Load()
	if err != nil {
		t.Fatal(err)
	}
	c, err := pl.Prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Bridge(); err != nil {
		t.Fatal(err)
	}
	if get(t, srv, "/old") != 200 || get(t, srv, "/new") != 200 {
		t.Fatal("the bridging table does not serve the old and the new routes")
	}
	waitClients(t, ns, 1)
	c.Discard()
	if get(t, srv, "/old") != 200 || get(t, srv, "/new") != 404 {
		t.Fatal("after Discard the bridges do not serve what they served before")
	}
	waitClients(t, ns, 0)
}

func waitClients(t *testing.T, ns *server.Server, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ns.NumClients() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d NATS clients, want %d", ns.NumClients(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
