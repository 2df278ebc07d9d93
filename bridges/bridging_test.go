package bridges

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/routetable"
)

// TestBridgingServesFormerDefinitions: while a reload moves a route to a
// new path, the bridging table takes the route by name on its old path
// (what an Envoy not yet switched sends) and on its new one; once the new
// table alone serves, the old path no longer matches.
func TestBridgingServesFormerDefinitions(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream saw "+r.URL.Path)
	}))
	defer web.Close()
	host := strings.TrimPrefix(web.URL, "http://")
	mapping := func(path string) (*config.Config, *routetable.Table) {
		cfg, err := config.LoadBytes("mapping.yaml", []byte(fmt.Sprintf(`
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - { name: user, match: { path: %q, methods: [GET] }, http: { upstream: web } }
upstreams:
  http: [ { name: web, endpoints: [ %q ] } ]
bridge:
  address: 127.0.0.1:0
`, path, host)))
		if err != nil {
			t.Fatal(err)
		}
		return cfg, tableOf(t, cfg)
	}
	cfg, old := mapping("/users/{id}")
	_, next := mapping("/people/{id}")
	b := startBridgeWith(t, cfg, old)
	call := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", b.url+path, nil)
		req.Header.Set("x-protogate-route", "user")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if err := b.srv.Apply(routetable.Bridging(old, next)); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/users/7", "/people/7"} {
		if code, body := call(path); code != 200 || body != "upstream saw "+path {
			t.Errorf("%s while bridging = %d %q, want 200", path, code, body)
		}
	}
	if err := b.srv.Apply(next); err != nil {
		t.Fatal(err)
	}
	if code, body := call("/users/7"); code != 404 || !strings.Contains(body, "not_found") {
		t.Errorf("the old path once the new table serves = %d %s, want 404 not_found", code, body)
	}
	if code, _ := call("/people/7"); code != 200 {
		t.Errorf("the new path = %d", code)
	}
}
