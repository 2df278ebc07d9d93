package bridges

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tripleMapping routes /{upstream}/… to the example provider's methods that
// triple used to get wrong (no arguments, null, void, exceptions, timeouts,
// large answers), for each upstream named.
func tripleMapping(upstreams string, names ...string) string {
	var b strings.Builder
	b.WriteString("listeners:\n  - name: public\n    address: 127.0.0.1:10000\n    routes:\n")
	for _, up := range names {
		fmt.Fprintf(&b, `      - name: %[1]s-ping
        match: { path: /%[1]s/ping, methods: [GET] }
        dubbo: { upstream: %[1]s, service: com.example.UserService, method: ping, returns: java.lang.String }
      - name: %[1]s-noUser
        match: { path: "/%[1]s/nouser/{id}", methods: [GET] }
        dubbo: { upstream: %[1]s, service: com.example.UserService, method: noUser, params: [ { from: path.id, type: long } ] }
      - name: %[1]s-touch
        match: { path: "/%[1]s/touch/{tag}", methods: [POST] }
        dubbo: { upstream: %[1]s, service: com.example.UserService, method: touch, params: [ { from: path.tag, type: java.lang.String } ] }
      - name: %[1]s-lastCall
        match: { path: /%[1]s/lastCall, methods: [GET] }
        dubbo: { upstream: %[1]s, service: com.example.UserService, method: lastCall }
      - name: %[1]s-lastTimeout
        match: { path: /%[1]s/lastTimeout, methods: [GET] }
        dubbo: { upstream: %[1]s, service: com.example.UserService, method: lastTimeout }
      - name: %[1]s-fail
        match: { path: "/%[1]s/fail/{kind}", methods: [POST] }
        dubbo:
          upstream: %[1]s
          service: com.example.UserService
          method: fail
          params: [ { from: path.kind, type: java.lang.String } ]
          exceptions: [ { class: java.lang.IllegalArgumentException, status: 400 } ]
      - name: %[1]s-failIdempotent
        match: { path: "/%[1]s/failidem/{kind}", methods: [POST] }
        dubbo: { upstream: %[1]s, service: com.example.UserService, method: fail, params: [ { from: path.kind, type: java.lang.String } ], idempotent: true, retries: 2 }
      - name: %[1]s-throttled
        match: { path: "/%[1]s/throttled/{tag}", methods: [POST] }
        dubbo: { upstream: %[1]s, service: com.example.UserService, method: throttled, params: [ { from: path.tag, type: java.lang.String } ], idempotent: true, retries: 2 }
      - name: %[1]s-slow
        match: { path: /%[1]s/slow, methods: [POST] }
        dubbo: { upstream: %[1]s, service: com.example.UserService, method: slow, params: [ { from: body.ms, type: long } ], timeout: 500ms }
      - name: %[1]s-patient
        match: { path: /%[1]s/patient, methods: [POST] }
        dubbo: { upstream: %[1]s, service: com.example.UserService, method: slow, params: [ { from: body.ms, type: long } ], timeout: 10s }
      - name: %[1]s-big
        match: { path: "/%[1]s/big/{n}", methods: [GET] }
        dubbo: { upstream: %[1]s, service: com.example.UserService, method: bigString, params: [ { from: path.n, type: int } ], returns: java.lang.String, timeout: 10s }
`, up)
	}
	b.WriteString(upstreams)
	b.WriteString("bridge:\n  address: 127.0.0.1:0\n")
	return b.String()
}

// tripleUpstreams are the provider over each protocol, and again with a
// 1 MiB max_response_size.
func tripleUpstreams(p *provider) string {
	return fmt.Sprintf(`upstreams:
  dubbo:
    - { name: viadubbo, urls: [ "dubbo://127.0.0.1:%[1]d" ], protocol: dubbo }
    - { name: viatriple, urls: [ "tri://127.0.0.1:%[2]d" ], protocol: triple }
    - { name: smalldubbo, urls: [ "dubbo://127.0.0.1:%[1]d" ], protocol: dubbo, max_response_size: 1MiB }
    - { name: smalltriple, urls: [ "tri://127.0.0.1:%[2]d" ], protocol: triple, max_response_size: 1MiB }
`, p.dubboPort, p.triPort)
}

// protocolsUnderTest pairs each upstream with its 1 MiB twin.
var protocolsUnderTest = []struct{ up, small string }{{"viadubbo", "smalldubbo"}, {"viatriple", "smalltriple"}}

func startTripleBridge(t *testing.T) *bridge {
	t.Helper()
	p := startProvider(t)
	return startBridge(t, tripleMapping(tripleUpstreams(p), "viadubbo", "viatriple", "smalldubbo", "smalltriple"))
}

// leaks are what an error body must never show: addresses, Go type names,
// library wording.
var leaks = regexp.MustCompile(`127\.0\.0\.1|\[::1\]|main\.|\*errors|unknown:|(?i)triple|grpc|dubbo-go|hessian`)

// checkErrorBody fails if the error's message or code leaks (the route's
// and upstream's own names excepted).
func checkErrorBody(t *testing.T, what string, r response) {
	t.Helper()
	msg := strings.NewReplacer(r.Error.Upstream, "UPSTREAM", r.Error.Route, "ROUTE").Replace(r.Error.Message + " " + r.Error.Code)
	if leak := leaks.FindString(msg); leak != "" {
		t.Errorf("%s: the error body shows %q: %+v", what, leak, r.Error)
	}
}

// body returns the JSON answer a request got.
func bodyOf(h map[string][]string) string {
	if v := h["X-Test-Body"]; len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

// TestDubboTripleNoArgsNullVoid: a method without parameters, a null result
// and a void method answer 200 over both protocols, and each call reached
// the provider with what the route sent.
func TestDubboTripleNoArgsNullVoid(t *testing.T) {
	b := startTripleBridge(t)
	for _, pr := range protocolsUnderTest {
		for _, tc := range []struct {
			method, path, want, received string
		}{
			{"GET", "/ping", `"pong"`, "ping()"},
			{"GET", "/nouser/7", `null`, "noUser(int64(7))"},
			{"POST", "/touch/t-" + pr.up, `null`, "touch(string(t-" + pr.up + "))"},
		} {
			code, r, h := b.do(tc.method, "/"+pr.up+tc.path, "", nil)
			if code != 200 || bodyOf(h) != tc.want {
				t.Errorf("%s %s %s = %d %s %+v, want 200 %s", pr.up, tc.method, tc.path, code, bodyOf(h), r.Error, tc.want)
			}
			if got := lastCall(t, b, pr.up); got != tc.received {
				t.Errorf("%s %s: the provider received %s, want %s", pr.up, tc.path, got, tc.received)
			}
		}
	}
}

// TestDubboTripleExceptions: the provider's exception class comes through
// over both protocols: a mapped one gets its status, an unmapped one 502
// with class and message, and an exception whose message says
// "unavailable" is an exception (502), never an outage (503), and runs once
// on an idempotent route with retries.
func TestDubboTripleExceptions(t *testing.T) {
	b := startTripleBridge(t)
	for _, pr := range protocolsUnderTest {
		for _, tc := range []struct {
			path     string
			status   int
			contains string
		}{
			{"/fail/argument", 400, "com.example.UserService.fail threw java.lang.IllegalArgumentException: bad argument: argument"},
			{"/fail/unavailable", 502, "com.example.UserService.fail threw java.lang.IllegalStateException: the service is unavailable"},
			{"/failidem/unavailable", 502, "com.example.UserService.fail threw java.lang.IllegalStateException: the service is unavailable"},
			{"/fail/boom", 502, "provider failure: boom"},
		} {
			code, r, _ := b.do("POST", "/"+pr.up+tc.path, "", nil)
			if code != tc.status || r.Error.Code != "provider_exception" || !strings.Contains(r.Error.Message, tc.contains) || r.Error.Upstream != pr.up {
				t.Errorf("%s %s = %d %+v, want %d provider_exception saying %q", pr.up, tc.path, code, r.Error, tc.status, tc.contains)
			}
			checkErrorBody(t, pr.up+tc.path, r)
		}

		// Each request runs the throwing method once: the provider numbers
		// its calls in the message, so a retry would skip a number.
		first := throttledCall(t, b, pr.up)
		if second := throttledCall(t, b, pr.up); second != first+1 {
			t.Errorf("%s: two requests to an idempotent route with retries: 2 were calls %d and %d of the provider, want consecutive", pr.up, first, second)
		}
	}
}

var callNumber = regexp.MustCompile(`\(call (\d+)\)$`)

// throttledCall makes one request to the throttled route and returns the
// number the provider gave the call.
func throttledCall(t *testing.T, b *bridge, up string) int {
	t.Helper()
	code, r, _ := b.do("POST", "/"+up+"/throttled/x", "", nil)
	m := callNumber.FindStringSubmatch(r.Error.Message)
	if code != 502 || r.Error.Code != "provider_exception" || !strings.Contains(r.Error.Message, "java.lang.IllegalStateException: the service is unavailable") || m == nil {
		t.Fatalf("%s throttled = %d %+v, want 502 provider_exception with the call's number", up, code, r.Error)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestDubboTripleTimeouts: over both protocols the route's timeout is the
// deadline and what the provider is given: a 10 s route waits for a 5 s
// method, a 500 ms route answers 504 at about 500 ms and says so. The two
// routes share one service; neither imposes its timeout on the other.
func TestDubboTripleTimeouts(t *testing.T) {
	// A provider each, started one after the other (a port picked free
	// for one provider could be taken by another starting at the same
	// time): what it was given is per provider, and the two protocols
	// then wait their 5 s side by side.
	bridges := make([]*bridge, len(protocolsUnderTest))
	for i := range protocolsUnderTest {
		bridges[i] = startTripleBridge(t)
	}
	for i, pr := range protocolsUnderTest {
		b := &bridge{srv: bridges[i].srv, url: bridges[i].url}
		t.Run(pr.up, func(t *testing.T) {
			t.Parallel()
			b.t = t // failures are the subtest's
			start := time.Now()
			code, r, h := b.do("POST", "/"+pr.up+"/patient", `{"ms": 5000}`, nil)
			if code != 200 || bodyOf(h) != `"done"` {
				t.Errorf("a 5 s call on a 10 s route = %d %s %+v after %v", code, bodyOf(h), r.Error, time.Since(start))
			}
			if got := lastTimeout(t, b, pr.up); !givenRoutes(got, 10*time.Second) {
				t.Errorf("the provider was given %v on a 10 s route", got)
			}

			start = time.Now()
			code, r, _ = b.do("POST", "/"+pr.up+"/slow", `{"ms": 3000}`, nil)
			took := time.Since(start)
			if code != 504 || r.Error.Code != "provider_timeout" || !strings.Contains(r.Error.Message, "500ms") || took < 450*time.Millisecond || took > 1500*time.Millisecond {
				t.Errorf("a 3 s call on a 500 ms route = %d %+v after %v", code, r.Error, took)
			}
			checkErrorBody(t, pr.up+" slow", r)
			if got := lastTimeout(t, b, pr.up); !givenRoutes(got, 500*time.Millisecond) {
				t.Errorf("the provider was given %v on a 500 ms route", got)
			}
		})
	}
}

// givenRoutes reports whether the provider was given the route's timeout:
// what is left of it when the request leaves (a fresh connection's dial
// takes a few milliseconds of it), never more.
func givenRoutes(given, route time.Duration) bool {
	return given <= route && given > route-250*time.Millisecond
}

// lastTimeout asks the provider what timeout the previous slow call had.
func lastTimeout(t *testing.T, b *bridge, up string) time.Duration {
	t.Helper()
	code, r, h := b.do("GET", "/"+up+"/lastTimeout", "", nil)
	var s string
	if code != 200 || json.Unmarshal([]byte(bodyOf(h)), &s) != nil {
		t.Fatalf("%s lastTimeout = %d %s %+v", up, code, bodyOf(h), r.Error)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s: the provider recorded the timeout %q", up, s)
	}
	return d
}

// TestDubboTripleResponseSize: a 4 MiB answer comes through whole over both
// protocols; one over the upstream's max_response_size is 502
// response_too_large at once, long before the route's 10 s timeout.
func TestDubboTripleResponseSize(t *testing.T) {
	b := startTripleBridge(t)
	for _, pr := range protocolsUnderTest {
		code, r, h := b.do("GET", "/"+pr.up+"/big/4194304", "", nil)
		var s string
		if err := json.Unmarshal([]byte(bodyOf(h)), &s); code != 200 || err != nil || len(s) != 4<<20 || strings.Trim(s, "x") != "" {
			t.Errorf("%s: a 4 MiB answer = %d, %d bytes of text %+v", pr.up, code, len(s), r.Error)
		}

		start := time.Now()
		code, r, _ = b.do("GET", "/"+pr.small+"/big/2097152", "", nil)
		took := time.Since(start)
		if code != 502 || r.Error.Code != "response_too_large" || !strings.Contains(r.Error.Message, "max_response_size") || took > 3*time.Second {
			t.Errorf("%s: a 2 MiB answer over a 1 MiB limit = %d %+v after %v", pr.small, code, r.Error, took)
		}
		checkErrorBody(t, pr.small+" big", r)
		// The connection is still good for the next call.
		if code, _, h := b.do("GET", "/"+pr.small+"/ping", "", nil); code != 200 || bodyOf(h) != `"pong"` {
			t.Errorf("%s: the call after a refused answer = %d %s", pr.small, code, bodyOf(h))
		}
	}
}

// TestDubboTripleRegistryTimeouts: providers found in ZooKeeper go through
// dubbo-go's generic client, whose reference is shared by every route to
// the service: there too a 10 s route waits for a 5 s method and a 500 ms
// route answers 504 at about 500 ms. Over the dubbo protocol the provider
// is given the route's timeout; over triple it gets the route's deadline
// but also dubbo-go's client-wide "timeout" attachment, which protogate
// cannot remove (see invoker.go), so what it was given is not checked.
func TestDubboTripleRegistryTimeouts(t *testing.T) {
	cases := []struct {
		up, protocol string
		checkGiven   bool
		b            *bridge
	}{{up: "viazk", protocol: "dubbo", checkGiven: true}, {up: "viazktri", protocol: "triple"}}
	// Started one after the other, as in TestDubboTripleTimeouts; a
	// ZooKeeper each: a second reference to a service on one registry may
	// see no provider.
	for i := range cases {
		tc := &cases[i]
		zk := startZooKeeper(t)
		startProvider(t, "-zk", zk, "-registration", "interface")
		ups := fmt.Sprintf("upstreams:\n  dubbo:\n    - { name: %s, registry: \"zookeeper://%s\", registration: interface, protocol: %s }\n", tc.up, zk, tc.protocol)
		tc.b = startDiscoveringBridge(t, tripleMapping(ups, tc.up))
		// Found once its exception comes back, with its class.
		waitStatus(t, tc.b, "/"+tc.up+"/fail/argument", "", 400, 30*time.Second)
	}
	for _, tc := range cases {
		b := &bridge{srv: tc.b.srv, url: tc.b.url}
		t.Run(tc.up, func(t *testing.T) {
			t.Parallel()
			b.t = t // failures are the subtest's

			code, r, h := b.do("POST", "/"+tc.up+"/patient", `{"ms": 5000}`, nil)
			if code != 200 || bodyOf(h) != `"done"` {
				t.Errorf("a 5 s call on a 10 s route = %d %s %+v", code, bodyOf(h), r.Error)
			}
			if tc.checkGiven {
				if got := lastTimeout(t, b, tc.up); !givenRoutes(got, 10*time.Second) {
					t.Errorf("the provider was given %v on a 10 s route", got)
				}
			}
			start := time.Now()
			code, r, _ = b.do("POST", "/"+tc.up+"/slow", `{"ms": 3000}`, nil)
			took := time.Since(start)
			if code != 504 || r.Error.Code != "provider_timeout" || !strings.Contains(r.Error.Message, "500ms") || took < 450*time.Millisecond || took > 1500*time.Millisecond {
				t.Errorf("a 3 s call on a 500 ms route = %d %+v after %v", code, r.Error, took)
			}
			if tc.checkGiven {
				if got := lastTimeout(t, b, tc.up); !givenRoutes(got, 500*time.Millisecond) {
					t.Errorf("the provider was given %v on a 500 ms route", got)
				}
			}
		})
	}
}
