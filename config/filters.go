package config

// HTTPFilters are the HTTP filters a listener enables, in chain order. A nil
// field is a filter that is not in the chain.
type HTTPFilters struct {
	CORS           *CORS           `json:"cors" doc:"Answer CORS preflights and add CORS response headers."`
	JWTAuthn       *JWTAuthn       `json:"jwt_authn" doc:"Verify JSON Web Tokens."`
	ExtAuthz       *ExtAuthz       `json:"ext_authz" doc:"Ask an external service whether to allow each request."`
	LocalRateLimit *LocalRateLimit `json:"local_ratelimit" doc:"A token bucket per Envoy instance; 429 when empty."`
	Fault          *Fault          `json:"fault" doc:"Inject delays and aborts (for testing resilience)."`
	Buffer         *Buffer         `json:"buffer" doc:"Buffer whole request bodies up to a limit (413 beyond it)."`
	HeaderMutation *HeaderMutation `json:"header_mutation" doc:"Add and remove request and response headers."`
	Gzip           *Gzip           `json:"gzip" doc:"Compress responses with gzip."`
}

// RouteFilters are per-route settings of the filters a listener enables.
type RouteFilters struct {
	CORS           *CORS           `json:"cors" doc:"This route's CORS policy instead of the listener's."`
	JWTAuthn       *JWTRoute       `json:"jwt_authn" doc:"Which JWT providers this route requires."`
	ExtAuthz       *ExtAuthzRoute  `json:"ext_authz" doc:"Turn external authorization off for this route, or add context."`
	LocalRateLimit *LocalRateLimit `json:"local_ratelimit" doc:"This route's own token bucket."`
	Fault          *Fault          `json:"fault" doc:"This route's fault injection."`
	Buffer         *Buffer         `json:"buffer" doc:"This route's request buffer limit."`
	HeaderMutation *HeaderMutation `json:"header_mutation" doc:"Header changes for this route only."`
	Gzip           *GzipRoute      `json:"gzip" doc:"Turn compression off for this route."`
}

// NetworkFilters are network (L4) filters on a listener, in chain order.
type NetworkFilters struct {
	RBAC           *NetworkRBAC           `json:"rbac" doc:"Allow or deny connections by source address."`
	LocalRateLimit *NetworkLocalRateLimit `json:"local_ratelimit" doc:"A token bucket of new connections; connections beyond it are closed."`
}

// UpstreamFilters are cluster-level filters.
type UpstreamFilters struct {
	HeaderMutation *HeaderMutation `json:"header_mutation" doc:"Upstream HTTP filter: change request headers as they leave for this upstream, and response headers as they return."`
}

// CORS is a CORS policy.
type CORS struct {
	AllowOrigins     []string `json:"allow_origins" required:"true" doc:"Origins allowed, exactly (scheme://host[:port]), or * for any." example:"[https://app.example.com]"`
	AllowMethods     []string `json:"allow_methods" doc:"Methods allowed in preflights." example:"[GET, POST]"`
	AllowHeaders     []string `json:"allow_headers" format:"header" doc:"Request headers allowed." example:"[content-type, authorization]"`
	ExposeHeaders    []string `json:"expose_headers" format:"header" doc:"Response headers the browser may read." example:"[x-request-id]"`
	MaxAge           Duration `json:"max_age" min:"0s" max:"24h" doc:"How long a preflight may be cached." example:"10m"`
	AllowCredentials bool     `json:"allow_credentials" default:"false" doc:"Allow cookies and credentials (not with origin *)."`
}

// JWTAuthn verifies JWTs from named providers.
type JWTAuthn struct {
	Providers []JWTProvider `json:"providers" required:"true" doc:"Token issuers and their keys."`
	Require   []string      `json:"require" doc:"Providers a token from any of which every route needs, unless a route says otherwise. Empty: routes opt in." example:"[corp]"`
}

// JWTProvider is one token issuer.
type JWTProvider struct {
	Name          string   `json:"name" required:"true" format:"name" doc:"The provider name." example:"corp"`
	Issuer        string   `json:"issuer" required:"true" doc:"The iss claim tokens must carry." example:"https://auth.example.com"`
	Audiences     []string `json:"audiences" doc:"aud values accepted; empty accepts any." example:"[api]"`
	JWKSURI       string   `json:"jwks_uri" format:"url" doc:"Where keys are fetched (https); needs jwks_upstream." example:"https://auth.example.com/.well-known/jwks.json"`
	JWKSUpstream  string   `json:"jwks_upstream" doc:"The HTTP upstream Envoy fetches jwks_uri through." example:"auth"`
	LocalJWKS     string   `json:"local_jwks" doc:"A JWKS document inline (public keys), instead of jwks_uri." example:"{\"keys\": []}"`
	CacheDuration Duration `json:"cache_duration" default:"5m" min:"1s" max:"24h" doc:"How long fetched keys are cached."`
	Forward       bool     `json:"forward" default:"false" doc:"Pass the token on to the upstream."`
}

// JWTRoute is a route's JWT requirement.
type JWTRoute struct {
	Require  []string `json:"require" doc:"Providers this route accepts tokens from." example:"[corp]"`
	Disabled bool     `json:"disabled" default:"false" doc:"No token needed on this route."`
}

// ExtAuthz is an external authorization service.
type ExtAuthz struct {
	Upstream         string   `json:"upstream" required:"true" doc:"The HTTP upstream of the authorization service." example:"authz"`
	GRPC             bool     `json:"grpc" default:"false" doc:"Speak the gRPC authorization API instead of plain HTTP."`
	PathPrefix       string   `json:"path_prefix" doc:"HTTP mode: prefix added to the checked request's path." example:"/check"`
	Timeout          Duration `json:"timeout" default:"250ms" min:"1ms" max:"1m" doc:"A check slower than this fails."`
	FailureModeAllow bool     `json:"failure_mode_allow" default:"false" doc:"Let requests through when the service fails (off: they are denied)."`
	AllowedHeaders   []string `json:"allowed_headers" format:"header" doc:"HTTP mode: request headers sent to the service." example:"[authorization]"`
}

// ExtAuthzRoute is a route's external authorization setting.
type ExtAuthzRoute struct {
	Disabled bool `json:"disabled" default:"false" doc:"Skip the check on this route."`
}

// LocalRateLimit is a token bucket: requests tokens every interval, up to burst.
type LocalRateLimit struct {
	Requests int      `json:"requests" required:"true" min:"1" max:"1000000000" doc:"Tokens added every interval." example:"100"`
	Interval Duration `json:"interval" default:"1s" min:"50ms" max:"24h" doc:"How often tokens are added (Envoy needs at least 50ms)."`
	Burst    int      `json:"burst" min:"1" max:"1000000000" doc:"The bucket size. Default: requests." example:"200"`
}

// Fault injects delays and aborts into a share of requests.
type Fault struct {
	Delay *FaultDelay `json:"delay" doc:"Delay a share of requests."`
	Abort *FaultAbort `json:"abort" doc:"Fail a share of requests."`
}

// FaultDelay delays a share of requests.
type FaultDelay struct {
	Percent  float64  `json:"percent" required:"true" min:"0" max:"100" doc:"Share of requests delayed, in percent." example:"10"`
	Duration Duration `json:"duration" required:"true" min:"1ms" max:"1h" doc:"The delay." example:"500ms"`
}

// FaultAbort fails a share of requests.
type FaultAbort struct {
	Percent float64 `json:"percent" required:"true" min:"0" max:"100" doc:"Share of requests failed, in percent." example:"5"`
	Status  int     `json:"status" required:"true" min:"200" max:"599" doc:"The HTTP status returned." example:"503"`
}

// Buffer limits and buffers request bodies.
type Buffer struct {
	MaxRequestSize Size `json:"max_request_size" required:"true" min:"1" max:"64MiB" doc:"The largest request body buffered; 413 beyond it." example:"1MiB"`
}

// HeaderMutation adds and removes headers.
type HeaderMutation struct {
	RequestAdd     []HeaderValue `json:"request_add" doc:"Headers set on the request (replacing any value)."`
	RequestRemove  []string      `json:"request_remove" format:"header" doc:"Headers removed from the request." example:"[x-debug]"`
	ResponseAdd    []HeaderValue `json:"response_add" doc:"Headers set on the response (replacing any value)."`
	ResponseRemove []string      `json:"response_remove" format:"header" doc:"Headers removed from the response." example:"[server]"`
}

// HeaderValue is a header name and value.
type HeaderValue struct {
	Name  string `json:"name" required:"true" format:"header" doc:"The header name." example:"x-gateway"`
	Value string `json:"value" doc:"The value (Envoy's %VARIABLE% substitutions apply)." example:"protogate"`
}

// Gzip compresses responses.
type Gzip struct {
	MinContentLength Size     `json:"min_content_length" default:"1KiB" min:"0" max:"1GiB" doc:"Smaller responses are sent as they are."`
	ContentTypes     []string `json:"content_types" doc:"Content types compressed. Default: Envoy's list (JSON, text, JavaScript, XML…)." example:"[application/json]"`
	Level            string   `json:"level" default:"default" enum:"default,best_speed,best_compression" doc:"Speed against size."`
}

// GzipRoute is a route's compression setting.
type GzipRoute struct {
	Disabled bool `json:"disabled" default:"false" doc:"Do not compress this route's responses."`
}

// NetworkRBAC allows or denies connections by source CIDR.
type NetworkRBAC struct {
	AllowCIDRs []string `json:"allow_cidrs" doc:"Only connections from these ranges are accepted (exactly one of allow_cidrs and deny_cidrs)." example:"[10.0.0.0/8]"`
	DenyCIDRs  []string `json:"deny_cidrs" doc:"Connections from these ranges are refused." example:"[192.0.2.0/24]"`
}

// NetworkLocalRateLimit is a token bucket of new connections.
type NetworkLocalRateLimit struct {
	Connections int      `json:"connections" required:"true" min:"1" max:"1000000000" doc:"Tokens added every interval." example:"100"`
	Interval    Duration `json:"interval" default:"1s" min:"50ms" max:"24h" doc:"How often tokens are added."`
	Burst       int      `json:"burst" min:"1" max:"1000000000" doc:"The bucket size. Default: connections." example:"200"`
}
