package routetable

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func entries(m *sync.Map) int {
	n := 0
	m.Range(func(any, any) bool { n++; return true })
	return n
}

// TestEncodingsGoWithTheirTables: the encodings a table and its resource
// remember do not keep either alive once nothing else holds them.
func TestEncodingsGoWithTheirTables(t *testing.T) {
	for i := 0; i < 50; i++ {
		tbl := &Table{Group: "g", Routes: []Route{{Name: "r"}}}
		r, err := tbl.Resource()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := FromResource(r); err == nil && got != tbl {
			t.Fatal("a resource encoded here did not give back its table")
		}
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		runtime.GC()
		if entries(&encodings) == 0 && entries(&encoded) == 0 {
			return
		}
	}
	t.Fatalf("after the tables went, %d encodings and %d resources are still remembered", entries(&encodings), entries(&encoded))
}
