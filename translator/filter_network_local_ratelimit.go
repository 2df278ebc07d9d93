package translator

import (
	netlocalrl "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/local_ratelimit/v3"
	"google.golang.org/protobuf/proto"

	"github.com/protogate/protogate/config"
)

// localRateLimitNetworkFilter is a token bucket of new connections; a
// connection that finds it empty is closed at once.
type localRateLimitNetworkFilter struct{}

var _ NetworkFilter = localRateLimitNetworkFilter{}

func (localRateLimitNetworkFilter) Name() string { return "envoy.filters.network.local_ratelimit" }
func (localRateLimitNetworkFilter) Key() string  { return "local_ratelimit" }

func (localRateLimitNetworkFilter) NetworkFilter(_ *build, l *config.Listener) (proto.Message, error) {
	rl := l.NetworkFilters.LocalRateLimit
	if rl == nil {
		return nil, nil
	}
	return &netlocalrl.LocalRateLimit{
		StatPrefix:  statPrefix(l.Name) + "_conn_ratelimit",
		TokenBucket: tokenBucket(rl.Connections, rl.Burst, rl.Interval),
	}, nil
}
