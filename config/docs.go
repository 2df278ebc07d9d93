package config

import (
	"fmt"
	"reflect"
	"strings"
)

// typeDocs introduce each model type in the docs and the schema.
var typeDocs = map[string]string{
	"Config":                "The whole mapping: one file, or a directory of files merged in name order.",
	"Listener":              "One Envoy listener. Its protocol decides which other fields apply.",
	"AccessLog":             "The request log of an http listener, from Envoy and from the bridges.",
	"Rollout":               "The canary rollout of new mapping versions, per node group.",
	"Tracing":               "OpenTelemetry spans from Envoy's HTTP listeners and from the bridges, exported over OTLP/gRPC.",
	"Route":                 "One route. On http listeners it has a name, an HTTP match and exactly one of dubbo, nats and http; on dubbo listeners a Dubbo match and an upstream.",
	"RouteMatch":            "What a route takes. http listeners: exactly one of path, prefix and regex, with optional methods and headers. dubbo listeners: service, with optional group, version and method.",
	"HeaderMatch":           "One request header condition: exactly one of exact, prefix, regex and present.",
	"DubboTarget":           "A Dubbo generic call the bridge makes. Service, method and every parameter's Java type are fixed here; clients only send values.",
	"DubboParam":            "One method argument, in order: where its value comes from and its Java type.",
	"Attachment":            "A request header passed to the provider as a Dubbo attachment.",
	"ExceptionStatus":       "An HTTP status for a Java exception the provider throws.",
	"NATSTarget":            "A NATS publish or request the bridge makes. The subject template is fixed here; request values only fill its {variables}, each checked to be one safe token.",
	"HTTPTarget":            "A plain HTTP upstream Envoy proxies to.",
	"Upstreams":             "The services routes reach, one list per protocol. Names are unique across all lists.",
	"DubboUpstream":         "Dubbo providers, found directly (urls) or through a registry.",
	"NATSUpstream":          "A NATS server or cluster. Secrets are read from files, never written in the mapping.",
	"TLS":                   "Client TLS files.",
	"Stream":                "A JetStream stream. Listing streams lets validation check each JetStream route's subject lands in one.",
	"HTTPUpstream":          "A plain HTTP service.",
	"TCPUpstream":           "A plain TCP service.",
	"HealthCheck":           "An active HTTP health check.",
	"CircuitBreakers":       "Envoy's limits towards one cluster.",
	"JavaType":              "A Java class arguments may use: a POJO with typed fields, or an enum.",
	"JavaField":             "One POJO field.",
	"Bridge":                "The bridge HTTP server. Fields marked env can be overridden by PROTOGATE_BRIDGE_<FIELD> variables.",
	"XDS":                   "The xDS control plane. Fields marked env can be overridden by PROTOGATE_XDS_<FIELD> variables.",
	"XDSSecurity":           "Who may connect to the ADS and admin servers, and how.",
	"XDSServerTLS":          "The ADS server's certificate and the CA its clients' certificates must chain to: all three files, or no tls at all.",
	"XDSClientRule":         "One client identity and the node ids and groups it may use. A client may hold several identities (SANs); a rule matching any of them counts.",
	"XDSAdminSecurity":      "How the admin server is guarded.",
	"XDSAdminTLS":           "The admin server's certificate, and optionally a CA its clients must present a certificate of.",
	"XDSLimits":             "Bounds on what xDS clients can make the control plane hold, read once at start (a change needs a restart). The message size and the streams of one connection are xds.max_message_size and xds.max_streams_per_peer.",
	"NodeGroup":             "Envoy nodes that get the same listeners.",
	"HTTPFilters":           "HTTP filters on a listener. The chain runs in the order listed here, ending with the router.",
	"RouteFilters":          "Per-route settings; each needs the filter enabled on the listener.",
	"NetworkFilters":        "Network filters, run in the order listed here before the listener's protocol filter.",
	"UpstreamFilters":       "Cluster-level filters.",
	"CORS":                  "A CORS policy.",
	"JWTAuthn":              "JWT verification.",
	"JWTProvider":           "One token issuer.",
	"JWTRoute":              "A route's token requirement.",
	"ExtAuthz":              "External authorization.",
	"ExtAuthzRoute":         "A route's external authorization setting.",
	"LocalRateLimit":        "A token bucket per Envoy instance.",
	"Fault":                 "Fault injection.",
	"FaultDelay":            "A delay for a share of requests.",
	"FaultAbort":            "An abort for a share of requests.",
	"Buffer":                "Request buffering with a size limit.",
	"HeaderMutation":        "Header additions and removals.",
	"HeaderValue":           "A header and its value.",
	"Gzip":                  "gzip response compression.",
	"GzipRoute":             "A route's compression setting.",
	"NetworkRBAC":           "Connection access by source address.",
	"NetworkLocalRateLimit": "A token bucket of new connections.",
}

// modelTypes lists the struct types of the model in the order they are
// first reached from Config.
func modelTypes() []reflect.Type {
	var order []reflect.Type
	seen := map[reflect.Type]bool{}
	var visit func(reflect.Type)
	visit = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == durationType || t == sizeType || seen[t] {
			return
		}
		seen[t] = true
		order = append(order, t)
		for _, f := range fieldsOf(t) {
			visit(f.Type)
		}
	}
	visit(reflect.TypeOf(Config{}))
	return order
}

// Markdown renders the reference of every field of the mapping file, in the
// order types are first reached from Config.
func Markdown() string {
	var b strings.Builder
	order := modelTypes()
	for _, t := range order {
		fmt.Fprintf(&b, "### %s\n\n%s\n\n", t.Name(), typeDocs[t.Name()])
		b.WriteString("| field | type | default | description | example |\n|---|---|---|---|---|\n")
		for _, f := range fieldsOf(t) {
			desc := f.Doc
			if f.Required {
				desc = "**Required.** " + desc
			}
			if r := rangeText(f); r != "" {
				desc += " Range: " + r + "."
			}
			if f.Env {
				desc += fmt.Sprintf(" Env: `%s`.", envName(strings.ToLower(t.Name())+"."+f.Name))
			}
			def := "—"
			if f.Default != "" {
				def = "`" + f.Default + "`"
			}
			ex := "—"
			if f.Example != "" {
				ex = "`" + f.Example + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", f.Name, typeText(f), def, escapeCell(desc), escapeCell(ex))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func typeText(f fieldInfo) string {
	s := typeName(f.Type)
	if len(f.Enum) > 0 {
		s += ": " + "`" + strings.Join(f.Enum, "`, `") + "`"
	}
	return s
}

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t == sizeType:
		return "size"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Struct:
		return fmt.Sprintf("[%s](#%s)", t.Name(), strings.ToLower(t.Name()))
	case reflect.Int, reflect.Int64:
		return "integer"
	case reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean"
	}
	return t.Kind().String()
}

func rangeText(f fieldInfo) string {
	switch {
	case f.Min != "" && f.Max != "":
		return f.Min + " to " + f.Max
	case f.Min != "":
		return "at least " + f.Min
	case f.Max != "":
		return "at most " + f.Max
	}
	return ""
}

func escapeCell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
