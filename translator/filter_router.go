package translator

import (
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	"google.golang.org/protobuf/proto"

	"github.com/protogate/protogate/config"
)

// routerFilter ends every HTTP chain. x-envoy-* response headers are
// suppressed: they tell clients about the inside of the gateway.
type routerFilter struct{}

var _ HTTPFilter = routerFilter{}

func (routerFilter) Name() string { return "envoy.filters.http.router" }
func (routerFilter) Key() string  { return "router" }

func (routerFilter) HTTPFilter(_ *build, _ *config.Listener) (proto.Message, error) {
	return &router.Router{SuppressEnvoyHeaders: true}, nil
}
