package bridges

import (
	"os"
	"testing"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/routetable"
)

// TestMain removes what the tests built (the example provider binary) once
// they have all run: a test run leaves nothing behind in the temp
// directory.
func TestMain(m *testing.M) {
	code := m.Run()
	if providerDir != "" {
		if err := os.RemoveAll(providerDir); err != nil {
			println("removing the provider build directory:", err.Error())
		}
	}
	_ = os.RemoveAll(natsBinDir) // the nats-server natsproc_test.go built; "" removes nothing
	os.Exit(code)
}

// tableOf is the route table a bridge reading cfg serves: every HTTP
// listener's routes.
func tableOf(t testing.TB, cfg *config.Config) *routetable.Table {
	t.Helper()
	tb, err := routetable.FromConfig(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	return tb
}
