package bridges

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/protogate/protogate/protocols/dubbo/wire"
)

// outlierMapping routes POST /echoInt (not idempotent: no retry) to two
// providers over protocol, with a short timeout.
func outlierMapping(protocol string, a, b *provider) string {
	scheme, port := "dubbo", func(p *provider) int { return p.dubboPort }
	if protocol == "triple" {
		scheme, port = "tri", func(p *provider) int { return p.triPort }
	}
	return fmt.Sprintf(`
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: echo-int
        match: { path: /echoInt, methods: [POST] }
        dubbo: { upstream: pool, service: com.example.UserService, method: echoInt, params: [ { from: body, type: int } ], timeout: 300ms }
upstreams:
  dubbo:
    - { name: pool, protocol: %s, urls: [ "%s://127.0.0.1:%d", "%s://127.0.0.1:%d" ] }
bridge:
  address: 127.0.0.1:0
`, protocol, scheme, port(a), scheme, port(b))
}

// hitsOf asks a provider how many calls it has had, over its dubbo port.
func hitsOf(t *testing.T, c *wire.Client, p *provider) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	v, _, err := c.Call(ctx, fmt.Sprintf("127.0.0.1:%d", p.dubboPort), wire.Invocation{Service: "com.example.UserService", Method: "hits"})
	n, ok := v.(int64)
	if err != nil || !ok {
		t.Fatalf("hits = %v, %v", v, err)
	}
	return n
}

// outcomes counts a load's answers, by whether they succeeded.
type outcomes struct{ ok, failed atomic.Int64 }

// TestDubboHungProviderIsEjected: one of two providers hangs (SIGSTOP: its
// connections stay open, it answers nothing). Calls to it time out only
// until it is ejected; then the other takes them all, with at most a probe
// call now and then, and once it answers again (SIGCONT) it is back in the
// turn within the longest ejection.
func TestDubboHungProviderIsEjected(t *testing.T) {
	for _, protocol := range []string{"dubbo", "triple"} {
		t.Run(protocol, func(t *testing.T) {
			c := probe(t)
			victim, survivor := startProvider(t), startProvider(t)
			b := startBridge(t, outlierMapping(protocol, victim, survivor))

			var mu sync.Mutex
			phase := &outcomes{}
			set := func(o *outcomes) { mu.Lock(); phase = o; mu.Unlock() }
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					client := &http.Client{Timeout: 5 * time.Second}
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						mu.Lock()
						o := phase
						mu.Unlock()
						resp, err := client.Post(b.url+"/echoInt", "application/json", strings.NewReader(strconv.Itoa(w*1000000+i)))
						if err == nil {
							resp.Body.Close()
						}
						if err == nil && resp.StatusCode == 200 {
							o.ok.Add(1)
						} else {
							o.failed.Add(1)
						}
					}
				}()
			}
			defer func() { close(stop); wg.Wait() }()

			healthy := &outcomes{}
			set(healthy)
			time.Sleep(500 * time.Millisecond)
			if healthy.failed.Load() != 0 || healthy.ok.Load() < 50 {
				t.Fatalf("with both providers up: %d answers, %d failed", healthy.ok.Load(), healthy.failed.Load())
			}

			if err := victim.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			hung := &outcomes{}
			set(hung)
			time.Sleep(time.Second)
			settled := &outcomes{}
			set(settled)
			time.Sleep(1500 * time.Millisecond)
			t.Logf("hung: first second %d ok / %d failed; after %d ok / %d failed",
				hung.ok.Load(), hung.failed.Load(), settled.ok.Load(), settled.failed.Load())
			// In flight when it hung (4), the ejecting three, a probe or two.
			if n := hung.failed.Load(); n > 10 {
				t.Errorf("%d calls failed in the first second of the hang; the hung provider was not ejected", n)
			}
			// Ejections of 1 s and 2 s: at most two probes in 1.5 s.
			if n := settled.failed.Load(); n > 2 {
				t.Errorf("%d calls failed once the hung provider was out; want at most the probes (2)", n)
			}
			if settled.ok.Load() < 100 {
				t.Errorf("only %d calls answered by the survivor", settled.ok.Load())
			}

			if err := victim.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			back := time.Now()
			before := hitsOf(t, c, victim) // it first works off what it was sent while hung
			set(&outcomes{})
			for hitsOf(t, c, victim) == before {
				if time.Since(back) > 6*time.Second {
					t.Fatal("the provider that answers again was never called again")
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("back in the turn %v after it answered again", time.Since(back).Round(time.Millisecond))
		})
	}
}
