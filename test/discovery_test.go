package test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/protogate/protogate/internal/testpeer"
	"github.com/protogate/protogate/translator"
)

// startZooKeeper runs Debian's ZooKeeper on a free loopback port; a killed
// provider's registration goes within 3 s.
func startZooKeeper(t *testing.T) string { return testpeer.StartZooKeeper(t, 3*time.Second).Addr }

// process runs a binary until the test ends (SIGKILL then).
func process(t *testing.T, bin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	return cmd
}

const discoveryMapping = `
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: get-user
        match: { path: "/users/{id}", methods: [GET] }
        dubbo: { upstream: users, service: com.example.UserService, method: getUser, params: [ { from: path.id, type: long } ], timeout: 2s }
  - name: dubbo-in
    address: 127.0.0.1:20000
    protocol: dubbo
    routes: [ { match: { service: com.example.UserService }, upstream: users } ]
upstreams:
  dubbo: [ { name: users, registry: "zookeeper://%s", registration: %s, protocol: %s } ]
`

// TestControlPlaneDiscovers: the control plane reads ZooKeeper; a provider
// that registers appears in the dubbo listener's cluster (EDS) and in the
// bridge's table, so a bridge that runs no registry client calls it; once
// it is gone, both lose it and the bridge answers 503.
func TestControlPlaneDiscovers(t *testing.T) {
	for _, tt := range []struct{ registration, protocol string }{
		{"interface", "dubbo"}, {"application", "dubbo"}, {"interface", "triple"},
	} {
		t.Run(tt.registration+"/"+tt.protocol, func(t *testing.T) {
			zk := startZooKeeper(t)
			mapping := filepath.Join(t.TempDir(), "mapping.yaml")
			if err := os.WriteFile(mapping, []byte(fmt.Sprintf(discoveryMapping, zk, tt.registration, tt.protocol)), 0o644); err != nil {
				t.Fatal(err)
			}
			xdsAddr, bridgeAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
			pg := protogateBinary(t)
			process(t, pg, "controlplane", "-c", mapping, "--xds-address", xdsAddr, "--admin-address", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
			waitListening(t, xdsAddr)
			process(t, pg, "bridge", "--xds", xdsAddr, "--node-group", "default", "--node-id", "bridge-1", "--bridge-address", bridgeAddr)
			waitListening(t, bridgeAddr)
			// Its table has come, but with no provider registered it is not
			// ready, and says why.
			waitReadyzSays(t, bridgeAddr, "users: no provider is registered")

			eds := edsClient(t, xdsAddr)
			cluster := translator.UpstreamCluster("dubbo", "users")
			waitEndpoints(t, eds, cluster, func(eps []string) bool { return len(eps) == 0 })
			if code := getUser(t, bridgeAddr); code != 503 {
				t.Fatalf("with no provider registered the bridge answered %d, want 503", code)
			}

			dubboPort, triPort := freePort(t), freePort(t)
			provider := process(t, binary(t, "../examples/dubbo-provider"), "-dubbo-port", fmt.Sprint(dubboPort), "-triple-port", fmt.Sprint(triPort),
				"-zk", zk, "-registration", tt.registration)
			want := fmt.Sprintf("127.0.0.1:%d", dubboPort)
			waitEndpoints(t, eds, cluster, func(eps []string) bool { return slices.Equal(eps, []string{want}) })
			waitReadyz(t, bridgeAddr) // ready once it reaches the registered provider
			deadline := time.Now().Add(10 * time.Second)
			for getUser(t, bridgeAddr) != 200 {
				if time.Now().After(deadline) {
					t.Fatal("the bridge never reached the registered provider")
				}
				time.Sleep(100 * time.Millisecond)
			}

			_ = provider.Process.Signal(syscall.SIGKILL)
			waitEndpoints(t, eds, cluster, func(eps []string) bool { return len(eps) == 0 })
			deadline = time.Now().Add(10 * time.Second)
			for getUser(t, bridgeAddr) != 503 {
				if time.Now().After(deadline) {
					t.Fatal("the bridge still calls a provider that is gone from the registry")
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

func edsClient(t *testing.T, addr string) sotw.ADSClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); conn.Close() })
	c := sotw.NewADSClient(ctx, &core.Node{Id: "envoy-1", Cluster: "default"}, resource.EndpointType)
	if err := c.InitConnect(conn); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitEndpoints takes endpoint pushes until cluster's endpoints satisfy ok.
func waitEndpoints(t *testing.T, c sotw.ADSClient, cluster string, ok func([]string) bool) {
	t.Helper()
	got := make(chan []string)
	fail := make(chan error, 1)
	go func() {
		for {
			resp, err := c.Fetch()
			if err != nil {
				fail <- err
				return
			}
			_ = c.Ack()
			var eps []string
			for _, a := range resp.Resources {
				var cla endpoint.ClusterLoadAssignment
				if a.UnmarshalTo(&cla) != nil || cla.GetClusterName() != cluster {
					continue
				}
				for _, l := range cla.GetEndpoints() {
					for _, e := range l.GetLbEndpoints() {
						sa := e.GetEndpoint().GetAddress().GetSocketAddress()
						eps = append(eps, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
					}
				}
			}
			slices.Sort(eps)
			got <- eps
			if ok(eps) {
				return
			}
		}
	}()
	var last []string
	timeout := time.After(20 * time.Second)
	for {
		select {
		case eps := <-got:
			if ok(eps) {
				return
			}
			last = eps
		case err := <-fail:
			t.Fatal(err)
		case <-timeout:
			t.Fatalf("cluster %s never had the endpoints wanted; last %v", cluster, last)
		}
	}
}

func getUser(t *testing.T, bridge string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+bridge+"/users/7", nil)
	req.Header.Set("x-protogate-route", "get-user")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitReadyzSays waits for a bridge's /readyz to answer 503 with want in
// its reason.
func waitReadyzSays(t *testing.T, addr, want string) {
	t.Helper()
	last := ""
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		if resp.StatusCode == 503 && strings.Contains(string(b), want) {
			return
		}
	}
	t.Fatalf("the bridge at %s: /readyz = %s, want a 503 saying %q", addr, last, want)
}

// waitReadyz waits for a bridge's /readyz to answer 200.
func waitReadyz(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
	}
	t.Fatalf("the bridge at %s never became ready", addr)
}
