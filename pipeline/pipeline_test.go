package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/protogate/protogate/bridges"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func mapping(web, natsURL string, routes ...string) string {
	var b strings.Builder
	b.WriteString("listeners:\n  - name: public\n    address: 127.0.0.1:10000\n    routes:\n")
	for _, r := range routes {
		fmt.Fprintf(&b, "      - { name: %[1]s, match: { path: /%[1]s, methods: [GET] }, http: { upstream: web } }\n", r)
	}
	if natsURL != "" {
		b.WriteString("      - { name: events, match: { path: /events, methods: [POST] }, nats: { upstream: bus, subject: app.events, mode: core } }\n")
	}
	fmt.Fprintf(&b, "upstreams:\n  http: [ { name: web, endpoints: [ %q ] } ]\n", web)
	if natsURL != "" {
		fmt.Fprintf(&b, "  nats: [ { name: bus, urls: [ %q ] } ]\n", natsURL)
	}
	b.WriteString("bridge:\n  address: 127.0.0.1:0\n")
	return b.String()
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// start loads the mapping at path through the pipeline and serves it.
func start(t *testing.T, path string) (*Pipeline, *bridges.Server) {
	t.Helper()
	pl := &Pipeline{Path: path, Log: quiet()}
	cfg, err := pl.Load()
	if err != nil {
		t.Fatal(err)
	}
	first, err := pl.Prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := bridges.New(cfg.Bridge, first.Table, bridges.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	pl.Bridges, pl.Running = srv, cfg
	return pl, srv
}

func get(t *testing.T, srv *bridges.Server, path string) int {
	t.Helper()
	resp, err := http.Get("http://" + srv.Addr() + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestApplySwitchesTheBridges: a good edit is served after Apply; a bad
// one is refused with its problem and the running routes stay.
func TestApplySwitchesTheBridges(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer web.Close()
	host := strings.TrimPrefix(web.URL, "http://")
	path := filepath.Join(t.TempDir(), "mapping.yaml")
	write(t, path, mapping(host, "", "a"))
	pl, srv := start(t, path)
	if get(t, srv, "/a") != 200 || get(t, srv, "/b") != 404 {
		t.Fatal("the first mapping is not what is served")
	}
	write(t, path, mapping(host, "", "a", "b"))
	if err := pl.Apply(); err != nil {
		t.Fatal(err)
	}
	if get(t, srv, "/b") != 200 {
		t.Fatal("an added route is not served after Apply")
	}
	write(t, path, mapping(host, "", "a", "b")+"  bogus: 1\n")
	if err := pl.Apply(); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("a bad edit = %v, want its problem", err)
	}
	if get(t, srv, "/b") != 200 {
		t.Fatal("a bad edit changed what is served")
	}
}

// TestDiscardReleases: a change prepared and never committed leaves no
// connection open.
func TestDiscardReleases(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	web := "127.0.0.1:1"
	path := filepath.Join(t.TempDir(), "mapping.yaml")
	write(t, path, mapping(web, "", "a"))
	pl, _ := start(t, path)

	write(t, path, mapping(web, ns.ClientURL(), "a"))
	cfg, err := pl.Load()
	if err != nil {
		t.Fatal(err)
	}
	c, err := pl.Prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ns.NumClients() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ns.NumClients() != 1 {
		t.Fatalf("prepared: %d NATS clients, want 1", ns.NumClients())
	}
	c.Discard()
	for ns.NumClients() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := ns.NumClients(); n != 0 {
		t.Fatalf("discarded: %d NATS clients still connected", n)
	}
}
