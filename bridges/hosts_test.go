package bridges

import (
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/routetable"
)

// TestRoutesByHost: with no Envoy in front, a bridge takes match.hosts as
// Envoy's virtual hosts would: the exact host, else the longest wildcard,
// else the routes for any host; a route for other hosts is not found.
func TestRoutesByHost(t *testing.T) {
	ns := startNATS(t, -1, t.TempDir(), 0)
	b := startBridge(t, `
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: api
        match: { path: /events, methods: [POST], hosts: [ api.example.com, "api.example.com:8443" ] }
        nats: { upstream: events, subject: api.events, mode: core }
      - name: shop
        match: { path: /events, methods: [POST], hosts: [ "*.shop.example.com" ] }
        nats: { upstream: events, subject: shop.events, mode: core }
      - name: deep
        match: { path: /events, methods: [POST], hosts: [ "*.eu.shop.example.com" ] }
        nats: { upstream: events, subject: deep.events, mode: core }
      - name: only-api
        match: { path: /admin, methods: [POST], hosts: [ api.example.com ] }
        nats: { upstream: events, subject: admin.events, mode: core }
      - name: any
        match: { path: /events, methods: [POST] }
        nats: { upstream: events, subject: any.events, mode: core }
upstreams:
  nats: [ { name: events, urls: [ "`+ns.url()+`" ] } ]
bridge:
  address: 127.0.0.1:0
`)
	b.waitReady()
	nc, _ := ns.client()
	got := make(chan string, 16)
	sub, err := nc.Subscribe("*.events", func(m *nats.Msg) { got <- m.Subject })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	subscribed(t, nc)

	for _, tt := range []struct{ host, path, subject string }{
		{"api.example.com", "/events", "api.events"},
		{"API.Example.com", "/events", "api.events"},
		{"api.example.com:8443", "/events", "api.events"},
		{"api.example.com:9000", "/events", "any.events"}, // Envoy matches domains port included
		{"a.shop.example.com", "/events", "shop.events"},
		{"x.eu.shop.example.com", "/events", "deep.events"}, // the longest wildcard
		{"shop.example.com", "/events", "any.events"},       // a wildcard needs a label before it
		{"elsewhere.test", "/events", "any.events"},
		{"api.example.com", "/admin", "admin.events"},
		{"elsewhere.test", "/admin", ""},
	} {
		req, err := http.NewRequest("POST", b.url+tt.path, strings.NewReader(`{"n":1}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tt.host
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if tt.subject == "" {
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("%s %s: %d, want 404", tt.host, tt.path, resp.StatusCode)
			}
			continue
		}
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d", tt.host, tt.path, resp.StatusCode)
		}
		select {
		case s := <-got:
			if s != tt.subject {
				t.Fatalf("%s %s published to %s, want %s", tt.host, tt.path, s, tt.subject)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s %s: nothing published", tt.host, tt.path)
		}
	}
}

const hostsRollout = `
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: api
        match: { path: /events, methods: [POST], hosts: [ API_HOST ] }
        nats: { upstream: events, subject: SUBJECT, mode: core }
      - name: wild
        match: { path: /wild, methods: [POST], hosts: [ "*.example.com" ] }
        nats: { upstream: events, subject: wild.events, mode: core }
EXTRA
upstreams:
  nats: [ { name: events, urls: [ "NATS" ] } ]
bridge:
  address: 127.0.0.1:0
`

// TestNamedRoutesAcrossHostChanges: while Envoys move to a mapping whose
// hosts changed, a request an Envoy names the route of is served by the
// definition it was routed by — the former one after a host-only change —
// and a route that did not change is not refused because a newer, more
// specific host appeared beside it.
func TestNamedRoutesAcrossHostChanges(t *testing.T) {
	ns := startNATS(t, -1, t.TempDir(), 0)
	load := func(apiHost, subject, extra string) *routetable.Table {
		m := strings.NewReplacer("API_HOST", apiHost, "SUBJECT", subject, "EXTRA", extra, "NATS", ns.url()).Replace(hostsRollout)
		cfg, err := config.LoadBytes("m.yaml", []byte(m))
		if err != nil {
			t.Fatal(err)
		}
		return tableOf(t, cfg)
	}
	old := load("a.example.com", "old.events", "")
	next := load("b.example.com", "new.events", `      - name: exact
        match: { path: /wild, methods: [POST], hosts: [ api.example.com ] }
        nats: { upstream: events, subject: exact.events, mode: core }`)
	cfg, err := config.LoadBytes("m.yaml", []byte(strings.NewReplacer("API_HOST", "b.example.com", "SUBJECT", "new.events", "EXTRA", "", "NATS", ns.url()).Replace(hostsRollout)))
	if err != nil {
		t.Fatal(err)
	}
	b := startBridgeWith(t, cfg, routetable.Bridging(old, next))
	b.waitReady()
	nc, _ := ns.client()
	got := make(chan string, 16)
	sub, err := nc.Subscribe("*.events", func(m *nats.Msg) { got <- m.Subject })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	subscribed(t, nc)
	for _, tt := range []struct{ route, host, path, subject string }{
		{"api", "a.example.com", "/events", "old.events"},     // an Envoy on the old routes
		{"api", "b.example.com", "/events", "new.events"},     // one on the new
		{"wild", "api.example.com", "/wild", "wild.events"},   // an old Envoy: exact is not its yet
		{"exact", "api.example.com", "/wild", "exact.events"}, // a new one
		{"api", "c.example.com", "/events", ""},               // neither definition's host
	} {
		req, err := http.NewRequest("POST", b.url+tt.path, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tt.host
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(cfg.Bridge.RouteHeader, tt.route)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if tt.subject == "" {
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("%s for %s: %d, want 404", tt.route, tt.host, resp.StatusCode)
			}
			continue
		}
		select {
		case s := <-got:
			if s != tt.subject {
				t.Fatalf("%s for %s published to %s, want %s", tt.route, tt.host, s, tt.subject)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s for %s: %d, nothing published", tt.route, tt.host, resp.StatusCode)
		}
	}
}

// TestDeclaredBodyIsNotAllocatedAhead: a request declaring a large body it
// does not send makes the bridge hold no more than it was sent, and a
// large body that does arrive is read whole.
func TestDeclaredBodyIsNotAllocatedAhead(t *testing.T) {
	ns := startNATS(t, -1, t.TempDir(), 0)
	b := startBridge(t, `
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: blobs
        match: { path: /blobs, methods: [POST] }
        body_limit: 64MiB
        nats: { upstream: events, subject: blobs.events, mode: core }
upstreams:
  nats: [ { name: events, urls: [ "`+ns.url()+`" ] } ]
bridge:
  address: 127.0.0.1:0
  body_timeout: 1s
`)
	b.waitReady()
	nc, _ := ns.client()
	got := make(chan int, 1)
	sub, err := nc.Subscribe("blobs.events", func(m *nats.Msg) { got <- len(m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	subscribed(t, nc)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	// Under the NATS server's largest message (1 MB), which is refused
	// before any read.
	const declared, requests = 900 << 10, 16
	for i := 0; i < requests; i++ {
		conn, err := net.Dial("tcp", strings.TrimPrefix(b.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /blobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{}", declared)
		time.Sleep(100 * time.Millisecond) // the handler is reading the body by now
		conn.Close()
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > requests*declared/3 {
		t.Fatalf("%d requests declaring %d KiB and sending 2 bytes allocated %d KiB", requests, declared>>10, grew>>10)
	}

	body := `"` + strings.Repeat("x", 300<<10) + `"`
	code, _, _ := b.do("POST", "/blobs", body, nil)
	if code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("a 300 KiB body: %d", code)
	}
	select {
	case n := <-got:
		if n != len(body) {
			t.Fatalf("published %d bytes, want %d", n, len(body))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the 300 KiB body was not published")
	}
}
