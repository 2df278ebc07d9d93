package xds_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/xds"
)

// rolloutPlane is a control plane with a canary rollout configured.
func rolloutPlane(t *testing.T, addr, path, state string) *xds.Server {
	t.Helper()
	srv := xds.New(xds.Options{
		Address: addr, AdminAddress: "127.0.0.1:0", MaxMessageSize: 16 << 20, MaxStreamsPerPeer: 16,
		KeepaliveTime: 30 * time.Second, KeepaliveTimeout: 5 * time.Second,
		Logger:          testLogger(),
		EnvoyAckTimeout: 2 * time.Second,
		Rollout: &config.Rollout{CanaryLabel: "protogate.canary", BakeTime: config.Duration(time.Second), MaxErrorRatio: 0.05,
			StateFile: state},
	})
	if err := srv.Reload("start", source(path)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}

// routeClient is an Envoy stand-in on routes, canary or not.
type routeClient struct {
	t       *testing.T
	c       sotw.ADSClient
	pending chan []string
}

func newRouteClient(t *testing.T, conn *grpc.ClientConn, id string, canary bool) *routeClient {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	md, _ := structpb.NewStruct(map[string]any{"protogate.canary": map[bool]string{true: "true", false: "false"}[canary]})
	c := &routeClient{t: t, c: sotw.NewADSClient(ctx, &core.Node{Id: id, Cluster: "edge", Metadata: md}, resource.RouteType)}
	if err := c.c.InitConnect(conn, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	return c
}

// next is the route names of the next push within d (nil, false: none).
func (c *routeClient) next(d time.Duration) ([]string, bool) {
	c.t.Helper()
	if c.pending == nil {
		ch := make(chan []string, 1)
		c.pending = ch
		go func() {
			resp, err := c.c.Fetch()
			if err != nil {
				close(ch)
				return
			}
			var names []string
			for _, a := range resp.Resources {
				var rc route.RouteConfiguration
				if a.UnmarshalTo(&rc) == nil {
					for _, vh := range rc.GetVirtualHosts() {
						for _, r := range vh.GetRoutes() {
							names = append(names, r.GetName())
						}
					}
				}
			}
			slices.Sort(names)
			ch <- names
		}()
	}
	select {
	case names, ok := <-c.pending:
		c.pending = nil
		if !ok {
			c.t.Fatal("the stream ended")
		}
		return names, true
	case <-time.After(d):
		return nil, false
	}
}

func (c *routeClient) ack() {
	if err := c.c.Ack(); err != nil {
		c.t.Fatal(err)
	}
}

// holds waits for a push with want, ACKing every push on the way.
func (c *routeClient) holds(what string, want []string, d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		got, ok := c.next(time.Until(deadline))
		if !ok {
			c.t.Fatalf("%s: no push of %v", what, want)
		}
		c.ack()
		if slices.Equal(got, want) {
			return
		}
	}
}

func adminPost(t *testing.T, srv *xds.Server, path string) int {
	t.Helper()
	resp, err := http.Post("http://"+srv.AdminAddr()+path, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

var (
	stableRoutes    = []string{"ping"}
	candidateRoutes = []string{"ping", "pong"}
)

// TestRollout: a fleet of a canary and two other Envoys of a group. A new
// version reaches only the canary; a clean bake promotes it to all; a
// canary's NACK rolls the canary back, the others never see the candidate,
// and the rejected version is refused by the next reload; abort and
// promote by hand work.
func TestRollout(t *testing.T) {
	path := mappingFile(t, mapping)
	srv := rolloutPlane(t, "127.0.0.1:0", path, filepath.Join(t.TempDir(), "rollout.json"))
	conn := dial(t, srv.XDSAddr())
	canary := newRouteClient(t, conn, "envoy-canary", true)
	others := []*routeClient{newRouteClient(t, conn, "envoy-a", false), newRouteClient(t, conn, "envoy-b", false)}
	for _, c := range append(others, canary) {
		c.holds("start", stableRoutes, 5*time.Second)
	}
	quiet := func(what string, cs ...*routeClient) {
		t.Helper()
		for _, c := range cs {
			if got, ok := c.next(200 * time.Millisecond); ok {
				t.Fatalf("%s: a non-canary was pushed %v", what, got)
			}
		}
	}

	// A clean bake promotes.
	reload := func(body string) error {
		writeFile(t, path, body)
		done := make(chan error, 1)
		go func() { done <- srv.Reload("edit", source(path)) }()
		return <-done
	}
	go func() { _ = reload(withPong) }()
	canary.holds("the canary gets the candidate", candidateRoutes, 5*time.Second)
	quiet("while baking", others...)
	// /config_dump shows each node what it is served: the canary the
	// candidate, the others the stable version.
	for id, want := range map[string]bool{"envoy-canary": true, "envoy-a": false} {
		resp, err := http.Get("http://" + srv.AdminAddr() + "/config_dump?node=" + id)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var dump struct {
			Canary bool `json:"canary"`
		}
		_ = json.Unmarshal(body, &dump)
		if has := strings.Contains(string(body), `/pong"`); has != want || dump.Canary != want {
			t.Fatalf("/config_dump?node=%s: shows the candidate %v, canary %v; want %v", id, has, dump.Canary, want)
		}
	}
	for _, c := range others {
		c.holds("after the bake", candidateRoutes, 5*time.Second)
	}
	if st := rolloutOf(t, srv); st.Candidate != "" {
		t.Fatalf("after the promotion a candidate remains: %+v", st)
	}

	// A canary's NACK rolls back; the others never see the candidate.
	third := strings.Replace(withPong, "      - name: pong", "      - name: pang\n        match: { path: /pang }\n        nats: { upstream: events, subject: health.pang, mode: request }\n      - name: pong", 1)
	withPang := []string{"pang", "ping", "pong"}
	go func() { _ = reload(third) }()
	if got, ok := canary.next(5 * time.Second); !ok || !slices.Equal(got, withPang) {
		t.Fatalf("the canary's push = %v", got)
	}
	if err := canary.c.Nack("the canary rejects it"); err != nil {
		t.Fatal(err)
	}
	canary.holds("the canary is rolled back", candidateRoutes, 5*time.Second)
	quiet("after the rollback", others...)
	time.Sleep(1200 * time.Millisecond) // past the bake time: still nothing
	quiet("past the bake time", others...)
	st := rolloutOf(t, srv)
	if len(st.Rejected) != 1 || st.Candidate != "" {
		t.Fatalf("after the rollback: %+v, want the candidate rejected", st)
	}
	if err := srv.Reload("again", source(path)); err == nil || !strings.Contains(err.Error(), "rejected by its canaries") {
		t.Fatalf("reloading the rejected version = %v", err)
	}

	// Abort, then promote by hand.
	fourth := strings.Replace(third, "{ path: /pang }", "{ path: /peng }", 1) // what Envoy is sent changes
	go func() { _ = reload(fourth) }()
	if got, ok := canary.next(5 * time.Second); !ok || !slices.Equal(got, withPang) {
		t.Fatalf("the canary's push of the fourth version = %v", got)
	}
	canary.ack()
	if code := adminPost(t, srv, "/rollout/abort?group=edge"); code != 200 {
		t.Fatalf("abort = %d", code)
	}
	canary.holds("aborted", candidateRoutes, 5*time.Second)
	if code := adminPost(t, srv, "/rollout/abort?group=edge"); code != 409 {
		t.Fatalf("abort with no rollout = %d, want 409", code)
	}
	fifth := strings.Replace(fourth, "{ path: /peng }", "{ path: /pung }", 1)
	go func() { _ = reload(fifth) }()
	canary.holds("the fifth version", withPang, 5*time.Second)
	if code := adminPost(t, srv, "/rollout/promote?group=edge"); code != 200 {
		t.Fatalf("promote = %d", code)
	}
	for _, c := range others {
		c.holds("promoted by hand", withPang, 900*time.Millisecond) // before the bake would have ended
	}
}

func rolloutOf(t *testing.T, srv *xds.Server) xds.RolloutStatus {
	t.Helper()
	for _, st := range srv.RolloutStatuses() {
		if st.Group == "edge" {
			return st
		}
	}
	t.Fatal("no rollout status of edge")
	return xds.RolloutStatus{}
}

// TestRolloutSurvivesARestart: a control plane stopped while a candidate
// bakes is started again on the same state file and the new mapping: the
// other Envoys get the stable version, never the candidate, the canary
// gets the candidate, and the bake ends in a promotion.
func TestRolloutSurvivesARestart(t *testing.T) {
	path := mappingFile(t, mapping)
	state := filepath.Join(t.TempDir(), "rollout.json")
	srv := rolloutPlane(t, "127.0.0.1:0", path, state)
	conn := dial(t, srv.XDSAddr())
	canary := newRouteClient(t, conn, "envoy-canary", true)
	canary.holds("start", stableRoutes, 5*time.Second)
	writeFile(t, path, withPong)
	go func() { _ = srv.Reload("edit", source(path)) }()
	canary.holds("candidate", candidateRoutes, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	srv.Shutdown(ctx)
	cancel()

	again := rolloutPlane(t, "127.0.0.1:0", path, state)
	conn2 := dial(t, again.XDSAddr())
	other := newRouteClient(t, conn2, "envoy-a", false)
	other.holds("a restarted control plane serves the stable version", stableRoutes, 5*time.Second)
	canary2 := newRouteClient(t, conn2, "envoy-canary", true)
	canary2.holds("and the candidate to the canary", candidateRoutes, 5*time.Second)
	if st := rolloutOf(t, again); st.Candidate == "" {
		t.Fatalf("the rollout did not resume: %+v", st)
	}
	other.holds("the resumed rollout is promoted", candidateRoutes, 5*time.Second)
}

func testLogger() *slog.Logger {
	if os.Getenv("ROLLOUT_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
