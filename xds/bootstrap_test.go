package xds

import (
	"strings"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

func TestBootstrap(t *testing.T) {
	tests := []struct {
		name string
		opts BootstrapOptions
		api  core.ApiConfigSource_ApiType
	}{
		{"state of the world", BootstrapOptions{NodeID: "envoy-1", NodeGroup: "edge", XDSAddress: "127.0.0.1:18000"}, core.ApiConfigSource_GRPC},
		{"delta, control plane by name", BootstrapOptions{NodeID: "envoy-2", NodeGroup: "rpc", XDSAddress: "protogate.svc:18000", Delta: true, GroupMetadataKey: "protogate.group"}, core.ApiConfigSource_DELTA_GRPC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			o.AdminAddress, o.AdminPort, o.MaxHeapBytes, o.MaxConnections = "127.0.0.1", 9901, 1<<30, 50000
			b, err := Bootstrap(o)
			if err != nil {
				t.Fatal(err)
			}
			if b.Node.Id != o.NodeID || b.Node.Cluster != o.NodeGroup {
				t.Errorf("node = %v", b.Node)
			}
			if o.GroupMetadataKey != "" && b.Node.Metadata.Fields[o.GroupMetadataKey].GetStringValue() != o.NodeGroup {
				t.Errorf("group metadata missing: %v", b.Node.Metadata)
			}
			ads := b.DynamicResources.AdsConfig
			if ads.ApiType != tt.api || ads.GrpcServices[0].GetEnvoyGrpc().ClusterName != xdsCluster {
				t.Errorf("ads config = %v", ads)
			}
			for _, cs := range []*core.ConfigSource{b.DynamicResources.CdsConfig, b.DynamicResources.LdsConfig} {
				if cs.GetAds() == nil || cs.InitialFetchTimeout.AsDuration().Seconds() != 15 {
					t.Errorf("config source = %v", cs)
				}
			}
			if a := b.Admin.Address.GetSocketAddress(); a.Address != "127.0.0.1" {
				t.Errorf("admin is not on loopback: %v", a)
			}
			js, _ := protojson.Marshal(b.OverloadManager)
			for _, want := range []string{"fixed_heap", "global_downstream_max_connections", "shrink_heap", "stop_accepting_requests", "reduce_timeouts"} {
				if !strings.Contains(string(js), want) {
					t.Errorf("overload manager lacks %s", want)
				}
			}
			if len(b.StaticResources.Clusters) != 1 || b.StaticResources.Clusters[0].Name != xdsCluster {
				t.Errorf("static clusters = %v", b.StaticResources.Clusters)
			}
		})
	}
	if _, err := Bootstrap(BootstrapOptions{NodeID: "x", NodeGroup: "g", XDSAddress: "nohost"}); err == nil {
		t.Error("a bad --xds address was accepted")
	}
}

func TestBootstrapRefusesAnonymousNodes(t *testing.T) {
	tests := []struct {
		name, id, group, want string
	}{
		{"no id", "", "edge", "--node-id is empty"},
		{"blank id", "  ", "edge", "--node-id is empty"},
		{"no group", "envoy-1", "", "--node-group is empty"},
	}
	for _, tt := range tests {
		_, err := Bootstrap(BootstrapOptions{NodeID: tt.id, NodeGroup: tt.group, XDSAddress: "127.0.0.1:18000", AdminAddress: "127.0.0.1", AdminPort: 9901, MaxHeapBytes: 1 << 30, MaxConnections: 10})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "Envoy refuses CDS and LDS") {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestBootstrapWithoutOverloadManager(t *testing.T) {
	o := BootstrapOptions{NodeID: "envoy-1", NodeGroup: "edge", XDSAddress: "127.0.0.1:18000", AdminAddress: "127.0.0.1", AdminPort: 9901}
	for _, heap := range []uint64{0, 1 << 30} {
		o.MaxHeapBytes, o.MaxConnections = heap, 100
		b, err := Bootstrap(o)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.OverloadManager != nil; got != (heap > 0) {
			t.Errorf("max heap %d: overload manager present = %v", heap, got)
		}
	}
}

func TestBootstrapWarnsOfExposedAdmin(t *testing.T) {
	tests := []struct {
		host string
		warn bool
	}{
		{"127.0.0.1", false},
		{"127.0.0.2", false},
		{"::1", false},
		{"localhost", false},
		{"0.0.0.0", true},
		{"::", true},
		{"10.1.2.3", true},
		{"envoy.example.com", true},
		{"", true},
	}
	for _, tt := range tests {
		w := BootstrapOptions{AdminAddress: tt.host, AdminPort: 9901}.Warnings()
		if got := len(w) == 1 && strings.Contains(w[0], "must not be exposed"); got != tt.warn || (!tt.warn && len(w) != 0) {
			t.Errorf("admin on %q: warnings %q", tt.host, w)
		}
	}
}
