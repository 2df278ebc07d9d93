package bridges

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	collector "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/protogate/protogate/config"
)

// receiver is an OTLP/gRPC trace receiver in the test process.
type receiver struct {
	collector.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
	names []string // service.name of each span's resource
}

func (r *receiver) Export(_ context.Context, req *collector.ExportTraceServiceRequest) (*collector.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		svc := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				svc = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, s)
				r.names = append(r.names, svc)
			}
		}
	}
	return &collector.ExportTraceServiceResponse{}, nil
}

func (r *receiver) byTrace(traceID string) []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range r.spans {
		if hex.EncodeToString(s.GetTraceId()) == traceID {
			out = append(out, s)
		}
	}
	return out
}

func startReceiver(t *testing.T) (*receiver, string) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	r := &receiver{}
	collector.RegisterTraceServiceServer(g, r)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return r, lis.Addr().String()
}

// traceparentParts splits a traceparent into trace id and parent span id.
func traceparentParts(tp string) (string, string) {
	p := strings.Split(tp, "-")
	if len(p) != 4 {
		return "", ""
	}
	return p[1], p[2]
}

// TestBridgeSpans: with a collector configured, a request that carries a
// traceparent gets a server span under the caller's span and a client
// span for the Dubbo call, and the provider is sent the client span's
// context (same trace, the client span as parent); a NATS publish alike.
// Spans reach the in-process OTLP receiver.
func TestBridgeSpans(t *testing.T) {
	rcv, addr := startReceiver(t)
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
	cfg, err := config.LoadBytes("mapping.yaml", []byte(fmt.Sprintf(`
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: attach
        match: { path: /attach, methods: [POST] }
        dubbo: { upstream: users, service: com.example.UserService, method: attachments, params: [ { from: body, type: java.lang.String } ] }
      - { name: pub, match: { path: /pub, methods: [POST] }, nats: { upstream: bus, subject: app.events, mode: core } }
upstreams:
  dubbo: [ { name: users, urls: [ "dubbo://127.0.0.1:%d" ] } ]
  nats: [ { name: bus, urls: [ %q ] } ]
tracing: { otlp_endpoint: %q, service_name: edge }
bridge:
  address: 127.0.0.1:0
`, p.dubboPort, ns.url(), addr)))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg.Bridge, tableOf(t, cfg), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	b := &bridge{t: t, srv: srv, url: "http://" + srv.Addr()}

	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	traced := map[string]string{"traceparent": "00-" + traceID + "-" + callerSpan + "-01"}
	code, _, h := b.do("POST", "/attach", `"t"`, traced)
	if code != 200 {
		t.Fatalf("attach = %d", code)
	}
	var att map[string]string
	if err := json.Unmarshal([]byte(h.Get("X-Test-Body")), &att); err != nil {
		t.Fatal(err)
	}
	tid, dubboParent := traceparentParts(att["traceparent"])
	if tid != traceID || dubboParent == callerSpan || dubboParent == "" {
		t.Fatalf("the provider's traceparent %q: want trace %s under the bridge's client span", att["traceparent"], traceID)
	}
	if code, _, _ := b.do("POST", "/pub", "{}", traced); code != 202 {
		t.Fatalf("pub = %d", code)
	}
	var natsParent string
	select {
	case m := <-got:
		var tid string
		tid, natsParent = traceparentParts(m.Header.Get("traceparent"))
		if tid != traceID || natsParent == callerSpan {
			t.Fatalf("the NATS message's traceparent %q", m.Header.Get("traceparent"))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing published")
	}
	// Shutting down sends what is batched.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	spans := rcv.byTrace(traceID)
	byID := map[string]*tracepb.Span{}
	for _, s := range spans {
		byID[hex.EncodeToString(s.GetSpanId())] = s
	}
	for _, c := range []struct{ clientID, serverName, clientName string }{
		{dubboParent, "POST attach", "com.example.UserService/attachments"},
		{natsParent, "POST pub", "publish app.events"},
	} {
		client := byID[c.clientID]
		if client == nil || client.GetName() != c.clientName || client.GetKind() != tracepb.Span_SPAN_KIND_CLIENT {
			t.Fatalf("no client span %s named %q among %d spans of the trace", c.clientID, c.clientName, len(spans))
		}
		server := byID[hex.EncodeToString(client.GetParentSpanId())]
		if server == nil || server.GetName() != c.serverName || server.GetKind() != tracepb.Span_SPAN_KIND_SERVER ||
			hex.EncodeToString(server.GetParentSpanId()) != callerSpan {
			t.Fatalf("the client span %q has parent %v; want the server span %q under the caller's span", c.clientName, server, c.serverName)
		}
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, n := range rcv.names {
		if n != "edge.bridge" {
			t.Fatalf("a span of service %q, want edge.bridge", n)
		}
	}
}
