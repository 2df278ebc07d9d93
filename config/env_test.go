package config

import (
	"strings"
	"testing"
)

func TestUnknownEnv(t *testing.T) {
	tests := []struct {
		env  []string
		want []string
	}{
		{[]string{"PROTOGATE_BRIDGE_ADDRESS=127.0.0.1:1", "HOME=/root"}, nil},
		{[]string{"PROTOGATE_BRIDGE_ADRESS=127.0.0.1:1"}, []string{"PROTOGATE_BRIDGE_ADRESS names no setting and is ignored; did you mean PROTOGATE_BRIDGE_ADDRESS?"}},
		{[]string{"PROTOGATE_NOTHING_LIKE_IT=1"}, []string{"PROTOGATE_NOTHING_LIKE_IT names no setting and is ignored"}},
		{[]string{"PROTOGATEX=1", "XPROTOGATE_BRIDGE_ADDRESS=1"}, nil},
	}
	for _, tt := range tests {
		got := UnknownEnv(tt.env)
		if len(got) != len(tt.want) {
			t.Fatalf("%v: got %q, want %q", tt.env, got, tt.want)
		}
		for i := range got {
			if !strings.HasSuffix(got[i], tt.want[i]) {
				t.Errorf("%v: got %q, want it to end with %q", tt.env, got[i], tt.want[i])
			}
		}
	}
}

func TestServerDefault(t *testing.T) {
	if got := ServerDefault("bridge.address"); got == "" || !strings.HasPrefix(got, "127.0.0.1:") {
		t.Errorf("bridge.address default = %q, want a loopback address", got)
	}
	if got := ServerDefault("nope.nothing"); got != "" {
		t.Errorf("unknown key default = %q", got)
	}
}
