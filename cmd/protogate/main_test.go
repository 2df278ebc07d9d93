package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run executes the CLI in-process and returns stdout, stderr and the error.
func run(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func TestValidateAcceptsExamples(t *testing.T) {
	tests := []struct{ path, want string }{
		{"../../examples/mappings/dubbo.yaml", "ok: ../../examples/mappings/dubbo.yaml: 1 listener, 3 routes, 1 upstream (1 file)\n"},
		{"../../examples/mappings/nats.yaml", "ok: ../../examples/mappings/nats.yaml: 1 listener, 3 routes, 1 upstream (1 file)\n"},
		{"../../examples/mappings/mixed.yaml", "ok: ../../examples/mappings/mixed.yaml: 3 listeners, 4 routes, 4 upstreams (1 file)\n"},
		{"../../examples/mappings/split", "ok: ../../examples/mappings/split: 1 listener, 1 route, 1 upstream (3 files)\n"},
	}
	for _, tt := range tests {
		out, errOut, err := run("validate", "-c", tt.path)
		if err != nil || out != tt.want || errOut != "" {
			t.Errorf("validate %s: err=%v\nstdout=%q\nstderr=%q\nwant %q", tt.path, err, out, errOut, tt.want)
		}
	}
}

// TestValidateRejectsBrokenFiles checks the CLI prints exactly the .want
// lines of every broken file and fails.
func TestValidateRejectsBrokenFiles(t *testing.T) {
	dir := "../../test/testdata/invalid"
	wants, _ := filepath.Glob(filepath.Join(dir, "*.want"))
	if len(wants) < 10 {
		t.Fatalf("found only %d broken files", len(wants))
	}
	for _, w := range wants {
		input := strings.TrimSuffix(w, ".want")
		want, err := os.ReadFile(w)
		if err != nil {
			t.Fatal(err)
		}
		out, errOut, err := run("validate", "-c", input)
		var ee exitError
		if !errors.As(err, &ee) || out != "" {
			t.Errorf("%s: want a failing exit and no stdout, got err=%v stdout=%q", input, err, out)
		}
		got := strings.ReplaceAll(errOut, dir+"/", "")
		if got != string(want) {
			t.Errorf("%s:\n got:\n%s\nwant:\n%s", input, got, want)
		}
	}
}

func TestValidateNeedsConfigFlag(t *testing.T) {
	_, _, err := run("validate")
	if err == nil || !strings.Contains(err.Error(), `required flag(s) "config" not set`) {
		t.Fatalf("got %v", err)
	}
}

func TestSchemaIsJSON(t *testing.T) {
	out, _, err := run("schema")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("schema output is not JSON: %v", err)
	}
	if doc["$schema"] != "https://json-schema.org/draft/2020-12/schema" || doc["$defs"] == nil {
		t.Fatalf("unexpected schema head: %v", doc["$schema"])
	}
	md, _, err := run("schema", "--markdown")
	if err != nil || !strings.Contains(md, "### Listener") {
		t.Fatalf("markdown reference missing: %v", err)
	}
}

func TestVersion(t *testing.T) {
	out, _, err := run("version")
	if err != nil || !strings.HasPrefix(out, "protogate ") {
		t.Fatalf("version: %q %v", out, err)
	}
}

// TestPendingCommandsSaySo makes sure commands that have not landed fail
// plainly instead of pretending to run.
func TestPendingCommandsSaySo(t *testing.T) {
	for _, name := range []string{"run", "controlplane", "bridge", "bootstrap", "dump"} {
		_, errOut, err := run(name, "-c", "x.yaml")
		if err == nil || !strings.Contains(errOut, "protogate "+name+" is not ready yet") {
			t.Errorf("%s: err=%v stderr=%q", name, err, errOut)
		}
	}
}

// TestEveryCommandHasAnExample keeps --help useful.
func TestEveryCommandHasAnExample(t *testing.T) {
	root := newRootCmd()
	if root.Example == "" {
		t.Error("root command has no example")
	}
	for _, c := range root.Commands() {
		if c.Example == "" && c.Name() != "help" && c.Name() != "completion" {
			t.Errorf("%s --help shows no example", c.Name())
		}
		out, _, err := run(c.Name(), "--help")
		if c.Name() != "help" && c.Name() != "completion" && (err != nil || !strings.Contains(out, "Examples:")) {
			t.Errorf("%s --help: err=%v, no Examples section in %q", c.Name(), err, out)
		}
	}
}
