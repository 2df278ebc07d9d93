package translator

import (
	accesslog "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	stream "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/protogate/protogate/config"
)

const stdoutAccessLogName = "envoy.access_loggers.stdout"

// accessLogFields is the JSON line Envoy writes per request. The names
// follow the bridges' own log line where they mean the same thing, so one
// query reads both.
var accessLogFields = map[string]string{
	"start_time":       "%START_TIME%",
	"method":           "%REQ(:METHOD)%",
	"path":             "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
	"protocol":         "%PROTOCOL%",
	"status":           "%RESPONSE_CODE%",
	"response_flags":   "%RESPONSE_FLAGS%",
	"duration_ms":      "%DURATION%",
	"bytes_in":         "%BYTES_RECEIVED%",
	"bytes_out":        "%BYTES_SENT%",
	"upstream_cluster": "%UPSTREAM_CLUSTER%",
	"upstream_host":    "%UPSTREAM_HOST%",
	"route":            "%ROUTE_NAME%",
	"request_id":       "%REQ(X-REQUEST-ID)%",
	"traceparent":      "%REQ(TRACEPARENT)%",
}

// accessLogs is an HTTP listener's access log: JSON lines on Envoy's
// stdout, or none when the listener does not turn it on.
func (b *build) accessLogs(l *config.Listener, path string) []*accesslog.AccessLog {
	if !l.AccessLog.Enabled {
		return nil
	}
	fields := make(map[string]any, len(accessLogFields)+1)
	for k, v := range accessLogFields {
		fields[k] = v
	}
	// A literal: with several listeners on one Envoy, each line says whose it is.
	fields["listener"] = l.Name
	format, err := structpb.NewStruct(fields)
	if err != nil {
		b.fail(path+".access_log", "%s: %v", stdoutAccessLogName, err)
		return nil
	}
	out := &stream.StdoutAccessLog{AccessLogFormat: &stream.StdoutAccessLog_LogFormat{LogFormat: &core.SubstitutionFormatString{
		Format: &core.SubstitutionFormatString_JsonFormat{JsonFormat: format},
	}}}
	a := b.pack(out, path+".access_log", stdoutAccessLogName)
	if a == nil {
		return nil
	}
	return []*accesslog.AccessLog{{
		Name:       stdoutAccessLogName,
		Filter:     accessLogSampling(l),
		ConfigType: &accesslog.AccessLog_TypedConfig{TypedConfig: a},
	}}
}

// accessLogSampling logs sample_percent of the requests and every 5xx
// whatever the share, as the bridges do; at 100 percent every request is
// logged and no filter is needed.
func accessLogSampling(l *config.Listener) *accesslog.AccessLogFilter {
	if l.AccessLog.SamplePercent >= 100 {
		return nil
	}
	serverErrors := &accesslog.AccessLogFilter{FilterSpecifier: &accesslog.AccessLogFilter_StatusCodeFilter{StatusCodeFilter: &accesslog.StatusCodeFilter{
		Comparison: &accesslog.ComparisonFilter{Op: accesslog.ComparisonFilter_GE, Value: &core.RuntimeUInt32{DefaultValue: 500}},
	}}}
	// The runtime key lets an operator change the share at run time
	// without a reload; without it the mapping's share holds.
	sampled := &accesslog.AccessLogFilter{FilterSpecifier: &accesslog.AccessLogFilter_RuntimeFilter{RuntimeFilter: &accesslog.RuntimeFilter{
		RuntimeKey:     "protogate.access_log." + l.Name + ".sample_percent",
		PercentSampled: percent(l.AccessLog.SamplePercent),
	}}}
	return &accesslog.AccessLogFilter{FilterSpecifier: &accesslog.AccessLogFilter_OrFilter{OrFilter: &accesslog.OrFilter{
		Filters: []*accesslog.AccessLogFilter{serverErrors, sampled},
	}}}
}
