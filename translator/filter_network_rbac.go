package translator

import (
	"net/netip"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacconfig "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/protogate/protogate/config"
)

// rbacNetworkFilter allows or denies connections by the peer's address (the
// direct peer: no header or proxy protocol can claim another).
type rbacNetworkFilter struct{}

var _ NetworkFilter = rbacNetworkFilter{}

func (rbacNetworkFilter) Name() string { return "envoy.filters.network.rbac" }
func (rbacNetworkFilter) Key() string  { return "rbac" }

func (rbacNetworkFilter) NetworkFilter(_ *build, l *config.Listener) (proto.Message, error) {
	r := l.NetworkFilters.RBAC
	if r == nil {
		return nil, nil
	}
	action, cidrs := rbacconfig.RBAC_ALLOW, r.AllowCIDRs
	if len(r.DenyCIDRs) > 0 {
		action, cidrs = rbacconfig.RBAC_DENY, r.DenyCIDRs
	}
	policy := &rbacconfig.Policy{Permissions: []*rbacconfig.Permission{{Rule: &rbacconfig.Permission_Any{Any: true}}}}
	for _, c := range cidrs {
		p := netip.MustParsePrefix(c) // validated by config
		policy.Principals = append(policy.Principals, &rbacconfig.Principal{Identifier: &rbacconfig.Principal_DirectRemoteIp{
			DirectRemoteIp: &core.CidrRange{AddressPrefix: p.Addr().String(), PrefixLen: wrapperspb.UInt32(uint32(p.Bits()))},
		}})
	}
	return &rbac.RBAC{
		StatPrefix: statPrefix(l.Name) + "_rbac",
		Rules:      &rbacconfig.RBAC{Action: action, Policies: map[string]*rbacconfig.Policy{"source-address": policy}},
	}, nil
}
