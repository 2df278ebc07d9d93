package xds

import (
	"strings"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/protogate/protogate/config"
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

// TestBootstrapNodeMetadata: --node-metadata reaches the node's metadata
// as the control plane reads it, so a bootstrap that sets the canary label
// makes its node a canary of xds.rollout; contradictions are refused.
func TestBootstrapNodeMetadata(t *testing.T) {
	const label = "protogate.canary"
	tests := []struct {
		name     string
		meta     map[string]string
		groupKey string
		canary   bool
		fields   int
		err      string
	}{
		{"none", nil, "", false, 0, ""},
		{"canary", map[string]string{label: "true"}, "", true, 1, ""},
		{"canary beside the group key", map[string]string{label: "true"}, "protogate.group", true, 2, ""},
		{"label not true", map[string]string{label: "false"}, "", false, 1, ""},
		{"another key", map[string]string{"zone": "a"}, "", false, 1, ""},
		{"the group key agrees", map[string]string{"protogate.group": "edge"}, "protogate.group", false, 1, ""},
		{"the group key contradicts", map[string]string{"protogate.group": "rpc"}, "protogate.group", false, 0, `sets protogate.group to the group "edge"`},
		{"empty key", map[string]string{"": "x"}, "", false, 0, "a key is empty"},
	}
	srv := &Server{opts: Options{Rollout: &config.Rollout{CanaryLabel: label}}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Bootstrap(BootstrapOptions{NodeID: "envoy-1", NodeGroup: "edge", XDSAddress: "127.0.0.1:18000",
				AdminAddress: "127.0.0.1", AdminPort: 9901, NodeMetadata: tt.meta, GroupMetadataKey: tt.groupKey})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The node as Envoy sends it: through its JSON form.
			js, err := protojson.Marshal(b.Node)
			if err != nil {
				t.Fatal(err)
			}
			var sent core.Node
			if err := protojson.Unmarshal(js, &sent); err != nil {
				t.Fatal(err)
			}
			if got := len(sent.GetMetadata().GetFields()); got != tt.fields {
				t.Errorf("metadata %v has %d fields, want %d", sent.GetMetadata(), got, tt.fields)
			}
			for k, v := range tt.meta {
				if got := sent.GetMetadata().GetFields()[k].GetStringValue(); got != v {
					t.Errorf("metadata %s = %q, want %q", k, got, v)
				}
			}
			if got := srv.isCanary(&sent); got != tt.canary {
				t.Errorf("canary = %v, want %v", got, tt.canary)
			}
		})
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

// TestBootstrapTLS: with TLS the xDS cluster gets Envoy's TLS transport
// socket, every typed config in it and in the SDS files validates, and the
// control plane's name is checked against its certificate.
func TestBootstrapTLS(t *testing.T) {
	tests := []struct {
		name, xds, serverName string
		san                   tlsv3.SubjectAltNameMatcher_SanType
		wantName, wantSNI     string
	}{
		{"by DNS name", "protogate-xds:18000", "", tlsv3.SubjectAltNameMatcher_DNS, "protogate-xds", "protogate-xds"},
		{"by IP", "127.0.0.1:18000", "", tlsv3.SubjectAltNameMatcher_IP_ADDRESS, "127.0.0.1", ""},
		{"server name given", "10.0.0.7:18000", "xds.protogate.svc", tlsv3.SubjectAltNameMatcher_DNS, "xds.protogate.svc", "xds.protogate.svc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bt := &BootstrapTLS{CertFile: "/etc/envoy/tls/tls.crt", KeyFile: "/etc/envoy/tls/tls.key", CAFile: "/etc/envoy/ca/ca.crt",
				ServerName: tt.serverName, SDSDir: "/etc/envoy"}
			b, err := Bootstrap(BootstrapOptions{NodeID: "envoy-1", NodeGroup: "edge", XDSAddress: tt.xds, AdminAddress: "127.0.0.1", AdminPort: 9901, TLS: bt})
			if err != nil {
				t.Fatal(err)
			}
			ts := b.StaticResources.Clusters[0].TransportSocket
			if ts.GetName() != "envoy.transport_sockets.tls" {
				t.Fatalf("transport socket %v", ts)
			}
			var up tlsv3.UpstreamTlsContext
			if err := ts.GetTypedConfig().UnmarshalTo(&up); err != nil {
				t.Fatal(err)
			}
			if err := up.ValidateAll(); err != nil {
				t.Fatal(err)
			}
			common := up.CommonTlsContext
			combined := common.GetCombinedValidationContext()
			sans := combined.GetDefaultValidationContext().GetMatchTypedSubjectAltNames()
			if len(sans) != 1 || sans[0].SanType != tt.san || sans[0].Matcher.GetExact() != tt.wantName || up.Sni != tt.wantSNI {
				t.Errorf("server name check %v, sni %q; want %v %q, sni %q", sans, up.Sni, tt.san, tt.wantName, tt.wantSNI)
			}
			if common.TlsParams.TlsMinimumProtocolVersion != tlsv3.TlsParameters_TLSv1_2 || len(common.AlpnProtocols) != 1 || common.AlpnProtocols[0] != "h2" {
				t.Errorf("tls params %v, alpn %v", common.TlsParams, common.AlpnProtocols)
			}
			// The secrets come from the SDS files, watched for renames.
			refs := map[string]*tlsv3.SdsSecretConfig{
				SDSCertificateFile: common.TlsCertificateSdsSecretConfigs[0],
				SDSValidationFile:  combined.ValidationContextSdsSecretConfig,
			}
			files, err := bt.SDSFiles()
			if err != nil {
				t.Fatal(err)
			}
			for file, ref := range refs {
				src := ref.SdsConfig.GetPathConfigSource()
				if src.GetPath() != "/etc/envoy/"+file || src.GetWatchedDirectory().GetPath() != "/etc/envoy" {
					t.Errorf("%s: sds config %v", file, ref.SdsConfig)
				}
				resp := files[file]
				if resp == nil || len(resp.Resources) != 1 {
					t.Fatalf("%s: %v", file, resp)
				}
				var s tlsv3.Secret
				if err := resp.Resources[0].UnmarshalTo(&s); err != nil {
					t.Fatal(err)
				}
				if err := s.ValidateAll(); err != nil {
					t.Fatal(err)
				}
				if s.Name != ref.Name {
					t.Errorf("%s holds secret %q, the bootstrap asks for %q", file, s.Name, ref.Name)
				}
			}
			var cert, ca tlsv3.Secret
			_ = files[SDSCertificateFile].Resources[0].UnmarshalTo(&cert)
			_ = files[SDSValidationFile].Resources[0].UnmarshalTo(&ca)
			tc := cert.GetTlsCertificate()
			if tc.CertificateChain.GetFilename() != bt.CertFile || tc.PrivateKey.GetFilename() != bt.KeyFile || tc.WatchedDirectory.GetPath() != "/etc/envoy/tls" {
				t.Errorf("certificate secret %v", tc)
			}
			vc := ca.GetValidationContext()
			if vc.TrustedCa.GetFilename() != bt.CAFile || vc.WatchedDirectory.GetPath() != "/etc/envoy/ca" {
				t.Errorf("validation secret %v", vc)
			}
		})
	}
}

func TestBootstrapTLSRefusesPartialFiles(t *testing.T) {
	full := BootstrapTLS{CertFile: "/c.crt", KeyFile: "/c.key", CAFile: "/ca.crt", SDSDir: "/etc/envoy"}
	tests := []struct {
		name string
		edit func(*BootstrapTLS)
		want string
	}{
		{"no key", func(b *BootstrapTLS) { b.KeyFile = "" }, "go together"},
		{"no CA", func(b *BootstrapTLS) { b.CAFile = "" }, "go together"},
		{"relative certificate", func(b *BootstrapTLS) { b.CertFile = "tls.crt" }, `--tls-cert "tls.crt": give an absolute path`},
		{"relative SDS dir", func(b *BootstrapTLS) { b.SDSDir = "sds" }, `--tls-sds-dir "sds": give an absolute path`},
	}
	for _, tt := range tests {
		bt := full
		tt.edit(&bt)
		_, err := Bootstrap(BootstrapOptions{NodeID: "e", NodeGroup: "g", XDSAddress: "127.0.0.1:18000", AdminAddress: "127.0.0.1", AdminPort: 9901, TLS: &bt})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
		if _, err := bt.SDSFiles(); err == nil {
			t.Errorf("%s: SDS files made", tt.name)
		}
	}
}
