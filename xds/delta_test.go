package xds

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"
	"unsafe"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

type quietLog struct{}

func (quietLog) Debugf(string, ...any) {}
func (quietLog) Infof(string, ...any)  {}
func (quietLog) Warnf(string, ...any)  {}
func (quietLog) Errorf(string, ...any) {}

// clusters are clusters by name, each with a connect timeout of its
// value in seconds: a change of value is a change of the resource.
func clusters(spec map[string]int64) []types.Resource {
	var out []types.Resource
	for name, secs := range spec {
		out = append(out, &cluster.Cluster{Name: name, ConnectTimeout: durationpb.New(time.Duration(secs) * time.Second)})
	}
	return out
}

func snapshotWith(t *testing.T, version string, res map[resource.Type][]types.Resource) *cache.Snapshot {
	t.Helper()
	snap, err := cache.NewSnapshot(version, res)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// seen is a delta response as a client reads it.
type seen struct {
	version   string
	resources map[string]string // name → version
	removed   []string
	next      map[string]string
}

func read(t *testing.T, ch chan cache.DeltaResponse) *seen {
	t.Helper()
	select {
	case resp := <-ch:
		msg, err := resp.GetDeltaDiscoveryResponse()
		if err != nil {
			t.Fatal(err)
		}
		s := &seen{version: msg.GetSystemVersionInfo(), resources: map[string]string{}, next: resp.GetNextVersionMap()}
		for _, r := range msg.GetResources() {
			s.resources[r.GetName()] = r.GetVersion()
		}
		s.removed = slices.Sorted(slices.Values(msg.GetRemovedResources()))
		return s
	default:
		return nil
	}
}

func sameSeen(a, b *seen) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.version == b.version && maps.Equal(a.resources, b.resources) && slices.Equal(a.removed, b.removed) && maps.Equal(a.next, b.next)
}

func (s *seen) String() string {
	if s == nil {
		return "no response"
	}
	return fmt.Sprintf("version %s, resources %v, removed %v, next %v", s.version, s.resources, s.removed, s.next)
}

// TestDeltaWatchesAsGoControlPlane: for every kind of subscription, our
// delta watches answer (or stay open) exactly as go-control-plane's
// snapshot cache does, when created and on the next snapshot.
func TestDeltaWatchesAsGoControlPlane(t *testing.T) {
	first := map[resource.Type][]types.Resource{resource.ClusterType: clusters(map[string]int64{"a": 1, "b": 1, "c": 1})}
	second := map[resource.Type][]types.Resource{resource.ClusterType: clusters(map[string]int64{"a": 2, "b": 1, "d": 1})}
	v1 := func(name string) string { // a's, b's or c's version in the first snapshot
		for _, r := range first[resource.ClusterType] {
			if cache.GetResourceName(r) == name {
				b, _ := cache.MarshalResource(r)
				return cache.HashResource(b)
			}
		}
		return "?"
	}
	cases := []struct {
		name        string
		subscribe   []string
		unsubscribe []string
		initial     func() map[string]string
		nonce       string
	}{
		{name: "legacy wildcard", nonce: ""},
		{name: "legacy wildcard, acked", nonce: "1"},
		{name: "explicit wildcard", subscribe: []string{"*"}},
		{name: "wildcard holding everything", subscribe: []string{"*"}, nonce: "3",
			initial: func() map[string]string { return map[string]string{"a": v1("a"), "b": v1("b"), "c": v1("c")} }},
		{name: "first wildcard request holding everything", subscribe: []string{"*"},
			initial: func() map[string]string { return map[string]string{"a": v1("a"), "b": v1("b"), "c": v1("c")} }},
		{name: "wildcard holding what is gone", subscribe: []string{"*"}, nonce: "2",
			initial: func() map[string]string { return map[string]string{"gone": "x", "a": v1("a")} }},
		{name: "wildcard, one name unsubscribed", subscribe: []string{"*", "b"}, unsubscribe: []string{"b"}, nonce: "4",
			initial: func() map[string]string { return map[string]string{"a": v1("a"), "b": v1("b"), "c": v1("c")} }},
		{name: "named", subscribe: []string{"a", "c", "absent"}},
		{name: "named, held", subscribe: []string{"a", "c"}, nonce: "5",
			initial: func() map[string]string { return map[string]string{"a": v1("a"), "c": v1("c")} }},
		{name: "named, held but absent", subscribe: []string{"b", "absent"}, nonce: "6",
			initial: func() map[string]string { return map[string]string{"b": v1("b"), "absent": "x"} }},
		{name: "named, stale", subscribe: []string{"a"}, nonce: "7", initial: func() map[string]string { return map[string]string{"a": "old"} }},
		{name: "wildcard left for names", subscribe: []string{"*", "a"}, unsubscribe: []string{"*"}, nonce: "8",
			initial: func() map[string]string { return map[string]string{"a": v1("a"), "c": v1("c")} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := &core.Node{Id: "n"}
			ref := cache.NewSnapshotCache(true, cache.IDHash{}, quietLog{})
			ours := newSharedCache(cache.IDHash{}, cache.NewSnapshotCache(true, cache.IDHash{}, quietLog{}))
			for _, c := range []cache.SnapshotCache{ref, ours} {
				if err := c.SetSnapshot(context.Background(), "n", snapshotWith(t, "1", first)); err != nil {
					t.Fatal(err)
				}
			}
			watch := func(c cache.SnapshotCache) chan cache.DeltaResponse {
				var initial map[string]string
				if tc.initial != nil {
					initial = tc.initial()
				}
				req := &discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: resource.ClusterType, ResourceNamesSubscribe: tc.subscribe,
					ResourceNamesUnsubscribe: tc.unsubscribe, InitialResourceVersions: initial, ResponseNonce: tc.nonce}
				sub := stream.NewDeltaSubscription(tc.subscribe, tc.unsubscribe, initial, true)
				ch := make(chan cache.DeltaResponse, 4)
				if _, err := c.CreateDeltaWatch(req, sub, ch); err != nil {
					t.Fatal(err)
				}
				return ch
			}
			refCh, ourCh := watch(ref), watch(ours)
			if want, got := read(t, refCh), read(t, ourCh); !sameSeen(want, got) {
				t.Fatalf("at the watch: got %v, want %v", got, want)
			}
			for _, c := range []cache.SnapshotCache{ref, ours} {
				if err := c.SetSnapshot(context.Background(), "n", snapshotWith(t, "2", second)); err != nil {
					t.Fatal(err)
				}
			}
			if want, got := read(t, refCh), read(t, ourCh); !sameSeen(want, got) {
				t.Fatalf("at the next snapshot: got %v, want %v", got, want)
			}
		})
	}
}

// TestDeltaWatchesAnsweredInTypeOrder: a snapshot answers a node's open
// delta watches in the order Envoy wants the types, whatever order they
// were opened in.
func TestDeltaWatchesAnsweredInTypeOrder(t *testing.T) {
	c := newSharedCache(cache.IDHash{}, cache.NewSnapshotCache(true, cache.IDHash{}, quietLog{}))
	ch := make(chan cache.DeltaResponse, 8)
	node := &core.Node{Id: "n"}
	for _, typ := range slices.Backward(Types) {
		req := &discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: typ}
		if _, err := c.CreateDeltaWatch(req, stream.NewDeltaSubscription(nil, nil, nil, true), ch); err != nil {
			t.Fatal(err)
		}
	}
	snap := snapshotWith(t, "1", map[resource.Type][]types.Resource{
		resource.ClusterType:  {&cluster.Cluster{Name: "c", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS}}},
		resource.EndpointType: {&endpoint.ClusterLoadAssignment{ClusterName: "c"}},
		resource.ListenerType: {&listener.Listener{Name: "l"}},
		resource.RouteType:    {&route.RouteConfiguration{Name: "r"}},
	})
	if err := c.SetSnapshot(context.Background(), "n", snap); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range Types {
		select {
		case resp := <-ch:
			got = append(got, resp.GetDeltaRequest().GetTypeUrl())
		default:
		}
	}
	if !slices.Equal(got, Types) {
		t.Fatalf("answered in the order %v, want %v", got, Types)
	}
}

// TestDeltaCodecSendsTheSharedBytes: a delta response of shared entries
// goes out as their encoding made once (the resources are not copied),
// and decodes to the message, removals, nonce and all; a message whose
// resources were changed after it was made is marshalled as it is.
func TestDeltaCodecSendsTheSharedBytes(t *testing.T) {
	res := map[string]types.Resource{}
	for _, r := range clusters(map[string]int64{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}) {
		res[cache.GetResourceName(r)] = r
	}
	ds, err := freezeDelta(resource.ClusterType, "v7", res)
	if err != nil {
		t.Fatal(err)
	}
	resp := &deltaResponse{req: &discovery.DeltaDiscoveryRequest{TypeUrl: resource.ClusterType}, set: ds,
		changed: []int32{0, 2, 3}, removed: []string{"gone", "old"}, ctx: context.Background()}
	msg, err := resp.GetDeltaDiscoveryResponse()
	if err != nil {
		t.Fatal(err)
	}
	msg.Nonce = "42"
	codec := newSharedCodec()
	out, err := codec.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 { // head, entry 0, entries 2 and 3
		t.Fatalf("%d buffers, want the head and two runs of entries", len(out))
	}
	for _, b := range out[1:] {
		if p := unsafe.Pointer(unsafe.SliceData(b.ReadOnlyData())); !within(p, ds.encoded) {
			t.Fatal("the resources were copied")
		}
	}
	var got discovery.DeltaDiscoveryResponse
	if err := proto.Unmarshal(out.Materialize(), &got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got, msg) {
		t.Fatalf("decoded %v, want %v", &got, msg)
	}
	for _, r := range got.GetResources() {
		var c cluster.Cluster
		if err := r.GetResource().UnmarshalTo(&c); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&c, res[r.GetName()]) {
			t.Fatalf("%s decodes to %v, want %v", r.GetName(), &c, res[r.GetName()])
		}
	}

	msg.Resources = msg.Resources[:1]
	out, err = codec.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	got.Reset()
	if err := proto.Unmarshal(out.Materialize(), &got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got, msg) || len(got.GetResources()) != 1 {
		t.Fatalf("after a change, decoded %v, want %v", &got, msg)
	}
}

func within(p unsafe.Pointer, buf []byte) bool {
	start := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return uintptr(p) >= start && uintptr(p) < start+uintptr(len(buf))
}
