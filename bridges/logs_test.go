package bridges

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/protogate/protogate/config"
)

// The Dubbo log scenario runs in a child process (this test binary, run
// again) so that everything the process prints can be captured: dubbo-go,
// getty and the ZooKeeper client write to the process's stdout and stderr
// unless their loggers are redirected.
const (
	logsChildEnv   = "PROTOGATE_TEST_DUBBO_LOGS_CHILD"
	logsProvider   = "PROTOGATE_TEST_DUBBO_LOGS_PROVIDER"
	failingCalls   = 20 // per upstream while the provider is down
	outageSpread   = 1500 * time.Millisecond
	phaseMsg       = "test phase"
	phaseStarted   = "started"
	phaseKilled    = "killed"
	phaseRestarted = "restarted"
	phaseDone      = "done"
)

// slogLine is one line of slog's text format; anything else on stderr was
// printed around the bridge's logger.
var slogLine = regexp.MustCompile(`^time=\S+ level=(DEBUG|INFO|WARN|ERROR) msg=("(?:[^"\\]|\\.)*"|\S+)(.*)$`)

var (
	componentAttr = regexp.MustCompile(`component=(\S+)`)
	phaseAttr     = regexp.MustCompile(`phase=(\S+)`)
	upstreamAttr  = regexp.MustCompile(`upstream=(\S+)`)
)

type logLine struct {
	level, msg, rest string
}

// TestDubboLogs: a normal start and successful calls log no WARN or ERROR;
// a provider going away and coming back is one WARN and one INFO line per
// upstream, naming it, whatever the number of failed calls; failed calls
// log nothing at INFO or above; the transport's own lines arrive through slog,
// without terminal colours, and nothing else reaches stdout or stderr.
func TestDubboLogs(t *testing.T) {
	if os.Getenv(logsChildEnv) != "" {
		runLogsScenario(t, os.Getenv(logsProvider))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDubboLogs$", "-test.count=1", "-test.timeout=3m")
	cmd.Env = append(os.Environ(), logsChildEnv+"=1", logsProvider+"="+providerBinary(t))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the scenario failed: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), tail(stderr.String(), 60))
	}
	if out := stdout.String(); out != "PASS\n" {
		t.Errorf("stdout holds more than the test result:\n%s", out)
	}
	if bytes.Contains(stderr.Bytes(), []byte("\x1b[")) || bytes.Contains(stdout.Bytes(), []byte("\x1b[")) {
		t.Error("terminal escape codes in the output")
	}
	lines := parseLogLines(t, stderr.String())
	checkLogPhases(t, lines, "viadubbo", "viatriple")
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// parseLogLines wants every line of stderr in slog's text format.
func parseLogLines(t *testing.T, stderr string) []logLine {
	t.Helper()
	var out []logLine
	for _, l := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		m := slogLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("printed outside the bridge's logger: %.300q", l)
			continue
		}
		msg := m[2]
		if u, err := strconv.Unquote(msg); err == nil {
			msg = u
		}
		out = append(out, logLine{level: m[1], msg: msg, rest: m[3]})
	}
	return out
}

// checkLogPhases checks the lines at INFO and above phase by phase, and
// that the transport's own lines were there, at DEBUG.
func checkLogPhases(t *testing.T, lines []logLine, upstreams ...string) {
	t.Helper()
	phase := ""
	down, up := map[string]int{}, map[string]int{}
	components := map[string]bool{}
	for _, l := range lines {
		if m := componentAttr.FindStringSubmatch(l.rest); m != nil {
			components[m[1]] = true
		}
		if l.msg == phaseMsg {
			phase = phaseAttr.FindStringSubmatch(l.rest)[1]
			continue
		}
		if l.level == "DEBUG" {
			continue
		}
		upstream := ""
		if m := upstreamAttr.FindStringSubmatch(l.rest); m != nil {
			upstream = m[1]
		}
		switch {
		case phase == phaseStarted && (l.level == "WARN" || l.level == "ERROR"):
			t.Errorf("%s on a normal start and successful calls: %s%s", l.level, l.msg, l.rest)
		case l.msg == "upstream unavailable" && phase == phaseKilled && l.level == "WARN":
			down[upstream]++
			if !strings.Contains(l.rest, "reason=") {
				t.Errorf("no reason given: %s%s", l.msg, l.rest)
			}
		case l.msg == "upstream available again" && phase == phaseRestarted && l.level == "INFO":
			up[upstream]++
		case phase == phaseKilled || phase == phaseRestarted:
			// Between the kill and the end only state changes are news.
			t.Errorf("%s line while calls fail or recover: %s%s", l.level, l.msg, l.rest)
		}
	}
	if phase != phaseDone {
		t.Errorf("the scenario stopped in phase %q", phase)
	}
	for _, u := range upstreams {
		if down[u] != 1 || up[u] != 1 {
			t.Errorf("upstream %s: %d unavailable and %d available-again lines, want 1 and 1 (after %d failed calls)",
				u, down[u], up[u], failingCalls)
		}
	}
	// The transports' own connection events arrive through slog, at DEBUG
	// (the bridge runs no dubbo-go instance of its own any more).
	for _, c := range []string{"dubbo-wire"} {
		if !components[c] {
			t.Errorf("no line from %s reached the bridge's logger (at DEBUG)", c)
		}
	}
}

// runLogsScenario is the child: provider up, calls; provider killed, calls
// that fail; provider back on the same ports, calls. The bridge logs to
// stderr at DEBUG, in slog's text format, as protogate does.
func runLogsScenario(t *testing.T, providerBin string) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ports := [3]int{freePort(t), freePort(t), freePort(t)}
	prov := runProvider(t, providerBin, ports)
	cfg, err := config.LoadBytes("mapping.yaml", []byte(dubboMapping(fmt.Sprintf(`upstreams:
  dubbo:
    - { name: viadubbo, urls: [ "dubbo://127.0.0.1:%d" ], protocol: dubbo }
    - { name: viatriple, urls: [ "tri://127.0.0.1:%d" ], protocol: triple }
`, ports[0], ports[1]), "viadubbo", "viatriple")))
	if err != nil {
		t.Fatal(err)
	}
	log.Info(phaseMsg, "phase", phaseStarted)
	srv, err := New(cfg.Bridge, tableOf(t, cfg), Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	b := &bridge{t: t, srv: srv, url: "http://" + srv.Addr()}
	for _, up := range []string{"viadubbo", "viatriple"} {
		expect(t, b, up, "/echoInt", `7`, 200)
		if code, r, _ := b.do("GET", "/"+up+"/users/42", "", nil); code != 200 { // a result holding a date
			t.Fatalf("%s getUser = %d %+v", up, code, r.Error)
		}
		expect(t, b, up, "/fail/boom", ``, 502) // a provider exception is an answer, not an outage
	}

	prov.kill()
	log.Info(phaseMsg, "phase", phaseKilled)
	// Spread over more than the invoker's settling time: a failure right
	// after successes is not yet an outage.
	for i := 0; i < failingCalls; i++ {
		for _, up := range []string{"viadubbo", "viatriple"} {
			if code, r, _ := b.do("POST", "/"+up+"/echoInt", `7`, nil); code != 503 && code != 504 {
				t.Fatalf("%s with the provider down = %d %+v, want 503 or 504", up, code, r.Error)
			}
		}
		time.Sleep(outageSpread / failingCalls)
	}

	prov.outputCheck(t)
	prov = runProvider(t, providerBin, ports)
	log.Info(phaseMsg, "phase", phaseRestarted)
	for _, up := range []string{"viadubbo", "viatriple"} {
		waitCall(t, b, up, 15*time.Second)
		for i := 0; i < 5; i++ {
			expect(t, b, up, "/echoInt", `7`, 200)
		}
	}
	prov.outputCheck(t)
	log.Info(phaseMsg, "phase", phaseDone)
}

func expect(t *testing.T, b *bridge, up, path, body string, want int) {
	t.Helper()
	if code, r, _ := b.do("POST", "/"+up+path, body, nil); code != want {
		t.Fatalf("%s%s = %d %+v, want %d", up, path, code, r.Error, want)
	}
}

// waitCall calls until the upstream answers: the restarted provider may
// take a moment to be reconnected to.
func waitCall(t *testing.T, b *bridge, up string, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if code, _, _ := b.do("POST", "/"+up+"/echoInt", `7`, nil); code == 200 {
			return
		}
	}
	t.Fatalf("%s never answered after the provider came back", up)
}

// fixedProvider is the example provider on ports chosen by the test, so it
// can come back where it was; its stderr is kept for checking.
type fixedProvider struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
}

func (p *fixedProvider) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func runProvider(t *testing.T, bin string, ports [3]int) *fixedProvider {
	t.Helper()
	p := &fixedProvider{}
	p.cmd = exec.Command(bin, "-dubbo-port", strconv.Itoa(ports[0]), "-triple-port", strconv.Itoa(ports[1]),
		"-metadata-port", strconv.Itoa(ports[2]))
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.kill)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "provider ready") {
				close(ready)
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("the example provider did not start")
	}
	for _, port := range ports[:2] {
		dialUntil(t, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	}
	return p
}

func (p *fixedProvider) kill() {
	if p.cmd.Process != nil && p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_, _ = p.cmd.Process.Wait()
	}
}

// outputCheck: the provider logs as protogate does, quietly.
func (p *fixedProvider) outputCheck(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	out := p.stderr.String()
	p.mu.Unlock()
	if strings.Contains(out, "\x1b[") {
		t.Errorf("terminal escape codes in the provider's output:\n%s", out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" && (!slogLine.MatchString(l) || strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR")) {
			t.Errorf("the provider printed %.300q", l)
		}
	}
}

func dialUntil(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("%s never accepted a connection: %v", addr, err)
}

// TestProviderListensOnLoopbackOnly: every socket the example provider
// listens on is bound to loopback, with and without a registry.
func TestProviderListensOnLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"direct", func(*testing.T) []string { return nil }},
		{"zookeeper, application-level", func(t *testing.T) []string {
			return []string{"-zk", startZooKeeper(t), "-registration", "application"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProvider(t, tc.args(t)...)
			socks := listeningSockets(t, p.cmd.Process.Pid)
			found := map[int]bool{}
			for _, s := range socks {
				found[s.port] = true
				if !s.ip.IsLoopback() {
					t.Errorf("the provider listens on %s (%s), not on loopback", net.JoinHostPort(s.ip.String(), strconv.Itoa(s.port)), s.proto)
				}
			}
			// The check must see the sockets it is about.
			if !found[p.dubboPort] || !found[p.triPort] {
				t.Fatalf("the dubbo (%d) and triple (%d) listeners are not among %v", p.dubboPort, p.triPort, socks)
			}
		})
	}
}

type socket struct {
	proto string
	ip    net.IP
	port  int
}

// listeningSockets reads /proc for the sockets of pid that accept
// connections (TCP in LISTEN) or datagrams from anyone (unconnected UDP).
func listeningSockets(t *testing.T, pid int) []socket {
	t.Helper()
	inodes := socketInodes(t, pid)
	var out []socket
	for _, tab := range []struct {
		file, state string
	}{{"tcp", "0A"}, {"tcp6", "0A"}, {"udp", "07"}, {"udp6", "07"}} {
		raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "net", tab.file))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != tab.state || !inodes[f[9]] {
				continue
			}
			ip, port, err := parseProcAddr(f[1])
			if err != nil {
				t.Fatalf("%s: %q: %v", tab.file, line, err)
			}
			out = append(out, socket{proto: tab.file, ip: ip, port: port})
		}
	}
	return out
}

// socketInodes lists the inodes of the sockets pid has open.
func socketInodes(t *testing.T, pid int) map[string]bool {
	t.Helper()
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if ino, ok := strings.CutPrefix(target, "socket:["); ok {
			out[strings.TrimSuffix(ino, "]")] = true
		}
	}
	return out
}

// parseProcAddr reads /proc/net's "0100007F:4E20": the address as 32-bit
// words in host (little-endian) order, the port in hex.
func parseProcAddr(s string) (net.IP, int, error) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return nil, 0, fmt.Errorf("no port in %q", s)
	}
	raw, err := hex.DecodeString(hexIP)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return nil, 0, fmt.Errorf("bad address %q", hexIP)
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("bad port %q", hexPort)
	}
	return net.IP(raw), int(port), nil
}
