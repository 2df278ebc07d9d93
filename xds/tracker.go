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
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// tracker follows streams, nodes, ACKs and NACKs through the server's
// callbacks.
type tracker struct {
	s   *Server
	lim limits
	mu  sync.Mutex
	// streams are the open streams; nodes what /status shows, one record
	// per node id and group, kept for lim.forgetAfter once its streams
	// closed.
	streams map[streamKey]*streamState
	nodes   map[nodeKey]*NodeStatus
	// idle counts the nodes with no open stream; swept is when records
	// past forgetAfter were last dropped.
	idle  int
	swept time.Time
	// acked is signalled (closed and replaced) on every ACK or NACK, for
	// publishers waiting for the fleet to take a version.
	acked chan struct{}
	// gone are bridges whose stream dropped without leaving.
	gone lingering
	// unknown are the undefined groups already logged (at most
	// maxLoggedGroups, so clients cannot grow it).
	unknown map[string]bool
	// served remembers recent snapshots by the versions they served, so
	// /config_dump can show what a node ACKed after a newer publish.
	served versionHistory
}

// streamKey names a stream: go-control-plane numbers state-of-the-world
// and delta streams with separate counters that both start at 1.
type streamKey struct {
	delta bool
	id    int64
}

// nodeKey names a node record: one node id used in two groups is two
// records, each with its own streams, ACKs and NACKs. Refusing the second
// would lock out an Envoy moved to another group while its old stream (or
// a hot-restart parent) still drains.
type nodeKey struct{ id, group string }

type streamState struct {
	// named is set once the first request gave the node.
	named bool
	// canary: the node is one of its group's canaries (xds.rollout).
	canary bool
	node   string
	group  string
	delta  bool
	sent   map[string]sent // type URL → the last response on this stream
	// acked is the version of each type this stream last ACKed, nacked
	// the one it last rejected, and answered its last answer: a response
	// not answered yet is pending.
	acked    map[string]string
	nacked   map[string]NACKStatus
	answered map[string]answer
	// bridge marks a stream that subscribed to route tables; addr is the
	// address it announced, and leaving is set once it unsubscribed.
	bridge  bool
	addr    string
	leaving bool
	// resumed: the bridge reconnected naming the table it holds.
	resumed bool
}

// answer is a client's last ACK or NACK of a type, by the nonce answered.
type answer struct {
	nonce string
	nack  bool
}

type sent struct {
	nonce, version string
	at             time.Time
}

// NodeStatus is what /status shows of one node in one group.
type NodeStatus struct {
	ID        string                `json:"id"`
	Group     string                `json:"group"`
	Fallback  bool                  `json:"fallback,omitempty"`
	Canary    bool                  `json:"canary,omitempty"` // one of its group's canaries (xds.rollout)
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
	return &tracker{s: s, lim: limitsOf(s.opts.Limits), streams: map[streamKey]*streamState{}, nodes: map[nodeKey]*NodeStatus{},
		acked: make(chan struct{}), gone: lingering{}, unknown: map[string]bool{}, served: versionHistory{}}
}

// open admits a stream unless the server holds its maximum.
func (t *tracker) open(key streamKey) error {
	t.mu.Lock()
	if len(t.streams) >= t.lim.maxStreams {
		t.mu.Unlock()
		return t.s.refuse("streams", streamsExhausted(t.lim.maxStreams))
	}
	t.streams[key] = &streamState{delta: key.delta, sent: map[string]sent{}, acked: map[string]string{},
		nacked: map[string]NACKStatus{}, answered: map[string]answer{}}
	t.mu.Unlock()
	t.s.metrics.streams.Inc()
	return nil
}

// close forgets a stream; it is also called for streams open refused.
func (t *tracker) close(key streamKey) {
	t.mu.Lock()
	st, ok := t.streams[key]
	if !ok {
		t.mu.Unlock()
		return
	}
	delete(t.streams, key)
	t.detach(st)
	group := ""
	if st.bridge && !st.leaving && st.addr != "" && (st.acked[TableType] != "" || st.resumed) {
		group = st.group
		t.linger(group, st.addr)
	} else if st.bridge {
		group = st.group
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
			if len(t.gone[group]) == 0 {
				delete(t.gone, group)
			}
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

// seen records the node of a stream on its first request. It refuses a
// node whose id, group or metadata is over the limits. A bridge is in the
// group whose table it asks for (table), whatever its node says.
func (t *tracker) seen(st *streamState, node *core.Node, table string) (*NodeStatus, error) {
	if !st.named && node != nil {
		if err := t.lim.checkNode(node, t.s.opts.GroupMetadataKey); err != nil {
			return nil, t.s.refuse(err.limit, err.status())
		}
		st.named, st.node = true, node.GetId()
		st.canary = t.s.isCanary(node)
		group, known := t.s.groupOf(node)
		if table != "" {
			group, known = table, t.s.cacheKey(table) == table
		}
		_, fresh := t.attach(st, group)
		switch {
		case !known:
			t.logUnknown(st.node, group)
		case fresh:
			t.s.log.Info("node connected", "node", st.node, "group", group, "delta", st.delta)
		}
	}
	if !st.named {
		return nil, nil
	}
	n := t.nodes[nodeKey{st.node, st.group}]
	if n != nil {
		n.LastSeen = time.Now()
	}
	return n, nil
}

// attach puts a stream under the record of its node in group, creating
// it; fresh says the record is new. t.mu is held.
func (t *tracker) attach(st *streamState, group string) (n *NodeStatus, fresh bool) {
	st.group = group
	key := nodeKey{st.node, group}
	n, ok := t.nodes[key]
	if !ok {
		t.sweep(time.Now())
		n = &NodeStatus{ID: st.node, Group: group, LastACK: map[string]ACKStatus{}, LastNACK: map[string]NACKStatus{}}
		t.nodes[key] = n
		t.s.metrics.nodes.Set(float64(len(t.nodes)))
	} else if n.Streams == 0 {
		t.idle--
	}
	n.Streams++
	n.Canary = st.canary
	n.LastSeen = time.Now()
	return n, !ok
}

// detach takes a stream off its node record; a record left with no stream
// starts to count towards the disconnected nodes kept. t.mu is held.
func (t *tracker) detach(st *streamState) {
	n, ok := t.nodes[nodeKey{st.node, st.group}]
	if !ok || !st.named {
		return
	}
	n.Streams--
	n.LastSeen = time.Now()
	if n.Streams == 0 {
		t.idle++
		t.evictIdle()
	}
}

// regroup moves a stream to another group's record (a bridge is in the
// group whose table it asks for, whatever its node says). t.mu is held.
func (t *tracker) regroup(st *streamState, group string) *NodeStatus {
	if st.group == group {
		return t.nodes[nodeKey{st.node, group}]
	}
	t.detach(st)
	n, _ := t.attach(st, group)
	return n
}

// logUnknown warns once per undefined group, not once per node: clients
// choose group names, so the set of those logged is bounded.
func (t *tracker) logUnknown(node, group string) {
	if t.unknown[group] {
		return
	}
	if len(t.unknown) >= maxLoggedGroups {
		if !t.unknown[""] {
			t.unknown[""] = true
			t.s.log.Warn("many nodes ask for groups the mapping does not define; no more such groups are logged",
				"logged", maxLoggedGroups)
		}
		return
	}
	t.unknown[group] = true
	t.s.log.Warn("nodes ask for a group the mapping does not define; serving them an empty configuration",
		"group", group, "first_node", node, "groups", strings.Join(t.s.groupNames(), ","))
}

// maxLoggedGroups bounds the undefined groups logged by name.
const maxLoggedGroups = 1000

// request handles a request: an ACK or NACK of a response, and a bridge's
// table subscriptions. For a NACK it returns the version the client
// rejected, read from the nonce it answers. A node over the limits gets
// an error, which ends the stream.
//
// served is the version the client's group is served now of typeURL,
// read by the caller before t.mu (the cache has its own lock): a
// state-of-the-world client that names it on a new stream holds it.
func (t *tracker) request(key streamKey, node *core.Node, typeURL, nonce, version, served string, nack string, sub, unsub []string, resumed bool) (rejected string, err error) {
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
		return "", nil
	}
	table := ""
	if typeURL == TableType && len(sub) > 0 {
		table = sub[0]
	}
	n, err := t.seen(st, node, table)
	if err != nil {
		return "", err
	}
	if typeURL == TableType {
		n, changed = t.tableRequest(st, n, node, sub, unsub, resumed)
	}
	last := st.sent[typeURL]
	if nonce == "" || n == nil || last.nonce == "" {
		// Not an answer to anything this stream was sent (a client's
		// first request, or a type never served): nothing to record.
		if n != nil && !st.delta && version != "" && version == served && servedType(typeURL) && typeURL != TableType {
			// Versions are content hashes: the client holds exactly this.
			n.LastACK[typeURL] = ACKStatus{Version: version, At: time.Now()}
			st.acked[typeURL] = version
			t.signal()
		}
		return "", nil
	}
	defer t.signal()
	if nack != "" {
		return t.recordNACK(st, n, typeURL, nonce, nack), nil
	}
	if last.nonce != nonce {
		return "", nil // an ACK of an older response; the server ignores it too
	}
	st.answered[typeURL] = answer{nonce: nonce}
	n.LastACK[typeURL] = ACKStatus{Version: last.version, At: time.Now()}
	t.s.metrics.acks.WithLabelValues(t.s.groupLabel(st.group), typeLabel(typeURL)).Inc()
	if typeURL == TableType && st.acked[typeURL] == "" {
		changed = st.group // a bridge holding its first table joins
	}
	st.acked[typeURL] = last.version
	return "", nil
}

// tableRequest follows a bridge's subscription to its group's table.
// t.mu is held; it returns the stream's node record and the group whose
// bridge endpoints changed.
func (t *tracker) tableRequest(st *streamState, n *NodeStatus, node *core.Node, sub, unsub []string, resumed bool) (*NodeStatus, string) {
	changed := ""
	if !st.bridge {
		st.bridge = true
		st.addr = node.GetMetadata().GetFields()[BridgeAddressKey].GetStringValue()
	}
	if len(sub) > 0 && n != nil {
		n = t.regroup(st, sub[0])
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
	if slices.Contains(unsub, st.group) && !st.leaving {
		// The bridge is shutting down: it leaves the endpoints now.
		st.leaving, changed = true, st.group
		t.s.log.Info("bridge leaving", "node", st.node, "group", st.group, "address", st.addr)
		t.signal()
	}
	return n, changed
}

// recordNACK notes one rejection and returns the version rejected ("" for
// a NACK of an older response, which the server ignores). t.mu is held.
func (t *tracker) recordNACK(st *streamState, n *NodeStatus, typeURL, nonce, reason string) string {
	last := st.sent[typeURL]
	rejected := ""
	if last.nonce == nonce {
		rejected = last.version
		st.answered[typeURL] = answer{nonce: nonce, nack: true}
	}
	nack := NACKStatus{Version: rejected, Error: reason, At: time.Now()}
	n.LastNACK[typeURL] = nack
	st.nacked[typeURL] = nack
	n.NACKCount++
	t.s.metrics.nacks.WithLabelValues(t.s.groupLabel(st.group), typeLabel(typeURL)).Inc()
	t.s.log.Warn("NACK", "node", st.node, "group", st.group, "type", typeURL, "version", rejected,
		"delta", st.delta, "error_detail", reason)
	return rejected
}

func (t *tracker) response(key streamKey, typeURL, nonce, version string) {
	t.mu.Lock()
	st, ok := t.streams[key]
	group, remember, canary := "", false, false
	if ok && servedType(typeURL) {
		st.sent[typeURL] = sent{nonce: nonce, version: version, at: time.Now()}
		group, canary = st.group, st.canary
		remember = typeURL != TableType && !t.served.has(typeURL, version)
	}
	t.mu.Unlock()
	if remember {
		t.remember(t.s.nodeCacheKey(group, canary), typeURL, version)
	}
	t.s.metrics.pushes.WithLabelValues(t.s.groupLabel(group), typeLabel(typeURL)).Inc()
}

// remember keeps the snapshot that served version of typeURL, when it is
// still the group's. It takes t.mu only after the cache's lock is free.
func (t *tracker) remember(key, typeURL, version string) {
	snap, err := t.s.cache.GetSnapshot(key)
	if err != nil || snap.GetVersion(typeURL) != version {
		return
	}
	t.mu.Lock()
	t.served.add(typeURL, version, snap)
	t.mu.Unlock()
}

// sweep forgets the nodes disconnected for longer than forgetAfter, at
// most a few times per forgetAfter. t.mu is held.
func (t *tracker) sweep(now time.Time) {
	if now.Sub(t.swept) < t.lim.forgetAfter/8 {
		return
	}
	t.swept = now
	for k, n := range t.nodes {
		if n.Streams == 0 && now.Sub(n.LastSeen) > t.lim.forgetAfter {
			delete(t.nodes, k)
			t.idle--
		}
	}
	t.s.metrics.nodes.Set(float64(len(t.nodes)))
}

// evictIdle keeps at most maxDisconnected nodes without a stream: past
// it, those gone longest are forgotten, a tenth at once so a steady churn
// does not sort on every disconnect. t.mu is held.
func (t *tracker) evictIdle() {
	if t.idle <= t.lim.maxDisconnected {
		return
	}
	var idle []nodeKey
	for k, n := range t.nodes {
		if n.Streams == 0 {
			idle = append(idle, k)
		}
	}
	sort.Slice(idle, func(i, j int) bool { return t.nodes[idle[i]].LastSeen.Before(t.nodes[idle[j]].LastSeen) })
	drop := len(idle) - t.lim.maxDisconnected + t.lim.maxDisconnected/10
	for _, k := range idle[:min(drop, len(idle))] {
		delete(t.nodes, k)
		t.idle--
	}
	t.s.metrics.nodes.Set(float64(len(t.nodes)))
}

// Nodes lists every node remembered, by id and group.
func (t *tracker) Nodes() []NodeStatus { return t.nodesWhere(func(*NodeStatus) bool { return true }) }

// nodesWhere lists the nodes remembered that match, by id and group, each
// telling whether its group is served now.
func (t *tracker) nodesWhere(match func(*NodeStatus) bool) []NodeStatus {
	defined := t.s.groupNames()
	t.mu.Lock()
	t.sweep(time.Now())
	out := make([]NodeStatus, 0, len(t.nodes))
	for _, n := range t.nodes {
		if !match(n) {
			continue
		}
		c := *n
		c.LastACK = copyMap(n.LastACK)
		c.LastNACK = copyMap(n.LastNACK)
		_, found := slices.BinarySearch(defined, n.Group)
		c.Fallback = !found
		out = append(out, c)
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Group < out[j].Group
	})
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
	return t.open(streamKey{false, id})
}

func (t *tracker) OnStreamClosed(id int64, _ *core.Node) { t.close(streamKey{false, id}) }

func (t *tracker) OnDeltaStreamOpen(_ context.Context, id int64, _ string) error {
	return t.open(streamKey{true, id})
}

func (t *tracker) OnDeltaStreamClosed(id int64, _ *core.Node) { t.close(streamKey{true, id}) }

// OnStreamRequest records ACKs and NACKs. A NACK's version is rewritten to
// the version it rejected, so the cache treats the client as holding it and
// does not resend it (see nackGuard).
func (t *tracker) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	served := ""
	if req.GetErrorDetail() == nil && req.GetVersionInfo() != "" {
		if snap, err := t.s.cache.GetSnapshot(nodeHash{t.s}.ID(req.GetNode())); err == nil {
			served = snap.GetVersion(req.GetTypeUrl())
		}
	}
	rejected, err := t.request(streamKey{false, id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetVersionInfo(), served,
		req.GetErrorDetail().GetMessage(), nil, nil, false)
	if req.GetErrorDetail() != nil && rejected != "" {
		req.VersionInfo = rejected
	}
	return err
}

func (t *tracker) OnStreamResponse(_ context.Context, id int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	t.response(streamKey{false, id}, resp.GetTypeUrl(), resp.GetNonce(), resp.GetVersionInfo())
}

func (t *tracker) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	_, err := t.request(streamKey{true, id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), "", "", req.GetErrorDetail().GetMessage(),
		req.GetResourceNamesSubscribe(), req.GetResourceNamesUnsubscribe(), len(req.GetInitialResourceVersions()) > 0)
	return err
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

// servedType says whether typeURL is one this server serves: only those
// are recorded and labelled, since clients may ask for any.
func servedType(typeURL string) bool {
	return typeURL == TableType || slices.Contains(Types, typeURL)
}

// typeLabel is typeURL as a metric label: clients choose type URLs, so
// any other is "other".
func typeLabel(typeURL string) string {
	if servedType(typeURL) {
		return typeURL
	}
	return "other"
}

// versionHistory maps (type, version) to the snapshot that served it, for
// the last maxHistory versions.
type versionHistory map[[2]string]historyEntry

type historyEntry struct {
	snap cache.ResourceSnapshot
	seq  int
}

// maxHistory bounds the versions remembered (snapshots are shared with
// the cache while current, so this costs only superseded ones).
const maxHistory = 64

func (h versionHistory) has(typeURL, version string) bool {
	_, ok := h[[2]string{typeURL, version}]
	return ok
}

func (h versionHistory) add(typeURL, version string, snap cache.ResourceSnapshot) {
	seq, oldest, oldestSeq := 0, [2]string{}, -1
	for k, e := range h {
		seq = max(seq, e.seq+1)
		if oldestSeq < 0 || e.seq < oldestSeq {
			oldest, oldestSeq = k, e.seq
		}
	}
	if len(h) >= maxHistory {
		delete(h, oldest)
	}
	h[[2]string{typeURL, version}] = historyEntry{snap: snap, seq: seq}
}

func (h versionHistory) get(typeURL, version string) cache.ResourceSnapshot {
	return h[[2]string{typeURL, version}].snap
}

// Inflight is a response an open stream of a node has not ACKed: sent and
// not answered yet (pending), or rejected (nacked, with the error).
type Inflight struct {
	Type    string    `json:"type"`
	Version string    `json:"version"`
	Stream  string    `json:"stream"` // "sotw" or "delta"
	SentAt  time.Time `json:"sent_at"`
	Error   string    `json:"error,omitempty"`
	At      time.Time `json:"nacked_at,omitzero"`
}

// inflight lists what the open streams of a node record hold unACKed,
// sorted by type.
func (t *tracker) inflight(key nodeKey) (pending, nacked []Inflight) {
	pending, nacked = []Inflight{}, []Inflight{}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, st := range t.streams {
		if !st.named || st.node != key.id || st.group != key.group {
			continue
		}
		kind := "sotw"
		if st.delta {
			kind = "delta"
		}
		for typ, last := range st.sent {
			in := Inflight{Type: typ, Version: last.version, Stream: kind, SentAt: last.at}
			switch a := st.answered[typ]; {
			case a.nonce != last.nonce:
				pending = append(pending, in)
			case a.nack:
				in.Error, in.At = st.nacked[typ].Error, st.nacked[typ].At
				nacked = append(nacked, in)
			}
		}
	}
	byType := func(a, b Inflight) int { return strings.Compare(a.Type+a.Stream, b.Type+b.Stream) }
	slices.SortFunc(pending, byType)
	slices.SortFunc(nacked, byType)
	return pending, nacked
}

// resourcesOf finds the snapshot that served version of typeURL to group:
// the current one, or one remembered; nil if neither.
func (t *tracker) resourcesOf(group, typeURL, version string) cache.ResourceSnapshot {
	if snap, err := t.s.cache.GetSnapshot(t.s.cacheKey(group)); err == nil && snap.GetVersion(typeURL) == version {
		return snap
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.served.get(typeURL, version)
}
