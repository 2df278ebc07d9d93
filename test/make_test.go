package test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnvoyValidateTierCanFail runs `make envoy-validate` with stand-in
// envoy binaries on PATH: one that rejects every config must fail the tier,
// one that accepts must pass it, and without any the tier says it skipped.
func TestEnvoyValidateTierCanFail(t *testing.T) {
	if testing.Short() {
		t.Skip("runs make and go test")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is needed to run the suite itself")
	}
	tests := []struct {
		name     string
		script   string // the stand-in envoy; empty: none on PATH
		wantFail bool
		wantOut  string
	}{
		{"rejecting envoy", "#!/bin/sh\necho 'error initializing configuration: stand-in rejects everything' >&2\nexit 1\n", true, "envoy rejects the config"},
		{"accepting envoy", "#!/bin/sh\necho 'configuration is valid'\nexit 0\n", false, "--- PASS: TestEnvoyValidate"},
		{"no envoy", "", false, "SKIPPED: no envoy binary on PATH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := pathWithoutEnvoy()
			if tt.script != "" {
				if err := os.WriteFile(filepath.Join(dir, "envoy"), []byte(tt.script), 0o755); err != nil {
					t.Fatal(err)
				}
				path = dir + string(os.PathListSeparator) + path
			}
			cmd := exec.Command("make", "--no-print-directory", "-C", "..", "envoy-validate")
			cmd.Env = append(os.Environ(), "PATH="+path)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tt.wantFail {
				t.Fatalf("make envoy-validate failed=%v, want %v\n%s", failed, tt.wantFail, out)
			}
			if !strings.Contains(string(out), tt.wantOut) {
				t.Fatalf("output lacks %q:\n%s", tt.wantOut, out)
			}
		})
	}
}

// pathWithoutEnvoy is PATH less every directory that holds an envoy.
func pathWithoutEnvoy() string {
	var keep []string
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(d, "envoy")); err == nil {
			continue
		}
		keep = append(keep, d)
	}
	return strings.Join(keep, string(os.PathListSeparator))
}

// TestMakeRunRefusesBusyPorts: a second make run stops before it builds,
// starts or writes anything when one of its ports is taken.
func TestMakeRunRefusesBusyPorts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	out, err := exec.Command("make", "--no-print-directory", "-C", "..", "check-run-ports", fmt.Sprintf("RUN_PORTS=%d", port)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), fmt.Sprintf("port 127.0.0.1:%d is already in use", port)) {
		t.Fatalf("make check-run-ports with port %d taken: err=%v\n%s", port, err, out)
	}
	l.Close()
	if out, err := exec.Command("make", "--no-print-directory", "-C", "..", "check-run-ports", fmt.Sprintf("RUN_PORTS=%d", port)).CombinedOutput(); err != nil {
		t.Fatalf("make check-run-ports with port %d free: %v\n%s", port, err, out)
	}
	// run depends on the check first, so nothing starts before it.
	mk, err := os.ReadFile("../Makefile")
	if err != nil || !strings.Contains(string(mk), "\nrun: check-run-ports build\n") {
		t.Fatalf("make run must check its ports before building or starting anything")
	}
}
