package wire

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests call the real example provider (examples/dubbo-provider, a
// dubbo-go provider) run as a separate process.
var (
	providerBin string

	sharedOnce sync.Once
	shared     *provider
	sharedErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wire-provider-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		os.Exit(1)
	}
	providerBin = filepath.Join(dir, "p")
	build := exec.Command("go", "build", "-o", providerBin, "../../../examples/dubbo-provider")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the example provider: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// provider is a running example provider process.
type provider struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	mu   sync.Mutex
	log  strings.Builder // its stderr
}

// sharedProvider is one provider for the tests that do not stop theirs.
func sharedProvider(t testing.TB) *provider {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = launch() })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// startProvider runs a provider of the test's own, stopped at its end.
func startProvider(t testing.TB) *provider {
	t.Helper()
	p, err := launch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	return p
}

// launch starts a provider on a free loopback port; a port taken between
// choosing and binding is tried again with another.
func launch() (*provider, error) {
	var err error
	for range 3 {
		var p *provider
		if p, err = launchAt(0); err == nil {
			return p, nil
		}
	}
	return nil, err
}

// restartProvider runs a provider on the port p had, stopped at the
// test's end.
func restartProvider(t testing.TB, old *provider) *provider {
	t.Helper()
	_, port, _ := net.SplitHostPort(old.addr)
	n, _ := strconv.Atoi(port)
	p, err := launchAt(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	return p
}

// launchAt starts a provider on port, or on a free one for 0.
func launchAt(port int) (*provider, error) {
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	p := &provider{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), done: make(chan struct{})}
	p.cmd = exec.Command(providerBin, "-dubbo-port", strconv.Itoa(port), "-triple-port", "0", "-log-level", "warn")
	// A test binary that panics (a test timeout) skips TestMain's
	// cleanup; the provider must not outlive it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.cmd.Stderr = writerFunc(func(b []byte) (int, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.log.Write(b)
	})
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the provider: %w", err)
	}
	ready := make(chan struct{})
	go p.watch(stdout, ready)
	select {
	case <-ready:
	case <-p.done:
		return nil, fmt.Errorf("the provider exited before it was ready: %s", p.stderr())
	case <-time.After(60 * time.Second):
		p.stop()
		return nil, fmt.Errorf("the provider was not ready within 60s: %s", p.stderr())
	}
	if err := waitPort(p.addr, 10*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// watch signals ready at the provider's ready line, then drains stdout
// and reaps the process.
func (p *provider) watch(stdout io.Reader, ready chan struct{}) {
	sc := bufio.NewScanner(stdout)
	signalled := false
	for sc.Scan() {
		if !signalled && strings.HasPrefix(sc.Text(), "provider ready") {
			close(ready)
			signalled = true
		}
	}
	_ = p.cmd.Wait()
	close(p.done)
}

func (p *provider) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *provider) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop ends the provider with SIGTERM (SIGKILL after 5 s).
func (p *provider) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.kill()
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitPort(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("provider port %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// newTestClient is a client closed at the test's end.
func newTestClient(t testing.TB, opts Options) *Client {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	c, err := NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testLogger logs to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(writerFunc(func(b []byte) (int, error) {
		t.Log(strings.TrimSpace(string(b)))
		return len(b), nil
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// userService is an invocation of the example provider's service.
func userService(method string, types []string, args ...any) Invocation {
	return Invocation{Service: "com.example.UserService", Method: method, Types: types, Args: args}
}

func within(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
