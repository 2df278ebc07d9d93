package xds_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/xds"
)

// syncBuffer collects the control plane's log for assertions.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(substrings ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range strings.Split(s.b.String(), "\n") {
		ok := l != ""
		for _, sub := range substrings {
			ok = ok && strings.Contains(l, sub)
		}
		if ok {
			n++
		}
	}
	return n
}

// startLimited is start with xds.limits, and the log kept in logs (nil:
// discarded).
func startLimited(t *testing.T, path string, lim config.XDSLimits, streamsPerPeer uint32, logs io.Writer) *plane {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	srv := xds.New(xds.Options{
		Address: "127.0.0.1:0", AdminAddress: "127.0.0.1:0", MaxMessageSize: 16 << 20, MaxStreamsPerPeer: streamsPerPeer,
		KeepaliveTime: 30 * time.Second, KeepaliveTimeout: 5 * time.Second, Limits: lim,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	p := &plane{srv: srv, path: path, src: source(path)}
	if err := srv.Reload("start", p.src); err != nil {
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
	return p
}

// moved has the nats-in listener move from group edge to group rpc, so
// both groups get a new listener version.
var moved = strings.Replace(strings.Replace(mapping,
	"    - { name: edge, listeners: [ public, nats-in ] }", "    - { name: edge, listeners: [ public ] }", 1),
	"    - { name: rpc, listeners: [ rpc ] }", "    - { name: rpc, listeners: [ rpc, nats-in ] }", 1)

// listenersBefore and listenersAfter are each group's listeners in
// mapping and in moved.
var (
	listenersBefore = map[string]string{"edge": "nats-in,public", "rpc": "rpc"}
	listenersAfter  = map[string]string{"edge": "public", "rpc": "nats-in,rpc"}
)

// ldsClient is one node's listener subscription over a state-of-the-world
// stream (go-control-plane's ADS client) or a raw delta stream. held is
// what it holds, as a delta client tracks it.
type ldsClient struct {
	t     *testing.T
	delta bool
	sotw  sotw.ADSClient
	ds    discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	got   chan ldsResponse
	held  map[string]bool
	nonce string
}

type ldsResponse struct {
	names, removed []string
	nonce          string
	err            error
}

func openLDS(t *testing.T, conn *grpc.ClientConn, delta bool, id, group string) *ldsClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := &ldsClient{t: t, delta: delta, got: make(chan ldsResponse, 4), held: map[string]bool{}}
	node := &core.Node{Id: id, Cluster: group}
	if delta {
		ds, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.ds = ds
		if err := ds.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: resource.ListenerType}); err != nil {
			t.Fatal(err)
		}
	} else {
		c.sotw = sotw.NewADSClient(ctx, node, resource.ListenerType)
		if err := c.sotw.InitConnect(conn); err != nil {
			t.Fatal(err)
		}
	}
	if delta {
		go c.receive()
	}
	return c
}

// receive reads responses: all of a delta stream's as they come, one of
// a state-of-the-world stream's (its client holds a lock while it reads,
// so an ACK could not be sent meanwhile).
func (c *ldsClient) receive() {
	for {
		var r ldsResponse
		if c.delta {
			resp, err := c.ds.Recv()
			r.err = err
			if err == nil {
				r.nonce, r.removed = resp.GetNonce(), resp.GetRemovedResources()
				for _, res := range resp.GetResources() {
					r.names = append(r.names, res.GetName())
				}
			}
		} else {
			resp, err := c.sotw.Fetch()
			r.err = err
			if err == nil {
				for _, a := range resp.Resources {
					m, err := a.UnmarshalNew()
					if err != nil {
						r.err = err
						break
					}
					r.names = append(r.names, cache.GetResourceName(m))
				}
			}
		}
		c.got <- r
		if r.err != nil || !c.delta {
			return
		}
	}
}

// next waits for the next response and returns the listeners the client
// then holds.
func (c *ldsClient) next() string {
	c.t.Helper()
	held, err := c.take()
	if err != nil {
		c.t.Fatal(err)
	}
	return held
}

// take is next for any goroutine: it returns the failure.
func (c *ldsClient) take() (string, error) {
	if !c.delta {
		go c.receive()
	}
	select {
	case r := <-c.got:
		if r.err != nil {
			return "", fmt.Errorf("stream failed: %w", r.err)
		}
		if !c.delta {
			clear(c.held)
		}
		for _, n := range r.names {
			c.held[n] = true
		}
		for _, n := range r.removed {
			delete(c.held, n)
		}
		c.nonce = r.nonce
		names := make([]string, 0, len(c.held))
		for n := range c.held {
			names = append(names, n)
		}
		slices.Sort(names)
		return strings.Join(names, ","), nil
	case <-time.After(5 * time.Second):
		return "", errors.New("no response within 5s")
	}
}

func (c *ldsClient) answer(nack string) {
	c.t.Helper()
	if err := c.send(nack); err != nil {
		c.t.Fatal(err)
	}
}

// send ACKs the last response, or NACKs it with a reason.
func (c *ldsClient) send(nack string) error {
	switch {
	case c.delta:
		req := &discovery.DeltaDiscoveryRequest{TypeUrl: resource.ListenerType, ResponseNonce: c.nonce}
		if nack != "" {
			req.ErrorDetail = statusOf(nack)
		}
		return c.ds.Send(req)
	case nack != "":
		return c.sotw.Nack(nack)
	default:
		return c.sotw.Ack()
	}
}

// TestStreamsDoNotCollide: state-of-the-world and delta streams are
// numbered by separate counters that both start at 1. With any mix of
// both, several streams per node, and one node id in two groups, each
// NACK is recorded once, against its node, group and type (in /status,
// the metrics and the log), and the rejected version is never sent
// again: the next response each client gets is the next version.
func TestStreamsDoNotCollide(t *testing.T) {
	type stream struct {
		delta     bool
		id, group string
		nack      string // "" ACKs
	}
	tests := []struct {
		name    string
		streams []stream
	}{
		{"a SotW NACK beside a delta ACK", []stream{
			{false, "envoy-a", "edge", "listener public: bad filter"}, {true, "envoy-b", "edge", ""}}},
		{"a delta NACK beside a SotW ACK", []stream{
			{false, "envoy-a", "edge", ""}, {true, "envoy-b", "edge", "listener nats-in: bad port"}}},
		{"one node on both kinds, both NACK", []stream{
			{false, "envoy-a", "edge", "sotw says no"}, {true, "envoy-a", "edge", "delta says no"}}},
		{"one node id in two groups", []stream{
			{false, "envoy-a", "edge", "edge says no"}, {true, "envoy-a", "rpc", ""}}},
		{"the same id in two groups, the other kind NACKs", []stream{
			{true, "envoy-a", "edge", ""}, {false, "envoy-a", "rpc", "rpc says no"}}},
		{"two of each kind, ids colliding twice", []stream{
			{false, "s1", "edge", "s1 no"}, {true, "d1", "rpc", "d1 no"},
			{false, "s2", "rpc", ""}, {true, "d2", "edge", "d2 no"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := mappingFile(t, mapping)
			logs := &syncBuffer{}
			p := startLimited(t, path, config.XDSLimits{}, 16, logs)
			conn := dial(t, p.srv.XDSAddr())
			clients := make([]*ldsClient, len(tt.streams))
			rejected := map[string]string{} // group → its listener version before
			for i, s := range tt.streams {
				clients[i] = openLDS(t, conn, s.delta, s.id, s.group)
				if got := clients[i].next(); got != listenersBefore[s.group] {
					t.Fatalf("stream %d first holds %s, want %s", i, got, listenersBefore[s.group])
				}
				rejected[s.group] = p.srv.Status().Groups[s.group].Types[resource.ListenerType]
			}
			for i, s := range tt.streams {
				clients[i].answer(s.nack)
			}
			type record struct{ id, group string }
			wantNACKs := map[record][]string{}
			perGroup := map[string]int{}
			for _, s := range tt.streams {
				if s.nack != "" {
					wantNACKs[record{s.id, s.group}] = append(wantNACKs[record{s.id, s.group}], s.nack)
					perGroup[s.group]++
				}
			}
			waitStatus(t, p, func(nodes []xds.NodeStatus) string {
				if len(nodes) != len(distinct(tt.streams, func(s stream) record { return record{s.id, s.group} })) {
					return fmt.Sprintf("%d node records", len(nodes))
				}
				for _, n := range nodes {
					want := wantNACKs[record{n.ID, n.Group}]
					last := n.LastNACK[resource.ListenerType]
					switch {
					case n.NACKCount != len(want):
						return fmt.Sprintf("%s/%s has %d NACKs, want %d", n.ID, n.Group, n.NACKCount, len(want))
					case len(want) > 0 && (!slices.Contains(want, last.Error) || last.Version != rejected[n.Group]):
						return fmt.Sprintf("%s/%s last NACK %+v, want one of %q of version %s", n.ID, n.Group, last, want, rejected[n.Group])
					case len(want) == 0 && len(n.LastNACK) != 0:
						return fmt.Sprintf("%s/%s has a NACK it never sent: %+v", n.ID, n.Group, n.LastNACK)
					case len(want) == 0 && n.LastACK[resource.ListenerType].Version != rejected[n.Group]:
						return fmt.Sprintf("%s/%s ACKed %+v, want %s", n.ID, n.Group, n.LastACK, rejected[n.Group])
					}
				}
				return ""
			})
			for _, g := range []string{"edge", "rpc"} {
				series := `protogate_xds_nacks_total{group="` + g + `",type_url="` + resource.ListenerType + `"}`
				if got, want := p.metric(t, series), countString(perGroup[g]); got != want {
					t.Errorf("%s = %q, want %q", series, got, want)
				}
			}
			for r, msgs := range wantNACKs {
				for _, m := range msgs {
					if n := logs.lines("msg=NACK", "node="+r.id, "group="+r.group, m); n != 1 {
						t.Errorf("NACK %q of %s/%s logged %d times, want once", m, r.id, r.group, n)
					}
				}
			}
			if n, want := logs.lines("msg=NACK"), len(perGroup); n != sum(perGroup) {
				t.Errorf("%d NACK lines in the log, want %d (%d groups)", n, sum(perGroup), want)
			}

			// Never re-sent: the next thing each client gets is the next
			// version, and each was sent exactly two versions.
			writeFile(t, path, moved)
			reloaded := make(chan error, 1)
			// The reload waits for the Envoys to take each step: they
			// answer meanwhile.
			go func() { reloaded <- p.srv.Reload("test", p.src) }()
			// Each answers on its own, as Envoys do.
			failures := make(chan error, len(tt.streams))
			for i, s := range tt.streams {
				go func() {
					got, err := clients[i].take()
					if err == nil && got != listenersAfter[s.group] {
						err = fmt.Errorf("stream %d (%s/%s) next holds %s, want %s: the rejected version came again", i, s.id, s.group, got, listenersAfter[s.group])
					}
					if err == nil {
						err = clients[i].send("")
					}
					failures <- err
				}()
			}
			for range tt.streams {
				if err := <-failures; err != nil {
					t.Error(err)
				}
			}
			if err := <-reloaded; err != nil {
				t.Fatal(err)
			}
			for g, n := range countBy(tt.streams, func(s stream) string { return s.group }) {
				series := `protogate_xds_pushes_total{group="` + g + `",type_url="` + resource.ListenerType + `"}`
				if got := p.metric(t, series); got != countString(2*n) {
					t.Errorf("%s = %s, want %d (two versions to each of %d streams)", series, got, 2*n, n)
				}
			}
		})
	}
}

// waitStatus polls /status (as the Go API shows it) until check passes
// (returns ""); ACKs are processed after the client sent them.
func waitStatus(t *testing.T, p *plane, check func([]xds.NodeStatus) string) {
	t.Helper()
	why := ""
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if why = check(p.srv.Status().Nodes); why == "" {
			return
		}
	}
	t.Fatalf("/status never got right: %s", why)
}

func distinct[T any, K comparable](list []T, key func(T) K) map[K]bool {
	out := map[K]bool{}
	for _, x := range list {
		out[key(x)] = true
	}
	return out
}

func countBy[T any, K comparable](list []T, key func(T) K) map[K]int {
	out := map[K]int{}
	for _, x := range list {
		out[key(x)]++
	}
	return out
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// countString is a counter's value as /metrics prints it ("" when the
// series does not exist yet).
func countString(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprint(n)
}

// statusOf is a NACK's error detail.
func statusOf(msg string) *rpcstatus.Status { return &rpcstatus.Status{Code: 3, Message: msg} }

// dumpOf reads /config_dump for a query.
type configDump struct {
	Group     string `json:"group"`
	Resources map[string]struct {
		Version string `json:"version"`
	} `json:"resources"`
	Acked map[string]struct {
		Version   string            `json:"version"`
		Resources []json.RawMessage `json:"resources"`
	} `json:"acked"`
	Pending []xds.Inflight `json:"pending"`
	Nacked  []xds.Inflight `json:"nacked"`
}

func dumpOf(t *testing.T, p *plane, query string) (int, configDump, string) {
	t.Helper()
	code, body := adminGet(t, p, "/config_dump"+query)
	var d configDump
	if code == 200 {
		if err := json.Unmarshal([]byte(body), &d); err != nil {
			t.Fatal(err)
		}
	}
	return code, d, body
}

func resourceNames(t *testing.T, list []json.RawMessage) string {
	t.Helper()
	var names []string
	for _, r := range list {
		var x struct{ Name string }
		if err := json.Unmarshal(r, &x); err != nil {
			t.Fatal(err)
		}
		names = append(names, x.Name)
	}
	return strings.Join(names, ",")
}

// TestConfigDumpOfANode: /config_dump?node= shows what the node last
// ACKed, with the resources of that version even once a newer one is
// published, apart from what it rejected (with the error) and what it
// was sent and has not answered.
func TestConfigDumpOfANode(t *testing.T) {
	path := mappingFile(t, mapping)
	p := startLimited(t, path, config.XDSLimits{}, 16, nil)
	conn := dial(t, p.srv.XDSAddr())
	lds := openLDS(t, conn, false, "envoy-1", "edge")
	if got := lds.next(); got != "nats-in,public" {
		t.Fatalf("first listeners %s", got)
	}
	lds.answer("")
	v1 := p.srv.Status().Groups["edge"].Types[resource.ListenerType]

	writeFile(t, path, moved)
	reloaded := make(chan error, 1)
	go func() { reloaded <- p.srv.Reload("test", p.src) }()
	if got := lds.next(); got != "public" {
		t.Fatalf("next listeners %s", got)
	}
	lds.answer("listener public: no such filter")
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	v2 := p.srv.Status().Groups["edge"].Types[resource.ListenerType]
	// Another stream of the node asks for clusters and never answers.
	cds := openLDSOf(t, conn, "envoy-1", "edge", resource.ClusterType)
	select {
	case <-cds:
	case <-time.After(5 * time.Second):
		t.Fatal("no clusters")
	}
	waitStatus(t, p, func(nodes []xds.NodeStatus) string {
		for _, n := range nodes {
			if n.ID == "envoy-1" && n.Streams == 2 && n.NACKCount == 1 {
				return ""
			}
		}
		return "envoy-1 has not NACKed on two streams"
	})

	code, d, body := dumpOf(t, p, "?node=envoy-1")
	if code != 200 {
		t.Fatalf("/config_dump = %d %s", code, body)
	}
	acked := d.Acked[resource.ListenerType]
	if acked.Version != v1 || resourceNames(t, acked.Resources) != "nats-in,public" {
		t.Errorf("acked listeners %s %s, want %s with nats-in,public", acked.Version, resourceNames(t, acked.Resources), v1)
	}
	if d.Resources[resource.ListenerType].Version != v2 {
		t.Errorf("served listeners %s, want %s", d.Resources[resource.ListenerType].Version, v2)
	}
	if len(d.Nacked) != 1 || d.Nacked[0].Type != resource.ListenerType || d.Nacked[0].Version != v2 ||
		d.Nacked[0].Error != "listener public: no such filter" || d.Nacked[0].Stream != "sotw" {
		t.Errorf("nacked = %+v, want listeners %s with the error", d.Nacked, v2)
	}
	clusters := p.srv.Status().Groups["edge"].Types[resource.ClusterType]
	if len(d.Pending) != 1 || d.Pending[0].Type != resource.ClusterType || d.Pending[0].Version != clusters || d.Pending[0].Stream != "delta" {
		t.Errorf("pending = %+v, want clusters %s on the delta stream", d.Pending, clusters)
	}

	// The same id in another group: the query must say which.
	openLDS(t, conn, true, "envoy-1", "rpc").next()
	waitStatus(t, p, func(nodes []xds.NodeStatus) string {
		for _, n := range nodes {
			if n.ID == "envoy-1" && n.Group == "rpc" {
				return ""
			}
		}
		return "envoy-1 in rpc not seen"
	})
	if code, _, body := dumpOf(t, p, "?node=envoy-1"); code != 409 || !strings.Contains(body, "edge, rpc") {
		t.Errorf("/config_dump of an id in two groups = %d %s, want 409 naming both", code, body)
	}
	if code, d, body := dumpOf(t, p, "?node=envoy-1&group=rpc"); code != 200 || d.Group != "rpc" || len(d.Nacked) != 0 {
		t.Errorf("/config_dump?group=rpc = %d %s", code, body)
	}
	if code, _, _ := dumpOf(t, p, "?node=envoy-1&group=nope"); code != 404 {
		t.Errorf("/config_dump in a group the node is not in = %d, want 404", code)
	}
}

// openLDSOf is a raw delta stream of typ for a node that never answers.
func openLDSOf(t *testing.T, conn *grpc.ClientConn, id, group string, typ resource.Type) <-chan *discovery.DeltaDiscoveryResponse {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: id, Cluster: group}, TypeUrl: typ}); err != nil {
		t.Fatal(err)
	}
	got := make(chan *discovery.DeltaDiscoveryResponse, 1)
	go func() {
		resp, err := s.Recv()
		if err == nil {
			got <- resp
		}
	}()
	return got
}
