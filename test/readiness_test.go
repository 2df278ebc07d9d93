package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

const readinessMapping = `
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: order-events
        match: { path: "/events/orders/{region}", methods: [POST] }
        nats: { upstream: events, subject: "orders.{region}.created" }
upstreams:
  nats:
    - { name: events, urls: [ "nats://127.0.0.1:%d" ], reconnect_wait: 50ms, provision: true, streams: [ { name: ORDERS, subjects: [ "orders.>" ] } ] }
bridge:
  address: 127.0.0.1:%d
`

// TestRunReadinessFollowsUpstreams: in protogate run, the admin's /readyz
// and /status say an upstream cannot take calls while its NATS server is
// down, naming it, and ready once it is up, without a restart.
func TestRunReadinessFollowsUpstreams(t *testing.T) {
	natsPort, bridgePort, xdsPort, adminPort := freePort(t), freePort(t), freePort(t), freePort(t)
	mapping := filepath.Join(t.TempDir(), "mapping.yaml")
	if err := os.WriteFile(mapping, []byte(fmt.Sprintf(readinessMapping, natsPort, bridgePort)), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, protogateBinary(t), "protogate is running", "run", "-c", mapping,
		"--xds-address", fmt.Sprintf("127.0.0.1:%d", xdsPort), "--admin-address", fmt.Sprintf("127.0.0.1:%d", adminPort))
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)

	code, body := httpGet(t, admin+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "events: not connected") {
		t.Fatalf("/readyz with NATS down = %d %q", code, body)
	}
	var st struct {
		Ready     bool
		Upstreams []struct {
			Name   string
			Usable bool
			Reason string
		}
	}
	_, body = httpGet(t, admin+"/status")
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Ready || len(st.Upstreams) != 1 || st.Upstreams[0].Name != "events" || st.Upstreams[0].Usable || st.Upstreams[0].Reason == "" {
		t.Fatalf("/status with NATS down: %s", body)
	}

	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: natsPort, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	waitReady(t, admin+"/readyz")
	_, body = httpGet(t, admin+"/status")
	if !strings.Contains(body, `"usable": true`) {
		t.Fatalf("/status with NATS up: %s", body)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
