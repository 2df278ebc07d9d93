// Package nodeprovider runs the Node.js Dubbo provider of this directory
// for tests: the dubbo protocol and hessian2 as npm's dubbo-remoting and
// hessian.js implement them, sharing no code with dubbo-go, so a test can
// prove a Dubbo client works against more than one implementation.
//
//	p := nodeprovider.Start(t)                  // npm ci on first use
//	url := p.URL()                              // dubbo://127.0.0.1:PORT
//	call := p.LastCall(t)                       // what the provider received
//
// The provider serves com.example.TypeService version 1.0.0 (and the same
// methods as com.example.UserService without a version); see README.md.
package nodeprovider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 5 * time.Second
	npmTimeout   = 5 * time.Minute
	minNode      = 20
	logLimit     = 64 << 10
)

// Provider is one running (or stopped) Node provider process.
type Provider struct {
	// Port is the dubbo protocol port on 127.0.0.1.
	Port int
	// ReceivedPort serves GET /received on 127.0.0.1.
	ReceivedPort int

	t    testing.TB
	dir  string
	node string
	cfg  config

	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	exited chan struct{}
	log    *tailBuffer
}

type config struct {
	port int
	args []string
}

// Option changes how the provider starts.
type Option func(*config)

// WithPort listens on port instead of a free one.
func WithPort(port int) Option { return func(c *config) { c.port = port } }

// TypedResults answers generic calls with typed hessian objects (POJOs and
// enums as objects of their class) instead of generalizing them as Dubbo's
// GenericFilter does (POJOs as maps with a "class" key, enums as names).
func TypedResults() Option { return WithArgs("--results", "typed") }

// WithGroup exports the services in group g.
func WithGroup(g string) Option { return WithArgs("--group", g) }

// JavaNotFound answers an unknown service as a Java provider does: status
// 70 SERVICE_ERROR with "Not found exported service", not 60.
func JavaNotFound() Option { return WithArgs("--not-found-status", "70") }

// WithPayload sets the largest request and response body in bytes.
func WithPayload(n int) Option { return WithArgs("--payload", strconv.Itoa(n)) }

// WithArgs passes flags to provider.js as they are.
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// Start runs the provider until the test ends, installing its npm modules
// first when node_modules is missing or older than package-lock.json. It
// fails the test if Node 20+ or the modules are not to be had.
func Start(t testing.TB, opts ...Option) *Provider {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	dir, err := Dir()
	if err != nil {
		t.Fatalf("node provider: %v", err)
	}
	node, err := nodeBinary()
	if err != nil {
		t.Fatalf("node provider: %v", err)
	}
	if err := ensureModules(dir); err != nil {
		t.Fatalf("node provider: %v", err)
	}
	p := &Provider{Port: cfg.port, t: t, dir: dir, node: node, cfg: cfg, log: &tailBuffer{limit: logLimit}}
	t.Cleanup(p.cleanup)
	if err := p.start(); err != nil {
		t.Fatalf("node provider: %v", err)
	}
	return p
}

// Addr is host:port of the dubbo protocol.
func (p *Provider) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port)) }

// URL is the provider's direct URL, for a mapping's upstream urls.
func (p *Provider) URL() string { return "dubbo://" + p.Addr() }

// Kill ends the provider with SIGKILL: connections drop without a word.
func (p *Provider) Kill() {
	p.t.Helper()
	if err := p.signal(syscall.SIGKILL, stopTimeout); err != nil {
		p.t.Fatalf("node provider: %v", err)
	}
}

// Stop ends the provider gracefully with SIGTERM: it sends every consumer a
// READONLY event, lets calls in flight finish, then closes.
func (p *Provider) Stop() {
	p.t.Helper()
	if err := p.signal(syscall.SIGTERM, 15*time.Second); err != nil {
		p.t.Fatalf("node provider: %v", err)
	}
}

// Restart starts a stopped provider again on the same ports.
func (p *Provider) Restart() {
	p.t.Helper()
	if p.running() {
		p.t.Fatalf("node provider: restart while it is still running")
	}
	if err := p.start(); err != nil {
		p.t.Fatalf("node provider: restart: %v", err)
	}
}

// Log returns the end of what the provider wrote on stderr.
func (p *Provider) Log() string { return p.log.String() }

// Dir is the directory of provider.js: beside this file in the source tree,
// else test/nodeprovider under the module root above the working directory.
func Dir() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok {
		dir := filepath.Dir(file)
		if _, err := os.Stat(filepath.Join(dir, "provider.js")); err == nil {
			return dir, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding provider.js: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "test", "nodeprovider"), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no provider.js beside the package source and no go.mod above %s", wd)
		}
	}
}

func (p *Provider) start() error {
	args := []string{"provider.js", "--port", strconv.Itoa(p.Port),
		"--received-port", strconv.Itoa(p.ReceivedPort), "--parent-pipe", "--shutdown-wait", "3000"}
	cmd := exec.Command(p.node, append(args, p.cfg.args...)...)
	cmd.Dir = p.dir
	cmd.Stderr = p.log
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("stdin pipe: %w", err)
	}
	ready := make(chan [2]int, 1)
	cmd.Stdout = &stdoutWriter{ready: ready, log: p.log}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting node provider.js: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.stdin, p.exited = cmd, stdin, exited
	p.mu.Unlock()
	return p.awaitReady(ready, exited)
}

// stdoutWriter takes the provider's stdout: the ready line goes to ready,
// anything else to the log.
type stdoutWriter struct {
	ready   chan<- [2]int
	log     io.Writer
	partial []byte
}

func (w *stdoutWriter) Write(b []byte) (int, error) {
	w.partial = append(w.partial, b...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		if ports, ok := parseReady(line); ok {
			select {
			case w.ready <- ports:
			default:
			}
			continue
		}
		fmt.Fprintln(w.log, line)
	}
}

// parseReady reads "node provider ready port=N received=M".
func parseReady(line string) ([2]int, bool) {
	rest, ok := strings.CutPrefix(line, "node provider ready ")
	if !ok {
		return [2]int{}, false
	}
	var ports [2]int
	n, err := fmt.Sscanf(rest, "port=%d received=%d", &ports[0], &ports[1])
	return ports, err == nil && n == 2
}

func (p *Provider) awaitReady(ready <-chan [2]int, exited <-chan struct{}) error {
	select {
	case ports := <-ready:
		p.Port, p.ReceivedPort = ports[0], ports[1]
		return nil
	case <-exited:
		return fmt.Errorf("provider.js exited before it was ready:\n%s", p.log)
	case <-time.After(readyTimeout):
		_ = p.signal(syscall.SIGKILL, stopTimeout)
		return fmt.Errorf("provider.js not ready after %s:\n%s", readyTimeout, p.log)
	}
}

func (p *Provider) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// signal sends sig and waits up to wait for the process to end, then kills
// it. A provider already gone is not an error.
func (p *Provider) signal(sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %v to pid %d: %w", sig, cmd.Process.Pid, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(wait):
	}
	_ = cmd.Process.Kill()
	select {
	case <-exited:
		return fmt.Errorf("pid %d ignored %v for %s and was killed", cmd.Process.Pid, sig, wait)
	case <-time.After(stopTimeout):
		return fmt.Errorf("pid %d survived SIGKILL", cmd.Process.Pid)
	}
}

func (p *Provider) cleanup() {
	if err := p.signal(syscall.SIGTERM, stopTimeout); err != nil {
		p.t.Logf("node provider: %v", err)
	}
	p.mu.Lock()
	if p.stdin != nil {
		_ = p.stdin.Close()
	}
	p.mu.Unlock()
	if p.t.Failed() {
		p.t.Logf("node provider log:\n%s", p.log)
	}
}

// ---- what the provider received ----

// Received is GET /received.
type Received struct {
	Total      int64  `json:"total"`
	Heartbeats int64  `json:"heartbeats"`
	Calls      []Call `json:"calls"`
}

// Call is one request as the provider recorded it.
type Call struct {
	Seq          int64          `json:"seq"`
	Service      string         `json:"service"`
	Version      string         `json:"version"`
	Group        string         `json:"group"`
	WireMethod   string         `json:"wireMethod"` // $invoke for a generic call
	Generic      bool           `json:"generic"`
	Method       string         `json:"method"`
	ArgTypes     []string       `json:"argTypes"`
	Args         []Value        `json:"args"`   // as decoded, with hessian classes
	Values       []any          `json:"values"` // as the method got them, plainly
	Attachments  map[string]any `json:"attachments"`
	DubboVersion string         `json:"dubboVersion"`
	// Outcome: pending, value, null, exception, bad_request, not_found,
	// service_error, bad_response or status.
	Outcome    string     `json:"outcome"`
	Status     int        `json:"status"`
	Result     any        `json:"result"`
	Exception  *Exception `json:"exception"`
	Message    string     `json:"message"`
	DurationMs int64      `json:"durationMs"`
}

// Exception is what a method threw.
type Exception struct {
	Class   string `json:"class"`
	Message string `json:"message"`
}

// Value is a decoded hessian value: its class and its content, a scalar, a
// list of Values, an object's fields or a map's [key, value] pairs.
type Value struct {
	Class   string          `json:"$class"`
	Untyped bool            `json:"untyped"`
	Raw     json.RawMessage `json:"$"`
}

// Scalar is the content of a scalar (string, number, boolean; dates and
// byte[] as text).
func (v Value) Scalar() any {
	var out any
	_ = json.Unmarshal(v.Raw, &out)
	return out
}

// Field is an object's field; a zero Value if it has none.
func (v Value) Field(name string) Value {
	var fields map[string]*Value
	_ = json.Unmarshal(v.Raw, &fields)
	if f := fields[name]; f != nil {
		return *f
	}
	return Value{}
}

// Items are a list's elements.
func (v Value) Items() []Value {
	var items []Value
	_ = json.Unmarshal(v.Raw, &items)
	return items
}

// Entries are a map's [key, value] pairs.
func (v Value) Entries() [][2]Value {
	var entries [][2]Value
	_ = json.Unmarshal(v.Raw, &entries)
	return entries
}

// Shape renders the value compactly with its hessian class at every level,
// for a test to compare as one string: class(scalar) for scalars
// (int(5), java.lang.String(a), [B(base64)), list[...] and map{k:v ...} for
// untyped lists and maps, class[...] and class{...} for typed ones and for
// objects, null for null. Map entries and object fields are sorted, since
// encoders write them in no fixed order.
func (v Value) Shape() string {
	raw := bytes.TrimSpace(v.Raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		if v.Class == "" {
			return "null"
		}
		return v.Class + "(null)"
	case raw[0] == '{':
		var fields map[string]*Value
		_ = json.Unmarshal(raw, &fields)
		parts := make([]string, 0, len(fields))
		for name, f := range fields {
			parts = append(parts, name+":"+shapeOf(f))
		}
		slices.Sort(parts)
		return v.Class + "{" + strings.Join(parts, " ") + "}"
	case raw[0] == '[':
		prefix := v.Class
		if v.Untyped {
			prefix = "list"
		}
		if v.isMap() {
			if v.Untyped {
				prefix = "map"
			}
			var parts []string
			for _, e := range v.Entries() {
				parts = append(parts, e[0].Shape()+":"+e[1].Shape())
			}
			slices.Sort(parts)
			return prefix + "{" + strings.Join(parts, " ") + "}"
		}
		var parts []string
		for _, it := range v.Items() {
			parts = append(parts, it.Shape())
		}
		return prefix + "[" + strings.Join(parts, " ") + "]"
	}
	text := string(raw)
	if raw[0] == '"' {
		_ = json.Unmarshal(raw, &text)
	}
	return v.Class + "(" + text + ")"
}

func shapeOf(v *Value) string {
	if v == nil {
		return "null"
	}
	return v.Shape()
}

// isMap tells a map's [key, value] pairs from a list's items.
func (v Value) isMap() bool {
	var items []json.RawMessage
	if json.Unmarshal(v.Raw, &items) != nil {
		return false
	}
	if len(items) == 0 {
		return strings.HasSuffix(v.Class, "Map")
	}
	first := bytes.TrimSpace(items[0])
	return len(first) > 0 && first[0] == '['
}

// Received returns the calls recorded after seq (0: all kept).
func (p *Provider) Received(t testing.TB, since int64) Received {
	t.Helper()
	var r Received
	if err := p.getJSON(fmt.Sprintf("/received?since=%d", since), &r); err != nil {
		t.Fatalf("node provider: %v", err)
	}
	return r
}

// LastCall returns the latest call the provider received.
func (p *Provider) LastCall(t testing.TB) Call {
	t.Helper()
	r := p.Received(t, 0)
	if len(r.Calls) == 0 {
		t.Fatalf("node provider: no call received")
	}
	return r.Calls[len(r.Calls)-1]
}

// Clear forgets the calls received so far (the sequence goes on).
func (p *Provider) Clear(t testing.TB) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, p.receivedURL("/received"), nil)
	if err != nil {
		t.Fatalf("node provider: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("node provider: clearing /received: %v", err)
	}
	resp.Body.Close()
}

func (p *Provider) receivedURL(path string) string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(p.ReceivedPort)) + path
}

func (p *Provider) getJSON(path string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.receivedURL(path), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// ---- node and its modules ----

var (
	nodeOnce sync.Once
	nodePath string
	nodeErr  error

	npmOnce sync.Once
	npmErr  error
)

// nodeBinary finds node on PATH and checks it is version 20 or later.
func nodeBinary() (string, error) {
	nodeOnce.Do(func() {
		nodePath, nodeErr = exec.LookPath("node")
		if nodeErr != nil {
			nodeErr = fmt.Errorf("node (%d or later) is not on PATH: %w", minNode, nodeErr)
			return
		}
		out, err := exec.Command(nodePath, "--version").Output()
		if err != nil {
			nodeErr = fmt.Errorf("%s --version: %w", nodePath, err)
			return
		}
		v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
		major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
		if major < minNode {
			nodeErr = fmt.Errorf("%s is version %s; the provider needs %d or later", nodePath, v, minNode)
		}
	})
	return nodePath, nodeErr
}

// ensureModules runs npm ci once per process when node_modules is missing
// or older than package-lock.json. A file lock keeps test binaries of other
// packages, which go test runs at the same time, from installing together.
func ensureModules(dir string) error {
	npmOnce.Do(func() { npmErr = installModules(dir) })
	return npmErr
}

func installModules(dir string) error {
	lock, err := os.OpenFile(filepath.Join(dir, ".npm-ci.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("npm ci lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("npm ci lock: %w", err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if modulesCurrent(dir) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in %s: %w\n%s", dir, err, out)
	}
	return nil
}

// modulesCurrent says whether npm's record of node_modules is there and no
// older than the lock file.
func modulesCurrent(dir string) bool {
	installed, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if err != nil {
		return false
	}
	wanted, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	return err == nil && !installed.ModTime().Before(wanted.ModTime())
}

// tailBuffer keeps the last limit bytes written to it.
type tailBuffer struct {
	mu    sync.Mutex
	limit int
	buf   []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.limit; over > 0 {
		b.buf = append(b.buf[:0:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
