package xds

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
)

// tracker follows streams, nodes, ACKs and NACKs through the server's
// callbacks.
type tracker struct {
	s       *Server
	mu      sync.Mutex
	streams map[streamKey]*streamState
	nodes   map[string]*NodeStatus
	// acked is signalled (closed and replaced) on every ACK or NACK, for
	// publishers waiting for the fleet to take a version.
	acked chan struct{}
	// gone are bridges whose stream dropped without leaving.
	gone lingering
}

// streamKey names a stream: go-control-plane numbers state-of-the-world
// and delta streams with separate counters that both start at 1.
type streamKey struct {
	delta bool
	id    int64
}

type streamState struct {
	node  string
	group string
	delta bool
	sent  map[string]sent // type URL → the last response on this stream
	// acked is the version of each type this stream last ACKed, and
	// nacked the one it last rejected.
	acked  map[string]string
	nacked map[string]NACKStatus
	// bridge marks a stream that subscribed to route tables; addr is the
	// address it announced, and leaving is set once it unsubscribed.
	bridge  bool
	addr    string
	leaving bool
	// resumed: the bridge reconnected naming the table it holds.
	resumed bool
}

type sent struct{ nonce, version string }

// NodeStatus is what /status shows of one node.
type NodeStatus struct {
	ID        string                `json:"id"`
	Group     string                `json:"group"`
	Fallback  bool                  `json:"fallback,omitempty"`
	Streams   int                   `json:"streams"`
	LastSeen  time.Time             `json:"last_seen"`
	LastACK   map[string]ACKStatus  `json:"last_ack"`
	LastNACK  map[string]NACKStatus `json:"last_nack,omitempty"`
	NACKCount int                   `json:"nack_count"`
}

// ACKStatus is a node's last accepted version of a type.
type ACKStatus struct {
	Version string    `json:"version"`
	At      time.Time `json:"at"`
}

// NACKStatus is a node's last rejection of a type, with Envoy's reason.
type NACKStatus struct {
	Version string    `json:"version"`
	Error   string    `json:"error"`
	At      time.Time `json:"at"`
}

func newTracker(s *Server) *tracker {
	return &tracker{s: s, streams: map[streamKey]*streamState{}, nodes: map[string]*NodeStatus{}, acked: make(chan struct{}), gone: lingering{}}
}

func (t *tracker) open(key streamKey) {
	t.mu.Lock()
	t.streams[key] = &streamState{delta: key.delta, sent: map[string]sent{}, acked: map[string]string{}, nacked: map[string]NACKStatus{}}
	t.mu.Unlock()
	t.s.metrics.streams.Inc()
}

func (t *tracker) close(key streamKey) {
	t.mu.Lock()
	group := ""
	if st, ok := t.streams[key]; ok {
		if n, ok := t.nodes[st.node]; ok {
			n.Streams--
		}
		delete(t.streams, key)
		if st.bridge && !st.leaving && st.addr != "" && (st.acked[TableType] != "" || st.resumed) {
			group = st.group
			t.linger(group, st.addr)
		} else if st.bridge {
			group = st.group
		}
	}
	t.signal()
	t.mu.Unlock()
	t.s.metrics.streams.Dec()
	if group != "" {
		go t.s.membersChanged(group)
	}
}

// linger keeps a dropped bridge listed for BridgeLinger; t.mu is held.
func (t *tracker) linger(group, addr string) {
	if t.gone[group] == nil {
		t.gone[group] = map[string]time.Time{}
	}
	at := time.Now()
	t.gone[group][addr] = at
	time.AfterFunc(BridgeLinger, func() {
		t.mu.Lock()
		expired := t.gone[group][addr] == at
		if expired {
			delete(t.gone[group], addr)
		}
		t.mu.Unlock()
		if expired {
			t.s.membersChanged(group)
		}
	})
}

// signal wakes whoever waits for ACKs; t.mu is held.
func (t *tracker) signal() {
	close(t.acked)
	t.acked = make(chan struct{})
}

// seen records the node of a stream on its first request, and says so in
// the log when the node belongs to no group.
func (t *tracker) seen(st *streamState, node *core.Node) *NodeStatus {
	if st.node == "" && node != nil {
		st.node = node.GetId()
		group, known := t.s.groupOf(node)
		st.group = group
		n, ok := t.nodes[st.node]
		if !ok {
			n = &NodeStatus{ID: st.node, LastACK: map[string]ACKStatus{}, LastNACK: map[string]NACKStatus{}}
			t.nodes[st.node] = n
		}
		changed := !ok || n.Group != group || n.Fallback == known
		n.Group, n.Fallback = group, !known
		n.Streams++
		switch {
		case !changed:
		case !known:
			t.s.log.Warn("node asks for a group the mapping does not define; serving it an empty configuration",
				"node", st.node, "group", group, "groups", strings.Join(t.s.groupNames(), ","))
		default:
			t.s.log.Info("node connected", "node", st.node, "group", group, "delta", st.delta)
		}
	}
	n := t.nodes[st.node]
	if n != nil {
		n.LastSeen = time.Now()
	}
	return n
}

// request handles an ACK or NACK. For a NACK it returns the version the
// client rejected, read from the nonce it answers.
func (t *tracker) request(key streamKey, node *core.Node, typeURL, nonce, version string, nack string, sub, unsub []string, resumed bool) (rejected string) {
	t.mu.Lock()
	changed := ""
	defer func() {
		t.mu.Unlock()
		if changed != "" {
			go t.s.membersChanged(changed)
		}
	}()
	st, ok := t.streams[key]
	if !ok {
		return ""
	}
	n := t.seen(st, node)
	if typeURL == TableType && !st.bridge {
		st.bridge = true
		st.addr = node.GetMetadata().GetFields()[BridgeAddressKey].GetStringValue()
	}
	if typeURL == TableType && len(sub) > 0 && n != nil {
		// A bridge is in the group whose table it asks for, whatever its
		// node says.
		st.group, n.Group = sub[0], sub[0]
		if st.addr != "" {
			delete(t.gone[st.group], st.addr) // back: no longer lingering
		}
		if resumed && !st.resumed {
			// It holds a table already: an unchanged one is not sent
			// again, and it serves meanwhile.
			st.resumed, changed = true, st.group
			t.signal()
		}
	}
	if typeURL == TableType && st.bridge && slices.Contains(unsub, st.group) && !st.leaving {
		// The bridge is shutting down: it leaves the endpoints now.
		st.leaving, changed = true, st.group
		t.s.log.Info("bridge leaving", "node", st.node, "group", st.group, "address", st.addr)
		t.signal()
	}
	if nonce == "" || n == nil {
		return ""
	}
	defer t.signal()
	last := st.sent[typeURL]
	if nack != "" {
		rejected = last.version
		if last.nonce != nonce {
			rejected = "" // a stale nonce: the server ignores it anyway
		}
		n.LastNACK[typeURL] = NACKStatus{Version: rejected, Error: nack, At: time.Now()}
		st.nacked[typeURL] = n.LastNACK[typeURL]
		n.NACKCount++
		t.s.metrics.nacks.WithLabelValues(st.group, typeURL).Inc()
		t.s.log.Warn("NACK", "node", st.node, "group", st.group, "type", typeURL, "version", rejected, "error_detail", nack)
		return rejected
	}
	if st.delta {
		if last.nonce != nonce {
			return "" // an ACK of an older response
		}
		version = last.version
	}
	n.LastACK[typeURL] = ACKStatus{Version: version, At: time.Now()}
	if typeURL == TableType && st.acked[typeURL] == "" {
		changed = st.group // a bridge holding its first table joins
	}
	st.acked[typeURL] = version
	return ""
}

func (t *tracker) response(key streamKey, typeURL, nonce, version string) {
	t.mu.Lock()
	st, ok := t.streams[key]
	if ok {
		st.sent[typeURL] = sent{nonce: nonce, version: version}
	}
	group := ""
	if ok {
		group = st.group
	}
	t.mu.Unlock()
	t.s.metrics.pushes.WithLabelValues(group, typeURL).Inc()
}

// Nodes lists every node seen, by ID.
func (t *tracker) Nodes() []NodeStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]NodeStatus, 0, len(t.nodes))
	for _, n := range t.nodes {
		c := *n
		c.LastACK = copyMap(n.LastACK)
		c.LastNACK = copyMap(n.LastNACK)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func copyMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// The go-control-plane callbacks.

func (t *tracker) OnStreamOpen(_ context.Context, id int64, _ string) error {
	t.open(streamKey{false, id})
	return nil
}

func (t *tracker) OnStreamClosed(id int64, _ *core.Node) { t.close(streamKey{false, id}) }

func (t *tracker) OnDeltaStreamOpen(_ context.Context, id int64, _ string) error {
	t.open(streamKey{true, id})
	return nil
}

func (t *tracker) OnDeltaStreamClosed(id int64, _ *core.Node) { t.close(streamKey{true, id}) }

// OnStreamRequest records ACKs and NACKs. A NACK's version is rewritten to
// the version it rejected, so the cache treats the client as holding it and
// does not resend it (see nackGuard).
func (t *tracker) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	rejected := t.request(streamKey{false, id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetVersionInfo(), req.GetErrorDetail().GetMessage(), nil, nil, false)
	if req.GetErrorDetail() != nil && rejected != "" {
		req.VersionInfo = rejected
	}
	return nil
}

func (t *tracker) OnStreamResponse(_ context.Context, id int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	t.response(streamKey{false, id}, resp.GetTypeUrl(), resp.GetNonce(), resp.GetVersionInfo())
}

func (t *tracker) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	t.request(streamKey{true, id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), "", req.GetErrorDetail().GetMessage(),
		req.GetResourceNamesSubscribe(), req.GetResourceNamesUnsubscribe(), len(req.GetInitialResourceVersions()) > 0)
	return nil
}

func (t *tracker) OnStreamDeltaResponse(id int64, _ *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
	version := resp.GetSystemVersionInfo()
	if resp.GetTypeUrl() == TableType {
		// What a bridge holds is the table version inside the resource;
		// the cache's own counter says nothing across restarts.
		version = tableVersionOf(resp)
	}
	t.response(streamKey{true, id}, resp.GetTypeUrl(), resp.GetNonce(), version)
}

func (t *tracker) OnFetchRequest(context.Context, *discovery.DiscoveryRequest) error { return nil }

func (t *tracker) OnFetchResponse(*discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {}
