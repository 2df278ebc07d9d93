package bridges

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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
