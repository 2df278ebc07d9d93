package xds

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	overload "github.com/envoyproxy/go-control-plane/envoy/config/overload/v3"
	downstreamconns "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	fixedheap "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/fixed_heap/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// BootstrapOptions describe one Envoy node.
type BootstrapOptions struct {
	NodeID           string
	NodeGroup        string
	GroupMetadataKey string // set the group under this metadata key too
	XDSAddress       string // HOST:PORT of the control plane
	Delta            bool   // incremental xDS
	AdminAddress     string // Envoy's admin, loopback by default
	AdminPort        uint32
	MaxHeapBytes     uint64 // 0: no overload manager at all
	MaxConnections   uint64
}

// Warnings are the choices in o that Bootstrap accepts but an operator
// should hear about.
func (o BootstrapOptions) Warnings() []string {
	var out []string
	if !isLoopback(o.AdminAddress) {
		out = append(out, fmt.Sprintf("Envoy's admin on %s is not on loopback: it must not be exposed (whoever reaches it can change, drain and stop Envoy); keep it on 127.0.0.1 or behind a firewall",
			net.JoinHostPort(o.AdminAddress, strconv.Itoa(int(o.AdminPort)))))
	}
	return out
}

// isLoopback says whether host is certainly a loopback address; a name
// other than localhost cannot be known to be one.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// checkNode refuses a node Envoy could not use: without an id and a
// cluster Envoy refuses CDS and LDS, so it would start and serve nothing.
func (o BootstrapOptions) checkNode() error {
	if strings.TrimSpace(o.NodeID) == "" {
		return errors.New("--node-id is empty: Envoy refuses CDS and LDS without a node id")
	}
	if strings.TrimSpace(o.NodeGroup) == "" {
		return errors.New("--node-group is empty: it is sent as node.cluster, and Envoy refuses CDS and LDS without one")
	}
	return nil
}

// xdsCluster is the static cluster Envoy reaches the control plane through.
const xdsCluster = "protogate-xds"

// Bootstrap builds the Envoy bootstrap of a node: ADS over gRPC to the
// control plane with an initial fetch timeout, admin on loopback, and the
// overload manager Envoy recommends at the edge (heap and connection
// limits, shedding before memory runs out) unless MaxHeapBytes is 0.
func Bootstrap(o BootstrapOptions) (*bootstrap.Bootstrap, error) {
	if err := o.checkNode(); err != nil {
		return nil, err
	}
	host, portStr, err := net.SplitHostPort(o.XDSAddress)
	if err != nil {
		return nil, fmt.Errorf("--xds %q is not HOST:PORT", o.XDSAddress)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("--xds %q: bad port", o.XDSAddress)
	}
	apiType := core.ApiConfigSource_GRPC
	if o.Delta {
		apiType = core.ApiConfigSource_DELTA_GRPC
	}
	node := &core.Node{Id: o.NodeID, Cluster: o.NodeGroup}
	if o.GroupMetadataKey != "" {
		node.Metadata = &structpb.Struct{Fields: map[string]*structpb.Value{o.GroupMetadataKey: structpb.NewStringValue(o.NodeGroup)}}
	}
	ads := func() *core.ConfigSource {
		return &core.ConfigSource{
			ResourceApiVersion:    core.ApiVersion_V3,
			ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
			// Start serving with what arrived rather than wait forever.
			InitialFetchTimeout: durationpb.New(15 * time.Second),
		}
	}
	h2 := &upstreamhttp.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &core.Http2ProtocolOptions{
				ConnectionKeepalive: &core.KeepaliveSettings{Interval: durationpb.New(30 * time.Second), Timeout: durationpb.New(5 * time.Second)},
			}},
		}},
	}
	xds := &cluster.Cluster{
		Name:           xdsCluster,
		ConnectTimeout: durationpb.New(time.Second),
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(h2),
		},
		LoadAssignment: &endpoint.ClusterLoadAssignment{ClusterName: xdsCluster, Endpoints: []*endpoint.LocalityLbEndpoints{{
			LbEndpoints: []*endpoint.LbEndpoint{{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address: socket(host, uint32(port)),
			}}}},
		}}},
	}
	if _, err := netip.ParseAddr(host); err == nil {
		xds.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STATIC}
	} else {
		xds.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STRICT_DNS}
	}
	b := &bootstrap.Bootstrap{
		Node:  node,
		Admin: &bootstrap.Admin{Address: socket(o.AdminAddress, o.AdminPort)},
		DynamicResources: &bootstrap.Bootstrap_DynamicResources{
			AdsConfig: &core.ApiConfigSource{
				ApiType:                   apiType,
				TransportApiVersion:       core.ApiVersion_V3,
				SetNodeOnFirstMessageOnly: true,
				GrpcServices: []*core.GrpcService{{TargetSpecifier: &core.GrpcService_EnvoyGrpc_{
					EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: xdsCluster},
				}}},
			},
			CdsConfig: ads(),
			LdsConfig: ads(),
		},
		StaticResources: &bootstrap.Bootstrap_StaticResources{Clusters: []*cluster.Cluster{xds}},
		OverloadManager: overloadManager(o.MaxHeapBytes, o.MaxConnections),
		LayeredRuntime: &bootstrap.LayeredRuntime{Layers: []*bootstrap.RuntimeLayer{
			{Name: "static", LayerSpecifier: &bootstrap.RuntimeLayer_StaticLayer{StaticLayer: &structpb.Struct{Fields: map[string]*structpb.Value{
				// Refuse regexes whose compiled program is large: route
				// regexes come from a mapping file, not from code review.
				"re2.max_program_size.error_level": structpb.NewNumberValue(100),
			}}}},
			{Name: "admin", LayerSpecifier: &bootstrap.RuntimeLayer_AdminLayer_{AdminLayer: &bootstrap.RuntimeLayer_AdminLayer{}}},
		}},
	}
	if err := b.ValidateAll(); err != nil {
		return nil, err
	}
	return b, nil
}

// overloadManager is nil, so Envoy runs without one, when maxHeap is 0.
func overloadManager(maxHeap, maxConns uint64) *overload.OverloadManager {
	if maxHeap == 0 {
		return nil
	}
	threshold := func(monitor string, v float64) []*overload.Trigger {
		return []*overload.Trigger{{Name: monitor, TriggerOneof: &overload.Trigger_Threshold{Threshold: &overload.ThresholdTrigger{Value: v}}}}
	}
	const heap = "envoy.resource_monitors.fixed_heap"
	const conns = "envoy.resource_monitors.global_downstream_max_connections"
	return &overload.OverloadManager{
		RefreshInterval: durationpb.New(250 * time.Millisecond),
		ResourceMonitors: []*overload.ResourceMonitor{
			{Name: heap, ConfigType: &overload.ResourceMonitor_TypedConfig{TypedConfig: mustAny(&fixedheap.FixedHeapConfig{MaxHeapSizeBytes: maxHeap})}},
			{Name: conns, ConfigType: &overload.ResourceMonitor_TypedConfig{TypedConfig: mustAny(&downstreamconns.DownstreamConnectionsConfig{MaxActiveDownstreamConnections: int64(maxConns)})}},
		},
		Actions: []*overload.OverloadAction{
			{Name: "envoy.overload_actions.shrink_heap", Triggers: threshold(heap, 0.95)},
			{Name: "envoy.overload_actions.stop_accepting_requests", Triggers: threshold(heap, 0.98)},
			{Name: "envoy.overload_actions.reduce_timeouts", Triggers: []*overload.Trigger{{Name: heap,
				TriggerOneof: &overload.Trigger_Scaled{Scaled: &overload.ScaledTrigger{ScalingThreshold: 0.85, SaturationThreshold: 0.95}}}},
				TypedConfig: mustAny(&overload.ScaleTimersOverloadActionConfig{TimerScaleFactors: []*overload.ScaleTimersOverloadActionConfig_ScaleTimer{{
					Timer:          overload.ScaleTimersOverloadActionConfig_HTTP_DOWNSTREAM_CONNECTION_IDLE,
					OverloadAdjust: &overload.ScaleTimersOverloadActionConfig_ScaleTimer_MinScale{MinScale: &typev3.Percent{Value: 25}},
				}}})},
		},
	}
}

func socket(host string, port uint32) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Address: host, PortSpecifier: &core.SocketAddress_PortValue{PortValue: port},
	}}}
}

func mustAny(m proto.Message) *anypb.Any {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, deterministic); err != nil {
		panic(err)
	}
	return a
}
