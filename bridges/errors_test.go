package bridges

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/routetable"
)

// errorCase is one request that must fail, and what its body must say.
type errorCase struct {
	name         string
	method, path string
	body         string
	header       map[string]string
	status       int
	code         string
	route        string // "" means the body must carry no route
	upstream     string // "" means the body must carry no upstream
	allow        string // the Allow header of a 405
}

// Any IPv4 socket address, and the loopback host with any port.
var socketAddress = regexp.MustCompile(`\d{1,3}(\.\d{1,3}){3}:\d+|localhost:\d+|\[[0-9a-fA-F:]*\]:\d+`)

// checkErrorBodies sends each case and checks the body is
// {"error": {"code", "message", "route"?, "upstream"?}} with no other key,
// the route and upstream present exactly when expected, and no socket
// address (nor any of the given ports) anywhere in it.
func checkErrorBodies(t *testing.T, b *bridge, cases []errorCase, ports ...int) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, h := b.do(tc.method, tc.path, tc.body, tc.header)
			raw := h.Get("X-Test-Body")
			if code != tc.status {
				t.Fatalf("%s %s = %d %s, want %d", tc.method, tc.path, code, raw, tc.status)
			}
			if ct := h.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q, want application/json", ct)
			}
			var body map[string]map[string]any
			if err := json.Unmarshal([]byte(raw), &body); err != nil || len(body) != 1 || body["error"] == nil {
				t.Fatalf("the body is not one error object: %s (%v)", raw, err)
			}
			e := body["error"]
			for key := range e {
				if key != "code" && key != "message" && key != "route" && key != "upstream" {
					t.Errorf("unexpected key %q in %s", key, raw)
				}
			}
			if e["code"] != tc.code {
				t.Errorf("code %v, want %s (%s)", e["code"], tc.code, raw)
			}
			if msg, _ := e["message"].(string); msg == "" {
				t.Errorf("no message: %s", raw)
			}
			checkKey(t, e, "route", tc.route, raw)
			checkKey(t, e, "upstream", tc.upstream, raw)
			if tc.allow != "" && h.Get("Allow") != tc.allow {
				t.Errorf("Allow %q, want %q", h.Get("Allow"), tc.allow)
			}
			if a := socketAddress.FindString(raw); a != "" {
				t.Errorf("the body gives away the address %s: %s", a, raw)
			}
			for _, p := range ports {
				if strings.Contains(raw, fmt.Sprint(p)) {
					t.Errorf("the body gives away port %d: %s", p, raw)
				}
			}
		})
	}
}

// checkKey: want "" means the key is absent, else it holds want.
func checkKey(t *testing.T, e map[string]any, key, want, raw string) {
	t.Helper()
	got, present := e[key]
	switch {
	case want == "" && present:
		t.Errorf("%s %v in a body that knows no %s: %s", key, got, key, raw)
	case want != "" && got != want:
		t.Errorf("%s %v, want %s: %s", key, got, want, raw)
	}
}

func errorsMapping(natsURL, deadNATS, deadHTTP, slowHTTP string) string {
	return `
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: order-events
        match: { path: "/events/orders/{region}", methods: [POST] }
        body_limit: 1KiB
        nats: { upstream: events, subject: "orders.{region}.created", timeout: 2s }
      - name: quote
        match: { path: "/quotes/{symbol}", methods: [GET] }
        nats: { upstream: events, subject: "quotes.{symbol}", mode: request, timeout: 300ms }
      - name: lost
        match: { path: /events/lost, methods: [POST] }
        nats: { upstream: unlisted, subject: lost.events }
      - name: gone
        match: { path: /events/gone, methods: [POST] }
        nats: { upstream: down, subject: gone.events, mode: core }
      - name: shared-post
        match: { path: /shared, methods: [POST] }
        nats: { upstream: events, subject: shared.post, mode: core }
      - name: shared-put
        match: { path: /shared, methods: [PUT] }
        nats: { upstream: unlisted, subject: shared.put, mode: core }
      - name: legacy
        match: { prefix: /legacy, methods: [GET] }
        http: { upstream: dead-http }
      - name: slow-legacy
        match: { prefix: /slow, methods: [GET] }
        http: { upstream: slow-http, timeout: 200ms }
upstreams:
  nats:
    - name: events
      urls: [ "` + natsURL + `" ]
      provision: true
      streams: [ { name: ORDERS, subjects: [ "orders.>" ] } ]
    - name: unlisted
      urls: [ "` + natsURL + `" ]
    - name: down
      urls: [ "` + deadNATS + `" ]
      reconnect_wait: 100ms
  http:
    - { name: dead-http, endpoints: [ "` + deadHTTP + `" ] }
    - { name: slow-http, endpoints: [ "` + slowHTTP + `" ] }
bridge:
  address: 127.0.0.1:0
`
}

// startSlowHTTP is a real HTTP server that answers after a second.
func startSlowHTTP(t *testing.T) (string, int) {
	t.Helper()
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(time.Second):
		case <-r.Context().Done():
		}
		io.WriteString(w, "late")
	})}
	go srv.ListenAndServe()
	t.Cleanup(func() { srv.Close() })
	waitListening(t, addr)
	return addr, port
}

// waitAllButDown waits until every NATS upstream but "down" is connected
// (and provisioned): /readyz then names only that one.
func (b *bridge) waitAllButDown() {
	b.t.Helper()
	var last response
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_, last, _ = b.do("GET", "/readyz", "", nil)
		if msg := last.Error.Message; strings.HasPrefix(msg, "not ready: upstreams unusable: down: ") && !strings.Contains(msg, ";") {
			return
		}
	}
	b.t.Fatalf("the live upstreams never became ready: %+v", last.Error)
}

// TestErrorBodies: every error the bridge answers, over real requests, has
// a code and a message, names the route and upstream whenever a route
// matched, and never gives away an address behind the gateway.
func TestErrorBodies(t *testing.T) {
	ns := startNATS(t, -1, t.TempDir(), 0)
	deadNATSPort, deadHTTPPort := freePort(t), freePort(t)
	slowAddr, slowPort := startSlowHTTP(t)
	b := startBridge(t, errorsMapping(ns.url(), fmt.Sprintf("nats://127.0.0.1:%d", deadNATSPort),
		fmt.Sprintf("127.0.0.1:%d", deadHTTPPort), slowAddr))
	b.waitAllButDown()

	// A responder that never answers quotes.SLOW and one that fails
	// quotes.ERR the way a NATS micro service does; nothing answers
	// quotes.NONE.
	nc, _ := ns.client()
	if _, err := nc.Subscribe("quotes.SLOW", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe("quotes.ERR", func(m *nats.Msg) {
		reply := nats.NewMsg(m.Reply)
		reply.Header.Set("Nats-Service-Error-Code", "409")
		reply.Header.Set("Nats-Service-Error", "quote is locked")
		_ = m.RespondMsg(reply)
	}); err != nil {
		t.Fatal(err)
	}
	subscribed(t, nc)

	route := func(name string) map[string]string { return map[string]string{"X-Protogate-Route": name} }
	cases := []errorCase{
		{name: "no route", method: "POST", path: "/nowhere", status: 404, code: "not_found"},
		{name: "unknown route header", method: "POST", path: "/events/orders/eu", header: route("no-such-route"),
			status: 404, code: "unknown_route"},
		{name: "route header, other path", method: "POST", path: "/quotes/ACME", header: route("order-events"),
			status: 404, code: "not_found", route: "order-events", upstream: "events"},
		{name: "405 by path", method: "GET", path: "/events/orders/eu",
			status: 405, code: "method_not_allowed", route: "order-events", upstream: "events", allow: "POST"},
		{name: "405 by route header", method: "GET", path: "/events/orders/eu", header: route("order-events"),
			status: 405, code: "method_not_allowed", route: "order-events", upstream: "events", allow: "POST"},
		{name: "405 of two routes", method: "DELETE", path: "/shared",
			status: 405, code: "method_not_allowed", allow: "POST, PUT"},
		{name: "bad subject token", method: "POST", path: "/events/orders/a.b", body: "x",
			status: 400, code: "invalid_subject_token", route: "order-events", upstream: "events"},
		{name: "address as subject token", method: "POST", path: "/events/orders/127.0.0.1:4222", body: "x",
			status: 400, code: "invalid_subject_token", route: "order-events", upstream: "events"},
		{name: "body over the route limit", method: "POST", path: "/events/orders/eu", body: strings.Repeat("x", 2<<10),
			status: 413, code: "body_too_large", route: "order-events", upstream: "events"},
		{name: "idempotency key too long", method: "POST", path: "/events/orders/eu", body: "x",
			header: map[string]string{"Idempotency-Key": strings.Repeat("k", 300)},
			status: 400, code: "bad_idempotency_key", route: "order-events", upstream: "events"},
		{name: "bad expected sequence", method: "POST", path: "/events/orders/eu", body: "x",
			header: map[string]string{"Nats-Expected-Last-Sequence": "two"},
			status: 400, code: "bad_expected_sequence", route: "order-events", upstream: "events"},
		{name: "failed expectation", method: "POST", path: "/events/orders/eu", body: "x",
			header: map[string]string{"Nats-Expected-Stream": "PAYMENTS"},
			status: 409, code: "expectation_failed", route: "order-events", upstream: "events"},
		{name: "no stream", method: "POST", path: "/events/lost", body: "x",
			status: 503, code: "no_stream", route: "lost", upstream: "unlisted"},
		{name: "no responders", method: "GET", path: "/quotes/NONE",
			status: 503, code: "no_responders", route: "quote", upstream: "events"},
		{name: "reply timeout", method: "GET", path: "/quotes/SLOW",
			status: 504, code: "reply_timeout", route: "quote", upstream: "events"},
		{name: "service error", method: "GET", path: "/quotes/ERR",
			status: 409, code: "service_error", route: "quote", upstream: "events"},
		{name: "NATS upstream down", method: "POST", path: "/events/gone", body: "x",
			status: 503, code: "upstream_unavailable", route: "gone", upstream: "down"},
		{name: "not ready", method: "GET", path: "/readyz", status: 503, code: "not_ready"},
		{name: "HTTP upstream refuses", method: "GET", path: "/legacy/x",
			status: 502, code: "upstream_unavailable", route: "legacy", upstream: "dead-http"},
		{name: "HTTP upstream too slow", method: "GET", path: "/slow/x",
			status: 504, code: "upstream_timeout", route: "slow-legacy", upstream: "slow-http"},
	}
	checkErrorBodies(t, b, cases, ns.opts.Port, deadNATSPort, deadHTTPPort, slowPort)
}

// TestDubboErrorBodies is the same check on Dubbo routes, against the real
// example provider (without -race: dubbo-go's getty races on its own).
func TestDubboErrorBodies(t *testing.T) {
	p := startProvider(t)
	deadPort := freePort(t)
	ups := fmt.Sprintf(`upstreams:
  dubbo:
    - { name: viadubbo, urls: [ "dubbo://127.0.0.1:%d" ], protocol: dubbo }
    - { name: dead, urls: [ "dubbo://127.0.0.1:%d" ], protocol: dubbo }
`, p.dubboPort, deadPort)
	b := startBridge(t, dubboMapping(ups, "viadubbo", "dead"))
	// The provider is up; the first call also builds its reference.
	waitStatus(t, b, "/viadubbo/echoInt", "1", 200, 30*time.Second)

	cases := []errorCase{
		{name: "405", method: "GET", path: "/viadubbo/echoInt",
			status: 405, code: "method_not_allowed", route: "viadubbo-echoInt", upstream: "viadubbo", allow: "POST"},
		{name: "out of range", method: "POST", path: "/viadubbo/echoInt", body: "3000000000",
			status: 400, code: "bad_parameter", route: "viadubbo-echoInt", upstream: "viadubbo"},
		{name: "bad JSON", method: "POST", path: "/viadubbo/createUser", body: `{"name": `,
			status: 400, code: "bad_json", route: "viadubbo-createUser", upstream: "viadubbo"},
		{name: "class key", method: "POST", path: "/viadubbo/createUser", body: `{"class": "java.lang.Runtime"}`,
			status: 400, code: "class_not_allowed", route: "viadubbo-createUser", upstream: "viadubbo"},
		{name: "missing parameter", method: "POST", path: "/viadubbo/echoInt",
			status: 400, code: "missing_parameter", route: "viadubbo-echoInt", upstream: "viadubbo"},
		{name: "body over the limit", method: "POST", path: "/viadubbo/createUser", body: `{"name": "` + strings.Repeat("x", 2<<20) + `"}`,
			status: 413, code: "body_too_large", route: "viadubbo-createUser", upstream: "viadubbo"},
		{name: "provider exception", method: "POST", path: "/viadubbo/fail/boom",
			status: 502, code: "provider_exception", route: "viadubbo-fail", upstream: "viadubbo"},
		{name: "mapped exception", method: "POST", path: "/viadubbo/fail/argument",
			status: 400, code: "provider_exception", route: "viadubbo-fail", upstream: "viadubbo"},
		{name: "provider timeout", method: "POST", path: "/viadubbo/slow", body: `{"ms": 2000}`,
			status: 504, code: "provider_timeout", route: "viadubbo-slow", upstream: "viadubbo"},
		{name: "no provider", method: "POST", path: "/dead/echoInt", body: "1",
			status: 503, code: "no_provider", route: "dead-echoInt", upstream: "dead"},
	}
	checkErrorBodies(t, b, cases, p.dubboPort, p.triPort, deadPort)
}

// TestRedactAddresses pins what is taken out of error text and what stays.
func TestRedactAddresses(t *testing.T) {
	tests := []struct{ in, want string }{
		{"dial tcp 127.0.0.1:4222: connect: connection refused", "dial tcp <address>: connect: connection refused"},
		{"dial tcp [::1]:8080: i/o timeout", "dial tcp <address>: i/o timeout"},
		{"providers [dubbo://10.0.0.7:20880/com.example.UserService?x=1]", "providers [dubbo://<address>/com.example.UserService?x=1]"},
		{"nats://user:secret@nats.internal:4222 closed", "nats://<address> closed"},
		{"lookup nats.internal on 10.0.0.10:53: no such host", "lookup nats.internal on <address>: no such host"},
		{"read localhost:9000: reset", "read <address>: reset"},
		// Ordinary messages keep their text.
		{"user.age: 3000000000 is out of range for int", "user.age: 3000000000 is out of range for int"},
		{`"2026-01-02T03:04:05Z" is not a date`, `"2026-01-02T03:04:05Z" is not a date`},
		{"com.example.UserService.fail threw java.lang.IllegalArgumentException: bad [admin]",
			"com.example.UserService.fail threw java.lang.IllegalArgumentException: bad [admin]"},
	}
	for _, tt := range tests {
		if got := redactAddresses(tt.in); got != tt.want {
			t.Errorf("redactAddresses(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestCheckTable: the table a bridge would be given refuses what the bridge
// would refuse,
// naming the route, and opens nothing (the upstreams here do not exist).
func TestCheckTable(t *testing.T) {
	natsGood := errorsMapping("nats://127.0.0.1:1", "nats://127.0.0.1:1", "127.0.0.1:1", "127.0.0.1:1")
	dubboGood := dubboMapping("upstreams:\n  dubbo:\n    - { name: users, urls: [ \"dubbo://127.0.0.1:1\" ] }\n", "users")
	load := func(t *testing.T, mapping string) *config.Config {
		t.Helper()
		cfg, err := config.LoadBytes("mapping.yaml", []byte(mapping))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	for _, good := range []string{natsGood, dubboGood} {
		if _, err := routetable.FromConfig(load(t, good), ""); err != nil {
			t.Fatalf("a good mapping: %v", err)
		}
	}
	tests := []struct {
		name   string
		dubbo  bool // the case breaks the Dubbo mapping, not the NATS one
		mutate func(*config.Config)
		want   string
	}{
		{"unknown nats upstream", false, func(c *config.Config) { c.Listeners[0].Routes[1].NATS.Upstream = "nope" },
			`route "quote": no nats upstream "nope"`},
		{"bad subject", false, func(c *config.Config) { c.Listeners[0].Routes[0].NATS.Subject = "orders.{region" },
			`route "order-events": `},
		{"bad header regex", false, func(c *config.Config) {
			c.Listeners[0].Routes[2].Match.Headers = []config.HeaderMatch{{Name: "x-a", Regex: "("}}
		}, `route "lost": match.headers x-a: `},
		{"unknown http upstream", false, func(c *config.Config) { c.Listeners[0].Routes[6].HTTP.Upstream = "nope" },
			`route "legacy": no http upstream "nope"`},
		{"http upstream without endpoints", false, func(c *config.Config) { c.Upstreams.HTTP[0].Endpoints = nil },
			`http upstream "dead-http" has no endpoints`},
		{"duplicate name", false, func(c *config.Config) { c.Listeners[0].Routes[1].Name = "order-events" },
			`route "order-events": the name is used twice`},
		{"unknown dubbo upstream", true, func(c *config.Config) { c.Listeners[0].Routes[0].Dubbo.Upstream = "nope" },
			`route "users-echoInt": no dubbo upstream "nope"`},
		{"bad parameter type", true, func(c *config.Config) { c.Listeners[0].Routes[0].Dubbo.Params[0].Type = "java.util.List<" },
			`route "users-echoInt": `},
		{"bad return type", true, func(c *config.Config) { c.Listeners[0].Routes[0].Dubbo.Returns = "int[" },
			`route "users-echoInt": dubbo: returns: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := load(t, natsGood)
			if tt.dubbo {
				cfg = load(t, dubboGood)
			}
			tt.mutate(cfg)
			_, err := routetable.FromConfig(cfg, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("the table = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
