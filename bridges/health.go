package bridges

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// dubboUpstream is one Dubbo upstream the routes call, with every
// provider address the table gives it.
type dubboUpstream struct {
	name, protocol string
	optional       bool
	discovered     bool // from a registry: no provider is no endpoint at all
	addrs          []string
}

// dubboUpstreams lists the table's Dubbo upstreams, by name.
func dubboUpstreams(t *table) []*dubboUpstream {
	byName := map[string]*dubboUpstream{}
	var out []*dubboUpstream
	for _, rt := range t.ordered {
		if rt.dubbo == nil {
			continue
		}
		u := rt.dubbo.upstream
		du := byName[u.Name]
		if du == nil {
			du = &dubboUpstream{name: u.Name, protocol: u.Protocol, optional: u.Optional, discovered: u.Registry != ""}
			for _, raw := range u.URLs {
				if pu, err := url.Parse(raw); err == nil && pu.Host != "" {
					du.addrs = append(du.addrs, pu.Host)
				}
			}
			byName[u.Name] = du
			out = append(out, du)
		}
		for _, e := range rt.dubbo.endpoints {
			if !slices.Contains(du.addrs, e) {
				du.addrs = append(du.addrs, e)
			}
		}
	}
	slices.SortFunc(out, func(a, b *dubboUpstream) int { return strings.Compare(a.name, b.name) })
	return out
}

// dubboStates says of each Dubbo upstream whether a call could reach a
// provider now, and how many it knows and could use.
func dubboStates(st *state) []UpstreamState {
	var out []UpstreamState
	for _, u := range st.table.dubboUps {
		usable := 0
		if st.dubbo != nil {
			usable = st.dubbo.Usable(u.protocol, u.addrs)
		}
		st := UpstreamState{Name: u.name, Protocol: "dubbo", Usable: usable > 0, Optional: u.optional,
			Known: len(u.addrs), Healthy: usable}
		switch {
		case st.Usable:
		case len(u.addrs) == 0 && u.discovered:
			st.Reason = "no provider is registered"
		default:
			st.Reason = fmt.Sprintf("none of its %d providers can be reached", len(u.addrs))
		}
		out = append(out, st)
	}
	return out
}
