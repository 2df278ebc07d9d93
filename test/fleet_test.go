package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	uritemplate "github.com/envoyproxy/go-control-plane/envoy/extensions/path/match/uri_template/v3"
	"github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/translator"
)

// fleetMapping is the mapping of the fleet test: its routes, then the
// ZooKeeper, NATS and HTTP addresses of its upstreams.
const fleetMapping = `
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
%s
upstreams:
  dubbo: [ { name: users, registry: "zookeeper://%s", protocol: dubbo } ]
  nats: [ { name: bus, urls: [ "nats://%s" ] } ]
  http: [ { name: web, endpoints: [ %q ] } ]
bridge:
  discovery: xds
xds:
  reload_debounce: 100ms
`

func getUserRoute(path string) string {
	return fmt.Sprintf(`      - { name: get-user, match: { path: %q, methods: [GET] }, dubbo: { upstream: users, service: com.example.UserService, method: getUser, params: [ { from: path.id, type: long } ], timeout: 2s } }`, path)
}

func askRoute(path, subject string) string {
	return fmt.Sprintf(`      - { name: ask, match: { path: %q, methods: [POST] }, nats: { upstream: bus, subject: %q, mode: request } }`, path, subject)
}

const (
	echoIntRoute = `      - { name: echo-int, match: { path: "/echo/{n}", methods: [GET] }, dubbo: { upstream: users, service: com.example.UserService, method: echoInt, params: [ { from: path.n, type: int } ] } }`
	webRoute     = `      - { name: web, match: { path: /web, methods: [GET] }, http: { upstream: web } }`
)

// fleetPhase is one state of the mapping: its routes, the route names the
// Envoy stand-in must end up holding, and for each route it sees new or
// changed, what a direct call to a bridge must answer.
type fleetPhase struct {
	name   string
	routes []string
	want   map[string]string // route → path template
	fresh  map[string]string // route → a substring of its 2xx body
}

var fleetPhases = []fleetPhase{
	{name: "start", routes: []string{getUserRoute("/users/{id}"), askRoute("/ask/{topic}", "ask.{topic}"), webRoute},
		want: map[string]string{"get-user": "/users/{id}", "ask": "/ask/{topic}", "web": "/web"}},
	{name: "add", routes: []string{getUserRoute("/users/{id}"), askRoute("/ask/{topic}", "ask.{topic}"), webRoute, echoIntRoute},
		want:  map[string]string{"get-user": "/users/{id}", "ask": "/ask/{topic}", "web": "/web", "echo-int": "/echo/{n}"},
		fresh: map[string]string{"echo-int": "7"}},
	// A path and a subject change under the same route names.
	{name: "change", routes: []string{getUserRoute("/people/{id}"), askRoute("/questions/{topic}", "question.{topic}"), webRoute, echoIntRoute},
		want:  map[string]string{"get-user": "/people/{id}", "ask": "/questions/{topic}", "web": "/web", "echo-int": "/echo/{n}"},
		fresh: map[string]string{"get-user": `"id":7`, "ask": "question.7"}},
	{name: "remove", routes: []string{getUserRoute("/people/{id}"), askRoute("/questions/{topic}", "question.{topic}"), webRoute},
		want:  map[string]string{"get-user": "/people/{id}", "ask": "/questions/{topic}", "web": "/web"},
		fresh: map[string]string{}},
}

// TestFleetReloadsUnderLoad: a control plane process and two bridge
// processes following it, a Dubbo provider found in ZooKeeper, a NATS
// server and an HTTP upstream. Under a load that follows what the Envoy
// stand-in holds, a route is added, changed and removed: both bridges
// serve each new or changed route by the time the Envoy stand-in first
// sees it, the logs show both bridges took the table before Envoy was
// published, and no request fails.
func TestFleetReloadsUnderLoad(t *testing.T) {
	zk := startZooKeeper(t)
	natsAddr := startNATSResponder(t)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "web saw "+r.URL.Path)
	}))
	t.Cleanup(web.Close)
	dubboPort := freePort(t)
	process(t, binary(t, "../examples/dubbo-provider"), "-dubbo-port", fmt.Sprint(dubboPort), "-triple-port", "0", "-zk", zk)

	mapping := filepath.Join(t.TempDir(), "mapping.yaml")
	write := func(p fleetPhase) {
		t.Helper()
		body := fmt.Sprintf(fleetMapping, strings.Join(p.routes, "\n"), zk, natsAddr, strings.TrimPrefix(web.URL, "http://"))
		// Atomically, so the watcher never reads half a file.
		tmp := mapping + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, mapping); err != nil {
			t.Fatal(err)
		}
	}
	write(fleetPhases[0])

	pg := protogateBinary(t)
	xdsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cpLog := loggedProcess(t, "control plane", pg, "controlplane", "-c", mapping, "--log-format", "json",
		"--xds-address", xdsAddr, "--admin-address", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	waitListening(t, xdsAddr)
	bridgeAddrs := []string{fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	slices.Sort(bridgeAddrs)
	var bridgeLogs []*logTail
	for i, addr := range bridgeAddrs {
		bridgeLogs = append(bridgeLogs, loggedProcess(t, fmt.Sprintf("bridge-%d", i+1), pg, "bridge", "--log-format", "json",
			"--xds", xdsAddr, "--node-group", config.DefaultGroup, "--node-id", fmt.Sprintf("bridge-%d", i+1), "--bridge-address", addr))
	}
	for _, addr := range bridgeAddrs {
		waitListening(t, addr)
		waitReadyz(t, addr)
	}

	sv := connectStandIn(t, xdsAddr)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(client.CloseIdleConnections)
	sv.takeRoutes(t, nil, client, bridgeAddrs) // the first push, before any load
	sv.waitEndpoints(t, bridgeAddrs)
	t.Logf("start: Envoy stand-in holds %v and both bridges as endpoints", sv.names())
	// The provider registers on its own schedule; both bridges must reach
	// it, and NATS, before the load starts.
	for _, r := range sv.current() {
		for _, addr := range bridgeAddrs {
			waitAnswers(t, client, addr, r)
		}
	}

	ld := startFleetLoad(sv, client, 8)
	for i := 1; i < len(fleetPhases); i++ {
		p := fleetPhases[i]
		ld.waitRequests(t, 20) // the load of the previous phase was real
		mark := len(cpLog.lines())
		ld.phase.Store(int32(i))
		write(p)
		// Each edit changes what Envoy is sent: take pushes from the
		// first one until the stand-in holds the edit's routes.
		sv.takeRoutes(t, p.fresh, client, bridgeAddrs)
		for !sv.holds(p.want) {
			sv.takeRoutes(t, p.fresh, client, bridgeAddrs)
		}
		t.Logf("%s: Envoy stand-in holds %v", p.name, sv.names())
		checkBridgesFirst(t, cpLog, bridgeLogs, mark)
	}
	// The removed route leaves the bridges once Envoy holds routes
	// without it.
	for _, addr := range bridgeAddrs {
		waitForgotten(t, client, addr, "echo-int")
	}
	ld.waitRequests(t, 20)
	ld.stopAndCheck(t)
}

// startNATSResponder runs the real nats-server (built from the module
// go.mod pins) on a free loopback port, with a responder in this process
// that answers the subjects of the ask route with the subject it got.
func startNATSResponder(t *testing.T) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	_, port, _ := strings.Cut(addr, ":")
	process(t, binary(t, "github.com/nats-io/nats-server/v2"), "-a", "127.0.0.1", "-p", port)
	waitListening(t, addr)
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatalf("connecting to nats-server: %v", err)
	}
	t.Cleanup(nc.Close)
	for _, subj := range []string{"ask.*", "question.*"} {
		if _, err := nc.Subscribe(subj, func(m *nats.Msg) {
			_ = m.Respond([]byte(`{"subject":"` + m.Subject + `"}`))
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// logTail keeps what a process logs, one slog JSON record a line.
type logTail struct {
	name string
	mu   sync.Mutex
	buf  bytes.Buffer
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines are the complete lines logged so far.
func (l *logTail) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.buf.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.Split(s[:i], "\n")
	}
	return nil
}

// records decodes the lines from index from on; a line that is not JSON
// is kept as its message.
func (l *logTail) records(from int) []map[string]any {
	var out []map[string]any
	for _, line := range l.lines()[from:] {
		rec := map[string]any{}
		if json.Unmarshal([]byte(line), &rec) != nil {
			rec = map[string]any{"msg": line}
		}
		out = append(out, rec)
	}
	return out
}

// loggedProcess runs a binary until the test ends (SIGKILL then), keeping
// its stderr; a failed test shows the end of it.
func loggedProcess(t *testing.T, name, bin string, args ...string) *logTail {
	t.Helper()
	lt := &logTail{name: name}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, lt
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			lines := lt.lines()
			t.Logf("last lines of the %s's log:\n%s", name, strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	return lt
}

// envoyRoute is a route as the Envoy stand-in holds it from RDS.
type envoyRoute struct {
	name, method, path, cluster string
}

var pathVariable = regexp.MustCompile(`\{[^}]*\}`)

// request builds the request Envoy would send a bridge for the route.
func (r envoyRoute) request(addr string) *http.Request {
	var body io.Reader
	if r.method == http.MethodPost {
		body = strings.NewReader(`{}`)
	}
	req, _ := http.NewRequest(r.method, "http://"+addr+pathVariable.ReplaceAllString(r.path, "7"), body)
	req.Header.Set("x-protogate-route", r.name)
	req.Header.Set("Content-Type", "application/json")
	return req
}

func callRoute(client *http.Client, addr string, r envoyRoute) (int, string) {
	resp, err := client.Do(r.request(addr))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// standIn is the Envoy of group default: go-control-plane's ADS client on
// RDS and on EDS. It swaps its current view only once the requests sent
// on the old view have finished, then ACKs: stricter than Envoy, and no
// request leaves on a view already ACKed away.
type standIn struct {
	rds sotw.ADSClient
	mu  sync.RWMutex // requests hold it shared, a swap exclusively
	rts map[string]envoyRoute
	eps map[string][]string // bridge cluster → endpoints
}

func connectStandIn(t *testing.T, addr string) *standIn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); conn.Close() })
	node := &core.Node{Id: "envoy-1", Cluster: config.DefaultGroup}
	sv := &standIn{rds: sotw.NewADSClient(ctx, node, resource.RouteType), rts: map[string]envoyRoute{}, eps: map[string][]string{}}
	if err := sv.rds.InitConnect(conn); err != nil {
		t.Fatal(err)
	}
	eds := sotw.NewADSClient(ctx, node, resource.EndpointType)
	if err := eds.InitConnect(conn); err != nil {
		t.Fatal(err)
	}
	go sv.followEndpoints(eds)
	return sv
}

// followEndpoints takes every EDS push until the stream ends with the test.
func (sv *standIn) followEndpoints(eds sotw.ADSClient) {
	for {
		resp, err := eds.Fetch()
		if err != nil {
			return
		}
		eps := bridgeClusterEndpoints(resp)
		sv.mu.Lock()
		sv.eps = eps
		sv.mu.Unlock()
		if eds.Ack() != nil {
			return
		}
	}
}

func bridgeClusterEndpoints(resp *sotw.Response) map[string][]string {
	out := map[string][]string{}
	for _, a := range resp.Resources {
		var cla endpoint.ClusterLoadAssignment
		if a.UnmarshalTo(&cla) != nil {
			continue
		}
		if name := cla.GetClusterName(); name != translator.BridgeDubboCluster && name != translator.BridgeNATSCluster {
			continue
		}
		var eps []string
		for _, l := range cla.GetEndpoints() {
			for _, e := range l.GetLbEndpoints() {
				sa := e.GetEndpoint().GetAddress().GetSocketAddress()
				eps = append(eps, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
			}
		}
		slices.Sort(eps)
		out[cla.GetClusterName()] = eps
	}
	return out
}

// waitEndpoints waits until both bridge clusters list exactly want.
func (sv *standIn) waitEndpoints(t *testing.T, want []string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		sv.mu.RLock()
		ok := slices.Equal(sv.eps[translator.BridgeDubboCluster], want) && slices.Equal(sv.eps[translator.BridgeNATSCluster], want)
		got := fmt.Sprint(sv.eps)
		sv.mu.RUnlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bridge clusters' endpoints are %s, want %v in both", got, want)
		}
	}
}

func (sv *standIn) current() []envoyRoute {
	sv.mu.RLock()
	defer sv.mu.RUnlock()
	out := make([]envoyRoute, 0, len(sv.rts))
	for _, name := range slices.Sorted(mapKeys(sv.rts)) {
		out = append(out, sv.rts[name])
	}
	return out
}

// holds reports whether the stand-in holds exactly the routes of want
// (name → path template).
func (sv *standIn) holds(want map[string]string) bool {
	sv.mu.RLock()
	defer sv.mu.RUnlock()
	if len(sv.rts) != len(want) {
		return false
	}
	for name, r := range sv.rts {
		if want[name] != r.path {
			return false
		}
	}
	return true
}

func (sv *standIn) names() []string {
	var out []string
	for _, r := range sv.current() {
		out = append(out, r.name)
	}
	return out
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// takeRoutes receives the next RDS push. Before ACKing it, every route it
// holds new or changed is called on each bridge directly: each must
// answer 2xx with fresh[route] in its body. Then the view is swapped
// (once the requests on the old one are done) and the push ACKed.
func (sv *standIn) takeRoutes(t *testing.T, fresh map[string]string, client *http.Client, bridges []string) {
	t.Helper()
	next := sv.fetchRoutes(t)
	if fresh != nil {
		for _, name := range slices.Sorted(mapKeys(next)) {
			r := next[name]
			if old, ok := sv.rts[name]; ok && old == r {
				continue
			}
			want, expected := fresh[name]
			if !expected {
				t.Fatalf("Envoy was pushed route %s as new or changed (%+v); this edit does not touch it", name, r)
			}
			for _, addr := range bridges {
				code, body := callRoute(client, addr, r)
				if code/100 != 2 || !strings.Contains(body, want) {
					t.Fatalf("route %s, as Envoy first holds it (%s %s), on bridge %s before Envoy's ACK: %d %s; want 2xx with %q",
						name, r.method, r.path, addr, code, body, want)
				}
			}
		}
	}
	sv.mu.Lock()
	sv.rts = next
	sv.mu.Unlock()
	if err := sv.rds.Ack(); err != nil {
		t.Fatal(err)
	}
}

// fetchRoutes waits for the next RDS push and reads its routes.
func (sv *standIn) fetchRoutes(t *testing.T) map[string]envoyRoute {
	t.Helper()
	type result struct {
		resp *sotw.Response
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := sv.rds.Fetch()
		got <- result{resp, err}
	}()
	var res result
	select {
	case res = <-got:
	case <-time.After(15 * time.Second):
		t.Fatalf("no route push within 15s; the stand-in holds %v", sv.names())
	}
	if res.err != nil {
		t.Fatalf("route push: %v", res.err)
	}
	out := map[string]envoyRoute{}
	for _, a := range res.resp.Resources {
		var rc route.RouteConfiguration
		if err := a.UnmarshalTo(&rc); err != nil {
			t.Fatal(err)
		}
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				er, err := envoyRouteOf(r)
				if err != nil {
					t.Fatal(err)
				}
				out[er.name] = er
			}
		}
	}
	return out
}

func envoyRouteOf(r *route.Route) (envoyRoute, error) {
	er := envoyRoute{name: r.GetName(), path: r.GetMatch().GetPath(), cluster: r.GetRoute().GetCluster()}
	if pm := r.GetMatch().GetPathMatchPolicy(); pm != nil {
		var tpl uritemplate.UriTemplateMatchConfig
		if err := pm.GetTypedConfig().UnmarshalTo(&tpl); err != nil {
			return er, fmt.Errorf("route %s: path template: %w", er.name, err)
		}
		er.path = tpl.GetPathTemplate()
	}
	for _, h := range r.GetMatch().GetHeaders() {
		if h.GetName() == ":method" {
			er.method = h.GetStringMatch().GetExact()
		}
	}
	if er.path == "" || er.method == "" {
		return er, fmt.Errorf("route %s: no path or single method in %v", er.name, r.GetMatch())
	}
	return er, nil
}

// waitAnswers waits until a bridge answers the route with a 2xx.
func waitAnswers(t *testing.T, client *http.Client, addr string, r envoyRoute) {
	t.Helper()
	var code int
	var body string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if code, body = callRoute(client, addr, r); code/100 == 2 {
			return
		}
	}
	t.Fatalf("bridge %s never answered route %s: last %d %s", addr, r.name, code, body)
}

// waitForgotten waits until a bridge no longer knows route name.
func waitForgotten(t *testing.T, client *http.Client, addr, name string) {
	t.Helper()
	r := envoyRoute{name: name, method: http.MethodGet, path: "/echo/7"}
	var code int
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if code, body = callRoute(client, addr, r); code == http.StatusNotFound && strings.Contains(body, "unknown_route") {
			return
		}
	}
	t.Fatalf("bridge %s still serves the removed route %s: %d %s", addr, name, code, body)
}

// checkBridgesFirst reads the control plane's log since mark: it says both
// bridges of group default took the route table before it published
// Envoy's resources; and each bridge's log says it took that table.
func checkBridgesFirst(t *testing.T, cp *logTail, bridges []*logTail, mark int) {
	t.Helper()
	var version string
	waitLog(t, cp, mark, func(recs []map[string]any) (bool, string) {
		took, published := -1, -1
		for i, r := range recs {
			if r["group"] != config.DefaultGroup {
				continue
			}
			switch {
			case r["msg"] == "bridges took the route table" && took < 0:
				took = i
				version, _ = r["version"].(string)
				if r["bridges"] != float64(2) {
					return false, fmt.Sprintf("the control plane logged %v bridges taking table %s, want 2", r["bridges"], version)
				}
			case r["msg"] == "published" && published < 0:
				published = i
			}
		}
		switch {
		case published >= 0 && (took < 0 || took > published):
			return false, "the control plane published Envoy's resources before the bridges took the route table"
		case published < 0:
			return true, "the control plane has not logged the bridges taking the table and the publish yet"
		}
		return false, ""
	})
	for _, b := range bridges {
		// From the start of its log: when a table's bridging form equals
		// one served before (a removal right after an addition), the
		// bridge already holds it and is not sent it again.
		waitLog(t, b, 0, func(recs []map[string]any) (bool, string) {
			for _, r := range recs {
				if r["msg"] == "route table taken" && r["version"] == version {
					return false, ""
				}
			}
			return true, fmt.Sprintf("%s has not logged taking route table %s", b.name, version)
		})
	}
	t.Logf("both bridges took route table %s before Envoy was published", version)
}

// waitLog polls a log's records since from; check returns whether to keep
// waiting, and what is wrong (empty: all good).
func waitLog(t *testing.T, l *logTail, from int, check func([]map[string]any) (bool, string)) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		wait, problem := check(l.records(from))
		switch {
		case problem == "":
			return
		case !wait || time.Now().After(deadline):
			t.Fatalf("%s's log: %s", l.name, problem)
		}
	}
}

// fleetLoad is the bounded load: workers that each send, one at a time, a
// request for a route the stand-in holds to a bridge endpoint it holds.
type fleetLoad struct {
	sv       *standIn
	client   *http.Client
	phase    atomic.Int32
	perPhase [8]atomic.Int64 // requests started, by phase
	perRoute sync.Map        // route name → *atomic.Int64
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	failures []string
	failed   int
}

func startFleetLoad(sv *standIn, client *http.Client, workers int) *fleetLoad {
	ld := &fleetLoad{sv: sv, client: client, stop: make(chan struct{})}
	for range workers {
		ld.wg.Add(1)
		go ld.work()
	}
	return ld
}

func (ld *fleetLoad) work() {
	defer ld.wg.Done()
	for {
		select {
		case <-ld.stop:
			return
		default:
		}
		ld.once()
	}
}

// once sends one request on the stand-in's current view, holding the view
// until the answer is in.
func (ld *fleetLoad) once() {
	ld.sv.mu.RLock()
	defer ld.sv.mu.RUnlock()
	names := slices.Sorted(mapKeys(ld.sv.rts))
	r := ld.sv.rts[names[rand.IntN(len(names))]]
	eps := ld.sv.eps[r.cluster]
	if len(eps) == 0 {
		// A plain HTTP route goes to its upstream behind Envoy; here it
		// goes through the bridges too, which serve it as well.
		eps = ld.sv.eps[translator.BridgeDubboCluster]
	}
	ep := eps[rand.IntN(len(eps))]
	phase := ld.phase.Load()
	ld.perPhase[phase].Add(1)
	n, _ := ld.perRoute.LoadOrStore(r.name, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	if code, body := callRoute(ld.client, ep, r); code/100 != 2 {
		ld.mu.Lock()
		ld.failed++
		if len(ld.failures) < 5 {
			ld.failures = append(ld.failures, fmt.Sprintf("phase %s: %s %s (route %s, template %s) on %s: %d %s",
				fleetPhases[phase].name, r.method, pathVariable.ReplaceAllString(r.path, "7"), r.name, r.path, ep, code, body))
		}
		ld.mu.Unlock()
	}
}

// waitRequests waits until the current phase has sent n requests.
func (ld *fleetLoad) waitRequests(t *testing.T, n int64) {
	t.Helper()
	p := ld.phase.Load()
	for deadline := time.Now().Add(10 * time.Second); ld.perPhase[p].Load() < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("phase %s: only %d requests in 10s", fleetPhases[p].name, ld.perPhase[p].Load())
		}
	}
}

func (ld *fleetLoad) stopAndCheck(t *testing.T) {
	t.Helper()
	close(ld.stop)
	ld.wg.Wait()
	var counts []string
	for i, p := range fleetPhases {
		counts = append(counts, fmt.Sprintf("%s %d", p.name, ld.perPhase[i].Load()))
	}
	ld.perRoute.Range(func(k, v any) bool {
		counts = append(counts, fmt.Sprintf("%s: %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	if ld.failed > 0 {
		t.Fatalf("%d requests failed (%s); first: %s", ld.failed, strings.Join(counts, ", "), strings.Join(ld.failures, "\n"))
	}
	t.Logf("requests, none failed: %s", strings.Join(counts, ", "))
	if v, ok := ld.perRoute.Load("echo-int"); !ok || v.(*atomic.Int64).Load() == 0 {
		t.Fatal("the load never called the route added in the mapping")
	}
}
