package translator

import (
	mutation "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	headermutation "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	"google.golang.org/protobuf/proto"

	"github.com/protogate/protogate/config"
)

// headerMutationFilter adds and removes headers on a listener or a route.
type headerMutationFilter struct{}

var (
	_ HTTPFilter  = headerMutationFilter{}
	_ RouteConfig = headerMutationFilter{}
)

func (headerMutationFilter) Name() string { return "envoy.filters.http.header_mutation" }
func (headerMutationFilter) Key() string  { return "header_mutation" }

func (headerMutationFilter) HTTPFilter(_ *build, l *config.Listener) (proto.Message, error) {
	if l.Filters.HeaderMutation == nil {
		return nil, nil
	}
	return &headermutation.HeaderMutation{Mutations: mutations(l.Filters.HeaderMutation)}, nil
}

func (headerMutationFilter) RouteConfig(_ *build, _ *config.Listener, r *config.Route) (proto.Message, error) {
	if r.Filters.HeaderMutation == nil {
		return nil, nil
	}
	return &headermutation.HeaderMutationPerRoute{Mutations: mutations(r.Filters.HeaderMutation)}, nil
}

func mutations(h *config.HeaderMutation) *headermutation.Mutations {
	m := &headermutation.Mutations{}
	for _, name := range h.RequestRemove {
		m.RequestMutations = append(m.RequestMutations, &mutation.HeaderMutation{Action: &mutation.HeaderMutation_Remove{Remove: name}})
	}
	for _, hv := range h.RequestAdd {
		m.RequestMutations = append(m.RequestMutations, setHeader(hv))
	}
	for _, name := range h.ResponseRemove {
		m.ResponseMutations = append(m.ResponseMutations, &mutation.HeaderMutation{Action: &mutation.HeaderMutation_Remove{Remove: name}})
	}
	for _, hv := range h.ResponseAdd {
		m.ResponseMutations = append(m.ResponseMutations, setHeader(hv))
	}
	return m
}

func setHeader(hv config.HeaderValue) *mutation.HeaderMutation {
	return &mutation.HeaderMutation{Action: &mutation.HeaderMutation_Append{Append: &core.HeaderValueOption{
		Header:       &core.HeaderValue{Key: hv.Name, Value: hv.Value},
		AppendAction: core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}}}
}
