package config

import "strings"

// Config is a whole protocol mapping: one file, or a directory of files merged.
type Config struct {
	Listeners []Listener `json:"listeners" doc:"Where Envoy accepts traffic and what it does with it."`
	Upstreams Upstreams  `json:"upstreams" doc:"The services routes reach: Dubbo providers, NATS servers, HTTP and TCP backends."`
	JavaTypes []JavaType `json:"java_types" doc:"Java classes (POJOs and enums) that Dubbo parameters and fields may use. A class a route uses must be declared here, so the shape of every argument comes from this file, never from the request."`
	Bridge    Bridge     `json:"bridge" doc:"The bridge HTTP server that turns HTTP into Dubbo calls and NATS publishes, and how Envoy reaches it."`
	XDS       XDS        `json:"xds" doc:"The xDS control plane Envoy connects to."`
	Tracing   Tracing    `json:"tracing" doc:"Where Envoy and the bridges send their spans. Trace context (W3C traceparent, tracestate, baggage) is passed on to Dubbo and NATS whether or not spans are exported."`
}

// Tracing is the OpenTelemetry export of Envoy's and the bridges' spans.
type Tracing struct {
	OTLPEndpoint  string  `json:"otlp_endpoint" format:"endpoint" doc:"HOST:PORT of an OpenTelemetry collector's OTLP/gRPC receiver. Set: the bridges export spans there and Envoy's HTTP listeners trace to it. Empty: nothing is exported, at no cost." example:"otel-collector.observability:4317"`
	SamplePercent float64 `json:"sample_percent" default:"100" min:"0" max:"100" doc:"Share of new traces sampled, in percent; a request that arrives with a traceparent follows its caller's decision."`
	ServiceName   string  `json:"service_name" default:"protogate" doc:"The service.name of the spans (the bridges add .bridge)."`
}

// Listener protocols.
const (
	ProtocolHTTP  = "http"
	ProtocolDubbo = "dubbo"
	ProtocolTCP   = "tcp"
)

// Listener is one Envoy listener.
type Listener struct {
	Name           string         `json:"name" required:"true" format:"name" doc:"Unique listener name; also its stat prefix and route configuration name." example:"public"`
	Address        string         `json:"address" required:"true" format:"listen" doc:"IP and port Envoy listens on." example:"0.0.0.0:10000"`
	Protocol       string         `json:"protocol" default:"http" enum:"http,dubbo,tcp" doc:"http: HTTP routes to bridges and HTTP upstreams; dubbo: Dubbo clients to Dubbo providers (dubbo_proxy); tcp: a plain TCP proxy to one upstream."`
	Upstream       string         `json:"upstream" doc:"tcp listeners only: the upstream (nats or tcp) connections are proxied to." example:"events"`
	RequestTimeout Duration       `json:"request_timeout" default:"60s" min:"1s" max:"1h" doc:"http listeners: the longest a whole request (headers and body) may take to arrive."`
	IdleTimeout    Duration       `json:"idle_timeout" default:"5m" min:"1s" max:"24h" doc:"http listeners: a stream with no activity for this long is reset; tcp listeners: the connection idle timeout."`
	MaxHeaderSize  Size           `json:"max_header_size" default:"60KiB" min:"1KiB" max:"96KiB" doc:"http listeners: the largest request header block Envoy accepts (Envoy caps it at 96 KiB)."`
	Filters        HTTPFilters    `json:"filters" doc:"http listeners: HTTP filters enabled on this listener with their base settings. The chain order is fixed and reads as listed here."`
	NetworkFilters NetworkFilters `json:"network_filters" doc:"Network filters applied to every connection before the protocol filter."`
	AccessLog      AccessLog      `json:"access_log" doc:"http listeners: one log line per request, written by Envoy and by the bridges."`
	Routes         []Route        `json:"routes" doc:"http listeners: HTTP routes; dubbo listeners: Dubbo routes (match on service, group, version, method)."`
	// Envoy's on-demand CDS (translator/filter_on_demand.go, xds/ondemand.go).
	OnDemandClusters bool `json:"on_demand_clusters" default:"false" doc:"http listeners only: Envoy loads the cluster of an HTTP-upstream route when a request first needs it (on-demand CDS over delta ADS) instead of holding every cluster of its group; bridge clusters and clusters other listeners or filters need stay loaded. Needs Envoys that speak delta xDS (protogate bootstrap --delta); a state-of-the-world Envoy still gets every cluster." example:"true"`
	// Envoy's VHDS (translator/route.go, xds/vhds.go).
	OnDemandHosts bool `json:"on_demand_hosts" default:"false" doc:"http listeners only: Envoy loads the routes of a Host when a request first names it (VHDS over delta ADS), and an edit resends only the hosts whose routes changed, instead of the listener's whole route table. Pays off when routes are split by match.hosts: a host gets its own routes and the routes without hosts. Needs Envoys that speak delta xDS (protogate bootstrap --delta); a state-of-the-world Envoy still gets the whole table." example:"true"`
}

// AccessLog turns on the request log of an http listener.
type AccessLog struct {
	Enabled       bool    `json:"enabled" default:"false" doc:"Log every request of the listener: Envoy to its stdout, the bridges as one structured line each (route, upstream, method, status, duration, bytes in and out, trace id, Dubbo method or NATS subject template)."`
	SamplePercent float64 `json:"sample_percent" default:"100" min:"0" max:"100" doc:"Share of requests logged, in percent. The bridges log every 5xx answer whatever the share."`
}

// Route is one route of a listener.
type Route struct {
	Name      string       `json:"name" format:"name" doc:"Unique route name across the whole mapping (required on http listeners). Envoy passes it to the bridge in the route header." example:"get-user"`
	Match     RouteMatch   `json:"match" doc:"What requests this route takes."`
	Dubbo     *DubboTarget `json:"dubbo" doc:"http listeners: call a Dubbo method through the bridge."`
	NATS      *NATSTarget  `json:"nats" doc:"http listeners: publish to NATS through the bridge."`
	HTTP      *HTTPTarget  `json:"http" doc:"http listeners: proxy to a plain HTTP upstream."`
	Upstream  string       `json:"upstream" doc:"dubbo listeners only: the Dubbo upstream matching calls go to." example:"users"`
	BodyLimit Size         `json:"body_limit" min:"1" max:"64MiB" doc:"The largest request body this route accepts (413 beyond it). Default: bridge.max_body_size." example:"256KiB"`
	Filters   RouteFilters `json:"filters" doc:"Per-route settings of filters the listener enables."`
}

// RouteMatch selects requests. HTTP listeners use path, prefix or regex
// (exactly one) with methods and headers; dubbo listeners use service, group,
// version and method.
type RouteMatch struct {
	Path    string        `json:"path" doc:"http: a path template; literal segments, {var} for one segment, {var=**} as the last segment for the rest of the path." example:"/users/{id}"`
	Prefix  string        `json:"prefix" doc:"http: a path prefix." example:"/api/"`
	Regex   string        `json:"regex" doc:"http: an RE2 regular expression the whole path must match." example:"^/v[12]/status$"`
	Methods []string      `json:"methods" enum:"GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS" doc:"http: the methods accepted; empty means any." example:"[GET]"`
	Headers []HeaderMatch `json:"headers" doc:"http: headers that must match too."`
	Hosts   []string      `json:"hosts" doc:"http: the Host (:authority) values the route answers: exact names, with a port where clients send one, or a leading wildcard (*.example.com matches one or more labels); empty means any host." example:"[api.example.com, \"*.api.example.com\"]"`
	Service string        `json:"service" doc:"dubbo: the Java interface name (exact), or a prefix ending in .* ." example:"com.example.UserService"`
	Group   string        `json:"group" doc:"dubbo: the service group." example:"blue"`
	Version string        `json:"version" doc:"dubbo: the service version." example:"1.0.0"`
	Method  string        `json:"method" doc:"dubbo: the method name." example:"getUser"`
}

// HeaderMatch matches one request header; exactly one of exact, prefix,
// regex and present is set.
type HeaderMatch struct {
	Name    string `json:"name" required:"true" format:"header" doc:"The header name." example:"x-tenant"`
	Exact   string `json:"exact" doc:"The value must equal this." example:"acme"`
	Prefix  string `json:"prefix" doc:"The value must start with this." example:"acme-"`
	Regex   string `json:"regex" doc:"The value must match this RE2 expression." example:"^[a-z]+$"`
	Present bool   `json:"present" doc:"The header must be present, with any value." example:"true"`
	Invert  bool   `json:"invert" doc:"Match when the condition above does not hold." example:"false"`
}

// Dubbo upstream protocols.
const (
	DubboProtocolDubbo  = "dubbo"
	DubboProtocolTriple = "triple"
)

// DubboTarget is a Dubbo generic call made by the bridge.
type DubboTarget struct {
	Upstream     string            `json:"upstream" required:"true" doc:"The Dubbo upstream (upstreams.dubbo[].name)." example:"users"`
	Service      string            `json:"service" required:"true" doc:"The Java interface." example:"com.example.UserService"`
	Version      string            `json:"version" doc:"The service version." example:"1.0.0"`
	Group        string            `json:"group" doc:"The service group." example:"blue"`
	Method       string            `json:"method" required:"true" doc:"The Java method name." example:"getUser"`
	Params       []DubboParam      `json:"params" doc:"The method's parameters in order, each with where its value comes from and its Java type."`
	Timeout      Duration          `json:"timeout" min:"1ms" max:"5m" doc:"Call timeout. Default: the upstream's timeout." example:"2s"`
	Idempotent   bool              `json:"idempotent" default:"false" doc:"The method is safe to repeat; only then are retries allowed."`
	Retries      int               `json:"retries" default:"0" min:"0" max:"5" doc:"Retries on another provider after a failure (idempotent methods only)."`
	Attachments  []Attachment      `json:"attachments" doc:"Request headers passed to the provider as Dubbo attachments. Only these; reserved keys are refused."`
	Exceptions   []ExceptionStatus `json:"exceptions" doc:"HTTP status for a Java exception class the provider throws (default 502)."`
	Returns      string            `json:"returns" doc:"The method's Java return type, when the result needs it to be rendered: a byte[] that generic invocation delivers as a list of numbers is still base64." example:"byte[]"`
	IncludeClass bool              `json:"include_class" default:"false" doc:"Keep the \"class\" keys of result objects in the JSON response."`
}

// DubboParam is one argument of a Dubbo method.
type DubboParam struct {
	Name     string `json:"name" doc:"A name used in error messages; defaults to the source." example:"id"`
	From     string `json:"from" required:"true" doc:"Where the value comes from: path.VAR, query.NAME, header.NAME, body (the whole JSON body) or body.FIELD." example:"path.id"`
	Type     string `json:"type" required:"true" doc:"The Java type: a primitive, a boxed type, java.lang.String, java.math.BigDecimal/BigInteger, java.util.Date, an array (T[]), java.util.List/Set/Map with element types, or a class declared in java_types." example:"java.lang.String"`
	Optional bool   `json:"optional" default:"false" doc:"A missing value is sent as null instead of being a 400. Primitives cannot be optional."`
}

// Attachment passes one request header to the provider as an attachment.
type Attachment struct {
	Header string `json:"header" required:"true" format:"header" doc:"The request header." example:"x-trace-id"`
	Name   string `json:"name" required:"true" doc:"The attachment key. Keys Dubbo, triple, gRPC or dubbo-go read (interface, timeout, dubbo.tag, environment, tri-*, grpc-*, content-type, ...) are refused. Triple carries attachments as HTTP/2 headers, so a triple provider sees the key in lower case." example:"traceId"`
}

// ExceptionStatus maps a Java exception class to an HTTP status.
type ExceptionStatus struct {
	Class  string `json:"class" required:"true" doc:"The exception's fully qualified class name." example:"java.lang.IllegalArgumentException"`
	Status int    `json:"status" required:"true" min:"400" max:"599" doc:"The HTTP status to answer with." example:"400"`
}

// NATS publish modes.
const (
	NATSModeJetStream = "jetstream"
	NATSModeCore      = "core"
	NATSModeRequest   = "request"
)

// NATSTarget is a NATS publish or request made by the bridge.
type NATSTarget struct {
	Upstream           string   `json:"upstream" required:"true" doc:"The NATS upstream (upstreams.nats[].name)." example:"events"`
	Subject            string   `json:"subject" required:"true" doc:"The subject template. Literal tokens, and {var} tokens filled from the path ({var}), the query ({query.NAME}) or a header ({header.NAME}); a variable fills a whole token; the first token is literal and never a system prefix." example:"orders.{region}.created"`
	Mode               string   `json:"mode" default:"jetstream" enum:"jetstream,core,request" doc:"jetstream: publish and answer 201 after the stream's ack; core: fire-and-forget (at most once), 202; request: NATS request-reply, the reply becomes the response."`
	Timeout            Duration `json:"timeout" default:"2s" min:"1ms" max:"5m" doc:"How long to wait for the ack or the reply."`
	IdempotencyHeader  string   `json:"idempotency_header" default:"Idempotency-Key" format:"header" doc:"jetstream: the request header whose value becomes Nats-Msg-Id for de-duplication."`
	Headers            []string `json:"headers" format:"header" doc:"Request headers copied to the NATS message (Content-Type always is)." example:"[x-tenant]"`
	ReplyHeaders       []string `json:"reply_headers" format:"header" doc:"request mode: reply headers copied to the HTTP response." example:"[x-result]"`
	MaxTokenLength     int      `json:"max_token_length" default:"128" min:"1" max:"1024" doc:"The longest value a subject variable may take, in bytes (after URL-decoding); longer is a 400 and nothing is sent."`
	ForwardCredentials []string `json:"forward_credentials" format:"header" doc:"Credential headers (Authorization, Cookie) the mapping means to copy to the message, in headers or as idempotency_header. Dangerous: every subscriber of the subject, and the stream's storage, then hold the caller's credentials; list one only for a consumer that must check the caller itself." example:"[authorization]"`
}

// HTTPTarget proxies to a plain HTTP upstream.
type HTTPTarget struct {
	Upstream      string   `json:"upstream" required:"true" doc:"The HTTP upstream (upstreams.http[].name)." example:"legacy"`
	Timeout       Duration `json:"timeout" default:"15s" min:"1ms" max:"5m" doc:"The route timeout."`
	PrefixRewrite string   `json:"prefix_rewrite" doc:"Replace the matched prefix with this (prefix matches only)." example:"/"`
	HostRewrite   string   `json:"host_rewrite" doc:"Set the Host header to this." example:"legacy.internal"`
	Idempotent    bool     `json:"idempotent" default:"false" doc:"Requests to this route are safe to repeat; only then are retries allowed."`
	Retries       int      `json:"retries" default:"0" min:"0" max:"5" doc:"Retries on connect failure, reset or 503 (idempotent routes only)."`
}

// Upstreams lists the services routes reach, one list per protocol.
type Upstreams struct {
	Dubbo []DubboUpstream `json:"dubbo" doc:"Dubbo providers, found directly or through a registry."`
	NATS  []NATSUpstream  `json:"nats" doc:"NATS servers or clusters."`
	HTTP  []HTTPUpstream  `json:"http" doc:"Plain HTTP services."`
	TCP   []TCPUpstream   `json:"tcp" doc:"Plain TCP services for tcp listeners."`
}

// DubboUpstream is a set of Dubbo providers.
type DubboUpstream struct {
	Name           string          `json:"name" required:"true" format:"name" doc:"Unique upstream name." example:"users"`
	Optional       bool            `json:"optional" default:"false" doc:"The bridges report ready while this upstream cannot be used (its routes answer 503 meanwhile)."`
	Registry       string          `json:"registry" format:"url" doc:"A registry to discover providers in; zookeeper://HOST:PORT. Exactly one of registry and urls." example:"zookeeper://127.0.0.1:2181"`
	URLs           []string        `json:"urls" format:"url" doc:"Providers to call directly: dubbo://HOST:PORT or tri://HOST:PORT." example:"[dubbo://127.0.0.1:20880]"`
	Protocol       string          `json:"protocol" default:"dubbo" enum:"dubbo,triple" doc:"The wire protocol to the providers (hessian2 serialization)."`
	Registration   string          `json:"registration" default:"interface" enum:"interface,application" doc:"How providers register: per interface or per application (Dubbo 3 service discovery)."`
	Timeout        Duration        `json:"timeout" default:"3s" min:"1ms" max:"5m" doc:"The default call timeout of routes to this upstream."`
	ConnectTimeout Duration        `json:"connect_timeout" default:"1s" min:"1ms" max:"1m" doc:"Envoy's connect timeout to these providers (dubbo listeners)."`
	MaxResponse    Size            `json:"max_response_size" default:"8MiB" min:"1KiB" max:"64MiB" doc:"The largest answer the bridge takes from these providers, over either protocol. A bigger one fails at once with 502 response_too_large, as soon as its size is known, never as a timeout."`
	Filters        UpstreamFilters `json:"filters" doc:"Cluster-level filters on Envoy's cluster for this upstream."`
}

// NATSUpstream is a NATS server or cluster.
type NATSUpstream struct {
	Name           string   `json:"name" required:"true" format:"name" doc:"Unique upstream name." example:"events"`
	Optional       bool     `json:"optional" default:"false" doc:"The bridges report ready while this upstream cannot be used (its routes answer 503 meanwhile)."`
	URLs           []string `json:"urls" format:"url" doc:"Server URLs: nats://HOST:PORT or tls://HOST:PORT. Required unless embedded." example:"[nats://127.0.0.1:4222]"`
	Embedded       bool     `json:"embedded" default:"false" doc:"Start an in-process NATS server with JetStream (development only: one node, no replication)."`
	DataDir        string   `json:"data_dir" doc:"embedded: where JetStream stores data. Default: a directory under the system temp dir." example:"/var/lib/protogate/nats"`
	ConnectionName string   `json:"connection_name" default:"protogate" doc:"The client name shown by the NATS server."`
	Credentials    string   `json:"credentials" doc:"A .creds file (JWT and nkey seed)." example:"/etc/protogate/nats.creds"`
	NKeySeedFile   string   `json:"nkey_seed_file" doc:"A file holding an nkey seed." example:"/etc/protogate/nats.nk"`
	User           string   `json:"user" doc:"A user name; the password comes from password_file." example:"bridge"`
	PasswordFile   string   `json:"password_file" doc:"A file holding the password for user." example:"/etc/protogate/nats.pass"`
	TokenFile      string   `json:"token_file" doc:"A file holding an auth token." example:"/etc/protogate/nats.token"`
	TLS            *TLS     `json:"tls" doc:"TLS to the servers."`
	ConnectTimeout Duration `json:"connect_timeout" default:"2s" min:"1ms" max:"1m" doc:"Timeout of one connection attempt."`
	ReconnectWait  Duration `json:"reconnect_wait" default:"2s" min:"10ms" max:"1m" doc:"Base wait between reconnect attempts (with jitter; reconnects never stop)."`
	Provision      bool     `json:"provision" default:"false" doc:"Create the streams below when they are missing, at start and on every reconnect; an existing stream is left as it is unless update_streams is set. Off: they must exist."`
	UpdateStreams  bool     `json:"update_streams" default:"false" doc:"With provision: also update an existing stream whose subjects, storage, replicas or duplicate window differ from these, logging each difference applied. Off: an operator's changes to an existing stream are kept."`
	MaxReconnects  int      `json:"max_reconnects" default:"-1" min:"-1" max:"1000000" doc:"Reconnect attempts after which the NATS client gives a connection up (-1: never). A connection given up on, for this or any other reason, is replaced with backoff."`
	MaxControlLine Size     `json:"max_control_line" default:"4KiB" min:"256" max:"1MiB" doc:"The server's max_control_line (nats-server's default is 4KiB). A subject or header set that would exceed it is refused with a 400 before sending, since the server would close the connection."`
	Streams        []Stream `json:"streams" doc:"JetStream streams this upstream expects (created only with provision)."`
}

// TLS holds client TLS files.
type TLS struct {
	CA         string `json:"ca" doc:"A PEM file of CAs to trust." example:"/etc/protogate/ca.pem"`
	Cert       string `json:"cert" doc:"A PEM client certificate (with key)." example:"/etc/protogate/client.pem"`
	Key        string `json:"key" doc:"The PEM key of cert." example:"/etc/protogate/client-key.pem"`
	ServerName string `json:"server_name" doc:"The name to verify the server certificate against." example:"nats.internal"`
}

// Stream is a JetStream stream definition.
type Stream struct {
	Name            string   `json:"name" required:"true" doc:"The stream name." example:"ORDERS"`
	Subjects        []string `json:"subjects" required:"true" doc:"Subjects the stream stores (wildcards allowed)." example:"[orders.>]"`
	Storage         string   `json:"storage" default:"file" enum:"file,memory" doc:"Where messages are kept."`
	Replicas        int      `json:"replicas" default:"1" min:"1" max:"5" doc:"Copies kept in a cluster."`
	DuplicateWindow Duration `json:"duplicate_window" default:"2m" min:"1s" max:"24h" doc:"How long a Nats-Msg-Id is remembered for de-duplication."`
}

// HTTPUpstream is a plain HTTP service.
type HTTPUpstream struct {
	Name            string           `json:"name" required:"true" format:"name" doc:"Unique upstream name." example:"legacy"`
	Optional        bool             `json:"optional" default:"false" doc:"The bridges report ready while this upstream cannot be used (its routes answer 503 meanwhile)."`
	Endpoints       []string         `json:"endpoints" required:"true" format:"endpoint" doc:"HOST:PORT of each instance; hostnames are resolved by Envoy (STRICT_DNS)." example:"[127.0.0.1:9000]"`
	TLS             bool             `json:"tls" default:"false" doc:"Speak TLS to the instances."`
	HTTP2           bool             `json:"http2" default:"false" doc:"Speak HTTP/2 to the instances."`
	ConnectTimeout  Duration         `json:"connect_timeout" default:"1s" min:"1ms" max:"1m" doc:"Envoy's connect timeout."`
	HealthCheck     *HealthCheck     `json:"health_check" doc:"Active HTTP health checking."`
	CircuitBreakers *CircuitBreakers `json:"circuit_breakers" doc:"Limits Envoy holds to towards this upstream."`
	Filters         UpstreamFilters  `json:"filters" doc:"Cluster-level filters on Envoy's cluster for this upstream."`
}

// TCPUpstream is a plain TCP service.
type TCPUpstream struct {
	Name           string   `json:"name" required:"true" format:"name" doc:"Unique upstream name." example:"redis"`
	Endpoints      []string `json:"endpoints" required:"true" format:"endpoint" doc:"HOST:PORT of each instance." example:"[127.0.0.1:6379]"`
	ConnectTimeout Duration `json:"connect_timeout" default:"1s" min:"1ms" max:"1m" doc:"Envoy's connect timeout."`
}

// HealthCheck is an active HTTP health check.
type HealthCheck struct {
	Path               string   `json:"path" default:"/healthz" doc:"The path probed with GET; 2xx is healthy."`
	Interval           Duration `json:"interval" default:"5s" min:"100ms" max:"5m" doc:"Time between probes."`
	Timeout            Duration `json:"timeout" default:"1s" min:"10ms" max:"1m" doc:"A probe slower than this fails."`
	HealthyThreshold   int      `json:"healthy_threshold" default:"1" min:"1" max:"100" doc:"Passing probes before an instance is healthy again."`
	UnhealthyThreshold int      `json:"unhealthy_threshold" default:"3" min:"1" max:"100" doc:"Failing probes before an instance is unhealthy."`
}

// CircuitBreakers are Envoy's per-cluster limits.
type CircuitBreakers struct {
	MaxConnections     int `json:"max_connections" default:"1024" min:"1" max:"1000000" doc:"Connections Envoy opens at most."`
	MaxPendingRequests int `json:"max_pending_requests" default:"1024" min:"1" max:"1000000" doc:"Requests waiting for a connection at most."`
	MaxRequests        int `json:"max_requests" default:"1024" min:"1" max:"1000000" doc:"Requests in flight at most."`
	MaxRetries         int `json:"max_retries" default:"3" min:"0" max:"1000000" doc:"Retries in flight at most."`
}

// JavaType declares a POJO (with fields) or an enum (with constants).
type JavaType struct {
	Class  string      `json:"class" required:"true" doc:"The fully qualified class name." example:"com.example.User"`
	Fields []JavaField `json:"fields" doc:"A POJO's fields with their Java types (exactly one of fields and enum)."`
	Enum   []string    `json:"enum" doc:"An enum's constants." example:"[ACTIVE, SUSPENDED]"`
}

// JavaField is one field of a POJO.
type JavaField struct {
	Name string `json:"name" required:"true" doc:"The field name as the provider declares it." example:"name"`
	Type string `json:"type" required:"true" doc:"The field's Java type (the same forms as params)." example:"java.lang.String"`
}

// Bridge configures the bridge HTTP server and Envoy's clusters to it.
type Bridge struct {
	Address           string           `json:"address" restart:"true" default:"127.0.0.1:8081" format:"listen" env:"true" doc:"Where the bridge HTTP server listens (port 0 picks a free one)."`
	Endpoints         []string         `json:"endpoints" format:"endpoint" env:"true" doc:"HOST:PORT Envoy reaches the bridges at. Default: address." example:"[bridges.protogate.svc:8081]"`
	HTTP2             bool             `json:"http2" default:"false" env:"true" doc:"Envoy speaks HTTP/2 (h2c) to the bridges."`
	RouteHeader       string           `json:"route_header" default:"x-protogate-route" format:"header" env:"true" doc:"The header Envoy sets to the route name (removing any client-sent copy)."`
	ReadHeaderTimeout Duration         `json:"read_header_timeout" restart:"true" default:"5s" min:"100ms" max:"5m" env:"true" doc:"Time allowed to read request headers."`
	ReadTimeout       Duration         `json:"read_timeout" restart:"true" default:"30s" min:"100ms" max:"1h" env:"true" doc:"Time allowed to read a whole request."`
	WriteTimeout      Duration         `json:"write_timeout" restart:"true" default:"60s" min:"100ms" max:"1h" env:"true" doc:"Time allowed to write a response, from the end of the request headers."`
	IdleTimeout       Duration         `json:"idle_timeout" restart:"true" default:"2m" min:"1s" max:"1h" env:"true" doc:"How long an idle keep-alive connection stays open."`
	ShutdownTimeout   Duration         `json:"shutdown_timeout" restart:"true" default:"15s" min:"0s" max:"10m" env:"true" doc:"How long shutdown waits for requests in flight."`
	MaxHeaderSize     Size             `json:"max_header_size" restart:"true" default:"64KiB" min:"1KiB" max:"1MiB" env:"true" doc:"The largest request header block."`
	MaxBodySize       Size             `json:"max_body_size" default:"1MiB" min:"1" max:"64MiB" env:"true" doc:"The default per-route body limit."`
	MaxJSONDepth      int              `json:"max_json_depth" default:"32" min:"1" max:"1000" env:"true" doc:"The deepest nesting accepted in a JSON body."`
	ConnectTimeout    Duration         `json:"connect_timeout" default:"1s" min:"1ms" max:"1m" env:"true" doc:"Envoy's connect timeout to the bridges."`
	BodyTimeout       Duration         `json:"body_timeout" default:"10s" min:"100ms" max:"1h" env:"true" doc:"The longest a request body may take to arrive once its headers are read; a slower one is a 408."`
	MaxConnections    int              `json:"max_connections" restart:"true" default:"1024" min:"1" max:"1000000" env:"true" doc:"Client connections the bridge keeps open at most; one more is answered 503 with Retry-After and closed."`
	MaxInFlight       int              `json:"max_in_flight" default:"256" min:"1" max:"100000" env:"true" doc:"Requests the bridge serves at once (sized for one core); one more is answered 503 with Retry-After at once."`
	HealthCheck       HealthCheck      `json:"health_check" doc:"Envoy's active health check of the bridges (path /healthz)."`
	CircuitBreakers   *CircuitBreakers `json:"circuit_breakers" doc:"Envoy's limits towards the bridges."`
	Discovery         string           `json:"discovery" default:"static" enum:"static,xds" doc:"How Envoy finds the bridges. static: bridge.endpoints. xds: the bridges that follow the control plane (protogate bridge --xds) announce their address, and the bridge clusters' endpoints are the group's connected bridges holding a route table; one that shuts down leaves them first."`
	DrainWindow       Duration         `json:"drain_window" default:"3s" min:"0s" max:"5m" env:"true" doc:"discovery xds: how long a stopping bridge keeps serving after it has left the endpoints, so Envoys have taken the change before its listener closes."`
	OpenAPIPath       string           `json:"openapi_path" doc:"Where the bridges serve the OpenAPI 3.1 description of the routes they serve (GET, no route header). Empty: not served." example:"/openapi.json"`
}

// Bridge discovery modes.
const (
	BridgeDiscoveryStatic = "static"
	BridgeDiscoveryXDS    = "xds"
)

// XDS configures the control plane server.
type XDS struct {
	Address           string      `json:"address" restart:"true" default:"127.0.0.1:18000" format:"listen" env:"true" doc:"Where the ADS gRPC server listens (port 0 picks a free one)."`
	AdminAddress      string      `json:"admin_address" restart:"true" default:"127.0.0.1:19000" format:"listen" env:"true" doc:"Where the admin HTTP server (/healthz, /readyz, /metrics, /status, /config_dump) listens."`
	GroupMetadataKey  string      `json:"group_metadata_key" restart:"true" env:"true" doc:"A node metadata key naming the node's group. Default: the node's cluster field." example:"protogate.group"`
	Groups            []NodeGroup `json:"groups" doc:"Node groups and the listeners each gets. Default: one group named default with every listener."`
	RetiredGroups     []string    `json:"retired_groups" doc:"Groups this mapping means to leave with no listeners. A reload that removes or empties a group whose nodes are connected is refused unless the group is listed here." example:"[canary]"`
	MaxMessageSize    Size        `json:"max_message_size" restart:"true" default:"16MiB" min:"1MiB" max:"256MiB" env:"true" doc:"The largest gRPC message sent or received."`
	MaxStreamsPerPeer int         `json:"max_streams_per_peer" restart:"true" default:"16" min:"1" max:"10000" env:"true" doc:"Concurrent xDS streams one connection may open."`
	KeepaliveTime     Duration    `json:"keepalive_time" restart:"true" default:"30s" min:"1s" max:"1h" env:"true" doc:"Ping an idle connection after this long."`
	KeepaliveTimeout  Duration    `json:"keepalive_timeout" restart:"true" default:"5s" min:"1s" max:"5m" env:"true" doc:"Close a connection whose ping is unanswered this long."`
	ReloadDebounce    Duration    `json:"reload_debounce" restart:"true" default:"250ms" min:"0s" max:"1m" env:"true" doc:"Quiet time after a file change before reloading."`
	// Security and limits are defined in xdssecurity.go and xdslimits.go.
	Security XDSSecurity `json:"security" restart:"true" doc:"Who may connect to the ADS and admin servers, and how."`
	Rollout  *Rollout    `json:"rollout" restart:"true" doc:"Canary rollout: a new version goes to the canary nodes of each group first, and to the others once it baked cleanly."`
	Limits   XDSLimits   `json:"limits" restart:"true" doc:"Bounds on what xDS clients can make the control plane hold."`
}

// NodeGroup is a set of Envoy nodes served the same listeners.
type NodeGroup struct {
	Name      string   `json:"name" required:"true" format:"name" doc:"The group name nodes give as node.cluster (or the metadata key)." example:"edge"`
	Listeners []string `json:"listeners" required:"true" doc:"Names of the listeners this group gets." example:"[public]"`
}

// DubboService is one service a Dubbo upstream is called for.
type DubboService struct{ Service, Version, Group string }

// DubboServices lists the services routed to a Dubbo upstream: the bridge
// routes' services and the dubbo listeners' exact service matches (a prefix
// match, or none, names no interface a registry can be asked about).
func (c *Config) DubboServices(upstream string) []DubboService {
	var out []DubboService
	for _, l := range c.Listeners {
		for _, r := range l.Routes {
			switch {
			case r.Dubbo != nil && r.Dubbo.Upstream == upstream:
				out = append(out, DubboService{r.Dubbo.Service, r.Dubbo.Version, r.Dubbo.Group})
			case l.Protocol == ProtocolDubbo && r.Upstream == upstream && r.Match.Service != "" && !strings.HasSuffix(r.Match.Service, ".*"):
				out = append(out, DubboService{r.Match.Service, r.Match.Version, r.Match.Group})
			}
		}
	}
	return out
}
