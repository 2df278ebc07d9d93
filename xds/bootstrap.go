package xds

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
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
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
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
	// NodeMetadata are more string fields of the node's metadata, such as
	// the key of xds.rollout.canary_label set to "true" on a canary.
	NodeMetadata   map[string]string
	XDSAddress     string // HOST:PORT of the control plane
	Delta          bool   // incremental xDS
	AdminAddress   string // Envoy's admin, loopback by default
	AdminPort      uint32
	MaxHeapBytes   uint64 // 0: no overload manager at all
	MaxConnections uint64
	// TLS, when set, makes the xDS connection mTLS (xds.security.tls).
	TLS *BootstrapTLS
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

// node is the bootstrap's node: its id, its group as node.cluster, and
// the metadata asked for. A key given twice with two values is refused
// rather than one of them silently winning.
func (o BootstrapOptions) node() (*core.Node, error) {
	node := &core.Node{Id: o.NodeID, Cluster: o.NodeGroup}
	fields := map[string]*structpb.Value{}
	for k, v := range o.NodeMetadata {
		if strings.TrimSpace(k) == "" {
			return nil, errors.New("--node-metadata: a key is empty")
		}
		fields[k] = structpb.NewStringValue(v)
	}
	if k := o.GroupMetadataKey; k != "" {
		if v, ok := o.NodeMetadata[k]; ok && v != o.NodeGroup {
			return nil, fmt.Errorf("--node-metadata %s=%s: --group-metadata-key sets %s to the group %q", k, v, k, o.NodeGroup)
		}
		fields[k] = structpb.NewStringValue(o.NodeGroup)
	}
	if len(fields) > 0 {
		node.Metadata = &structpb.Struct{Fields: fields}
	}
	return node, nil
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
	node, err := o.node()
	if err != nil {
		return nil, err
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
	if o.TLS != nil {
		ts, err := o.TLS.transportSocket(host)
		if err != nil {
			return nil, err
		}
		xds.TransportSocket = ts
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

// BootstrapTLS is the xDS connection's mTLS as Envoy sees it: file paths
// inside Envoy's filesystem. Envoy reloads files only for secrets that come
// over SDS, so the certificate and the CA are SDS secrets read from two
// small files (SDSFiles) that name the certificate files and the directory
// to watch; a certificate rotated there (a Kubernetes Secret's symlink
// swap, or any rename into the directory) is taken without a restart.
type BootstrapTLS struct {
	CertFile, KeyFile, CAFile string
	// ServerName is the DNS name (or IP) the control plane's certificate
	// must hold, also sent as SNI; empty: the host of XDSAddress.
	ServerName string
	// SDSDir is where Envoy finds the files SDSFiles returns.
	SDSDir string
}

// The SDS files of the xDS connection, and the secrets they hold.
const (
	SDSCertificateFile = "xds-tls-certificate.yaml"
	SDSValidationFile  = "xds-validation-context.yaml"
	sdsCertificate     = "protogate-xds-client-certificate"
	sdsValidation      = "protogate-xds-ca"
)

// check refuses a partial or relative set: Envoy resolves relative paths
// against its working directory, which is rarely what was meant.
func (t *BootstrapTLS) check() error {
	for _, f := range []struct{ flag, v string }{
		{"--tls-cert", t.CertFile}, {"--tls-key", t.KeyFile}, {"--tls-ca", t.CAFile}, {"--tls-sds-dir", t.SDSDir},
	} {
		if f.v == "" {
			return errors.New("--tls-cert, --tls-key and --tls-ca go together (and --tls-sds-dir must not be empty)")
		}
		if !filepath.IsAbs(f.v) {
			return fmt.Errorf("%s %q: give an absolute path, as Envoy will read it", f.flag, f.v)
		}
	}
	return nil
}

// serverName is the name the control plane's certificate must carry.
func (t *BootstrapTLS) serverName(xdsHost string) string {
	if t.ServerName != "" {
		return t.ServerName
	}
	return xdsHost
}

// transportSocket is the xDS cluster's TLS: the client certificate and the
// CA from the SDS files, the control plane's name checked against its
// certificate's SANs (Envoy checks only the chain unless told a name).
func (t *BootstrapTLS) transportSocket(xdsHost string) (*core.TransportSocket, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	name := t.serverName(xdsHost)
	san := &tlsv3.SubjectAltNameMatcher{SanType: tlsv3.SubjectAltNameMatcher_DNS,
		Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: name}}}
	sni := name
	if _, err := netip.ParseAddr(name); err == nil {
		san.SanType, sni = tlsv3.SubjectAltNameMatcher_IP_ADDRESS, "" // SNI cannot carry an IP
	}
	ctx := &tlsv3.UpstreamTlsContext{
		Sni: sni,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsParams:                      &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
			AlpnProtocols:                  []string{"h2"}, // gRPC servers require it
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{t.sdsConfig(sdsCertificate, SDSCertificateFile)},
			ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{san}},
				ValidationContextSdsSecretConfig: t.sdsConfig(sdsValidation, SDSValidationFile),
			}},
		},
	}
	if err := ctx.ValidateAll(); err != nil {
		return nil, fmt.Errorf("xds tls: %w", err)
	}
	return &core.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)}}, nil
}

// sdsConfig names a secret read from a file of SDSDir; a rename in that
// directory (a ConfigMap update) reloads the file.
func (t *BootstrapTLS) sdsConfig(secret, file string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: secret, SdsConfig: &core.ConfigSource{
		ResourceApiVersion: core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_PathConfigSource{PathConfigSource: &core.PathConfigSource{
			Path:             filepath.Join(t.SDSDir, file),
			WatchedDirectory: &core.WatchedDirectory{Path: t.SDSDir},
		}},
	}}
}

// SDSFiles are the two files the bootstrap's TLS names, by file name
// (under SDSDir): each a discovery response holding one secret, as Envoy
// reads SDS from a file. The secrets watch the directories of the
// certificate files, so Envoy re-reads them when they are replaced.
func (t *BootstrapTLS) SDSFiles() (map[string]*discovery.DiscoveryResponse, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	file := func(name string) *core.DataSource {
		return &core.DataSource{Specifier: &core.DataSource_Filename{Filename: name}}
	}
	cert := &tlsv3.Secret{Name: sdsCertificate, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: file(t.CertFile),
		PrivateKey:       file(t.KeyFile),
		WatchedDirectory: &core.WatchedDirectory{Path: filepath.Dir(t.CertFile)},
	}}}
	ca := &tlsv3.Secret{Name: sdsValidation, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
		TrustedCa:        file(t.CAFile),
		WatchedDirectory: &core.WatchedDirectory{Path: filepath.Dir(t.CAFile)},
	}}}
	out := map[string]*discovery.DiscoveryResponse{}
	for name, s := range map[string]*tlsv3.Secret{SDSCertificateFile: cert, SDSValidationFile: ca} {
		if err := s.ValidateAll(); err != nil {
			return nil, fmt.Errorf("sds secret %s: %w", s.Name, err)
		}
		out[name] = &discovery.DiscoveryResponse{Resources: []*anypb.Any{mustAny(s)}}
	}
	return out, nil
}
