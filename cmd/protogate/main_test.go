package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
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

func TestTranslate(t *testing.T) {
	out, errOut, err := run("translate", "-c", "../../examples/mappings/mixed.yaml", "--node-group", "rpc", "--type", "cluster", "-o", "json")
	if err != nil {
		t.Fatalf("%v %s", err, errOut)
	}
	var doc struct {
		Groups []struct {
			Name      string            `json:"name"`
			Listeners []json.RawMessage `json:"listeners"`
			Clusters  []struct {
				Type string `json:"@type"`
				Name string `json:"name"`
			} `json:"clusters"`
		} `json:"groups"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if len(doc.Groups) != 1 || doc.Groups[0].Name != "rpc" || len(doc.Groups[0].Listeners) != 0 ||
		len(doc.Groups[0].Clusters) != 1 || doc.Groups[0].Clusters[0].Name != "dubbo/users" ||
		doc.Groups[0].Clusters[0].Type != "type.googleapis.com/envoy.config.cluster.v3.Cluster" {
		t.Fatalf("unexpected output: %s", out)
	}
	if _, _, err := run("translate", "-c", "../../examples/mappings/mixed.yaml", "--type", "secret"); err == nil {
		t.Fatal("an unknown --type was accepted")
	}
}

func TestTranslateAsBootstrap(t *testing.T) {
	out, errOut, err := run("translate", "-c", "../../examples/mappings/dubbo.yaml", "--as-bootstrap")
	if err != nil {
		t.Fatalf("%v %s", err, errOut)
	}
	for _, want := range []string{"staticResources:", "routeConfig:", "type: STATIC", "pathTemplate: /users/{id}", "address: 127.0.0.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("bootstrap lacks %q", want)
		}
	}
	if strings.Contains(out, "rds:") || strings.Contains(out, "type: EDS") {
		t.Error("a static bootstrap must not depend on RDS or EDS")
	}
	_, _, err = run("translate", "-c", "../../examples/mappings/mixed.yaml", "--as-bootstrap")
	if err == nil || !strings.Contains(err.Error(), "--as-bootstrap needs --node-group") {
		t.Fatalf("got %v", err)
	}
}

func TestTranslateReportsInvalidMapping(t *testing.T) {
	_, errOut, err := run("translate", "-c", "../../test/testdata/invalid/many-errors.yaml")
	if err == nil || !strings.Contains(errOut, "5 problems; nothing was loaded") {
		t.Fatalf("err=%v stderr=%s", err, errOut)
	}
}

// TestResultsGoToStdout: cobra sends Print to stderr by default, which would
// make `protogate translate > file` write an empty file.
func TestResultsGoToStdout(t *testing.T) {
	if newRootCmd().OutOrStdout() != os.Stdout {
		t.Fatal("command output is not stdout")
	}
}

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestControlPlaneServesWhatTranslatePrints runs the controlplane command,
// asks it with the dump command as a node of each group, and compares with
// translate's output for that group.
func TestControlPlaneServesWhatTranslatePrints(t *testing.T) {
	mapping := "../../examples/mappings/mixed.yaml"
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	root := newRootCmd()
	root.SetOut(io.Discard)
	root.SetErr(&logs)
	root.SetArgs([]string{"controlplane", "-c", mapping, "--xds-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controlplane: %v", err)
		}
	}()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := regexp.MustCompile(`xds=(127\.0\.0\.1:\d+)`).FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatalf("the control plane did not start:\n%s", logs.String())
	}
	for _, group := range []string{"edge", "rpc"} {
		dumped, errOut, err := run("dump", "--xds", addr, "--node-id", "test-"+group, "--node-group", group)
		if err != nil {
			t.Fatalf("dump: %v %s", err, errOut)
		}
		translated, _, err := run("translate", "-c", mapping, "--node-group", group)
		if err != nil {
			t.Fatal(err)
		}
		if dumped != translated || len(dumped) < 500 {
			t.Errorf("group %s: dump (%d bytes) differs from translate (%d bytes)", group, len(dumped), len(translated))
		}
	}
}

func TestBootstrapCommand(t *testing.T) {
	out, errOut, err := run("bootstrap", "--node-id", "envoy-1", "--node-group", "edge", "--xds", "127.0.0.1:18000", "--delta")
	if err != nil {
		t.Fatalf("%v %s", err, errOut)
	}
	for _, want := range []string{"id: envoy-1", "cluster: edge", "apiType: DELTA_GRPC", "initialFetchTimeout: 15s", "address: 127.0.0.1", "portValue: 9901", "overloadManager:"} {
		if !strings.Contains(out, want) {
			t.Errorf("bootstrap lacks %q", want)
		}
	}
	if _, _, err := run("bootstrap", "--node-id", "x"); err == nil {
		t.Error("missing flags accepted")
	}
}
