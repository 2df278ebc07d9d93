// Package testpeer starts the real peers protogate's tests talk to, as
// separate processes on free loopback ports: Debian's ZooKeeper today. One
// copy of this, shared by every package's tests, so they all wait for a
// peer the same (correct) way.
package testpeer

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ZooKeeperScript is Debian's zookeeper package's server script; `make
// test` installs the package when it is missing.
const ZooKeeperScript = "/usr/share/zookeeper/bin/zkServer.sh"

// ZooKeeper is a ZooKeeper server a test can kill and start again on the
// same port with the same data.
type ZooKeeper struct {
	// Addr is HOST:PORT, on loopback.
	Addr string
	t    testing.TB
	dir  string
	cfg  string
	cmd  *exec.Cmd
	log  *os.File
}

// StartZooKeeper runs ZooKeeper in a temp directory and returns once it
// serves clients. maxSession caps the session timeout clients get, which is
// how long a killed client's ephemeral nodes outlive it.
func StartZooKeeper(t testing.TB, maxSession time.Duration) *ZooKeeper {
	t.Helper()
	if _, err := os.Stat(ZooKeeperScript); err != nil {
		t.Fatalf("ZooKeeper is not installed (%v); `make test` installs it (apt-get install -y zookeeper)", err)
	}
	z := &ZooKeeper{t: t, dir: t.TempDir()}
	port := FreePort(t)
	z.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	z.cfg = filepath.Join(z.dir, "zoo.cfg")
	tick := min(maxSession/4, time.Second)
	body := fmt.Sprintf("tickTime=%d\ninitLimit=5\nsyncLimit=2\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"+
		"admin.enableServer=false\n4lw.commands.whitelist=srvr\nminSessionTimeout=%d\nmaxSessionTimeout=%d\n",
		tick.Milliseconds(), filepath.Join(z.dir, "data"), port, (2 * tick).Milliseconds(), maxSession.Milliseconds())
	if err := os.WriteFile(z.cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	if z.log, err = os.Create(filepath.Join(z.dir, "zk.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		z.Kill()
		z.log.Close()
		if t.Failed() {
			out, _ := os.ReadFile(filepath.Join(z.dir, "zk.log"))
			t.Logf("ZooKeeper's log:\n%s", out)
		}
	})
	z.Start()
	return z
}

// Start runs the server (again) and returns once it serves clients.
func (z *ZooKeeper) Start() {
	z.t.Helper()
	z.cmd = exec.Command(ZooKeeperScript, "start-foreground", z.cfg)
	z.cmd.Env = append(os.Environ(), "ZOO_LOG_DIR="+z.dir, "ZOOCFGDIR="+z.dir)
	z.cmd.Stdout, z.cmd.Stderr = z.log, z.log
	if err := z.cmd.Start(); err != nil {
		z.t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if serving(z.Addr) {
			return
		}
	}
	z.t.Fatal("ZooKeeper did not start serving")
}

// Kill stops the server with SIGKILL; it may be called more than once.
func (z *ZooKeeper) Kill() {
	if z.cmd != nil {
		_ = z.cmd.Process.Kill()
		_, _ = z.cmd.Process.Wait()
		z.cmd = nil
	}
}

// serving asks srvr, which names the server's mode only once it serves
// clients; ruok answers imok as soon as the process listens, before a
// client can open a session.
func serving(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return false
	}
	out, _ := io.ReadAll(c)
	return strings.Contains(string(out), "Mode: standalone")
}

// FreePort is a loopback port free at the time of asking.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
