package bridges

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/routetable"
)

// natsServer runs a real NATS server with JetStream on loopback.
type natsServer struct {
	t    *testing.T
	opts *server.Options
	s    *server.Server
}

func startNATS(t *testing.T, port int, storeDir string, maxPayload int32) *natsServer {
	t.Helper()
	n := &natsServer{t: t, opts: &server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: storeDir, NoSigs: true, NoLog: true, MaxPayload: maxPayload,
	}}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) start() {
	s, err := server.NewServer(n.opts)
	if err != nil {
		n.t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("nats-server did not start")
	}
	n.s = s
	n.opts.Port = s.Addr().(*net.TCPAddr).Port // keep the port across restarts
}

func (n *natsServer) stop() {
	if n.s != nil {
		n.s.Shutdown()
		n.s.WaitForShutdown()
		n.s = nil
	}
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port) }

// client is a separate NATS connection that reads what the bridge stored.
func (n *natsServer) client() (*nats.Conn, jetstream.JetStream) {
	n.t.Helper()
	nc, err := nats.Connect(n.url())
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		n.t.Fatal(err)
	}
	return nc, js
}

// subscribed returns once the server has every subscription nc made so
// far: Flush round-trips a PING after the SUBs, and the server handles one
// connection's protocol in order, so a publish from any other connection
// (the bridge's) finds them from now on.
func subscribed(t *testing.T, nc *nats.Conn) {
	t.Helper()
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatalf("the NATS server did not confirm the subscriptions: %v", err)
	}
}

func testMapping(natsURL string) string {
	return `
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: order-events
        match: { path: "/events/orders/{region}", methods: [POST] }
        body_limit: 4KiB
        nats: { upstream: events, subject: "orders.{region}.created", headers: [ x-tenant ], timeout: 2s }
      - name: order-kinds
        match: { path: "/events/kinds/{region}", methods: [POST] }
        nats: { upstream: events, subject: "orders.{region}.{query.kind}" }
      - name: views
        match: { path: /events/views, methods: [POST] }
        nats: { upstream: events, subject: views.recorded, mode: core, headers: [ x-tenant ] }
      - name: quote
        match: { path: "/quotes/{symbol}", methods: [GET] }
        nats: { upstream: events, subject: "quotes.{symbol}", mode: request, timeout: 500ms, reply_headers: [ x-quote-source ] }
      - name: lost
        match: { path: /events/lost, methods: [POST] }
        nats: { upstream: unlisted, subject: lost.events }
upstreams:
  nats:
    - name: events
      urls: [ "` + natsURL + `" ]
      reconnect_wait: 100ms
      provision: true
      streams: [ { name: ORDERS, subjects: [ "orders.>" ], duplicate_window: 2m } ]
    # The same server, with no streams listed: the mapping cannot know
    # whether a stream takes its subjects, so only the server can say.
    - name: unlisted
      urls: [ "` + natsURL + `" ]
      reconnect_wait: 100ms
bridge:
  address: 127.0.0.1:0
`
}

type bridge struct {
	t   *testing.T
	srv *Server
	url string
}

func startBridge(t *testing.T, mapping string) *bridge {
	t.Helper()
	cfg, err := config.LoadBytes("mapping.yaml", []byte(mapping))
	if err != nil {
		t.Fatal(err)
	}
	return startBridgeWith(t, cfg, tableOf(t, cfg))
}

// startBridgeWith serves a table built from cfg.
func startBridgeWith(t *testing.T, cfg *config.Config, table *routetable.Table) *bridge {
	t.Helper()
	srv, err := New(cfg.Bridge, table, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	b := &bridge{t: t, srv: srv, url: "http://" + srv.Addr()}
	return b
}

// waitReady waits for /readyz, which follows the NATS connection.
func (b *bridge) waitReady() {
	b.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if code, _, _ := b.do("GET", "/readyz", "", nil); code == 200 {
			return
		}
	}
	b.t.Fatal("the bridge never became ready")
}

type response struct {
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
	Subject   string `json:"subject"`
	Error     struct {
		Code     string `json:"code"`
		Message  string `json:"message"`
		Route    string `json:"route"`
		Upstream string `json:"upstream"`
	} `json:"error"`
}

func (b *bridge) do(method, path, body string, header map[string]string) (int, response, http.Header) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.url+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	// A body is JSON unless the test says otherwise (an empty
	// Content-Type sends none at all).
	if _, set := header["Content-Type"]; body != "" && !set {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r response
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if !json.Valid(raw) {
			b.t.Fatalf("%s %s: bad JSON %q", method, path, raw)
		}
		_ = json.Unmarshal(raw, &r) // error bodies and acks are objects; echoes may not be
	}
	resp.Header.Set("X-Test-Body", string(raw))
	return resp.StatusCode, r, resp.Header
}

func streamCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), "ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func getMsg(t *testing.T, js jetstream.JetStream, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(context.Background(), "ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(context.Background(), seq)
	if err != nil {
		t.Fatalf("message %d: %v", seq, err)
	}
	return m
}

func TestJetStreamPublish(t *testing.T) {
	ns := startNATS(t, -1, t.TempDir(), 0)
	b := startBridge(t, testMapping(ns.url()))
	b.waitReady()
	_, js := ns.client()

	body := `{"order": 42, "total": "12.50"}`
	code, r, _ := b.do("POST", "/events/orders/eu", body, map[string]string{
		"Content-Type": "application/json", "X-Tenant": "acme", "X-Secret": "never-copied", "Idempotency-Key": "order-42",
	})
	if code != 201 || r.Stream != "ORDERS" || r.Seq != 1 || r.Duplicate {
		t.Fatalf("publish = %d %+v", code, r)
	}
	m := getMsg(t, js, r.Seq)
	if m.Subject != "orders.eu.created" || string(m.Data) != body {
		t.Fatalf("stored %q %q", m.Subject, m.Data)
	}
	if m.Header.Get("X-Tenant") != "acme" || m.Header.Get("Content-Type") != "application/json" ||
		m.Header.Get("Nats-Msg-Id") != "order-42" || m.Header.Get("X-Secret") != "" {
		t.Fatalf("stored headers %v", m.Header)
	}
}

func TestIdempotencyKeyStoresOnce(t *testing.T) {
	ns := startNATS(t, -1, t.TempDir(), 0)
	b := startBridge(t, testMapping(ns.url()))
	b.waitReady()
	_, js := ns.client()
	key := map[string]string{"Idempotency-Key": "pay-7"}
	c1, r1, _ := b.do("POST", "/events/orders/eu", "first", key)
	c2, r2, _ := b.do("POST", "/events/orders/eu", "first", key)
	if c1 != 201 || c2 != 201 || r1.Duplicate || !r2.Duplicate || r1.Seq != r2.Seq {
		t.Fatalf("first %d %+v, retry %d %+v", c1, r1, c2, r2)
	}
	// The same key with another payload, or another subject, is not a
	// retry: 409 naming the key, and the stream keeps the first payload.
	for _, tc := range []struct{ path, body string }{
		{"/events/orders/eu", "second"},
		{"/events/orders/us", "first"},
	} {
		c, r, _ := b.do("POST", tc.path, tc.body, key)
		if c != 409 || r.Error.Code != "idempotency_conflict" || !strings.Contains(r.Error.Message, `Idempotency-Key "pay-7"`) {
			t.Fatalf("%s %q with a used key: %d %+v", tc.path, tc.body, c, r)
		}
	}
	if n := streamCount(t, js); n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
	if got := string(getMsg(t, js, 1).Data); got != "first" {
		t.Fatalf("stored %q", got)
	}
}

func TestBadSubjectTokensPublishNothing(t *testing.T) {
	ns := startNATS(t, -1, t.TempDir(), 0)
	b := startBridge(t, testMapping(ns.url()))
	b.waitReady()
	_, js := ns.client()
	paths := []string{
		// path variable
		"/events/orders/a.b", "/events/orders/%2A", "/events/orders/%3E", "/events/orders/$JS.API.X",
		"/events/orders/%24JS.API.X", "/events/orders/%2E", "/events/orders/a%20b",
		// query variable
		"/events/kinds/eu?kind=a.b", "/events/kinds/eu?kind=*", "/events/kinds/eu?kind=%3E",
		"/events/kinds/eu?kind=$JS.API.X", "/events/kinds/eu?kind=%2E", "/events/kinds/eu?kind=", "/events/kinds/eu",
	}
	for _, p := range paths {
		code, r, _ := b.do("POST", p, "x", nil)
		if code != 400 || r.Error.Code != "invalid_subject_token" || r.Error.Route == "" || r.Error.Upstream != "events" {
			t.Errorf("POST %s = %d %+v, want 400 invalid_subject_token", p, code, r.Error)
		}
	}
	if n := streamCount(t, js); n != 0 {
		t.Fatalf("bad tokens stored %d messages", n)
	}
	// And a good query token does publish.
	if code, r, _ := b.do("POST", "/events/kinds/eu?kind=cancelled", "x", nil); code != 201 || getMsg(t, js, r.Seq).Subject != "orders.eu.cancelled" {
		t.Fatalf("good token: %d %+v", code, r)
	}
}

func TestCorePublish(t *testing.T) {
	ns := startNATS(t, -1, t.TempDir(), 0)
	b := startBridge(t, testMapping(ns.url()))
	b.waitReady()
	nc, _ := ns.client()
	sub, err := nc.SubscribeSync("views.recorded")
	if err != nil {
		t.Fatal(err)
	}
	subscribed(t, nc)
	code, r, _ := b.do("POST", "/events/views", "page=/home", map[string]string{"X-Tenant": "acme", "Content-Type": "text/plain"})
	if code != 202 || r.Subject != "views.recorded" {
		t.Fatalf("core publish = %d %+v", code, r)
	}
	m, err := sub.NextMsg(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "page=/home" || m.Header.Get("X-Tenant") != "acme" || m.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("received %q %v", m.Data, m.Header)
	}
}

func TestRequestReply(t *testing.T) {
	ns := startNATS(t, -1, t.TempDir(), 0)
	b := startBridge(t, testMapping(ns.url()))
	b.waitReady()
	nc, _ := ns.client()
	svc, err := micro.AddService(nc, micro.Config{Name: "quotes", Version: "1.0.0", Endpoint: &micro.EndpointConfig{
		Subject: "quotes.*",
		Handler: micro.HandlerFunc(func(req micro.Request) {
			switch req.Subject() {
			case "quotes.ACME":
				_ = req.Respond([]byte(`{"price": 12.5}`), micro.WithHeaders(micro.Headers{
					"Content-Type": {"application/json"}, "X-Quote-Source": {"exchange"}, "X-Internal": {"hidden"}}))
			case "quotes.SLOW":
				time.Sleep(time.Second)
				_ = req.Respond([]byte("late"))
			default:
				_ = req.Error("404", "unknown symbol", nil)
			}
		}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Without this the first request can beat the service's SUB to the
	// server and get no_responders.
	subscribed(t, nc)
	code, _, h := b.do("GET", "/quotes/ACME", "", nil)
	if code != 200 || h.Get("X-Test-Body") != `{"price": 12.5}` || h.Get("Content-Type") != "application/json" ||
		h.Get("X-Quote-Source") != "exchange" || h.Get("X-Internal") != "" {
		t.Fatalf("reply = %d %v", code, h)
	}
	code, r, _ := b.do("GET", "/quotes/NOPE", "", nil)
	if code != 404 || r.Error.Code != "service_error" || r.Error.Message != "unknown symbol" {
		t.Fatalf("service error = %d %+v", code, r.Error)
	}
	code, r, _ = b.do("GET", "/quotes/SLOW", "", nil)
	if code != 504 || r.Error.Code != "reply_timeout" {
		t.Fatalf("slow service = %d %+v", code, r.Error)
	}
	if err := svc.Stop(); err != nil {
		t.Fatal(err)
	}
	subscribed(t, nc) // and now the server has seen the unsubscribe
	code, r, _ = b.do("GET", "/quotes/ACME", "", nil)
	if code != 503 || r.Error.Code != "no_responders" || r.Error.Upstream != "events" {
		t.Fatalf("no responders = %d %+v", code, r.Error)
	}
}

func TestNoStreamAndLimits(t *testing.T) {
	ns := startNATS(t, -1, t.TempDir(), 0)
	b := startBridge(t, testMapping(ns.url()))
	b.waitReady()
	_, js := ns.client()
	code, r, _ := b.do("POST", "/events/lost", "x", nil)
	if code != 503 || r.Error.Code != "no_stream" || r.Error.Upstream != "unlisted" || !strings.Contains(r.Error.Message, "no JetStream stream") {
		t.Fatalf("no stream = %d %+v", code, r.Error)
	}
	code, r, _ = b.do("POST", "/events/orders/eu", strings.Repeat("x", 4<<10+1), nil)
	if code != 413 || r.Error.Code != "body_too_large" {
		t.Fatalf("over the route limit = %d %+v", code, r.Error)
	}
	if n := streamCount(t, js); n != 0 {
		t.Fatalf("an oversized body was stored (%d messages)", n)
	}
}

func TestOverServerMaxPayload(t *testing.T) {
	ns := startNATS(t, -1, t.TempDir(), 1024) // the route allows 4 KiB, the server 1 KiB
	b := startBridge(t, testMapping(ns.url()))
	b.waitReady()
	_, js := ns.client()
	code, r, _ := b.do("POST", "/events/orders/eu", strings.Repeat("x", 2048), nil)
	if code != 413 || r.Error.Code != "body_too_large" {
		t.Fatalf("over max_payload = %d %+v", code, r.Error)
	}
	if n := streamCount(t, js); n != 0 {
		t.Fatalf("stored %d messages", n)
	}
}

func TestRoutingErrors(t *testing.T) {
	ns := startNATS(t, -1, t.TempDir(), 0)
	b := startBridge(t, testMapping(ns.url()))
	b.waitReady()
	tests := []struct {
		method, path string
		header       map[string]string
		status       int
		code         string
	}{
		{"GET", "/events/orders/eu", nil, 405, "method_not_allowed"},
		{"POST", "/nowhere", nil, 404, "not_found"},
		{"POST", "/events/orders/eu", map[string]string{"X-Protogate-Route": "no-such-route"}, 404, "unknown_route"},
		{"POST", "/quotes/ACME", map[string]string{"X-Protogate-Route": "order-events"}, 404, "not_found"},
		{"GET", "/events/orders/eu", map[string]string{"X-Protogate-Route": "order-events"}, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		code, r, h := b.do(tt.method, tt.path, "", tt.header)
		if code != tt.status || r.Error.Code != tt.code || r.Error.Message == "" {
			t.Errorf("%s %s %v = %d %+v, want %d %s", tt.method, tt.path, tt.header, code, r.Error, tt.status, tt.code)
		}
		if code == 405 && h.Get("Allow") != "POST" {
			t.Errorf("405 without Allow: %q", h.Get("Allow"))
		}
	}
	// The route header names a route; the request still has to fit it.
	if code, r, _ := b.do("POST", "/events/orders/eu", "x", map[string]string{"X-Protogate-Route": "order-events"}); code != 201 {
		t.Fatalf("by route header = %d %+v", code, r)
	}
}

// TestNATSDownAtStart: the bridge starts without NATS, is not ready and
// answers 503, then recovers on its own once NATS is up, streams included.
func TestNATSDownAtStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	b := startBridge(t, testMapping(fmt.Sprintf("nats://127.0.0.1:%d", port)))
	code, r, _ := b.do("GET", "/readyz", "", nil)
	if code != 503 || !strings.Contains(r.Error.Message, "events") {
		t.Fatalf("/readyz without NATS = %d %+v", code, r.Error)
	}
	code, r, _ = b.do("POST", "/events/orders/eu", "x", nil)
	if code != 503 || r.Error.Code != "upstream_unavailable" || r.Error.Upstream != "events" {
		t.Fatalf("publish without NATS = %d %+v", code, r.Error)
	}
	ns := startNATS(t, port, t.TempDir(), 0)
	b.waitReady()
	_, js := ns.client()
	var last int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if last, _, _ = b.do("POST", "/events/orders/eu", "x", nil); last == 201 {
			break
		}
	}
	if last != 201 || streamCount(t, js) != 1 {
		t.Fatalf("no recovery without a restart: last status %d", last)
	}
}

// TestNATSRestartUnderLoad: NATS restarts while a bounded concurrent load
// runs; every 2xx answer's sequence is in the stream afterwards, with the
// body that was sent.
func TestNATSRestartUnderLoad(t *testing.T) {
	ns := startNATS(t, -1, t.TempDir(), 0)
	b := startBridge(t, testMapping(ns.url()))
	b.waitReady()

	type ok struct {
		seq  uint64
		body string
	}
	var mu sync.Mutex
	var acked []ok
	failed := map[int]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf("worker-%d-msg-%d", w, i)
				req, _ := http.NewRequest("POST", b.url+"/events/orders/eu", strings.NewReader(body))
				req.Header.Set("Idempotency-Key", body)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					continue
				}
				var r response
				_ = json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				mu.Lock()
				if resp.StatusCode == 201 {
					acked = append(acked, ok{r.Seq, body})
				} else {
					failed[resp.StatusCode]++
				}
				mu.Unlock()
			}
		}(w)
	}
	time.Sleep(300 * time.Millisecond)
	ns.stop()
	time.Sleep(300 * time.Millisecond)
	ns.start()
	b.waitReady()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	_, js := ns.client()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 50 {
		t.Fatalf("only %d publishes were acknowledged", len(acked))
	}
	for _, a := range acked {
		if got := string(getMsg(t, js, a.seq).Data); got != a.body {
			t.Fatalf("sequence %d holds %q, but %q was acknowledged with it", a.seq, got, a.body)
		}
	}
	for status := range failed {
		if status != 503 && status != 504 {
			t.Errorf("during the restart a request got %d; want only 503 or 504", status)
		}
	}
	t.Logf("acknowledged %d, refused during the outage %v", len(acked), failed)
}

// TestShutdownDrains: shutting down under load finishes the requests in
// flight and refuses new ones.
func TestShutdownDrains(t *testing.T) {
	ns := startNATS(t, -1, t.TempDir(), 0)
	b := startBridge(t, testMapping(ns.url()))
	b.waitReady()
	nc, _ := ns.client()
	const n = 10
	// Holds every request until released, so all ten are provably in
	// flight (the responder has them) when shutdown starts.
	var received atomic.Int32
	allIn, release := make(chan struct{}), make(chan struct{})
	if _, err := nc.Subscribe("quotes.*", func(m *nats.Msg) {
		if received.Add(1) == n {
			close(allIn)
		}
		go func() {
			<-release
			_ = m.Respond([]byte("done"))
		}()
	}); err != nil {
		t.Fatal(err)
	}
	subscribed(t, nc)
	results := make(chan int, n)
	for i := 0; i < n; i++ {
		go func() {
			resp, err := http.Get(b.url + "/quotes/ACME")
			if err != nil {
				results <- -1
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			results <- resp.StatusCode
		}()
	}
	select {
	case <-allIn:
	case <-time.After(10 * time.Second):
		t.Fatalf("only %d of %d requests reached the responder", received.Load(), n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- b.srv.Shutdown(ctx) }()
	for !b.srv.closing.Load() {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // shutdown is waiting on the ten
	close(release)
	if err := <-shutdown; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if code := <-results; code != 200 {
			t.Fatalf("a request in flight during shutdown got %d", code)
		}
	}
	if _, err := http.Post(b.url+"/events/orders/eu", "text/plain", bytes.NewReader([]byte("x"))); err == nil {
		t.Fatal("a new request was accepted after shutdown")
	}
}
