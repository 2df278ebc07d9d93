package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// The placement the targets are measured with: the process under test alone on
// one core, everything else (this process, the providers, nats-server) on
// the other.
const (
	cpuUnderTest = 0
	cpuPeers     = 1
)

// proc is a child process of the bench: a binary under test or a peer.
type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	out    *lineWatch     // its stdout, watched for a line
	stdin  io.WriteCloser // set for children that take commands
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// cpu is the CPU the process has used so far.
func (p *proc) cpu() time.Duration { return cpuOf(p.pid()) }

// rss is the process's resident memory in bytes.
func (p *proc) rss() int64 { return rssOf(p.pid()) }

func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop ends the process (SIGTERM, then SIGKILL after a second).
func (p *proc) stop() {
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// startProc runs bin pinned to cpu (with taskset, so the Go runtime of the
// child sees one CPU from its first instruction). underTest adds
// GOMAXPROCS=1. The child dies with the bench.
func startProc(name string, cpu int, underTest, withStdin bool, bin string, args ...string) (*proc, error) {
	argv := append([]string{bin}, args...)
	if pinning {
		argv = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = os.Environ()
	if underTest {
		cmd.Env = append(cmd.Env, "GOMAXPROCS=1")
	}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{}), out: newLineWatch()}
	cmd.Stdout = p.out
	cmd.Stderr = &prefixWriter{prefix: name + ": ", w: os.Stderr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if withStdin {
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, fmt.Errorf("starting %s: %w", name, err)
		}
		p.stdin = in
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// waitLine waits until the process prints a line containing s.
func (p *proc) waitLine(s string, within time.Duration) error {
	select {
	case <-p.out.wait(s):
		return nil
	case <-p.exited:
		return fmt.Errorf("%s exited before printing %q", p.name, s)
	case <-time.After(within):
		return fmt.Errorf("%s did not print %q within %v", p.name, s, within)
	}
}

// waitHTTP polls url until it answers 200.
func (p *proc) waitHTTP(url string, within time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(within)
	for {
		if !p.alive() {
			return fmt.Errorf("%s exited before %s answered", p.name, url)
		}
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not ready within %v (last: %v)", p.name, url, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lineWatch keeps a process's output lines and lets waiters see one;
// feed gets every line too (dropped when nobody reads).
type lineWatch struct {
	mu      sync.Mutex
	buf     []byte
	lines   []string
	waiters map[string]chan struct{}
	feed    chan string
}

func newLineWatch() *lineWatch {
	return &lineWatch{waiters: map[string]chan struct{}{}, feed: make(chan string, 64)}
}

func (l *lineWatch) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		line := string(l.buf[:i])
		l.buf = l.buf[i+1:]
		if len(l.lines) < 1000 {
			l.lines = append(l.lines, line)
		}
		select {
		case l.feed <- line:
		default:
		}
		for s, ch := range l.waiters {
			if strings.Contains(line, s) {
				close(ch)
				delete(l.waiters, s)
			}
		}
	}
	return len(b), nil
}

func (l *lineWatch) wait(s string) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := make(chan struct{})
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			close(ch)
			return ch
		}
	}
	l.waiters[s] = ch
	return ch
}

// prefixWriter passes a child's stderr through, each line marked with
// whose it is.
type prefixWriter struct {
	mu     sync.Mutex
	prefix string
	w      *os.File
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.buf = p.buf[i+1:]
	}
}

// pinning says whether children are placed with taskset; without it
// everything shares both cores (and the bench says so).
var pinning = func() bool { _, err := exec.LookPath("taskset"); return err == nil }()

// pinSelf moves every thread of this process to cpu. Threads created later
// inherit the mask of the thread that creates them.
func pinSelf(cpu int) error {
	var mask [16]uint64 // 1024 CPUs, the kernel's cpu_set_t
	mask[cpu/64] |= 1 << (cpu % 64)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("listing this process's threads: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(mask), uintptr(unsafe.Pointer(&mask)))
		if errno != 0 && errno != syscall.ESRCH {
			return fmt.Errorf("sched_setaffinity(%d): %w", tid, errno)
		}
	}
	return nil
}

// cpuSelf is this process's user+system CPU time.
func cpuSelf() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuOf is a process's user+system CPU time from /proc/PID/stat (utime and
// stime, in clock ticks of 10 ms; every thread counted).
func cpuOf(pid int) time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // after the command name
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(ut+st) * tick
}

// rssOf is a process's VmRSS in bytes.
func rssOf(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("choosing a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freeAddr is a free 127.0.0.1 address.
func freeAddr() (string, error) {
	p, err := freePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// binaries are the programs the bench runs, built once into a temp dir.
type binaries struct {
	dir                     string
	protogate, provider, ns string
	self                    string
}

// buildBinaries builds protogate, the example provider and nats-server
// from this module (the Go build cache makes later runs quick), except
// those given.
func buildBinaries(dir string, given binaries) (*binaries, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" {
		return nil, fmt.Errorf("finding the module root (go env GOMOD): %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the bench binary: %w", err)
	}
	b := &binaries{dir: dir, self: self,
		protogate: filepath.Join(dir, "protogate"), provider: filepath.Join(dir, "dubbo-provider"), ns: filepath.Join(dir, "nats-server")}
	for _, t := range []struct {
		out  *string
		pkg  string
		have string
	}{
		{&b.protogate, "./cmd/protogate", given.protogate}, {&b.provider, "./examples/dubbo-provider", given.provider},
		{&b.ns, "github.com/nats-io/nats-server/v2", given.ns},
	} {
		if t.have != "" {
			*t.out = t.have
			continue
		}
		build := exec.Command("go", "build", "-o", *t.out, t.pkg)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building %s: %w\n%s", t.pkg, err, out)
		}
	}
	return b, nil
}
