package translator

import (
	codec "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	"google.golang.org/protobuf/proto"

	"github.com/protogate/protogate/config"
)

// upstreamCodecFilter must end every upstream HTTP filter chain: it is what
// writes the request to the upstream connection.
type upstreamCodecFilter struct{}

var _ UpstreamHTTPFilter = upstreamCodecFilter{}

func (upstreamCodecFilter) Name() string { return "envoy.filters.http.upstream_codec" }
func (upstreamCodecFilter) Key() string  { return "upstream_codec" }

func (upstreamCodecFilter) UpstreamHTTPFilter(_ *build, _ *config.UpstreamFilters) (proto.Message, error) {
	return &codec.UpstreamCodec{}, nil
}
