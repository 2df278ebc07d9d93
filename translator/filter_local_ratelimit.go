package translator

import (
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	localrl "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/protogate/protogate/config"
)

// localRateLimitFilter is a token bucket per Envoy instance, for the whole
// listener or per route. Envoy leaves the filter disabled unless
// filter_enabled and filter_enforced say otherwise, so both are set to 100%.
type localRateLimitFilter struct{}

var (
	_ HTTPFilter  = localRateLimitFilter{}
	_ RouteConfig = localRateLimitFilter{}
)

func (localRateLimitFilter) Name() string { return "envoy.filters.http.local_ratelimit" }
func (localRateLimitFilter) Key() string  { return "local_ratelimit" }

func (localRateLimitFilter) HTTPFilter(_ *build, l *config.Listener) (proto.Message, error) {
	if l.Filters.LocalRateLimit == nil {
		return nil, nil
	}
	return httpBucket(l.Name, l.Filters.LocalRateLimit), nil
}

func (localRateLimitFilter) RouteConfig(_ *build, l *config.Listener, r *config.Route) (proto.Message, error) {
	if r.Filters.LocalRateLimit == nil {
		return nil, nil
	}
	return httpBucket(l.Name+"_"+r.Name, r.Filters.LocalRateLimit), nil
}

func httpBucket(stat string, rl *config.LocalRateLimit) *localrl.LocalRateLimit {
	all := &core.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED}}
	return &localrl.LocalRateLimit{
		StatPrefix:     statPrefix(stat) + "_ratelimit",
		TokenBucket:    tokenBucket(rl.Requests, rl.Burst, rl.Interval),
		FilterEnabled:  all,
		FilterEnforced: all,
		// Clients learn their budget from the response headers.
		EnableXRatelimitHeaders: 1,
	}
}

func tokenBucket(perFill, burst int, interval config.Duration) *typev3.TokenBucket {
	if burst == 0 {
		burst = perFill
	}
	return &typev3.TokenBucket{
		MaxTokens:     uint32(burst),
		TokensPerFill: wrapperspb.UInt32(uint32(perFill)),
		FillInterval:  dur(interval),
	}
}
