package bridges

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	natsBinOnce sync.Once
	natsBinDir  string // removed by TestMain
	natsBin     string
	natsBinErr  error
)

// natsServerBinary builds the real nats-server from the module go.mod pins,
// once per test run, into a directory TestMain removes.
func natsServerBinary(t *testing.T) string {
	t.Helper()
	natsBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "protogate-nats-server-")
		if err != nil {
			natsBinErr = err
			return
		}
		natsBinDir = dir
		natsBin = filepath.Join(dir, "nats-server")
		out, err := exec.Command("go", "build", "-o", natsBin, "github.com/nats-io/nats-server/v2").CombinedOutput()
		if err != nil {
			natsBinErr = fmt.Errorf("building nats-server: %v\n%s", err, out)
		}
	})
	if natsBinErr != nil {
		t.Fatal(natsBinErr)
	}
	return natsBin
}

// natsProc is a nats-server process with JetStream on loopback. It keeps
// its ports and store directory across kill and start, as a server
// restarted by an operator or a supervisor would.
type natsProc struct {
	t          *testing.T
	port       int
	monitor    int
	storeDir   string
	logFile    string
	token      string // --auth when set
	maxPayload int    // through a config file when set
	cmd        *exec.Cmd
	exited     chan struct{}
}

// startNATSProc starts a server; opts adjust it before the first start.
func startNATSProc(t *testing.T, opts ...func(*natsProc)) *natsProc {
	t.Helper()
	dir := t.TempDir()
	p := &natsProc{t: t, port: freePort(t), monitor: freePort(t), storeDir: filepath.Join(dir, "js"), logFile: filepath.Join(dir, "nats.log")}
	for _, o := range opts {
		o(p)
	}
	p.start()
	t.Cleanup(p.kill)
	return p
}

func (p *natsProc) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", p.port) }

// start runs the server and returns once it serves clients with
// JetStream; a server that exits first fails the test with its log.
func (p *natsProc) start() {
	p.t.Helper()
	args := []string{"-a", "127.0.0.1", "-p", fmt.Sprint(p.port), "-m", fmt.Sprint(p.monitor),
		"-js", "-sd", p.storeDir, "-l", p.logFile}
	if p.maxPayload > 0 {
		conf := filepath.Join(filepath.Dir(p.logFile), "nats.conf")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf("max_payload: %d\n", p.maxPayload)), 0o600); err != nil {
			p.t.Fatal(err)
		}
		args = append(args, "-c", conf)
	}
	if p.token != "" {
		args = append(args, "--auth", p.token)
	}
	p.cmd = exec.Command(natsServerBinary(p.t), args...)
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	exited := make(chan struct{})
	p.exited = exited
	cmd := p.cmd
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	p.waitServing()
}

// waitServing polls the monitor's /healthz, which answers 200 only once
// the server takes clients and JetStream is up, then checks with a
// client that a round trip and a JetStream call work.
func (p *natsProc) waitServing() {
	p.t.Helper()
	health := fmt.Sprintf("http://127.0.0.1:%d/healthz", p.monitor)
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-p.exited:
			p.t.Fatalf("nats-server exited before serving: %v\n%s", p.cmd.ProcessState, p.log())
		default:
		}
		if resp, err := client.Get(health); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("nats-server did not serve within 15s\n%s", p.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	nc, js := p.connect()
	defer nc.Close()
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		p.t.Fatalf("nats-server does not answer a flush: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		p.t.Fatalf("JetStream does not answer: %v", err)
	}
}

// connect is a client of the test's own, to read and change what the
// bridge uses; the caller closes it.
func (p *natsProc) connect() (*nats.Conn, jetstream.JetStream) {
	p.t.Helper()
	opts := []nats.Option{nats.Timeout(2 * time.Second)}
	if p.token != "" {
		opts = append(opts, nats.Token(p.token))
	}
	nc, err := nats.Connect(p.url(), opts...)
	if err != nil {
		p.t.Fatalf("test client: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		p.t.Fatal(err)
	}
	return nc, js
}

// client is connect closed at the end of the test.
func (p *natsProc) client() (*nats.Conn, jetstream.JetStream) {
	p.t.Helper()
	nc, js := p.connect()
	p.t.Cleanup(nc.Close)
	return nc, js
}

// kill ends the server with SIGKILL, as a crash would, and returns once it
// has exited. It may be called when the server is not running.
func (p *natsProc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	p.cmd = nil
}

// pause stops the server with SIGSTOP: its sockets stay open and nothing
// is answered, so whatever the bridge sends waits. It returns once the
// kernel says the process is stopped (the signal is delivered
// asynchronously, and a server still running could answer).
func (p *natsProc) pause() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		p.t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if p.allThreadsStopped() {
			return
		}
	}
	p.t.Fatal("nats-server did not stop on SIGSTOP within 5s")
}

// allThreadsStopped reads each thread's state from /proc: every thread of
// the process stops on its own as it takes the signal.
func (p *natsProc) allThreadsStopped() bool {
	p.t.Helper()
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", p.cmd.Process.Pid))
	if err != nil || len(stats) == 0 {
		p.t.Fatalf("reading the server's threads: %v", err)
	}
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			return false // a thread that just ended
		}
		// "pid (comm) state ...": the state follows the last ')'.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) == 0 || (f[0] != "T" && f[0] != "t") {
			return false
		}
	}
	return true
}

// restart kills the server and starts it again on the same port and store.
func (p *natsProc) restart() {
	p.t.Helper()
	p.kill()
	p.start()
}

func (p *natsProc) log() string {
	b, _ := os.ReadFile(p.logFile)
	return tail(string(b), 30)
}

// connzCIDs are the ids the server gave the connections named name: a
// connection that dropped and came back has another id.
func (p *natsProc) connzCIDs(name string) []uint64 {
	p.t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/connz?limit=1024", p.monitor))
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var connz struct {
		Conns []struct {
			CID  uint64 `json:"cid"`
			Name string `json:"name"`
		} `json:"connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&connz); err != nil {
		p.t.Fatal(err)
	}
	var ids []uint64
	for _, c := range connz.Conns {
		if c.Name == name {
			ids = append(ids, c.CID)
		}
	}
	return ids
}

// faultLog is a log destination the bridge's goroutines and the test share.
type faultLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *faultLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *faultLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// count is how many log lines hold s.
func (l *faultLog) count(s string) int { return strings.Count(l.String(), s) }
