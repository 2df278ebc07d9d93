package bridges

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/internal/testpeer"
	"github.com/protogate/protogate/protocols/dubbo/registry"
	"github.com/protogate/protogate/routetable"
)

// startZooKeeper runs Debian's ZooKeeper on a free loopback port.
func startZooKeeper(t *testing.T) string { return testpeer.StartZooKeeper(t, 6*time.Second).Addr }

// zkProviders is what a registry watcher holds, as the control plane would
// put it in a route table: bridges run no registry client of their own.
type zkProviders struct{ w *registry.Watcher }

func (z zkProviders) Providers(_ *config.DubboUpstream, service, version, group, protocol string) []string {
	var out []string
	for _, p := range z.w.Providers(service, version, group, protocol) {
		out = append(out, p.Addr)
	}
	return out
}

// startDiscoveringBridge serves mapping with its one registry upstream
// followed as the control plane follows it: the providers found go into
// the route table, and every change is a new table.
func startDiscoveringBridge(t *testing.T, mapping string) *bridge {
	t.Helper()
	cfg, err := config.LoadBytes("mapping.yaml", []byte(mapping))
	if err != nil {
		t.Fatal(err)
	}
	var u *config.DubboUpstream
	for i := range cfg.Upstreams.Dubbo {
		if cfg.Upstreams.Dubbo[i].Registry != "" {
			u = &cfg.Upstreams.Dubbo[i]
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var (
		mu  sync.Mutex
		b   *bridge
		reg zkProviders
	)
	onChange := func() {
		mu.Lock()
		defer mu.Unlock()
		if b == nil {
			return
		}
		table, err := routetable.FromConfigWith(cfg, "", reg)
		if err == nil {
			err = b.srv.Apply(table)
		}
		if err != nil {
			t.Errorf("a registry change: %v", err)
		}
	}
	w, err := registry.Watch(ctx, strings.TrimPrefix(u.Registry, "zookeeper://"), u.Registration, slog.New(slog.DiscardHandler), onChange)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	reg.w = w
	var services []string
	for _, s := range cfg.DubboServices(u.Name) {
		services = append(services, s.Service)
	}
	w.Want(services...)
	for deadline := time.Now().Add(5 * time.Second); !w.Ready() && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
	}
	table, err := routetable.FromConfigWith(cfg, "", reg)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	b = startBridgeWith(t, cfg, table)
	mu.Unlock()
	onChange() // what changed while the bridge started
	return b
}

// waitStatus polls a call until it answers want, or fails after d.
func waitStatus(t *testing.T, b *bridge, path, body string, want int, d time.Duration) {
	t.Helper()
	var last int
	var lastBody string
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		code, _, h := b.do("POST", path, body, nil)
		if code == want {
			return
		}
		last, lastBody = code, h.Get("X-Test-Body")
	}
	t.Fatalf("POST %s never answered %d; last %d %s", path, want, last, lastBody)
}

func TestDubboZooKeeperInterfaceLevel(t *testing.T) {
	zk := startZooKeeper(t)
	ups := fmt.Sprintf("upstreams:\n  dubbo:\n    - { name: viazk, registry: \"zookeeper://%s\", registration: interface }\n", zk)
	b := startDiscoveringBridge(t, dubboMapping(ups, "viazk"))

	// No provider yet: a clear 503, not a hang or a panic.
	code, r, _ := b.do("POST", "/viazk/echoInt", `1`, nil)
	if code != 503 || r.Error.Code != "no_provider" {
		t.Fatalf("before any provider = %d %+v", code, r.Error)
	}

	// A provider that registers after the bridge started is found.
	first := startProvider(t, "-zk", zk, "-registration", "interface")
	waitStatus(t, b, "/viazk/echoInt", `1`, 200, 30*time.Second)
	checkRoundTrips(t, b, "viazk")

	// It leaves; another registers on other ports: calls follow the registry.
	first.stop()
	code, _, _ = b.do("POST", "/viazk/echoInt", `2`, nil)
	if code == 200 {
		t.Log("a call right after the provider stopped still succeeded (in flight on its connection)")
	}
	second := startProvider(t, "-zk", zk, "-registration", "interface")
	waitStatus(t, b, "/viazk/echoInt", `3`, 200, 30*time.Second)

	// The last one leaves: once ZooKeeper drops it, calls are 503 again.
	second.stop()
	waitStatus(t, b, "/viazk/echoInt", `4`, 503, 30*time.Second)
}

func TestDubboZooKeeperApplicationLevel(t *testing.T) {
	zk := startZooKeeper(t)
	startProvider(t, "-zk", zk, "-registration", "application")
	ups := fmt.Sprintf("upstreams:\n  dubbo:\n    - { name: viazk, registry: \"zookeeper://%s\", registration: application }\n", zk)
	b := startDiscoveringBridge(t, dubboMapping(ups, "viazk"))
	waitStatus(t, b, "/viazk/echoInt", `1`, 200, 30*time.Second)
	checkRoundTrips(t, b, "viazk")
}

// TestDubboZooKeeperTriple discovers the triple endpoint through its own
// ZooKeeper: dubbo-go gives a second interface-level reference to the same
// service on the same registry in one process no providers (sometimes), so
// dubbo and triple upstreams of one service are tested apart.
func TestDubboZooKeeperTriple(t *testing.T) {
	zk := startZooKeeper(t)
	startProvider(t, "-zk", zk, "-registration", "interface")
	ups := fmt.Sprintf("upstreams:\n  dubbo:\n    - { name: viazktri, registry: \"zookeeper://%s\", registration: interface, protocol: triple }\n", zk)
	b := startDiscoveringBridge(t, dubboMapping(ups, "viazktri"))
	waitStatus(t, b, "/viazktri/echoInt", `1`, 200, 30*time.Second)
	checkRoundTrips(t, b, "viazktri")
}
