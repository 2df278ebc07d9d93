package bridges

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/protogate/protogate/config"
)

// BenchmarkObservability: what a request costs the bridge with its access
// log off and on, and with a traceparent to pass on (tracing off), on a
// core NATS publish to an in-process server, served without a socket so
// the figures are the bridge's own. Metrics are always on; the
// "metrics-only" line is their share, measured alone.
func BenchmarkObservability(b *testing.B) {
	ns := startNATS(&testing.T{}, -1, b.TempDir(), 0)
	defer ns.stop()
	mapping := func(accessLog bool) string {
		return fmt.Sprintf(`
listeners:
  - name: public
    address: 127.0.0.1:10000
    access_log: { enabled: %t }
    routes:
      - { name: pub, match: { path: /pub, methods: [POST] }, nats: { upstream: bus, subject: app.events, mode: core } }
upstreams:
  nats: [ { name: bus, urls: [ %q ] } ]
bridge:
  address: 127.0.0.1:0
`, accessLog, ns.url())
	}
	for _, bc := range []struct {
		name      string
		accessLog bool
		traced    bool
	}{
		{"access-log-off", false, false},
		{"access-log-on", true, false},
		{"traceparent-passed-on", false, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg, err := config.LoadBytes("mapping.yaml", []byte(mapping(bc.accessLog)))
			if err != nil {
				b.Fatal(err)
			}
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			srv, err := New(cfg.Bridge, tableOf(b, cfg), Options{Logger: quiet, AccessLog: slog.New(slog.NewJSONHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.closeNATS()
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if ok, _ := srv.Ready(); ok {
					break
				}
				if time.Now().After(deadline) {
					b.Fatal("the bridge never connected to NATS")
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest("POST", "/pub", strings.NewReader(`{"a":1}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("x-protogate-route", "pub")
				if bc.traced {
					req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
				}
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, req)
				if w.Code != http.StatusAccepted {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
	b.Run("metrics-only", func(b *testing.B) {
		m := newMetrics(&Server{}) // never gathered: its collector is not read
		info := &requestInfo{route: "pub", upstream: "bus", protocol: "nats"}
		b.ReportAllocs()
		for b.Loop() {
			m.countRequest(info, 202, time.Millisecond)
			m.observeUpstream("bus", "nats", "publish", time.Now())
		}
	})
}
