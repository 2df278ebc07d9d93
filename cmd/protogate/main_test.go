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

	"github.com/spf13/cobra"

	"github.com/protogate/protogate/config"
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
	for _, want := range []string{"static_resources:", "route_config:", "type: STATIC", "path_template: /users/{id}", "address: 127.0.0.1"} {
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

// startControlPlane runs the controlplane command on free ports until the
// test ends and returns its ADS address, read from its start log line.
func startControlPlane(t *testing.T, mapping string) string {
	t.Helper()
	// The command passes its address flags on as PROTOGATE_ variables of
	// this process (so reloads see them); restore them afterwards, or later
	// tests load their mappings with these overrides.
	t.Setenv("PROTOGATE_XDS_ADDRESS", "127.0.0.1:0")
	t.Setenv("PROTOGATE_XDS_ADMIN_ADDRESS", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	root := newRootCmd()
	root.SetOut(io.Discard)
	root.SetErr(&logs)
	root.SetArgs([]string{"controlplane", "-c", mapping, "--xds-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controlplane: %v", err)
		}
	})
	// The line is logged once both listeners are bound.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := regexp.MustCompile(`xds=(127\.0\.0\.1:\d+)`).FindStringSubmatch(logs.String()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("the control plane did not start:\n%s", logs.String())
	return ""
}

// TestControlPlaneServesWhatTranslatePrints runs the controlplane command,
// asks it with the dump command as a node of each group, and compares with
// translate's output for that group.
func TestControlPlaneServesWhatTranslatePrints(t *testing.T) {
	mapping := "../../examples/mappings/mixed.yaml"
	addr := startControlPlane(t, mapping)
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
	for _, want := range []string{"id: envoy-1", "cluster: edge", "api_type: DELTA_GRPC", "initial_fetch_timeout: 15s", "address: 127.0.0.1", "port_value: 9901", "overload_manager:"} {
		if !strings.Contains(out, want) {
			t.Errorf("bootstrap lacks %q", want)
		}
	}
	if _, _, err := run("bootstrap", "--node-id", "x"); err == nil {
		t.Error("missing flags accepted")
	}
}

// runCLI runs the command line as main does: what it prints on failure,
// and the exit code.
func runCLI(args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	code = execute(root)
	return out.String(), errOut.String(), code
}

func TestUnknownNodeGroupIsNamed(t *testing.T) {
	const want = `error: --node-group: the mapping has no node group "nope" (groups: edge, rpc)` + "\n"
	for _, extra := range [][]string{nil, {"--as-bootstrap"}, {"--type", "route", "-o", "json"}} {
		args := append([]string{"translate", "-c", "../../examples/mappings/mixed.yaml", "--node-group", "nope"}, extra...)
		out, errOut, code := runCLI(args...)
		if code != 1 || out != "" || errOut != want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want stderr %q", extra, code, out, errOut, want)
		}
	}
}

// TestDumpOfUnknownGroupFails asks a real control plane for a group it
// does not have: the fallback it serves must not look like an empty group.
func TestDumpOfUnknownGroupFails(t *testing.T) {
	addr := startControlPlane(t, "../../examples/mappings/mixed.yaml")
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"--node-group", "nope"}, 1, `error: the control plane has no node group "nope" (groups: edge, rpc)` + "\n"},
		{[]string{"--node-group", "nope", "--type", "route"}, 1, `error: the control plane has no node group "nope" (groups: edge, rpc)` + "\n"},
		{[]string{"--node-group", "rpc", "--type", "route"}, 0, ""}, // a real group with no routes
	}
	for _, tt := range tests {
		args := append([]string{"dump", "--xds", addr, "--node-id", "dump-test"}, tt.args...)
		out, errOut, code := runCLI(args...)
		if code != tt.code || errOut != tt.stderr || (code != 0) != (out == "") {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit %d, stderr %q", tt.args, code, errOut, out, tt.code, tt.stderr)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	cmd, _, code1 := runCLI("version")
	flag, _, code2 := runCLI("--version")
	if code1 != 0 || code2 != 0 || flag != cmd || !strings.HasPrefix(flag, "protogate ") || !strings.HasSuffix(flag, "\n") {
		t.Fatalf("--version %q (exit %d), version %q (exit %d)", flag, code2, cmd, code1)
	}
}

// TestUsageLineOnCommandLineMistakes: a mistake in the command line gets
// the command's usage line after the error; a runtime failure does not.
func TestUsageLineOnCommandLineMistakes(t *testing.T) {
	tests := []struct {
		args       []string
		err, usage string
	}{
		{[]string{"validate"}, `required flag(s) "config" not set`, "Usage: protogate validate -c FILE|DIR [flags]"},
		{[]string{"dump", "--node-group", "g"}, `required flag(s) "node-id" not set`, "Usage: protogate dump --xds ADDR --node-id ID --node-group G [flags]"},
		{[]string{"translate", "-c", "x", "--bogus"}, "unknown flag: --bogus", "Usage: protogate translate -c FILE|DIR [flags]"},
		{[]string{"dump", "--node-id", "n", "--node-group", "g", "--timeout", "soon"}, `invalid argument "soon" for "--timeout"`, "Usage: protogate dump"},
		{[]string{"bootstrap", "--node-id", "n", "--node-group", "g", "--xds", "127.0.0.1:1", "--max-heap", "lots"}, `--max-heap: "lots" is not a size`, "Usage: protogate bootstrap"},
		{[]string{"translate", "-c", "../../examples/mappings/mixed.yaml", "--type", "secret"}, `--type "secret"`, "Usage: protogate translate"},
		{[]string{"validate", "-c", "x", "extra"}, `unknown command "extra"`, "Usage: protogate validate"},
		{[]string{"--log-level", "loud", "validate", "-c", "x"}, `--log-level "loud"`, "Usage: protogate validate"},
		{[]string{"translate", "-c", "../../examples/mappings/mixed.yaml", "--node-group", "nope"}, "no node group", ""},
		{[]string{"validate", "-c", "/nonexistent/mapping.yaml"}, "/nonexistent/mapping.yaml", ""},
	}
	for _, tt := range tests {
		_, errOut, code := runCLI(tt.args...)
		lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
		hasUsage := strings.Contains(errOut, "Usage: ")
		if code != 1 || !strings.Contains(errOut, tt.err) || hasUsage != (tt.usage != "") ||
			(tt.usage != "" && (len(lines) != 3 || !strings.HasPrefix(lines[0], "error: ") || !strings.HasPrefix(lines[1], tt.usage))) {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant %q and usage %q", tt.args, code, errOut, tt.err, tt.usage)
		}
	}
}

// TestEnvoyFieldNamesAreSnakeCase: translate, bootstrap (and so dump, which
// shares translate's printer) use Envoy's own field names, in both formats.
func TestEnvoyFieldNamesAreSnakeCase(t *testing.T) {
	tests := []struct {
		args      []string
		want, not string
	}{
		{[]string{"translate", "-c", "../../examples/mappings/mixed.yaml", "--node-group", "edge"}, "route_config_name", "routeConfigName"},
		{[]string{"translate", "-c", "../../examples/mappings/mixed.yaml", "--node-group", "edge", "-o", "json"}, `"route_config_name"`, "routeConfigName"},
		{[]string{"translate", "-c", "../../examples/mappings/dubbo.yaml", "--as-bootstrap", "-o", "json"}, `"cluster_name"`, "clusterName"},
		{[]string{"bootstrap", "--node-id", "e", "--node-group", "g", "--xds", "127.0.0.1:18000"}, "cluster_name: protogate-xds", "clusterName"},
		{[]string{"bootstrap", "--node-id", "e", "--node-group", "g", "--xds", "127.0.0.1:18000", "-o", "json"}, `"cluster_name": "protogate-xds"`, "clusterName"},
	}
	for _, tt := range tests {
		out, errOut, err := run(tt.args...)
		if err != nil || !strings.Contains(out, tt.want) || strings.Contains(out, tt.not) || !strings.Contains(out, "@type") {
			t.Errorf("%v: err=%v %s; output has %q: %v, has %q: %v", tt.args, err, errOut,
				tt.want, strings.Contains(out, tt.want), tt.not, strings.Contains(out, tt.not))
		}
	}
}

func TestBootstrapChecks(t *testing.T) {
	base := []string{"bootstrap", "--xds", "127.0.0.1:18000"}
	tests := []struct {
		name      string
		args      []string
		code      int
		stderr    string // must contain
		noStderr  string // must not contain
		hasOutput string
		noOutput  string
	}{
		{"empty node id", []string{"--node-id", "", "--node-group", "edge"}, 1, "--node-id is empty: Envoy refuses CDS and LDS", "", "", ""},
		{"empty group", []string{"--node-id", "e", "--node-group", ""}, 1, "--node-group is empty", "", "", ""},
		{"exposed admin", []string{"--node-id", "e", "--node-group", "g", "--admin-address", "0.0.0.0:9901"}, 0, "level=WARN msg=\"Envoy's admin on 0.0.0.0:9901 is not on loopback: it must not be exposed", "", "address: 0.0.0.0", ""},
		{"loopback admin", []string{"--node-id", "e", "--node-group", "g"}, 0, "", "WARN", "overload_manager:", ""},
		{"max heap 0", []string{"--node-id", "e", "--node-group", "g", "--max-heap", "0"}, 0, "", "WARN", "node:", "overload_manager"},
		{"max heap 0 with a connection limit", []string{"--node-id", "e", "--node-group", "g", "--max-heap", "0", "--max-connections", "10"}, 1, "--max-heap 0 leaves out", "", "", ""},
	}
	for _, tt := range tests {
		out, errOut, code := runCLI(append(base, tt.args...)...)
		if code != tt.code || !strings.Contains(errOut, tt.stderr) || (tt.noStderr != "" && strings.Contains(errOut, tt.noStderr)) ||
			!strings.Contains(out, tt.hasOutput) || (tt.noOutput != "" && strings.Contains(out, tt.noOutput)) || (code != 0 && out != "") {
			t.Errorf("%s: exit %d\nstderr: %s\nstdout has %q: %v", tt.name, code, errOut, tt.hasOutput, strings.Contains(out, tt.hasOutput))
		}
	}
	help, _, _ := run("bootstrap", "--help")
	if !strings.Contains(help, "0 disables the overload manager") {
		t.Error("bootstrap --help does not say what --max-heap 0 does")
	}
}

// TestOneNamePerSetting: bridge spells its listen address as run does, and
// still takes the old spelling without showing it.
func TestOneNamePerSetting(t *testing.T) {
	tests := []struct {
		cmd        func() *cobra.Command
		used, name string
	}{
		{newBridgeCmd, "--address", "bridge-address"},
		{newBridgeCmd, "--bridge-address", "bridge-address"},
		{newRunCmd, "--bridge-address", "bridge-address"},
	}
	for _, tt := range tests {
		c := tt.cmd()
		if err := c.ParseFlags([]string{tt.used, "127.0.0.1:9"}); err != nil {
			t.Errorf("%s %s: %v", c.Name(), tt.used, err)
			continue
		}
		if got := c.Flags().Lookup(tt.name).Value.String(); got != "127.0.0.1:9" {
			t.Errorf("%s %s set %s to %q", c.Name(), tt.used, tt.name, got)
		}
	}
	// Every listen-address flag has one spelling across commands.
	for _, name := range []string{"bridge", "run", "controlplane"} {
		help, _, _ := run(name, "--help")
		if strings.Contains(help, "--address ") {
			t.Errorf("%s --help still shows --address", name)
		}
	}
}

func TestHelpShowsResolvedDefaults(t *testing.T) {
	tests := []struct{ cmd, want string }{
		{"bridge", "listen address (default: bridge.address of the mapping, 127.0.0.1:8081 unless set)"},
		{"run", "(default: bridge.address of the mapping, 127.0.0.1:8081 unless set)"},
		{"run", "(default: xds.address of the mapping, 127.0.0.1:18000 unless set)"},
		{"controlplane", "(default: xds.address of the mapping, 127.0.0.1:18000 unless set)"},
		{"controlplane", "(default: xds.admin_address of the mapping, 127.0.0.1:19000 unless set)"},
	}
	for _, tt := range tests {
		help, _, err := run(tt.cmd, "--help")
		if err != nil || !strings.Contains(help, tt.want) {
			t.Errorf("%s --help lacks %q:\n%s", tt.cmd, tt.want, help)
		}
	}
}

// TestUnknownEnvWarns: a misspelt PROTOGATE_ variable is one WARN line
// with a suggestion, from the commands that load a mapping only.
func TestUnknownEnvWarns(t *testing.T) {
	t.Setenv("PROTOGATE_BRIDGE_ADRESS", "127.0.0.1:1")
	const line = "environment variable PROTOGATE_BRIDGE_ADRESS names no setting and is ignored; did you mean PROTOGATE_BRIDGE_ADDRESS?"
	tests := []struct {
		args []string
		warn int
	}{
		{[]string{"validate", "-c", "../../examples/mappings/dubbo.yaml"}, 1},
		{[]string{"translate", "-c", "../../examples/mappings/dubbo.yaml"}, 1},
		{[]string{"validate", "-c", "../../test/testdata/invalid/many-errors.yaml"}, 1},
		{[]string{"bootstrap", "--node-id", "e", "--node-group", "g", "--xds", "127.0.0.1:18000"}, 0},
		{[]string{"version"}, 0},
	}
	for _, tt := range tests {
		_, errOut, _ := runCLI(tt.args...)
		if got := strings.Count(errOut, "level=WARN"); got != tt.warn || (tt.warn > 0 && !strings.Contains(errOut, line)) {
			t.Errorf("%v: %d warnings, want %d:\n%s", tt.args, got, tt.warn, errOut)
		}
	}
}

func TestShownPath(t *testing.T) {
	tests := []struct{ exe, wd, want string }{
		{"/src/protogate/bin/protogate", "/src/protogate", "bin/protogate"},
		{"/src/protogate/protogate", "/src/protogate", "./protogate"},
		{"/usr/local/bin/protogate", "/src/protogate", "/usr/local/bin/protogate"},
		{"/src/protogate-other/bin/protogate", "/src/protogate", "/src/protogate-other/bin/protogate"},
	}
	for _, tt := range tests {
		if got := shownPath(tt.exe, tt.wd); got != tt.want {
			t.Errorf("shownPath(%q, %q) = %q, want %q", tt.exe, tt.wd, got, tt.want)
		}
	}
	for in, want := range map[string]string{"bin/protogate": "bin/protogate", "/tmp/my dir/protogate": `'/tmp/my dir/protogate'`, "it's": `'it'\''s'`} {
		if got := shellWord(in); got != want {
			t.Errorf("shellWord(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBannerEnvoyLine: the start banner names this binary by a path that
// runs, and Envoy as something to run where it is installed.
func TestBannerEnvoyLine(t *testing.T) {
	cfg, err := config.Load("../../examples/quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c := &cobra.Command{}
	c.SetOut(&out)
	printRoutes(c, cfg, "127.0.0.1:8080", "127.0.0.1:18000", "127.0.0.1:19000")
	exe, _ := os.Executable()
	want := "\nEnvoy, where it is installed: " + shellWord(exe) + " bootstrap --node-id envoy-1 --node-group default --xds 127.0.0.1:18000 > envoy.yaml && envoy -c envoy.yaml\n"
	if !strings.Contains(out.String(), want) {
		t.Fatalf("banner:\n%s\nlacks %q", out.String(), want)
	}
}

// TestValidateMeansTranslateAccepts: validate refuses what translate (and
// so controlplane, bridge and run) would refuse, with the field path, and
// the two agree on every shipped and broken mapping.
func TestValidateMeansTranslateAccepts(t *testing.T) {
	dir := t.TempDir()
	envoyOnly := filepath.Join(dir, "envoy-refuses.yaml")
	// The mapping's own checks take a 16 KiB+1 header value; Envoy's rules
	// do not, and only the translation sees them.
	mapping := `
listeners:
  - name: public
    address: 127.0.0.1:10000
    filters: { header_mutation: { request_add: [ { name: x-a, value: "` + strings.Repeat("a", 16385) + `" } ] } }
    routes:
      - name: web
        match: { prefix: / }
        http: { upstream: web }
upstreams:
  http: [ { name: web, endpoints: [ "127.0.0.1:9000" ] } ]
`
	if err := os.WriteFile(envoyOnly, []byte(mapping), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := run("validate", "-c", envoyOnly)
	if err == nil || !strings.Contains(errOut, envoyOnly+": listeners[0].filters.header_mutation: envoy.filters.http.header_mutation: Envoy would reject this config") {
		t.Fatalf("validate accepted what Envoy refuses: err=%v\n%s", err, errOut)
	}
	files, _ := filepath.Glob("../../test/testdata/invalid/*.yaml")
	examples, _ := filepath.Glob("../../examples/mappings/*.yaml")
	files = append(append(files, examples...), "../../examples/quickstart.yaml", envoyOnly)
	for _, f := range files {
		_, _, verr := run("validate", "-c", f)
		_, _, terr := run("translate", "-c", f)
		if (verr == nil) != (terr == nil) {
			t.Errorf("%s: validate err=%v, translate err=%v", f, verr, terr)
		}
	}
}
