package translator

import (
	"testing"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/internal/testmapping"
)

// bigMapping is routes over upstreams of every protocol, as the other
// benchmarks of a large group use.
func bigMapping(routes, upstreams int) string {
	return testmapping.Large{Routes: routes, Upstreams: upstreams, Listen: "0.0.0.0:10000"}.YAML()
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
