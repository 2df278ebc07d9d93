package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/protogate/protogate/xds"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening returns once addr accepts TCP connections.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("%s never accepted a connection: %v", addr, err)
}

// waitReady polls a readiness URL until it answers 200.
func waitReady(t *testing.T, url string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
		last = fmt.Sprintf("%d %s", resp.StatusCode, body)
	}
	t.Fatalf("%s never became ready; last answer: %s", url, last)
}

// start runs a binary and waits for a line of its output containing ready.
func start(t *testing.T, bin, ready string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _, _ = cmd.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), ready) {
				once.Do(func() { close(seen) })
			}
		}
	}()
	select {
	case <-seen:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not say %q", bin, ready)
	}
}

const runMapping = `
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: get-user
        match: { path: "/users/{id}", methods: [GET] }
        dubbo: { upstream: users, service: com.example.UserService, method: getUser, params: [ { from: path.id, type: long } ] }
      - name: order-events
        match: { path: "/events/orders/{region}", methods: [POST] }
        nats: { upstream: events, subject: "orders.{region}.created" }
%s
upstreams:
  dubbo: [ { name: users, urls: [ "dubbo://127.0.0.1:%d" ] } ]
  nats:
    - { name: events, embedded: true, provision: true, streams: [ { name: ORDERS, subjects: [ "orders.>" ] } ] }
bridge:
  address: 127.0.0.1:%d
xds:
  reload_debounce: 100ms
`

const echoRoute = `      - name: echo-int
        match: { path: "/echo/{n}", methods: [GET] }
        dubbo: { upstream: users, service: com.example.UserService, method: echoInt, params: [ { from: path.n, type: int } ] }
`

// TestRunServesAndReloadsTogether runs `protogate run` as users do, calls a
// Dubbo and a NATS route, then edits the mapping under load: the added route
// is served by the bridge and pushed to Envoy, the removed one disappears
// from both, and no request of the load fails.
func TestRunServesAndReloadsTogether(t *testing.T) {
	dir := t.TempDir()
	protogate := protogateBinary(t)
	provider := binary(t, "../examples/dubbo-provider")
	dubboPort, bridgePort, xdsPort, adminPort := freePort(t), freePort(t), freePort(t), freePort(t)
	start(t, provider, "provider ready", "-dubbo-port", fmt.Sprint(dubboPort), "-triple-port", "0", "-metadata-port", fmt.Sprint(freePort(t)))
	// "provider ready" says Serve has not failed for a second, not that
	// the port accepts.
	waitListening(t, fmt.Sprintf("127.0.0.1:%d", dubboPort))

	mapping := filepath.Join(dir, "mapping.yaml")
	write := func(extra string) {
		tmp := mapping + ".tmp"
		if err := os.WriteFile(tmp, []byte(fmt.Sprintf(runMapping, extra, dubboPort, bridgePort)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, mapping); err != nil {
			t.Fatal(err)
		}
	}
	write("      - name: old-route\n        match: { path: /old, methods: [POST] }\n        nats: { upstream: events, subject: orders.old.created, mode: core }\n")
	xdsAddr := fmt.Sprintf("127.0.0.1:%d", xdsPort)
	start(t, protogate, "protogate is running", "run", "-c", mapping,
		"--xds-address", xdsAddr, "--admin-address", fmt.Sprintf("127.0.0.1:%d", adminPort))
	base := fmt.Sprintf("http://127.0.0.1:%d", bridgePort)
	// The banner comes before the embedded NATS connection is up and its
	// stream provisioned; the bridge's /readyz says when both are.
	waitReady(t, base+"/readyz")

	call := func(method, path, key string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(`{"n":1}`))
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := call("GET", "/users/7", ""); code != 200 || !strings.Contains(body, `"id":7`) {
		t.Fatalf("Dubbo route = %d %s", code, body)
	}
	if code, body := call("POST", "/events/orders/eu", "first"); code != 201 || !strings.Contains(body, `"stream":"ORDERS"`) {
		t.Fatalf("NATS route = %d %s", code, body)
	}
	if code, body := call("POST", "/old", ""); code != 202 {
		t.Fatalf("old route = %d %s", code, body)
	}

	// A bounded concurrent load on the routes that stay.
	var ok, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 100000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var code int
				var body string
				if i%2 == 0 {
					code, body = call("GET", fmt.Sprintf("/users/%d", i), "")
				} else {
					code, body = call("POST", "/events/orders/eu", fmt.Sprintf("w%d-%d", w, i))
				}
				if code/100 == 2 {
					ok.Add(1)
				} else {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %s", code, body))
				}
			}
		}(w)
	}

	time.Sleep(500 * time.Millisecond)
	write(echoRoute) // adds echo-int, removes old-route
	deadline := time.Now().Add(5 * time.Second)
	for {
		c1, _ := call("GET", "/echo/41", "")
		c2, _ := call("POST", "/old", "")
		if c1 == 200 && c2 == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the edit: new route %d, removed route %d", c1, c2)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed across the reload; first: %v", failed.Load(), failed.Load()+ok.Load(), firstFailure.Load())
	}
	t.Logf("%d requests across the reload, none failed", ok.Load())

	// Envoy is served the same change.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := xds.Dump(ctx, xdsAddr, &core.Node{Id: "envoy-test", Cluster: "default"}, []resource.Type{resource.RouteType})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range got[resource.RouteType] {
		rc := &route.RouteConfiguration{}
		if err := a.UnmarshalTo(rc); err != nil {
			t.Fatal(err)
		}
		for _, r := range rc.VirtualHosts[0].Routes {
			names = append(names, r.Name)
		}
	}
	if strings.Join(names, ",") != "get-user,order-events,echo-int" {
		t.Fatalf("Envoy is served routes %v", names)
	}
}
