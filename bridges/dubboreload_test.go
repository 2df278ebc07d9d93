package bridges

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/protogate/protogate/config"
)

func movingMapping(addr string) string {
	return fmt.Sprintf(`
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: get-user
        match: { path: "/users/{id}", methods: [GET] }
        dubbo: { upstream: users, service: com.example.UserService, method: getUser, params: [ { from: path.id, type: long } ] }
upstreams:
  dubbo: [ { name: users, urls: [ "dubbo://%s" ] } ]
bridge:
  address: 127.0.0.1:0
  write_timeout: 100ms
`, addr)
}

// TestDubboReloadMovesProviders: a reload that moves an upstream to
// another provider sends the next call there, and 100 such reloads leave
// the bridge's goroutines and open files flat (the old provider's
// connections are released once no table names it).
func TestDubboReloadMovesProviders(t *testing.T) {
	c := probe(t)
	a, b := newGoPeer(t, c), newGoPeer(t, c)
	a.await(t)
	b.await(t)
	br := startBridge(t, movingMapping(a.addr()))
	apply := func(addr string) {
		cfg, err := config.LoadBytes("mapping.yaml", []byte(movingMapping(addr)))
		if err != nil {
			t.Fatal(err)
		}
		if err := br.srv.Apply(tableOf(t, cfg)); err != nil {
			t.Fatal(err)
		}
	}
	get := func() {
		t.Helper()
		if code, _, h := br.do("GET", "/users/1", "", nil); code != 200 {
			t.Fatalf("getUser = %d %s", code, h.Get("X-Test-Body"))
		}
	}
	get()
	ha, hb := a.hits(t), b.hits(t)
	apply(b.addr())
	get()
	if a.hits(t) != ha || b.hits(t) != hb+1 {
		t.Fatalf("after moving the upstream to b: a got %d more calls, b %d; want 0 and 1", a.hits(t)-ha, b.hits(t)-hb)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(br.srv.dubbo.Providers(), []string{b.addr()}) {
		if time.Now().After(deadline) {
			t.Fatalf("the bridge still holds connections to %v; only %s is in its table", br.srv.dubbo.Providers(), b.addr())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Settle, then reload 100 times between the two.
	time.Sleep(300 * time.Millisecond)
	before, fds := runtime.NumGoroutine(), openFiles(t)
	for i := range 100 {
		apply([]string{a.addr(), b.addr()}[i%2])
		get()
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		g, f := runtime.NumGoroutine(), openFiles(t)
		if g <= before+10 && f <= fds+5 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 100 reloads: %d goroutines (before %d), %d open files (before %d)", g, before, f, fds)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDubboRequestTooLarge: arguments that encode to more than the dubbo
// protocol's 8 MiB frame are a 413 saying so, and nothing is sent.
func TestDubboRequestTooLarge(t *testing.T) {
	c := probe(t)
	p := newGoPeer(t, c)
	p.await(t)
	br := startBridge(t, fmt.Sprintf(`
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: echo
        match: { path: /echo, methods: [POST] }
        body_limit: 16MiB
        dubbo: { upstream: users, service: com.example.UserService, method: echoString, params: [ { from: body, type: java.lang.String } ] }
upstreams:
  dubbo: [ { name: users, urls: [ "dubbo://%s" ] } ]
bridge:
  address: 127.0.0.1:0
  max_body_size: 16MiB
`, p.addr()))
	before, _ := p.call("lastCall")
	code, r, _ := br.do("POST", "/echo", `"`+strings.Repeat("x", 9<<20)+`"`, nil)
	if code != 413 || r.Error.Code != "request_too_large" || !strings.Contains(r.Error.Message, "nothing was sent") {
		t.Fatalf("a 9 MiB argument = %d %+v, want 413 request_too_large", code, r.Error)
	}
	if after, _ := p.call("lastCall"); after != before {
		t.Fatalf("the provider received the call: %v", after)
	}
}
