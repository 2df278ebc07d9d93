package config

import (
	"strings"
	"testing"
)

// TestBridgeSettings: with no mapping, a bridge gets the defaults and the
// environment's overrides, checked like a mapping's.
func TestBridgeSettings(t *testing.T) {
	t.Setenv("PROTOGATE_BRIDGE_ADDRESS", "127.0.0.1:0")
	t.Setenv("PROTOGATE_BRIDGE_MAX_IN_FLIGHT", "7")
	b, err := BridgeSettings()
	if err != nil {
		t.Fatal(err)
	}
	if b.Address != "127.0.0.1:0" || b.MaxInFlight != 7 || b.RouteHeader != "x-protogate-route" || b.MaxBodySize != 1<<20 {
		t.Fatalf("settings = %+v", b)
	}
	t.Setenv("PROTOGATE_BRIDGE_MAX_IN_FLIGHT", "0")
	if _, err := BridgeSettings(); err == nil || !strings.Contains(err.Error(), "bridge.max_in_flight") {
		t.Fatalf("an out-of-range override = %v, want a problem at bridge.max_in_flight", err)
	}
}
