package translator

// Cluster names carry a "/" that mapping names cannot hold, so a user's
// upstream never collides with a bridge cluster, and the protocol is visible
// in every Envoy stat.
const (
	BridgeDubboCluster = "protogate/bridge-dubbo"
	BridgeNATSCluster  = "protogate/bridge-nats"
	// CollectorCluster is the OpenTelemetry collector Envoy sends spans to.
	CollectorCluster = "protogate/otel-collector"
)

// UpstreamCluster names the Envoy cluster of an upstream.
func UpstreamCluster(protocol, name string) string { return protocol + "/" + name }

// Envoy extension names used in more than one file.
const (
	hcmName           = "envoy.filters.network.http_connection_manager"
	httpOptionsKey    = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	uriTemplateName   = "envoy.path.match.uri_template.uri_template_matcher"
	tlsTransportName  = "envoy.transport_sockets.tls"
	systemCABundle    = "/etc/ssl/certs/ca-certificates.crt"
	bridgeRetryPolicy = "connect-failure,refused-stream,reset"
	httpRetryPolicy   = "connect-failure,refused-stream,reset,503"
)
