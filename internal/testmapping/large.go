// Package testmapping writes large mappings for benchmarks and tests: one
// http listener whose routes spread over upstreams of every protocol.
package testmapping

import (
	"fmt"
	"strings"
)

// Large describes the mapping: a third of the routes call Dubbo through
// the bridge, a third NATS, a third HTTP upstreams; every tenth has a
// route filter.
type Large struct {
	Routes, Upstreams int
	// Listen is the listener's address (default 127.0.0.1:10000).
	Listen string
	// Addr is upstream u's host:port (default 127.A.B.1 and the
	// protocol's usual port, so nothing is resolved or reached).
	Addr func(u int) string
	// Paths replace the path templates of some routes, by index.
	Paths map[int]string
	// Group, when set, is an xds group holding the listener.
	Group string
}

// YAML is the mapping.
func (l Large) YAML() string {
	listen := l.Listen
	if listen == "" {
		listen = "127.0.0.1:10000"
	}
	addr := l.Addr
	if addr == nil {
		addr = func(u int) string {
			port := [3]int{20880, 4222, 8080}[u%3]
			return fmt.Sprintf("127.%d.%d.1:%d", u/250, u%250, port)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "listeners:\n  - name: public\n    address: %s\n", listen)
	b.WriteString("    filters: { local_ratelimit: { requests: 1000 }, cors: { allow_origins: [\"*\"] } }\n    routes:\n")
	for i := 0; i < l.Routes; i++ {
		u := i % l.Upstreams
		path, ok := l.Paths[i]
		if !ok {
			path = fmt.Sprintf("/s%d/items/{id}", i)
		}
		fmt.Fprintf(&b, "      - name: r%d\n        match: { path: %q, methods: [GET] }\n", i, path)
		switch u % 3 {
		case 0:
			fmt.Fprintf(&b, "        dubbo: { upstream: u%d, service: com.example.S%d, method: get, params: [ { from: path.id, type: long } ] }\n", u, u)
		case 1:
			fmt.Fprintf(&b, "        nats: { upstream: u%d, subject: \"s%d.{id}\", mode: request }\n", u, u)
		default:
			fmt.Fprintf(&b, "        http: { upstream: u%d }\n", u)
		}
		if i%10 == 0 {
			b.WriteString("        filters: { local_ratelimit: { requests: 10 } }\n")
		}
	}
	var d, n, h strings.Builder
	for u := 0; u < l.Upstreams; u++ {
		switch u % 3 {
		case 0:
			fmt.Fprintf(&d, "    - { name: u%d, urls: [ \"dubbo://%s\" ] }\n", u, addr(u))
		case 1:
			fmt.Fprintf(&n, "    - { name: u%d, urls: [ \"nats://%s\" ] }\n", u, addr(u))
		default:
			fmt.Fprintf(&h, "    - { name: u%d, endpoints: [ \"%s\" ] }\n", u, addr(u))
		}
	}
	b.WriteString("upstreams:\n  dubbo:\n" + d.String() + "  nats:\n" + n.String() + "  http:\n" + h.String())
	if l.Group != "" {
		fmt.Fprintf(&b, "xds:\n  groups:\n    - { name: %s, listeners: [ public ] }\n", l.Group)
	}
	return b.String()
}
