package bridges

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	providerOnce sync.Once
	providerDir  string // removed by TestMain
	providerBin  string
	providerErr  error
)

// providerBinary builds examples/dubbo-provider once per test run, into a
// directory TestMain removes when the package's tests end.
func providerBinary(t *testing.T) string {
	t.Helper()
	providerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "protogate-provider-")
		if err != nil {
			providerErr = err
			return
		}
		providerDir = dir
		providerBin = filepath.Join(dir, "dubbo-provider")
		out, err := exec.Command("go", "build", "-o", providerBin, "../examples/dubbo-provider").CombinedOutput()
		if err != nil {
			providerErr = fmt.Errorf("building the example provider: %v\n%s", err, out)
		}
	})
	if providerErr != nil {
		t.Fatal(providerErr)
	}
	return providerBin
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type provider struct {
	cmd                *exec.Cmd
	dubboPort, triPort int
	exited             chan struct{} // closed once the process has ended
	stopOnce           sync.Once
}

// startProvider runs the example provider as its own process (dubbo-go
// allows one server per process) and waits until it serves.
func startProvider(t *testing.T, extra ...string) *provider {
	t.Helper()
	p := &provider{dubboPort: freePort(t), triPort: freePort(t), exited: make(chan struct{})}
	args := append([]string{"-dubbo-port", fmt.Sprint(p.dubboPort), "-triple-port", fmt.Sprint(p.triPort),
		"-metadata-port", fmt.Sprint(freePort(t))}, extra...)
	p.cmd = exec.Command(providerBinary(t), args...)
	stdout, _ := p.cmd.StdoutPipe()
	p.cmd.Stderr = os.Stderr
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), "provider ready") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait() // closes stdout too: a ready line lost now no longer matters
		close(p.exited)
	}()
	t.Cleanup(p.stop)
	select {
	case <-ready:
	case <-p.exited:
		t.Fatalf("the example provider exited before it was ready: %v (its log is above)", p.cmd.ProcessState)
	case <-time.After(30 * time.Second):
		t.Fatal("the example provider did not start")
	}
	// "provider ready" means Serve has not failed for a second, not that
	// the ports accept: wait until both do before a test calls them.
	for _, port := range []int{p.dubboPort, p.triPort} {
		waitListening(t, fmt.Sprintf("127.0.0.1:%d", port))
	}
	return p
}

// waitListening returns once addr accepts TCP connections.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("%s never accepted a connection: %v", addr, err)
}

// stop kills the provider and returns once it has exited; it may be called
// more than once.
func (p *provider) stop() {
	p.stopOnce.Do(func() { _ = p.cmd.Process.Kill() })
	<-p.exited
}

// dubboMapping routes /{upstream}/{method} to every echo method of the
// example provider, the body being the one argument.
func dubboMapping(upstreams string, names ...string) string {
	methods := []struct{ method, typ string }{
		{"echoInt", "int"}, {"echoLong", "long"}, {"echoShort", "short"}, {"echoByte", "byte"},
		{"echoDouble", "double"}, {"echoFloat", "float"}, {"echoBoolean", "boolean"},
		{"echoString", "java.lang.String"}, {"echoBoxedLong", "java.lang.Long"},
		{"echoDecimal", "java.math.BigDecimal"}, {"echoBigInteger", "java.math.BigInteger"},
		{"echoDate", "java.util.Date"}, {"echoBytes", "byte[]"}, {"echoInts", "int[]"},
		{"echoList", "java.util.List<java.lang.String>"}, {"echoMap", "java.util.Map<java.lang.String, java.lang.Long>"},
		{"echoStatus", "com.example.Status"}, {"createUser", "com.example.User"},
		// The provider has no such method: the route exists so that what
		// it must refuse is refused before any call.
		{"echoObject", "java.lang.Object"},
	}
	var b strings.Builder
	b.WriteString("listeners:\n  - name: public\n    address: 127.0.0.1:10000\n    routes:\n")
	for _, up := range names {
		for _, m := range methods {
			fmt.Fprintf(&b, `      - name: %[1]s-%[2]s
        match: { path: /%[1]s/%[2]s, methods: [POST] }
        dubbo:
          upstream: %[1]s
          service: com.example.UserService
          method: %[2]s
          params: [ { from: body, type: "%[3]s", optional: %[4]v } ]
          returns: "%[3]s"
          timeout: 3s
          exceptions: [ { class: java.lang.IllegalArgumentException, status: 400 } ]
`, up, m.method, m.typ, m.typ == "java.lang.Long")
		}
		fmt.Fprintf(&b, `      - name: %[1]s-getUser
        match: { path: "/%[1]s/users/{id}", methods: [GET] }
        dubbo: { upstream: %[1]s, service: com.example.UserService, method: getUser, params: [ { from: path.id, type: long } ], idempotent: true, retries: 1 }
      - name: %[1]s-findUsers
        match: { path: /%[1]s/users, methods: [GET] }
        dubbo:
          upstream: %[1]s
          service: com.example.UserService
          method: findUsers
          params: [ { from: query.status, type: com.example.Status }, { from: query.limit, type: java.lang.Integer, optional: true } ]
      - name: %[1]s-fail
        match: { path: "/%[1]s/fail/{kind}", methods: [POST] }
        dubbo:
          upstream: %[1]s
          service: com.example.UserService
          method: fail
          params: [ { from: path.kind, type: java.lang.String } ]
          exceptions: [ { class: java.lang.IllegalArgumentException, status: 400 } ]
      - name: %[1]s-slow
        match: { path: /%[1]s/slow, methods: [POST] }
        dubbo: { upstream: %[1]s, service: com.example.UserService, method: slow, params: [ { from: body.ms, type: long } ], timeout: 500ms }
      - name: %[1]s-patient
        match: { path: /%[1]s/patient, methods: [POST] }
        dubbo: { upstream: %[1]s, service: com.example.UserService, method: slow, params: [ { from: body.ms, type: long } ], timeout: 10s }
      - name: %[1]s-attachments
        match: { path: /%[1]s/attachments, methods: [POST] }
        body_limit: 1KiB
        dubbo:
          upstream: %[1]s
          service: com.example.UserService
          method: attachments
          params: [ { from: header.x-tag, type: java.lang.String } ]
          attachments: [ { header: x-request-id, name: requestId } ]
      - name: %[1]s-lastCall
        match: { path: /%[1]s/lastCall, methods: [GET] }
        dubbo: { upstream: %[1]s, service: com.example.UserService, method: lastCall }
`, up)
	}
	b.WriteString(upstreams)
	b.WriteString(providerJavaTypes + `bridge:
  address: 127.0.0.1:0
`)
	return b.String()
}

func directUpstreams(p *provider) string {
	return fmt.Sprintf(`upstreams:
  dubbo:
    - { name: viadubbo, urls: [ "dubbo://127.0.0.1:%d" ], protocol: dubbo }
    - { name: viatriple, urls: [ "tri://127.0.0.1:%d" ], protocol: triple }
`, p.dubboPort, p.triPort)
}

// roundTrips are JSON values that must come back as they were sent.
var roundTrips = []struct{ method, in, out string }{
	{"echoInt", `42`, `42`},
	{"echoInt", `-2147483648`, `-2147483648`},
	{"echoLong", `9007199254740993`, `9007199254740993`},
	{"echoShort", `-32768`, `-32768`},
	{"echoByte", `127`, `127`},
	{"echoDouble", `1.5e300`, `1.5e+300`},
	{"echoFloat", `3.25`, `3.25`},
	{"echoBoolean", `true`, `true`},
	{"echoString", `"héllo, wörld"`, `"héllo, wörld"`},
	{"echoBoxedLong", `7`, `7`},
	{"echoDecimal", `"12.50"`, `"12.50"`},
	{"echoDecimal", `0.1`, `"0.1"`},
	{"echoBigInteger", `"123456789012345678901234567890"`, `"123456789012345678901234567890"`},
	{"echoBytes", `"aGVsbG8="`, `"aGVsbG8="`},
	{"echoInts", `[1, 2, 3]`, `[1,2,3]`},
	{"echoList", `["a", "b"]`, `["a","b"]`},
	{"echoMap", `{"x": 1, "y": 9007199254740993}`, `{"x":1,"y":9007199254740993}`},
	{"echoStatus", `"SUSPENDED"`, `"SUSPENDED"`},
}

// normalize re-encodes JSON so equal values compare equal; dates are
// compared as instants.
func normalize(t *testing.T, s string) string {
	t.Helper()
	var v any
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("not JSON: %q", s)
	}
	if str, ok := v.(string); ok {
		if tm, err := time.Parse(time.RFC3339Nano, str); err == nil {
			v = tm.UTC().Format(time.RFC3339)
		}
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func TestDubboRoundTripDirect(t *testing.T) {
	p := startProvider(t)
	b := startBridge(t, dubboMapping(directUpstreams(p), "viadubbo", "viatriple"))
	checkRoundTrips(t, b, "viadubbo", "viatriple")
}

// checkRoundTrips sends every value of roundTrips through each upstream and
// expects it back unchanged.
func checkRoundTrips(t *testing.T, b *bridge, upstreams ...string) {
	t.Helper()
	for _, up := range upstreams {
		for _, rt := range roundTrips {
			code, _, h := b.do("POST", "/"+up+"/"+rt.method, rt.in, map[string]string{"Content-Type": "application/json"})
			body := h.Get("X-Test-Body")
			if code != 200 || normalize(t, body) != normalize(t, rt.out) {
				t.Errorf("%s %s(%s) = %d %s, want %s", up, rt.method, rt.in, code, body, rt.out)
			}
		}
	}
}

// lastCall asks the provider what its previous call received, Go types
// included. It always asks over the dubbo protocol: dubbo-go cannot call a
// method without arguments over triple ("@in is nil").
func lastCall(t *testing.T, b *bridge, _ string) string {
	t.Helper()
	code, _, h := b.do("GET", "/viadubbo/lastCall", "", nil)
	var s string
	if code != 200 || json.Unmarshal([]byte(h.Get("X-Test-Body")), &s) != nil {
		t.Fatalf("lastCall = %d %s", code, h.Get("X-Test-Body"))
	}
	return s
}

func TestDubboCalls(t *testing.T) {
	p := startProvider(t)
	b := startBridge(t, dubboMapping(directUpstreams(p), "viadubbo", "viatriple"))
	for _, up := range []string{"viadubbo", "viatriple"} {
		t.Run(up, func(t *testing.T) {
			// Dates: the provider receives the instant sent; inside
			// objects they travel both ways. (dubbo-go's generic filter
			// turns a top-level time.Time result into {}; Java providers
			// return java.util.Date intact.)
			b.do("POST", "/"+up+"/echoDate", `"2026-11-21T10:00:00+01:00"`, nil)
			if got := lastCall(t, b, up); got != "echoDate(string(2026-11-21T09:00:00Z))" {
				t.Errorf("provider received %s", got)
			}

			user := `{"name": "alice", "age": 30, "status": "ACTIVE", "balance": "12.50",
				"created": "2026-01-02T03:04:05Z", "tags": ["a", "b"], "address": {"city": "Oslo"}, "scores": {"x": 1}}`
			code, _, h := b.do("POST", "/"+up+"/createUser", user, nil)
			var got map[string]any
			if code != 200 || json.Unmarshal([]byte(h.Get("X-Test-Body")), &got) != nil {
				t.Fatalf("createUser = %d %s", code, h.Get("X-Test-Body"))
			}
			created, _ := time.Parse(time.RFC3339, fmt.Sprint(got["created"]))
			if got["name"] != "alice" || got["age"] != 30.0 || got["status"] != "ACTIVE" || got["balance"] != "12.50" ||
				!created.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) || fmt.Sprint(got["tags"]) != "[a b]" ||
				fmt.Sprint(got["address"]) != "map[city:Oslo street:]" || fmt.Sprint(got["scores"]) != "map[x:1]" || got["id"] == nil {
				t.Errorf("createUser returned %s", h.Get("X-Test-Body"))
			}
			if _, hasClass := got["class"]; hasClass {
				t.Error("a class key reached the response")
			}
			if rec := lastCall(t, b, up); !strings.Contains(rec, "*main.User(") || !strings.Contains(rec, "Name:alice") || !strings.Contains(rec, "City:Oslo") {
				t.Errorf("provider received %s", rec)
			}

			// Path and query parameters, converted by their declared types.
			code, _, h = b.do("GET", "/"+up+"/users/42", "", nil)
			if code != 200 || !strings.Contains(h.Get("X-Test-Body"), `"id":42`) || lastCall(t, b, up) != "getUser(int64(42))" {
				t.Errorf("getUser = %d %s", code, h.Get("X-Test-Body"))
			}
			code, _, h = b.do("GET", "/"+up+"/users?status=SUSPENDED&limit=1", "", nil)
			if code != 200 || strings.Count(h.Get("X-Test-Body"), `"id"`) != 1 || !strings.Contains(lastCall(t, b, up), "findUsers(main.Status(SUSPENDED), *int32(") {
				t.Errorf("findUsers = %d %s", code, h.Get("X-Test-Body"))
			}

			// Exceptions: mapped, and unmapped with their class.
			code, r, _ := b.do("POST", "/"+up+"/fail/argument", "", nil)
			if up == "viadubbo" && (code != 400 || r.Error.Code != "provider_exception" ||
				!strings.Contains(r.Error.Message, "java.lang.IllegalArgumentException: bad argument: argument")) {
				t.Errorf("mapped exception = %d %+v", code, r.Error)
			}
			code, r, _ = b.do("POST", "/"+up+"/fail/boom", "", nil)
			if code != 502 || r.Error.Code != "provider_exception" || !strings.Contains(r.Error.Message, "provider failure: boom") || r.Error.Upstream != up {
				t.Errorf("unmapped exception = %d %+v", code, r.Error)
			}

			// Bad values never reach the provider.
			before := lastCall(t, b, up)
			for _, bad := range []struct{ path, body, code string }{
				{"/echoInt", `3000000000`, "bad_parameter"},
				{"/echoInt", `"42"`, "bad_parameter"},
				{"/echoStatus", `"DELETED"`, "bad_parameter"},
				{"/createUser", `{"name": "x", "class": "java.lang.Runtime"}`, "class_not_allowed"},
				{"/createUser", `{"name": "x", "address": {"class": "evil.Gadget"}}`, "class_not_allowed"},
				{"/createUser", `{"name": "x", "admin": true}`, "bad_parameter"},
				{"/createUser", `{"name": `, "bad_json"},
				{"/createUser", strings.Repeat("[", 40) + strings.Repeat("]", 40), "bad_json"},
				{"/echoInt", ``, "missing_parameter"},
				// Strict input: what encoding/json would repair or keep.
				{"/echoString", "\"a\xffb\"", "bad_json"},
				{"/echoString", `"a\ud800b"`, "bad_json"},
				{"/echoString", `"\udc00"`, "bad_json"},
				{"/createUser", `{"name": "x", "name": "y"}`, "bad_json"},
				{"/createUser", `{"name": "x", "@type": "java.lang.Runtime"}`, "class_not_allowed"},
				{"/createUser", `{"name": "x", "address": {"_class": "evil.Gadget"}}`, "class_not_allowed"},
				{"/createUser", `{"name": "x", "address": {"$class": "evil.Gadget"}}`, "class_not_allowed"},
				{"/echoObject", `{"a": {"@type": "evil.Gadget"}}`, "class_not_allowed"},
				{"/echoObject", `[{"class": "evil.Gadget"}]`, "class_not_allowed"},
			} {
				code, r, _ := b.do("POST", "/"+up+bad.path, bad.body, nil)
				if code != 400 || r.Error.Code != bad.code || r.Error.Route == "" {
					t.Errorf("POST %s %.40s = %d %+v, want 400 %s", bad.path, bad.body, code, r.Error, bad.code)
				}
			}
			for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded"} {
				code, r, _ := b.do("POST", "/"+up+"/createUser", `{"name": "x"}`, map[string]string{"Content-Type": ct})
				if code != 415 || r.Error.Code != "unsupported_media_type" {
					t.Errorf("POST /createUser as %q = %d %+v, want 415", ct, code, r.Error)
				}
			}
			if after := lastCall(t, b, up); after != before {
				t.Errorf("a refused request reached the provider: %s", after)
			}

			// A valid surrogate pair is a character, and a "class" key of a
			// declared Map<String, …> is data.
			if code, _, h := b.do("POST", "/"+up+"/echoString", `"\ud83d\ude00"`, nil); code != 200 || h.Get("X-Test-Body") != "\"😀\"\n" {
				t.Errorf("surrogate pair = %d %q", code, h.Get("X-Test-Body"))
			}
			if code, _, h := b.do("POST", "/"+up+"/echoMap", `{"class": 5}`, nil); code != 200 || lastCall(t, b, up) != "echoMap(map[string]int64(map[class:5]))" {
				t.Errorf("a Map<String, Long> with a key named class = %d %s, provider got %s", code, h.Get("X-Test-Body"), lastCall(t, b, up))
			}

			// A provider slower than the route's timeout.
			code, r, _ = b.do("POST", "/"+up+"/slow", `{"ms": 2000}`, nil)
			if code != 504 || r.Error.Code != "provider_timeout" {
				t.Errorf("slow provider = %d %+v", code, r.Error)
			}
		})
	}
}

func TestDubboProviderDown(t *testing.T) {
	p := startProvider(t)
	b := startBridge(t, dubboMapping(directUpstreams(p), "viadubbo"))
	if code, _, _ := b.do("POST", "/viadubbo/echoInt", `1`, nil); code != 200 {
		t.Fatalf("first call = %d", code)
	}
	p.stop()
	time.Sleep(200 * time.Millisecond)
	code, r, _ := b.do("POST", "/viadubbo/echoInt", `1`, nil)
	if code != 503 && code != 504 {
		t.Fatalf("call to a stopped provider = %d %+v, want 503 or 504", code, r.Error)
	}
	// A reference never built against a dead provider answers 503 at once.
	start := time.Now()
	code, r, _ = b.do("POST", "/viadubbo/echoLong", `1`, nil)
	if code != 503 || r.Error.Code != "no_provider" || time.Since(start) > 3*time.Second {
		t.Fatalf("new reference to a stopped provider = %d %+v after %v", code, r.Error, time.Since(start))
	}
}

// TestDubboAttachmentsAndLimits: only the attachments the route maps reach
// the provider, whatever headers the client sends; a body over the route's
// limit is refused before any call.
func TestDubboAttachmentsAndLimits(t *testing.T) {
	p := startProvider(t)
	b := startBridge(t, dubboMapping(directUpstreams(p), "viadubbo"))
	code, _, h := b.do("POST", "/viadubbo/attachments", "", map[string]string{
		"X-Tag": "t1", "X-Request-Id": "req-7", "X-Other": "leak", "Interface": "evil.Service", "Generic": "true",
	})
	var att map[string]string
	if code != 200 || json.Unmarshal([]byte(h.Get("X-Test-Body")), &att) != nil {
		t.Fatalf("attachments = %d %s", code, h.Get("X-Test-Body"))
	}
	if att["requestId"] != "req-7" {
		t.Errorf("the mapped attachment did not arrive: %v", att)
	}
	for k, v := range att {
		if strings.Contains(v, "leak") || strings.Contains(v, "evil") || strings.EqualFold(k, "x-other") {
			t.Errorf("a client header reached the provider as attachment %s=%s", k, v)
		}
	}
	if got := lastCall(t, b, "viadubbo"); got != "attachments(string(t1))" {
		t.Errorf("the header parameter arrived as %s", got)
	}
	// createUser reads the body; its limit is bridge.max_body_size (1 MiB).
	before := lastCall(t, b, "viadubbo")
	code, r, _ := b.do("POST", "/viadubbo/createUser", `{"name": "`+strings.Repeat("x", 2<<20)+`"}`, nil)
	if code != 413 || r.Error.Code != "body_too_large" {
		t.Fatalf("oversized body = %d %+v", code, r.Error)
	}
	if after := lastCall(t, b, "viadubbo"); after != before {
		t.Errorf("an oversized body reached the provider: %s", after)
	}
}

// TestDubboRouteTimeouts: over the dubbo protocol the route's timeout is
// the deadline, whatever the dubbo-go default of 3 s: a 10 s route waits
// for a 5 s method, a 500 ms route answers 504 at about 500 ms and says so.
func TestDubboRouteTimeouts(t *testing.T) {
	p := startProvider(t)
	b := startBridge(t, dubboMapping(directUpstreams(p), "viadubbo"))
	start := time.Now()
	code, _, h := b.do("POST", "/viadubbo/patient", `{"ms": 5000}`, nil)
	if code != 200 || !strings.Contains(h.Get("X-Test-Body"), "done") {
		t.Fatalf("a 5 s call on a 10 s route = %d %s after %v", code, h.Get("X-Test-Body"), time.Since(start))
	}
	start = time.Now()
	code, r, _ := b.do("POST", "/viadubbo/slow", `{"ms": 3000}`, nil)
	took := time.Since(start)
	if code != 504 || r.Error.Code != "provider_timeout" || !strings.Contains(r.Error.Message, "500ms") || took > 1500*time.Millisecond || took < 450*time.Millisecond {
		t.Fatalf("a 3 s call on a 500 ms route = %d %+v after %v", code, r.Error, took)
	}
}

// TestDubboNoSuchService: a version or group the provider does not export
// is a 404 naming both, not a timeout or a generic failure.
func TestDubboNoSuchService(t *testing.T) {
	p := startProvider(t)
	b := startBridge(t, `
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: wrong-version
        match: { path: /wrong, methods: [POST] }
        dubbo: { upstream: viadubbo, service: com.example.UserService, version: 9.9.9, group: nowhere, method: echoInt, params: [ { from: body, type: int } ] }
`+directUpstreams(p)+`
bridge:
  address: 127.0.0.1:0
`)
	code, r, _ := b.do("POST", "/wrong", `1`, nil)
	if code != 404 || r.Error.Code != "no_such_service" || !strings.Contains(r.Error.Message, `version "9.9.9" and group "nowhere"`) || r.Error.Upstream != "viadubbo" {
		t.Fatalf("wrong version and group = %d %+v", code, r.Error)
	}
}

// providerJavaTypes declares the example provider's classes
// (examples/dubbo-provider) for the mappings of these tests.
const providerJavaTypes = `java_types:
  - class: com.example.Status
    enum: [ ACTIVE, SUSPENDED ]
  - class: com.example.Address
    fields: [ { name: city, type: java.lang.String }, { name: street, type: java.lang.String } ]
  - class: com.example.User
    fields:
      - { name: id, type: long }
      - { name: name, type: java.lang.String }
      - { name: age, type: int }
      - { name: status, type: com.example.Status }
      - { name: balance, type: java.math.BigDecimal }
      - { name: created, type: java.util.Date }
      - { name: tags, type: "java.util.List<java.lang.String>" }
      - { name: address, type: com.example.Address }
      - { name: scores, type: "java.util.Map<java.lang.String, java.lang.Long>" }
`
