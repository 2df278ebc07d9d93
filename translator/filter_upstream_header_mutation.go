package translator

import (
	headermutation "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	"google.golang.org/protobuf/proto"

	"github.com/protogate/protogate/config"
)

// upstreamHeaderMutationFilter changes headers on requests as they leave for
// one cluster (and on its responses), whatever route sent them there.
type upstreamHeaderMutationFilter struct{}

var _ UpstreamHTTPFilter = upstreamHeaderMutationFilter{}

func (upstreamHeaderMutationFilter) Name() string { return "envoy.filters.http.header_mutation" }
func (upstreamHeaderMutationFilter) Key() string  { return "header_mutation" }

func (upstreamHeaderMutationFilter) UpstreamHTTPFilter(_ *build, f *config.UpstreamFilters) (proto.Message, error) {
	if f.HeaderMutation == nil {
		return nil, nil
	}
	return &headermutation.HeaderMutation{Mutations: mutations(f.HeaderMutation)}, nil
}
