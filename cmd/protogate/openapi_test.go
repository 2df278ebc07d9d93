package main

import (
	"strings"
	"testing"

	"github.com/protogate/protogate/openapi/openapitest"
)

// TestOpenAPIOfEveryExample: the description of every example mapping
// validates with a maintained OpenAPI 3.1 validator.
func TestOpenAPIOfEveryExample(t *testing.T) {
	tests := []struct{ path, group, listener, title string }{
		{"../../examples/quickstart.yaml", "", "", `"title": "protogate"`},
		{"../../examples/mappings/dubbo.yaml", "", "", `"title": "protogate"`},
		{"../../examples/mappings/nats.yaml", "", "public", `"title": "protogate, listener public"`},
		{"../../examples/mappings/mixed.yaml", "edge", "", `"title": "protogate, node group edge"`},
		{"../../examples/mappings/mixed.yaml", "edge", "public", `"title": "protogate, node group edge, listener public"`},
		{"../../examples/mappings/split", "", "", `"title": "protogate"`},
	}
	for _, tt := range tests {
		args := []string{"openapi", "-c", tt.path}
		if tt.group != "" {
			args = append(args, "--node-group", tt.group)
		}
		if tt.listener != "" {
			args = append(args, "--listener", tt.listener)
		}
		out, errOut, err := run(args...)
		if err != nil || errOut != "" {
			t.Errorf("%v: err=%v stderr=%q", args, err, errOut)
			continue
		}
		if !strings.Contains(out, tt.title) || !strings.Contains(out, `"/`) {
			t.Errorf("%v: no %s or no path in\n%s", args, tt.title, out)
		}
		if _, err := openapitest.New([]byte(out)); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}

func TestOpenAPIBadInput(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"openapi"}, `required flag(s) "config" not set`},
		{[]string{"openapi", "-c", "../../examples/mappings/mixed.yaml", "--listener", "nope"},
			`--listener: the mapping has no listener "nope" (http listeners: public)`},
		{[]string{"openapi", "-c", "../../examples/mappings/mixed.yaml", "--listener", "dubbo-in"},
			`--listener "dubbo-in" is a dubbo listener; only http listeners have routes to describe`},
		{[]string{"openapi", "-c", "../../examples/mappings/mixed.yaml", "--node-group", "rpc", "--listener", "public"},
			`--listener "public": node group "rpc" does not serve it, or it has no routes`},
		{[]string{"openapi", "-c", "../../examples/mappings/mixed.yaml", "--node-group", "nope"},
			`--node-group: the mapping has no node group "nope" (groups: edge, rpc)`},
		{[]string{"openapi", "-c", "../../test/testdata/invalid/many-errors.yaml"}, "invalid mapping"},
	}
	for _, tt := range tests {
		out, _, err := run(tt.args...)
		if err == nil || err.Error() != tt.wantErr && !strings.Contains(err.Error(), tt.wantErr) || out != "" {
			t.Errorf("%v: err=%v stdout=%q, want the error %q and no output", tt.args, err, out, tt.wantErr)
		}
	}
}
