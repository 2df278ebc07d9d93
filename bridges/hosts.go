package bridges

import (
	"net/http"
	"slices"
	"strings"

	"github.com/protogate/protogate/routetable"
)

// addDomains notes the hosts a route names, per listener.
func (t *table) addDomains(row *routetable.Route) {
	for _, h := range row.Match.Hosts {
		if t.domains == nil {
			t.domains = map[string][]string{}
		}
		if !slices.Contains(t.domains[row.Listener], h) {
			t.domains[row.Listener] = append(t.domains[row.Listener], h)
		}
	}
}

// forHost says whether rt answers r's host as Envoy would route it: Envoy
// picks one virtual host for the Host header — the exact domain, else the
// longest wildcard, else the routes for any host — and a route is in the
// virtual host of each of its hosts, and in all when it names none.
func (t *table) forHost(rt *route, r *http.Request) bool {
	hosts := rt.row.Match.Hosts
	if len(hosts) == 0 {
		return true
	}
	picked := pickDomain(t.domains[rt.listener], strings.ToLower(r.Host))
	return picked != "" && slices.Contains(hosts, picked)
}

// hostIsOwn says whether r's host is one rt names (any, when it names
// none), exactly or by a wildcard: what a request Envoy sent to rt by name
// must hold, whichever virtual hosts that Envoy had.
func (rt *route) hostIsOwn(r *http.Request) bool {
	hosts := rt.row.Match.Hosts
	if len(hosts) == 0 {
		return true
	}
	host := strings.ToLower(r.Host)
	for _, h := range hosts {
		if h == host || strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:]) && len(host) > len(h)-1 {
			return true
		}
	}
	return false
}

// pickDomain is the domain of domains a request for host goes to, as
// Envoy matches virtual host domains against the Host header as sent,
// port included: the host itself, else the longest "*." wildcard it ends
// with; "" for none.
func pickDomain(domains []string, host string) string {
	wildcard := ""
	for _, d := range domains {
		switch {
		case d == host:
			return d
		case strings.HasPrefix(d, "*.") && strings.HasSuffix(host, d[1:]) && len(d) > len(wildcard):
			wildcard = d
		}
	}
	return wildcard
}
