package bridges

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/protogate/protogate/openapi/openapitest"
)

// openAPIMapping serves the example provider's getUser and createUser and
// a JetStream publish, with the description at /openapi.json.
func openAPIMapping(p *provider, natsURL string) string {
	return fmt.Sprintf(`
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: get-user
        match: { path: "/users/{id}", methods: [GET] }
        dubbo: { upstream: users, service: com.example.UserService, method: getUser, params: [ { from: path.id, type: long } ], returns: com.example.User }
      - name: create-user
        match: { path: /users, methods: [POST] }
        dubbo: { upstream: users, service: com.example.UserService, method: createUser, params: [ { from: body, type: com.example.User } ], returns: com.example.User }
      - name: order-events
        match: { path: "/events/orders/{region}", methods: [POST] }
        nats: { upstream: events, subject: "orders.{region}.created" }
upstreams:
  dubbo:
    - { name: users, urls: [ "dubbo://127.0.0.1:%d" ] }
  nats:
    - { name: events, urls: [ %q ], provision: true, streams: [ { name: ORDERS, subjects: [ "orders.>" ] } ] }
`+providerJavaTypes+`bridge:
  address: 127.0.0.1:0
  openapi_path: /openapi.json
`, p.dubboPort, natsURL)
}

// fetchDoc reads the description the bridge serves.
func fetchDoc(t *testing.T, b *bridge, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", b.url+"/openapi.json", nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// TestOpenAPIDescribesWhatTheBridgeTakes fetches the description from a
// bridge in front of the example Dubbo provider and a NATS server, checks
// it with a maintained OpenAPI validator, and sends requests: one the
// document allows is served (2xx), one it forbids is refused with a 400,
// and every answer is one the document describes.
func TestOpenAPIDescribesWhatTheBridgeTakes(t *testing.T) {
	p := startProvider(t)
	ns := startNATS(t, -1, t.TempDir(), 0)
	b := startBridge(t, openAPIMapping(p, ns.url()))
	b.waitReady()

	resp, doc := fetchDoc(t, b, nil)
	version := b.srv.Current().version
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("ETag") != `"`+version+`"` {
		t.Fatalf("GET /openapi.json = %d %q ETag %q, want 200 application/json ETag %q", resp.StatusCode,
			resp.Header.Get("Content-Type"), resp.Header.Get("ETag"), `"`+version+`"`)
	}
	c, err := openapitest.New(doc)
	if err != nil {
		t.Fatalf("the served description does not validate: %v", err)
	}

	user := `{"name":"alice","age":30,"status":"ACTIVE","balance":"12.50","tags":["admin"],"address":{"city":"Oslo"}}`
	js := map[string]string{"Content-Type": "application/json"}
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		allowed                  bool
		status                   int
	}{
		{"a valid path parameter", "GET", "/users/42", "", nil, true, 200},
		{"a valid body", "POST", "/users", user, js, true, 200},
		{"a publish", "POST", "/events/orders/eu", `{"id":1}`, js, true, 201},
		{"a path parameter of the wrong type", "GET", "/users/abc", "", nil, false, 400},
		{"a long out of range", "GET", "/users/9223372036854775808", "", nil, false, 400},
		{"a field of the wrong JSON type", "POST", "/users", `{"name":5}`, js, false, 400},
		{"an int out of range", "POST", "/users", `{"age":3000000000}`, js, false, 400},
		{"an unknown field", "POST", "/users", `{"name":"bob","nick":"b"}`, js, false, 400},
		{"a class key", "POST", "/users", `{"class":"java.lang.Runtime"}`, js, false, 400},
		{"an enum constant that does not exist", "POST", "/users", `{"status":"GONE"}`, js, false, 400},
		{"a missing body", "POST", "/users", "", nil, false, 400},
		{"a subject token with a dot", "POST", "/events/orders/eu.x", `{}`, js, false, 400},
	}
	for _, tt := range tests {
		verdict := c.Request(newRequest(t, b.url, tt.method, tt.path, tt.body, tt.header))
		if (verdict == nil) != tt.allowed {
			t.Errorf("%s: %s %s: the document allows it: %v, want %v (%v)", tt.name, tt.method, tt.path, verdict == nil, tt.allowed, verdict)
		}
		req := newRequest(t, b.url, tt.method, tt.path, tt.body, tt.header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: %s %s = %d %s, want %d", tt.name, tt.method, tt.path, resp.StatusCode, raw, tt.status)
		}
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		if err := c.Response(newRequest(t, b.url, tt.method, tt.path, tt.body, tt.header), resp); err != nil {
			t.Errorf("%s: the answer %d %s is not one the document describes: %v", tt.name, resp.StatusCode, raw, err)
		}
	}
}

// TestOpenAPIServing: GET and HEAD only, revalidated by the table version.
func TestOpenAPIServing(t *testing.T) {
	ns := startNATS(t, -1, t.TempDir(), 0)
	b := startBridge(t, `
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: views
        match: { path: /events/views, methods: [POST] }
        nats: { upstream: events, subject: views.recorded, mode: core }
upstreams:
  nats: [ { name: events, urls: [ "`+ns.url()+`" ] } ]
bridge: { address: "127.0.0.1:0", openapi_path: /api/openapi.json }
`)
	etag := `"` + b.srv.Current().version + `"`
	tests := []struct {
		method, path string
		header       map[string]string
		status       int
		allow        string
		wantBody     bool
	}{
		{"GET", "/api/openapi.json", nil, 200, "", true},
		{"HEAD", "/api/openapi.json", nil, 200, "", false},
		{"GET", "/api/openapi.json", map[string]string{"If-None-Match": etag}, 304, "", false},
		{"GET", "/api/openapi.json", map[string]string{"If-None-Match": `"other"`}, 200, "", true},
		{"POST", "/api/openapi.json", nil, 405, "GET, HEAD", true},
		{"GET", "/openapi.json", nil, 404, "", true}, // only where the mapping says
	}
	for _, tt := range tests {
		req := newRequest(t, b.url, tt.method, tt.path, "", tt.header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || resp.Header.Get("Allow") != tt.allow || (len(raw) > 0) != tt.wantBody {
			t.Errorf("%s %s %v = %d Allow %q body %q, want %d Allow %q body: %v", tt.method, tt.path, tt.header,
				resp.StatusCode, resp.Header.Get("Allow"), raw, tt.status, tt.allow, tt.wantBody)
		}
		if tt.status == 405 && !strings.Contains(string(raw), `"code":"method_not_allowed"`) {
			t.Errorf("405 body %s, want the JSON error body", raw)
		}
		if tt.status == 200 && resp.Header.Get("ETag") != etag {
			t.Errorf("ETag %q, want %q", resp.Header.Get("ETag"), etag)
		}
	}
}

func newRequest(t *testing.T, base, method, path, body string, header map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return req
}
