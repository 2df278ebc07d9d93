package bridges

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/protogate/protogate/config"
)

func proxyMapping(upstream string, connectTimeout string, routes ...string) string {
	var b strings.Builder
	b.WriteString("listeners:\n  - name: public\n    address: 127.0.0.1:10000\n    routes:\n")
	for _, r := range routes {
		fmt.Fprintf(&b, "      - { name: %[1]s, match: { path: /%[1]s, methods: [GET] }, http: { upstream: web } }\n", r)
	}
	fmt.Fprintf(&b, "upstreams:\n  http: [ { name: web, endpoints: [ %q ], connect_timeout: %s } ]\n", upstream, connectTimeout)
	b.WriteString("bridge:\n  address: 127.0.0.1:0\n  write_timeout: 100ms\n")
	return b.String()
}

// TestUpstreamClientsFollowTheirSettings: a reload that leaves an HTTP
// upstream's settings alone keeps its connections; one that changes them
// gets new ones; and many reloads leave no goroutines or sockets behind.
func TestUpstreamClientsFollowTheirSettings(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RemoteAddr) // the bridge's side of the connection
	}))
	defer web.Close()
	host := strings.TrimPrefix(web.URL, "http://")
	load := func(timeout string, routes ...string) *config.Config {
		cfg, err := config.LoadBytes("mapping.yaml", []byte(proxyMapping(host, timeout, routes...)))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	b := startBridge(t, proxyMapping(host, "1s", "a"))
	from := func(route string) string {
		code, _, h := b.do("GET", "/"+route, "", nil)
		if code != 200 {
			t.Fatalf("%s = %d", route, code)
		}
		return h.Get("X-Test-Body")
	}
	first := from("a")
	if err := b.srv.Apply(tableOf(t, load("1s", "a", "b"))); err != nil {
		t.Fatal(err)
	}
	if got := from("b"); got != first {
		t.Fatalf("unchanged upstream: the new route came from %s, not the kept connection %s", got, first)
	}
	if err := b.srv.Apply(tableOf(t, load("2s", "a", "b"))); err != nil {
		t.Fatal(err)
	}
	if got := from("a"); got == first {
		t.Fatalf("changed upstream settings: still the old connection %s", got)
	}

	before, fds := runtime.NumGoroutine(), openFiles(t)
	for i := range 100 {
		timeout := fmt.Sprintf("%dms", 1000+i%2)
		if err := b.srv.Apply(tableOf(t, load(timeout, "a", "b"))); err != nil {
			t.Fatal(err)
		}
		from("a")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		g, f := runtime.NumGoroutine(), openFiles(t)
		if g <= before+5 && f <= fds+5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 100 reloads: %d goroutines (before: %d), %d open files (before: %d)", g, before, f, fds)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func openFiles(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
