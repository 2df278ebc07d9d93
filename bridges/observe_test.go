package bridges

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/test/nodeprovider"
)

func observeMapping(dubboPort int, natsURL string, deadNATS, deadDubbo int) string {
	return fmt.Sprintf(`
listeners:
  - name: public
    address: 127.0.0.1:10000
    access_log: { enabled: true }
    routes:
      - name: get-user
        match: { path: "/users/{id}", methods: [GET] }
        dubbo: { upstream: users, service: com.example.UserService, method: getUser, params: [ { from: path.id, type: long } ] }
      - name: attach
        match: { path: /attach, methods: [POST] }
        dubbo: { upstream: users, service: com.example.UserService, method: attachments, params: [ { from: body, type: java.lang.String } ] }
      - name: dead
        match: { path: /dead, methods: [GET] }
        dubbo: { upstream: dead, service: com.example.UserService, method: hits, timeout: 500ms }
      - name: pub
        match: { path: /pub, methods: [POST] }
        nats: { upstream: bus, subject: app.events, mode: core }
      - name: pub-gone
        match: { path: /gone, methods: [POST] }
        nats: { upstream: gone, subject: app.events, mode: core }
upstreams:
  dubbo:
    - { name: users, urls: [ "dubbo://127.0.0.1:%d" ] }
    - { name: dead, urls: [ "dubbo://127.0.0.1:%d" ] }
  nats:
    - { name: bus, urls: [ %q ] }
    - { name: gone, urls: [ "nats://127.0.0.1:%d" ], optional: true }
bridge:
  address: 127.0.0.1:0
`, dubboPort, deadDubbo, natsURL, deadNATS)
}

// syncBuffer is a log sink the bridge writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestBridgeMetricsLogsAndTraceContext: after known traffic (successes,
// a 400, an unknown route, a provider down, a NATS server down) the
// bridge's /metrics has each count under the right labels and the
// upstreams' state; every request has its access log line; a traceparent
// the client sends reaches the Dubbo provider as attachments and the NATS
// subscriber as headers, with the same trace id.
func TestBridgeMetricsLogsAndTraceContext(t *testing.T) {
	p := startProvider(t)
	ns := startNATS(t, -1, t.TempDir(), 0)
	sub, _ := ns.client()
	defer sub.Close()
	got := make(chan *nats.Msg, 4)
	if _, err := sub.ChanSubscribe("app.events", got); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadBytes("mapping.yaml", []byte(observeMapping(p.dubboPort, ns.url(), freePort(t), freePort(t))))
	if err != nil {
		t.Fatal(err)
	}
	access := &syncBuffer{}
	srv, err := New(cfg.Bridge, tableOf(t, cfg), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		AccessLog: slog.New(slog.NewJSONHandler(access, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(t.Context())
	b := &bridge{t: t, srv: srv, url: "http://" + srv.Addr()}

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	traced := map[string]string{"traceparent": "00-" + traceID + "-00f067aa0ba902b7-01", "tracestate": "vendor=opaque", "baggage": "tenant=acme"}
	type req struct {
		method, path, body string
		header             map[string]string
		want               int
	}
	traffic := []req{
		{"GET", "/users/1", "", nil, 200}, {"GET", "/users/2", "", nil, 200}, {"GET", "/users/3", "", nil, 200},
		{"GET", "/users/abc", "", nil, 400}, {"GET", "/users/x", "", nil, 400},
		{"GET", "/nowhere", "", nil, 404},
		{"GET", "/dead", "", nil, 503},
		{"POST", "/pub", `{"a":1}`, traced, 202}, {"POST", "/pub", `{"a":2}`, nil, 202},
		{"POST", "/gone", `{}`, nil, 503},
		{"POST", "/attach", `"t"`, traced, 200},
	}
	var attachments map[string]string
	for _, r := range traffic {
		code, body, _ := b.do(r.method, r.path, r.body, r.header)
		if code != r.want {
			t.Fatalf("%s %s = %d %+v, want %d", r.method, r.path, code, body, r.want)
		}
	}
	// The provider saw the trace context as attachments.
	code, _, h := b.do("POST", "/attach", `"t2"`, traced)
	if code != 200 {
		t.Fatal(code)
	}
	if err := json.Unmarshal([]byte(h.Get("X-Test-Body")), &attachments); err != nil {
		t.Fatalf("attachments: %v %q", err, h.Get("X-Test-Body"))
	}
	for k, v := range traced {
		if attachments[k] != v {
			t.Errorf("the provider's attachment %s = %q, want %q (all: %v)", k, attachments[k], v, attachments)
		}
	}
	select {
	case m := <-got:
		if m.Header.Get("traceparent") != traced["traceparent"] || m.Header.Get("baggage") != "tenant=acme" {
			t.Errorf("the NATS message's headers = %v, want the trace context", m.Header)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the subscriber got nothing")
	}

	_, _, mh := b.do("GET", "/metrics", "", nil)
	metrics := mh.Get("X-Test-Body")
	for _, want := range []string{
		`protogate_bridge_requests_total{code="200",error="",protocol="dubbo",route="get-user",upstream="users"} 3`,
		`protogate_bridge_requests_total{code="400",error="bad_parameter",protocol="dubbo",route="get-user",upstream="users"} 2`,
		`protogate_bridge_requests_total{code="404",error="not_found",protocol="",route="",upstream=""} 1`,
		`protogate_bridge_requests_total{code="503",error="no_provider",protocol="dubbo",route="dead",upstream="dead"} 1`,
		`protogate_bridge_requests_total{code="202",error="",protocol="nats",route="pub",upstream="bus"} 2`,
		`protogate_bridge_requests_total{code="503",error="upstream_unavailable",protocol="nats",route="pub-gone",upstream="gone"} 1`,
		`protogate_bridge_request_duration_seconds_count{protocol="dubbo",route="get-user"} 5`,
		`protogate_bridge_upstream_duration_seconds_count{operation="call",protocol="dubbo",upstream="users"} 5`,
		`protogate_bridge_upstream_duration_seconds_count{operation="publish",protocol="nats",upstream="bus"} 2`,
		`protogate_bridge_upstream_usable{protocol="nats",upstream="bus"} 1`,
		`protogate_bridge_upstream_usable{protocol="nats",upstream="gone"} 0`,
		`protogate_bridge_upstream_usable{protocol="dubbo",upstream="users"} 1`,
		`protogate_bridge_upstream_usable{protocol="dubbo",upstream="dead"} 0`,
		`protogate_bridge_dubbo_providers{state="known",upstream="dead"} 1`,
		`protogate_bridge_dubbo_providers{state="healthy",upstream="dead"} 0`,
		`protogate_bridge_dubbo_providers{state="healthy",upstream="users"} 1`,
		`protogate_bridge_requests_in_flight 0`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepLines(metrics, "protogate_bridge_"))
	}

	// One access line per request (the 404 knew no route: its listener's
	// setting is unknown, so it has none); the traced ones carry the id.
	lines := access.lines()
	byRoute := map[string]int{}
	for _, l := range lines {
		byRoute[fmt.Sprint(l["route"])]++
		if l["route"] == "attach" && l["trace_id"] != traceID {
			t.Errorf("attach's access line has trace id %v", l["trace_id"])
		}
		if l["route"] == "get-user" && (l["target"] != "com.example.UserService.getUser" || l["method"] != "GET") {
			t.Errorf("get-user's access line = %v", l)
		}
	}
	want := map[string]int{"get-user": 5, "dead": 1, "pub": 2, "pub-gone": 1, "attach": 2}
	for r, n := range want {
		if byRoute[r] != n {
			t.Errorf("%d access lines for %s, want %d (all: %v)", byRoute[r], r, n, byRoute)
		}
	}
	// The bridge is ready: the one upstream it cannot use is optional...
	if ok, down := srv.Ready(); ok {
		t.Errorf("ready with the dead Dubbo upstream: %v", down)
	} else if len(down) != 1 || !strings.HasPrefix(down[0], "dead:") {
		t.Errorf("not ready for %v, want only the dead Dubbo upstream (gone is optional)", down)
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestAccessLogSampling: with a share of 0 percent only the 5xx answers
// are logged, as Envoy's access log does for the same setting.
func TestAccessLogSampling(t *testing.T) {
	cfg, err := config.LoadBytes("mapping.yaml", []byte(fmt.Sprintf(`
listeners:
  - name: public
    address: 127.0.0.1:10000
    access_log: { enabled: true, sample_percent: 0 }
    routes:
      - { name: pub, match: { path: /pub, methods: [POST] }, nats: { upstream: gone, subject: app.events, mode: core } }
upstreams:
  nats: [ { name: gone, urls: [ "nats://127.0.0.1:%d" ] } ]
bridge:
  address: 127.0.0.1:0
`, freePort(t))))
	if err != nil {
		t.Fatal(err)
	}
	access := &syncBuffer{}
	srv, err := New(cfg.Bridge, tableOf(t, cfg), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		AccessLog: slog.New(slog.NewJSONHandler(access, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(t.Context())
	b := &bridge{t: t, srv: srv, url: "http://" + srv.Addr()}
	for range 3 {
		if code, _, _ := b.do("POST", "/pub", "{}", nil); code != 503 {
			t.Fatalf("publish to a NATS server that is down = %d", code)
		}
	}
	if code, _, _ := b.do("GET", "/pub", "", map[string]string{"x-protogate-route": "pub"}); code != 405 {
		t.Fatalf("GET = %d", code)
	}
	lines := access.lines()
	if len(lines) != 3 {
		t.Fatalf("%d access lines, want the three 503s only: %v", len(lines), lines)
	}
	for _, l := range lines {
		if l["status"] != float64(503) || l["error"] != "upstream_unavailable" {
			t.Errorf("access line %v", l)
		}
	}
}

// TestDubboReplyTraceContext: a provider that answers with a trace context
// in its response attachments (the Node provider continues the trace it
// was sent) has it passed back to the HTTP client; a request without one
// gets none.
func TestDubboReplyTraceContext(t *testing.T) {
	np := nodeprovider.Start(t)
	b := startBridge(t, fmt.Sprintf(`
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: get-user
        match: { path: "/users/{id}", methods: [GET] }
        dubbo: { upstream: node, service: com.example.UserService, method: getUser, params: [ { from: path.id, type: long } ] }
upstreams:
  dubbo: [ { name: node, urls: [ %q ] } ]
bridge:
  address: 127.0.0.1:0
`, np.URL()))
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	code, _, h := b.do("GET", "/users/1", "", map[string]string{"traceparent": tp, "tracestate": "v=1"})
	if code != 200 || h.Get("Traceparent") != tp || h.Get("Tracestate") != "v=1" {
		t.Fatalf("GET = %d, traceparent %q tracestate %q; want the provider's answer of ours", code, h.Get("Traceparent"), h.Get("Tracestate"))
	}
	if code, _, h := b.do("GET", "/users/1", "", nil); code != 200 || h.Get("Traceparent") != "" {
		t.Fatalf("untraced GET = %d with traceparent %q", code, h.Get("Traceparent"))
	}
}
