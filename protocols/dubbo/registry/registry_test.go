package registry

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dubbogo/go-zookeeper/zk"

	"github.com/protogate/protogate/internal/testpeer"
)

const (
	iface = "com.example.UserService"
	// sessionMax is the test ZooKeeper's maxSessionTimeout: the providers
	// ask for 5 s, so a killed provider's nodes go within about this.
	sessionMax = 2 * time.Second
)

var (
	providerOnce sync.Once
	providerDir  string
	providerBin  string
	providerErr  error
)

// TestMain removes the provider binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if providerDir != "" {
		_ = os.RemoveAll(providerDir)
	}
	os.Exit(code)
}

// providerBinary builds examples/dubbo-provider once per test run.
func providerBinary(t *testing.T) string {
	t.Helper()
	providerOnce.Do(func() {
		if providerDir, providerErr = os.MkdirTemp("", "protogate-registry-provider-"); providerErr != nil {
			return
		}
		providerBin = filepath.Join(providerDir, "dubbo-provider")
		out, err := exec.Command("go", "build", "-o", providerBin, "../../../examples/dubbo-provider").CombinedOutput()
		if err != nil {
			providerErr = fmt.Errorf("building the example provider: %v\n%s", err, out)
		}
	})
	if providerErr != nil {
		t.Fatal(providerErr)
	}
	return providerBin
}

type provider struct {
	cmd                *exec.Cmd
	dubboPort, triPort int
	exited             chan struct{}
	stopOnce           sync.Once
}

// startProvider runs the example provider as its own process, registered
// in ZooKeeper, and waits until it says it is ready.
func startProvider(t *testing.T, zkAddr, registration string) *provider {
	t.Helper()
	p := &provider{dubboPort: testpeer.FreePort(t), triPort: testpeer.FreePort(t), exited: make(chan struct{})}
	p.cmd = exec.Command(providerBinary(t), "-dubbo-port", fmt.Sprint(p.dubboPort), "-triple-port", fmt.Sprint(p.triPort),
		"-zk", zkAddr, "-registration", registration, "-log-level", "warn")
	stdout, _ := p.cmd.StdoutPipe()
	// Its log (dubbo-go warns about every node the others remove) is shown
	// only when the test fails.
	logPath := filepath.Join(t.TempDir(), "provider.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = logFile
	t.Cleanup(func() {
		logFile.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("the provider on ports %d and %d logged:\n%s", p.dubboPort, p.triPort, out)
		}
	})
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
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	select {
	case <-ready:
	case <-p.exited:
		t.Fatalf("the example provider exited before it was ready: %v", p.cmd.ProcessState)
	case <-time.After(30 * time.Second):
		t.Fatal("the example provider did not start")
	}
	return p
}

// kill sends SIGKILL: the provider unregisters nothing, its nodes go when
// its ZooKeeper session expires.
func (p *provider) kill() {
	p.stopOnce.Do(func() { _ = p.cmd.Process.Kill() })
	<-p.exited
}

// endpoints are the providers one example provider registers: its dubbo
// and its triple port, no version, no group.
func (p *provider) endpoints() []Provider {
	return []Provider{
		{Protocol: "dubbo", Addr: fmt.Sprintf("127.0.0.1:%d", p.dubboPort)},
		{Protocol: "tri", Addr: fmt.Sprintf("127.0.0.1:%d", p.triPort)},
	}
}

// endpointsOf lists the endpoints of several providers in Providers' order.
func endpointsOf(ps ...*provider) []Provider {
	var out []Provider
	for _, p := range ps {
		out = append(out, p.endpoints()...)
	}
	return inOrder(out...)
}

// inOrder sorts as Providers documents: by protocol, address (as text),
// version, group.
func inOrder(ps ...Provider) []Provider {
	slices.SortFunc(ps, func(a, b Provider) int {
		for _, c := range [][2]string{{a.Protocol, b.Protocol}, {a.Addr, b.Addr}, {a.Version, b.Version}, {a.Group, b.Group}} {
			if n := strings.Compare(c[0], c[1]); n != 0 {
				return n
			}
		}
		return 0
	})
	return ps
}

// logRecorder keeps what the watcher logs, for the tests that count its
// WARN and INFO lines.
type logRecorder struct {
	mu   *sync.Mutex
	recs *[]slog.Record
}

func newLogRecorder() logRecorder {
	return logRecorder{mu: &sync.Mutex{}, recs: &[]slog.Record{}}
}

func (l logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	*l.recs = append(*l.recs, r.Clone())
	return nil
}
func (l logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l logRecorder) WithGroup(string) slog.Handler      { return l }

// count returns how many records of a level hold msg.
func (l logRecorder) count(level slog.Level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range *l.recs {
		if r.Level == level && strings.Contains(r.Message, msg) {
			n++
		}
	}
	return n
}

// watch starts a watcher on the interface, counting its onChange calls.
func watch(t *testing.T, zkAddr, registration string, log *slog.Logger) (*Watcher, *atomic.Int32) {
	t.Helper()
	calls := &atomic.Int32{}
	var running atomic.Bool
	w, err := Watch(context.Background(), zkAddr, registration, log, func() {
		if running.Swap(true) {
			t.Error("onChange called while it was running")
		}
		calls.Add(1)
		running.Store(false)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	w.Want(iface)
	return w, calls
}

// waitProviders polls until Providers(iface, version, group, protocol)
// equals want, and returns how long that took.
func waitProviders(t *testing.T, w *Watcher, version, group, protocol string, want []Provider, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var got []Provider
	for time.Since(start) < d {
		if got = w.Providers(iface, version, group, protocol); slices.Equal(got, want) {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("Providers(%q, %q, %q) = %v, want %v", version, group, protocol, got, want)
	return 0
}

func waitReady(t *testing.T, w *Watcher) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !w.Ready(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the watcher never became ready")
		}
	}
}

// waitCalls waits until onChange has been called more than n times.
func waitCalls(t *testing.T, calls *atomic.Int32, n int32) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); calls.Load() <= n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("onChange was not called (still %d calls)", calls.Load())
		}
	}
}

var levels = []string{"interface", "application"}

// TestProvidersFollowTheRegistry: providers that register after Watch are
// listed with their dubbo and triple ports, a second one joins them, and a
// killed one leaves once its session expires; each change calls onChange.
func TestProvidersFollowTheRegistry(t *testing.T) {
	for _, registration := range levels {
		t.Run(registration, func(t *testing.T) {
			z := testpeer.StartZooKeeper(t, sessionMax)
			w, calls := watch(t, z.Addr, registration, nil)
			waitReady(t, w)
			if got := w.Providers(iface, "", "", ""); len(got) != 0 {
				t.Fatalf("before any provider: %v", got)
			}

			n := calls.Load()
			first := startProvider(t, z.Addr, registration)
			waitProviders(t, w, "", "", "", endpointsOf(first), 10*time.Second)
			waitCalls(t, calls, n)
			waitProviders(t, w, "", "", "dubbo", endpointsOf(first)[:1], time.Second)
			waitProviders(t, w, "", "", "tri", endpointsOf(first)[1:], time.Second)

			n = calls.Load()
			second := startProvider(t, z.Addr, registration)
			waitProviders(t, w, "", "", "", endpointsOf(first, second), 10*time.Second)
			waitCalls(t, calls, n)

			n = calls.Load()
			first.kill()
			took := waitProviders(t, w, "", "", "", endpointsOf(second), 3*sessionMax+2*time.Second)
			waitCalls(t, calls, n)
			t.Logf("a SIGKILLed provider left the list %v after it was killed (session timeout %v)", took.Round(100*time.Millisecond), sessionMax)
		})
	}
}

// zkClient connects the test's own ZooKeeper client, to write nodes.
func zkClient(t *testing.T, addr string) *zk.Conn {
	t.Helper()
	c, events, err := zk.Connect([]string{addr}, 5*time.Second, zk.WithLogInfo(false), zk.WithLogger(quietLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		for range events {
		}
	})
	for deadline := time.Now().Add(10 * time.Second); c.State() != zk.StateHasSession; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the test's ZooKeeper client got no session")
		}
	}
	return c
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// create writes a persistent node, creating its parents.
func create(t *testing.T, c *zk.Conn, path string, data []byte) {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i := range parts {
		p := "/" + strings.Join(parts[:i+1], "/")
		var d []byte
		if i == len(parts)-1 {
			d = data
		}
		if _, err := c.Create(p, d, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
			t.Fatalf("creating %s: %v", p, err)
		}
	}
}

// blueProviders are what TestVersionAndGroup writes by hand: version
// 1.0.0, group blue, over both protocols.
var blueProviders = []Provider{
	{Protocol: "dubbo", Addr: "127.0.0.1:1111", Version: "1.0.0", Group: "blue"},
	{Protocol: "tri", Addr: "127.0.0.1:2222", Version: "1.0.0", Group: "blue"},
}

// writeBlueInterface registers the blue providers at interface level, plus
// nodes that are no providers of the interface (a consumer, a disabled
// provider, another protocol).
func writeBlueInterface(t *testing.T, c *zk.Conn) {
	t.Helper()
	q := "interface=" + iface + "&version=1.0.0&group=blue&side=provider&methods=echoInt"
	for _, u := range []string{
		"dubbo://127.0.0.1:1111/" + iface + "?" + q,
		"tri://127.0.0.1:2222/" + iface + "?" + q,
		"consumer://127.0.0.1/" + iface + "?interface=" + iface + "&side=consumer",
		"dubbo://127.0.0.1:3333/" + iface + "?" + q + "&enabled=false",
		"rest://127.0.0.1:4444/" + iface + "?" + q,
	} {
		create(t, c, providersPath(iface)+"/"+url.QueryEscape(u), nil)
	}
}

// writeBlueApplication registers the blue providers at application level
// as Java Dubbo writes them: an application mapped to the interface, one
// instance, and its revision's metadata under /dubbo/metadata with
// group/interface:version:protocol keys.
func writeBlueApplication(t *testing.T, c *zk.Conn) {
	t.Helper()
	create(t, c, "/dubbo/metadata/blue-app/rev1", []byte(`{"app":"blue-app","revision":"rev1","services":{
		"blue/`+iface+`:1.0.0:dubbo":{"name":"`+iface+`","group":"blue","version":"1.0.0","protocol":"dubbo","port":1111,"path":"`+iface+`","params":{}},
		"blue/`+iface+`:1.0.0:tri":{"name":"`+iface+`","protocol":"tri","port":2222,"params":{"version":"1.0.0","group":"blue"}},
		"blue/com.example.Other:1.0.0:dubbo":{"name":"com.example.Other","protocol":"dubbo","port":1111}}}`))
	create(t, c, "/services/blue-app/127.0.0.1:1111", []byte(`{"name":"blue-app","id":"127.0.0.1:1111","address":"127.0.0.1","port":1111,
		"payload":{"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance","metadata":{
		"dubbo.endpoints":"[{\"port\":1111,\"protocol\":\"dubbo\"},{\"port\":2222,\"protocol\":\"tri\"}]",
		"dubbo.metadata.revision":"rev1","dubbo.metadata.storage-type":"remote"}}}`))
	// The example provider wrote the mapping; add the blue application.
	data, stat, err := c.Get("/dubbo/mapping/" + iface)
	if err != nil {
		t.Fatalf("reading the mapping: %v", err)
	}
	if _, err := c.Set("/dubbo/mapping/"+iface, []byte(string(data)+",blue-app"), stat.Version); err != nil {
		t.Fatalf("writing the mapping: %v", err)
	}
}

// TestVersionAndGroup: a service key's version and group match exactly
// ("" only providers that declare none), "*" matches any, and the protocol
// narrows further.
func TestVersionAndGroup(t *testing.T) {
	write := map[string]func(*testing.T, *zk.Conn){"interface": writeBlueInterface, "application": writeBlueApplication}
	for _, registration := range levels {
		t.Run(registration, func(t *testing.T) {
			z := testpeer.StartZooKeeper(t, sessionMax)
			plain := startProvider(t, z.Addr, registration)
			w, _ := watch(t, z.Addr, registration, nil)
			waitProviders(t, w, "", "", "", endpointsOf(plain), 10*time.Second)
			write[registration](t, zkClient(t, z.Addr))
			waitProviders(t, w, "1.0.0", "blue", "", blueProviders, 5*time.Second)

			for _, c := range []struct {
				version, group, protocol string
				want                     []Provider
			}{
				{"", "", "", endpointsOf(plain)},
				{"", "", "dubbo", endpointsOf(plain)[:1]},
				{"1.0.0", "blue", "dubbo", blueProviders[:1]},
				{"1.0.0", "blue", "tri", blueProviders[1:]},
				{"1.0.0", "blue", "triple", blueProviders[1:]},
				{"1.0.0", "", "", nil},
				{"", "blue", "", nil},
				{"2.0.0", "blue", "", nil},
				{"1.0.0", "*", "", blueProviders},
				{"*", "*", "", inOrder(append(endpointsOf(plain), blueProviders...)...)},
				{"*", "", "", endpointsOf(plain)},
				{"*", "*", "dubbo", inOrder(endpointsOf(plain)[0], blueProviders[0])},
			} {
				if got := w.Providers(iface, c.version, c.group, c.protocol); !slices.Equal(got, c.want) {
					t.Errorf("Providers(%q, %q, %q) = %v, want %v", c.version, c.group, c.protocol, got, c.want)
				}
			}
			if got := w.Providers("com.example.Other", "*", "*", ""); len(got) != 0 {
				t.Errorf("an interface not wanted: %v", got)
			}
		})
	}
}

// TestZooKeeperRestart: ZooKeeper is SIGKILLed and started again on the
// same port with the same data. Meanwhile Providers keeps the last set
// (past every session timeout), one WARN says the registry is gone and one
// INFO that it is back; afterwards the watcher follows the registry again:
// a provider killed during the outage leaves, a new one joins.
func TestZooKeeperRestart(t *testing.T) {
	for _, registration := range levels {
		t.Run(registration, func(t *testing.T) {
			z := testpeer.StartZooKeeper(t, sessionMax)
			logs := newLogRecorder()
			w, calls := watch(t, z.Addr, registration, slog.New(logs))
			first := startProvider(t, z.Addr, registration)
			second := startProvider(t, z.Addr, registration)
			both := endpointsOf(first, second)
			waitProviders(t, w, "", "", "", both, 10*time.Second)

			z.Kill()
			second.kill()
			for end := time.Now().Add(sessionMax + time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
				if got := w.Providers(iface, "", "", ""); !slices.Equal(got, both) {
					t.Fatalf("while ZooKeeper is down: %v, want the last known %v", got, both)
				}
			}
			if n := logs.count(slog.LevelWarn, "unreachable"); n != 1 {
				t.Errorf("%d WARN lines about the outage, want 1", n)
			}

			n := calls.Load()
			z.Start()
			third := startProvider(t, z.Addr, registration)
			took := waitProviders(t, w, "", "", "", endpointsOf(first, third), 3*sessionMax+5*time.Second)
			waitCalls(t, calls, n)
			t.Logf("after the restart the registry was followed again within %v", took.Round(100*time.Millisecond))
			if n := logs.count(slog.LevelInfo, "reachable again"); n != 1 {
				t.Errorf("%d INFO lines about the registry being back, want 1", n)
			}
			if n := logs.count(slog.LevelWarn, "unreachable"); n != 1 {
				t.Errorf("%d WARN lines about the outage in all, want 1", n)
			}
		})
	}
}

// TestCloseReleasesEverything: after Close, connected or while ZooKeeper
// is down, the goroutines are back to what they were before Watch.
func TestCloseReleasesEverything(t *testing.T) {
	for _, down := range []bool{false, true} {
		t.Run(fmt.Sprintf("zookeeper down %v", down), func(t *testing.T) {
			z := testpeer.StartZooKeeper(t, sessionMax)
			create(t, zkClient(t, z.Addr), providersPath(iface)+"/"+url.QueryEscape("dubbo://127.0.0.1:1111/"+iface+"?side=provider"), nil)
			before := runtime.NumGoroutine()
			w, err := Watch(context.Background(), z.Addr, "interface", nil, func() {})
			if err != nil {
				t.Fatal(err)
			}
			w.Want(iface)
			waitProviders(t, w, "", "", "", []Provider{{Protocol: "dubbo", Addr: "127.0.0.1:1111"}}, 10*time.Second)
			if down {
				z.Kill()
				time.Sleep(500 * time.Millisecond) // the client is retrying now
			}
			w.Close()
			w.Close() // a second Close is harmless
			var now int
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if now = runtime.NumGoroutine(); now <= before {
					return
				}
			}
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before Watch:\n%s", now, before, buf[:runtime.Stack(buf, true)])
		})
	}
}

// TestWatchWithoutZooKeeper: Watch returns at once with nothing listening,
// is not ready, logs one WARN, and becomes ready once ZooKeeper is there.
func TestWatchWithoutZooKeeper(t *testing.T) {
	z := testpeer.StartZooKeeper(t, sessionMax)
	z.Kill()
	logs := newLogRecorder()
	w, _ := watch(t, z.Addr, "interface", slog.New(logs)) // returns: it does not wait for a connection
	time.Sleep(warnAfter + 2*time.Second)
	if w.Ready() {
		t.Fatal("ready without ZooKeeper")
	}
	if n := logs.count(slog.LevelWarn, "unreachable"); n != 1 {
		t.Errorf("%d WARN lines while ZooKeeper was never there, want 1", n)
	}
	z.Start()
	waitReady(t, w)
	if n := logs.count(slog.LevelInfo, "reachable again"); n != 1 {
		t.Errorf("%d INFO lines once ZooKeeper is there, want 1", n)
	}
}
