package openapi_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/openapi"
	"github.com/protogate/protogate/openapi/openapitest"
	"github.com/protogate/protogate/routetable"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// examples are the mappings the project ships, by golden file name.
var examples = []struct{ name, path string }{
	{"quickstart", "../examples/quickstart.yaml"},
	{"dubbo", "../examples/mappings/dubbo.yaml"},
	{"nats", "../examples/mappings/nats.yaml"},
	{"mixed", "../examples/mappings/mixed.yaml"},
	{"split", "../examples/mappings/split"},
	{"kubernetes", "../examples/kubernetes/mapping.yaml"},
	{"everything", "testdata/everything.yaml"},
}

// load reads a mapping; the Kubernetes example holds it inside a ConfigMap.
func load(t *testing.T, path string) *config.Config {
	t.Helper()
	if !strings.Contains(path, "kubernetes") {
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return cfg
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, embedded, ok := strings.Cut(string(raw), "mapping.yaml: |\n")
	if !ok {
		t.Fatalf("%s holds no mapping.yaml", path)
	}
	var lines []string
	for _, l := range strings.Split(embedded, "\n") {
		lines = append(lines, strings.TrimPrefix(l, "    "))
	}
	// xds.security names the certificate files the pods mount; the routes
	// do not depend on it, and the files are not here.
	var m map[string]any
	if err := yaml.Unmarshal([]byte(strings.Join(lines, "\n")), &m); err != nil {
		t.Fatal(err)
	}
	if x, ok := m["xds"].(map[string]any); ok {
		delete(x, "security")
	}
	text, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadBytes("mapping.yaml", text)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cfg
}

func document(t *testing.T, path, listener string) []byte {
	t.Helper()
	tb, err := routetable.FromConfig(load(t, path), "")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi.Document(tb, listener)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc
}

// TestExamplesValidate describes every example mapping, checks the
// document with the validators and compares it with its golden file.
func TestExamplesValidate(t *testing.T) {
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			doc := document(t, ex.path, "")
			if _, err := openapitest.New(doc); err != nil {
				t.Fatal(err)
			}
			// info.version is the table's hash, which any change to the
			// table's form moves; TestInfo checks it.
			doc = tableVersion.ReplaceAll(doc, []byte(`"version": "TABLE-VERSION"`))
			golden := filepath.Join("testdata", ex.name+".json")
			if *update {
				if err := os.WriteFile(golden, doc, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./openapi -update to write it)", err)
			}
			if !bytes.Equal(doc, want) {
				t.Errorf("%s differs from %s (go test ./openapi -update rewrites it):\n%s", ex.path, golden, firstDiff(string(doc), string(want)))
			}
		})
	}
}

var tableVersion = regexp.MustCompile(`"version": "[0-9a-f]{16}"`)

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + itoa(i+1) + ":\n got: " + gl + "\nwant: " + wl
		}
	}
	return ""
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestDeterministic: the same table gives the same bytes, whatever order
// Go's maps iterate in.
func TestDeterministic(t *testing.T) {
	first := document(t, "testdata/everything.yaml", "")
	for range 20 {
		if !bytes.Equal(first, document(t, "testdata/everything.yaml", "")) {
			t.Fatal("two documents of one table differ")
		}
	}
}

func TestInfo(t *testing.T) {
	cfg := load(t, "../examples/mappings/mixed.yaml")
	tb, err := routetable.FromConfig(cfg, "edge")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi.Document(tb, "public")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		OpenAPI string `json:"openapi"`
		Info    struct{ Title, Version string }
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	want := struct{ openapi, title, version string }{"3.1.0", "protogate, node group edge, listener public", tb.Version()}
	if d.OpenAPI != want.openapi || d.Info.Title != want.title || d.Info.Version != want.version {
		t.Errorf("got %s %q %q, want %+v", d.OpenAPI, d.Info.Title, d.Info.Version, want)
	}
}

func TestListenerSelection(t *testing.T) {
	path := "testdata/everything.yaml"
	tests := []struct {
		listener  string
		wantPaths []string
		wantErr   string
	}{
		{listener: "", wantPaths: []string{"/admin/users/{id}", "/users/{id}"}},
		{listener: "internal", wantPaths: []string{"/admin/users/{id}"}},
		{listener: "nosuch", wantErr: `listener "nosuch" has no HTTP routes in this table (listeners with routes: public, internal)`},
	}
	tb, err := routetable.FromConfig(load(t, path), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		doc, err := openapi.Document(tb, tt.listener)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("listener %q: err = %v, want %q", tt.listener, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var d struct{ Paths map[string]any }
		if err := json.Unmarshal(doc, &d); err != nil {
			t.Fatal(err)
		}
		for _, p := range tt.wantPaths {
			if _, ok := d.Paths[p]; !ok {
				t.Errorf("listener %q: no path %s", tt.listener, p)
			}
		}
		if tt.listener == "internal" && len(d.Paths) != 1 {
			t.Errorf("listener internal: %d paths, want 1", len(d.Paths))
		}
	}
}

// TestRequestsAgainstDocument checks that the document allows what the
// bridge accepts and forbids what it refuses, on the request shapes the
// conversions decide (the bridge tests send the same kinds to a bridge).
func TestRequestsAgainstDocument(t *testing.T) {
	c, err := openapitest.New(document(t, "testdata/everything.yaml", ""))
	if err != nil {
		t.Fatal(err)
	}
	json := map[string]string{"Content-Type": "application/json"}
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		allowed                  bool
	}{
		{"long path param", "GET", "/users/42", "", nil, true},
		{"long path param out of range", "GET", "/users/9223372036854775808", "", nil, false},
		{"long path param not a number", "GET", "/users/abc", "", nil, false},
		{"whole POJO body", "POST", "/users", `{"name":"a","age":3,"status":"ACTIVE","balance":"12.50","created":"2026-01-02T03:04:05Z","tags":["x"],"address":{"city":"Oslo"},"photo":"aGk="}`, json, true},
		{"BigDecimal as a number", "POST", "/users", `{"balance":12.5}`, json, true},
		{"BigDecimal not decimal", "POST", "/users", `{"balance":"12,50"}`, json, false},
		{"null fields", "POST", "/users", `{"name":null,"address":null}`, json, true},
		{"int out of range", "POST", "/users", `{"age":3000000000}`, json, false},
		{"primitive null", "POST", "/users", `{"age":null}`, json, false},
		{"unknown field", "POST", "/users", `{"nick":"x"}`, json, false},
		{"class key", "POST", "/users", `{"class":"java.lang.Runtime"}`, json, false},
		{"enum constant unknown", "POST", "/users", `{"status":"GONE"}`, json, false},
		{"date not RFC 3339", "POST", "/users", `{"created":"yesterday"}`, json, false},
		{"string as number", "POST", "/users", `{"name":5}`, json, false},
		{"nested unknown field", "POST", "/users", `{"address":{"zip":"1"}}`, json, false},
		{"missing body", "POST", "/users", ``, nil, false},
		{"body fields", "POST", "/orders/eu", `{"id":7,"note":"n","ratio":0.5}`, json, true},
		{"body field missing", "POST", "/orders/eu", `{"note":"n","ratio":0.5}`, json, false},
		{"optional body field absent", "POST", "/orders/eu", `{"id":7,"ratio":0.5}`, json, true},
		{"body field not read", "POST", "/orders/eu", `{"id":7,"ratio":0.5,"x":1}`, json, false},
		{"required primitive body field missing", "POST", "/orders/eu", `{"id":7}`, json, false},
		{"float out of range", "POST", "/orders/eu", `{"id":7,"ratio":1e39}`, json, false},
		{"map key not a long", "POST", "/orders/eu", `{"id":7,"ratio":1,"lines":{"x":"1.5"}}`, json, false},
		{"map of decimals", "POST", "/orders/eu", `{"id":7,"ratio":1,"lines":{"12":"1.5","-3":2}}`, json, true},
		{"char of two", "POST", "/orders/eu", `{"id":7,"ratio":1,"initial":"ab"}`, json, false},
		{"bad base64", "POST", "/users", `{"photo":"not base64!"}`, json, false},
		{"query enum", "GET", "/users?status=ACTIVE&limit=3", "", nil, true},
		{"query enum unknown", "GET", "/users?status=GONE", "", nil, false},
		{"query required missing", "GET", "/users?limit=3", "", nil, false},
		{"subject token", "POST", "/events/orders/eu", "anything", map[string]string{"Content-Type": "text/plain"}, true},
		{"subject token with a dot", "POST", "/events/orders/eu.x", "", nil, false},
		{"idempotency key too long", "POST", "/events/orders/eu", "", map[string]string{"Idempotency-Key": strings.Repeat("k", 257)}, false},
		{"header match", "GET", "/admin/users/1", "", map[string]string{"X-Tenant": "acme-1"}, true},
		{"header match missing", "GET", "/admin/users/1", "", nil, false},
		{"header match wrong", "GET", "/admin/users/1", "", map[string]string{"X-Tenant": "other"}, false},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, "http://127.0.0.1"+tt.path, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range tt.header {
			req.Header.Set(k, v)
		}
		err = c.Request(req)
		if got := err == nil; got != tt.allowed {
			t.Errorf("%s: %s %s %s: allowed = %v, want %v (%v)", tt.name, tt.method, tt.path, tt.body, got, tt.allowed, err)
		}
	}
}

// TestUnlisted: prefix and regex routes are named, not described as paths.
func TestUnlisted(t *testing.T) {
	doc := document(t, "testdata/everything.yaml", "")
	var d struct {
		Paths    map[string]any
		Unlisted []struct{ Route, Reason string } `json:"x-protogate-unlisted"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, u := range d.Unlisted {
		got[u.Route] = true
	}
	for _, want := range []string{"legacy", "status-regex", "user-by-uid"} {
		if !got[want] {
			t.Errorf("route %s is not in x-protogate-unlisted: %+v", want, d.Unlisted)
		}
	}
	for p := range d.Paths {
		if regexp.MustCompile(`[\^$*]`).MatchString(p) {
			t.Errorf("path %s is no OpenAPI path", p)
		}
	}
}
