package translator

import (
	"fmt"
	"strings"
	"testing"

	"github.com/protogate/protogate/config"
)

// bigMapping generates a mapping of routes spread over upstreams of every
// protocol: a third Dubbo (through the bridge), a third NATS, a third HTTP.
func bigMapping(routes, upstreams int) string {
	var b strings.Builder
	b.WriteString("listeners:\n  - name: public\n    address: 0.0.0.0:10000\n")
	b.WriteString("    filters: { local_ratelimit: { requests: 1000 }, cors: { allow_origins: [\"*\"] } }\n    routes:\n")
	for i := 0; i < routes; i++ {
		u := i % upstreams
		fmt.Fprintf(&b, "      - name: r%d\n        match: { path: \"/s%d/items/{id}\", methods: [GET] }\n", i, i)
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
	for u := 0; u < upstreams; u++ {
		ip := fmt.Sprintf("10.%d.%d.1", u/250, u%250)
		switch u % 3 {
		case 0:
			fmt.Fprintf(&d, "    - { name: u%d, urls: [ \"dubbo://%s:20880\" ] }\n", u, ip)
		case 1:
			fmt.Fprintf(&n, "    - { name: u%d, urls: [ \"nats://%s:4222\" ] }\n", u, ip)
		default:
			fmt.Fprintf(&h, "    - { name: u%d, endpoints: [ \"%s:8080\" ] }\n", u, ip)
		}
	}
	b.WriteString("upstreams:\n  dubbo:\n" + d.String() + "  nats:\n" + n.String() + "  http:\n" + h.String())
	return b.String()
}

// BenchmarkTranslate translates 10,000 routes over 2,000 upstreams; run with
// go test ./translator -run '^$' -bench Translate -benchmem
func BenchmarkTranslate(b *testing.B) {
	cfg, err := config.LoadBytes("big.yaml", []byte(bigMapping(10000, 2000)))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Translate(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad is the other half of a reload: read, decode and validate
// the same mapping.
func BenchmarkLoad(b *testing.B) {
	data := []byte(bigMapping(10000, 2000))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := config.LoadBytes("big.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
