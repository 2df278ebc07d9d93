package config

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/spf13/viper"
)

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	raw, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("protogate.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	// Compiling checks the schema against the draft 2020-12 meta-schema.
	s, err := c.Compile("protogate.schema.json")
	if err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}
	return s
}

// asJSONValue reads a mapping file the way viper does and re-encodes it as
// plain JSON values, which is what an editor checks.
func asJSONValue(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := viper.NewWithOptions(viper.KeyDelimiter(keyDelimiter))
	ext := strings.TrimPrefix(filepath.Ext(path), ".")
	if ext == "yml" {
		ext = "yaml"
	}
	v.SetConfigType(ext)
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(v.AllSettings())
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestExamplesMatchSchema(t *testing.T) {
	s := compileSchema(t)
	var files []string
	for _, pat := range []string{"../examples/mappings/*.yaml", "../examples/mappings/split/*"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	if len(files) < 6 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			if err := s.Validate(asJSONValue(t, f)); err != nil {
				t.Errorf("%v", err)
			}
		})
	}
}

// TestSchemaRejects proves the schema checks something: the mistakes an
// editor should underline fail it.
func TestSchemaRejects(t *testing.T) {
	s := compileSchema(t)
	cases := map[string]string{
		"unknown key":   `{"listeners": [{"name": "a", "address": "127.0.0.1:1", "bogus": 1}]}`,
		"bad enum":      `{"listeners": [{"name": "a", "address": "127.0.0.1:1", "protocol": "udp"}]}`,
		"missing name":  `{"listeners": [{"address": "127.0.0.1:1"}]}`,
		"bad duration":  `{"bridge": {"read_timeout": "30"}}`,
		"bad size":      `{"bridge": {"max_body_size": "1.5MiB"}}`,
		"out of range":  `{"bridge": {"max_json_depth": 0}}`,
		"wrong type":    `{"bridge": {"http2": "yes"}}`,
		"bad method":    `{"listeners": [{"name": "a", "address": "127.0.0.1:1", "routes": [{"match": {"methods": ["FETCH"]}}]}]}`,
		"nested filter": `{"listeners": [{"name": "a", "address": "127.0.0.1:1", "filters": {"local_ratelimit": {"burst": 1}}}]}`,
	}
	for name, doc := range cases {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(v); err == nil {
			t.Errorf("%s: schema accepted %s", name, doc)
		}
	}
}
