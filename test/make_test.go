package test

import (
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
