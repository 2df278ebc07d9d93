package openapitest

import (
	"strings"
	"testing"
)

// TestNewRefusesBrokenDocuments: the checker is only worth something if
// it fails documents that are wrong.
func TestNewRefusesBrokenDocuments(t *testing.T) {
	const good = `{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{"/a/{id}":{"get":{"operationId":"a",
"parameters":[{"name":"id","in":"path","required":true,"schema":SCHEMA}],"responses":{"200":{"description":"ok"}}}}}}`
	tests := []struct {
		name, doc, wantErr string
	}{
		{"valid", strings.Replace(good, "SCHEMA", `{"type":"integer"}`, 1), ""},
		{"OpenAPI 3.0", strings.Replace(strings.Replace(good, "SCHEMA", `{"type":"integer"}`, 1), "3.1.0", "3.0.3", 1), "want 3.1.0"},
		{"no info", strings.Replace(strings.Replace(good, "SCHEMA", `{"type":"integer"}`, 1), `"info":{"title":"t","version":"1"},`, "", 1), "does not validate"},
		{"parameter in the body", strings.Replace(strings.Replace(good, "SCHEMA", `{"type":"integer"}`, 1), `"in":"path"`, `"in":"body"`, 1), "does not validate"},
		{"pattern no regexp", strings.Replace(good, "SCHEMA", `{"type":"string","pattern":"(["}`, 1), "schema /paths"},
		{"minimum of the wrong type", strings.Replace(good, "SCHEMA", `{"type":"integer","minimum":"1"}`, 1), "schema /paths"},
		{"dangling reference", strings.Replace(good, "SCHEMA", `{"$ref":"#/components/schemas/Nope"}`, 1), ""},
	}
	for _, tt := range tests {
		_, err := New([]byte(tt.doc))
		switch {
		case tt.name == "dangling reference":
			if err == nil {
				t.Errorf("%s: accepted", tt.name)
			}
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: err = %v, want one saying %q", tt.name, err, tt.wantErr)
		}
	}
}
