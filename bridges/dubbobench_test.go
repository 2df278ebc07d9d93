//go:build !race

package bridges

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/protogate/protogate/config"
)

// BenchmarkDubboBridge: what a Dubbo route costs the bridge, against the
// example provider run as its own process, over the dubbo and the triple
// protocol. The "handler" lines call the bridge's handler without an HTTP
// socket (the provider is still reached over loopback), so allocs/op and
// cpu-us/op are the bridge's own: extraction, conversion, the transport,
// the result's JSON. The "http" lines go through a real HTTP client and
// socket at concurrency 16; their cpu-us/op includes that client.
//
//	go test -run '^$' -bench BenchmarkDubboBridge -benchtime 20000x ./bridges
func BenchmarkDubboBridge(b *testing.B) {
	p := benchProvider(b)
	srv := benchBridge(b, p)
	calls := []struct{ name, method, path, body string }{
		{"echo", "POST", "/echo", `"hello"`},
		{"getUser", "GET", "/users/42", ""},
		{"createUser", "POST", "/users", `{"name":"alice","age":30,"status":"ACTIVE","balance":"12.50","tags":["a","b"],"address":{"city":"Oslo"}}`},
	}
	for _, proto := range []string{"dubbo", "triple"} {
		for _, c := range calls {
			path := "/" + proto + c.path
			b.Run("handler/"+proto+"/"+c.name, func(b *testing.B) {
				benchHandler(b, srv, c.method, path, c.body)
			})
		}
		for _, conc := range []int{16} {
			b.Run("http/c"+strconv.Itoa(conc)+"/"+proto+"/echo", func(b *testing.B) {
				benchHTTP(b, srv, conc, "/"+proto+"/echo", `"hello"`)
			})
		}
	}
}

// benchHandler serves b.N requests one after the other through the
// handler.
func benchHandler(b *testing.B, srv *Server, method, path, body string) {
	call := func() {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%s %s = %d %s", method, path, w.Code, w.Body)
		}
	}
	for range 100 {
		call() // connections made, code paths warm
	}
	b.ReportAllocs()
	start := benchCPU()
	b.ResetTimer()
	for range b.N {
		call()
	}
	b.StopTimer()
	b.ReportMetric(float64(benchCPU()-start)/float64(b.N)/1e3, "cpu-us/op")
}

// benchHTTP sends b.N requests from conc goroutines over HTTP/1.1.
func benchHTTP(b *testing.B, srv *Server, conc int, path, body string) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	url := "http://" + srv.Addr() + path
	want := []byte(body)
	call := func() error {
		resp, err := hc.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(bytes.TrimSpace(got), want) {
			return fmt.Errorf("status %d: %s", resp.StatusCode, got)
		}
		return nil
	}
	for range 100 {
		if err := call(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	start := benchCPU()
	b.ResetTimer()
	var (
		wg   sync.WaitGroup
		next = make(chan struct{}, b.N)
		errs = make(chan error, conc)
	)
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	for range conc {
		wg.Go(func() {
			for range next {
				if err := call(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(benchCPU()-start)/float64(b.N)/1e3, "cpu-us/op")
}

// benchBridge serves /PROTO/echo, /PROTO/users/{id} and /PROTO/users
// over both protocols, started on a loopback socket.
func benchBridge(b *testing.B, p *benchProc) *Server {
	var routes strings.Builder
	for _, proto := range []string{"dubbo", "triple"} {
		fmt.Fprintf(&routes, `
      - name: %[1]s-echo
        match: { path: /%[1]s/echo, methods: [POST] }
        dubbo: { upstream: %[1]s, service: com.example.UserService, method: echoString, params: [ { from: body, type: java.lang.String } ], timeout: 10s }
      - name: %[1]s-getUser
        match: { path: "/%[1]s/users/{id}", methods: [GET] }
        dubbo: { upstream: %[1]s, service: com.example.UserService, method: getUser, params: [ { from: path.id, type: long } ], returns: com.example.User, timeout: 10s }
      - name: %[1]s-createUser
        match: { path: /%[1]s/users, methods: [POST] }
        dubbo: { upstream: %[1]s, service: com.example.UserService, method: createUser, params: [ { from: body, type: com.example.User } ], returns: com.example.User, timeout: 10s }`, proto)
	}
	mapping := fmt.Sprintf(`
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:%s
upstreams:
  dubbo:
    - { name: dubbo, protocol: dubbo, urls: [ "dubbo://127.0.0.1:%d" ] }
    - { name: triple, protocol: triple, urls: [ "tri://127.0.0.1:%d" ] }
`+providerJavaTypes+`bridge:
  address: 127.0.0.1:0
  max_in_flight: 4096
`, routes.String(), p.dubboPort, p.triPort)
	cfg, err := config.LoadBytes("bench.yaml", []byte(mapping))
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(cfg.Bridge, tableOf(b, cfg), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv
}

// benchProc is the example provider built and run for a benchmark; the
// tests' own helpers take a *testing.T.
type benchProc struct {
	cmd                *exec.Cmd
	dubboPort, triPort int
}

func benchProvider(b *testing.B) *benchProc {
	dir := b.TempDir()
	bin := filepath.Join(dir, "dubbo-provider")
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/dubbo-provider").CombinedOutput(); err != nil {
		b.Fatalf("building the example provider: %v\n%s", err, out)
	}
	ports := make([]int, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	p := &benchProc{dubboPort: ports[0], triPort: ports[1]}
	p.cmd = exec.Command(bin, "-dubbo-port", strconv.Itoa(ports[0]), "-triple-port", strconv.Itoa(ports[1]),
		"-metadata-port", strconv.Itoa(ports[2]), "-log-level", "warn")
	p.cmd.Stderr = io.Discard // a triple provider prints lines per call
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		seen := false
		for sc.Scan() {
			if !seen && strings.Contains(sc.Text(), "provider ready") {
				seen = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		b.Fatal("the example provider did not start")
	}
	for _, port := range ports[:2] {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s never accepted a connection: %v", addr, err)
			}
		}
	}
	return p
}

// benchCPU is this process's user+system CPU time in nanoseconds.
func benchCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
