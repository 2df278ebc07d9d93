package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimal = `
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: ping
        match: { path: /ping }
        nats: { upstream: events, subject: health.ping, mode: request }
upstreams:
  nats: [ { name: events, urls: [ "nats://127.0.0.1:4222" ] } ]
`

func mustProblems(t *testing.T, err error) Problems {
	t.Helper()
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("want Problems, got %v", err)
	}
	return probs
}

func TestDefaultsAndResolve(t *testing.T) {
	cfg, err := LoadBytes("m.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Listeners[0].Routes[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"listener protocol", cfg.Listeners[0].Protocol, ProtocolHTTP},
		{"nats timeout", r.NATS.Timeout.Std(), 2 * time.Second},
		{"idempotency header", r.NATS.IdempotencyHeader, "Idempotency-Key"},
		{"route body limit from bridge", r.BodyLimit, Size(1 << 20)},
		{"bridge address", cfg.Bridge.Address, "127.0.0.1:8081"},
		{"bridge endpoints from address", strings.Join(cfg.Bridge.Endpoints, ","), "127.0.0.1:8081"},
		{"bridge health path", cfg.Bridge.HealthCheck.Path, "/healthz"},
		{"xds address", cfg.XDS.Address, "127.0.0.1:18000"},
		{"default group", cfg.XDS.Groups[0].Name + ":" + strings.Join(cfg.XDS.Groups[0].Listeners, ","), "default:public"},
		{"nats reconnect wait", cfg.Upstreams.NATS[0].ReconnectWait.Std(), 2 * time.Second},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestDubboTimeoutFallsBackToUpstream(t *testing.T) {
	cfg, err := Load("../examples/mappings/dubbo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes := cfg.Listeners[0].Routes
	if got := routes[0].Dubbo.Timeout.Std(); got != 2*time.Second {
		t.Errorf("explicit timeout = %v, want 2s", got)
	}
	if got := routes[1].Dubbo.Timeout.Std(); got != 3*time.Second {
		t.Errorf("inherited timeout = %v, want the upstream's 3s", got)
	}
}

// TestEmptyBlocksSurvive guards against viper's AllSettings, which drops
// empty maps: "gzip: {}" must enable gzip with its defaults.
func TestEmptyBlocksSurvive(t *testing.T) {
	body := strings.Replace(minimal, "    routes:", "    filters: { gzip: {}, cors: { allow_origins: [\"*\"] } }\n    routes:", 1)
	cfg, err := LoadBytes("m.yaml", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Listeners[0].Filters.Gzip
	if g == nil || g.MinContentLength != 1<<10 || g.Level != "default" {
		t.Fatalf("gzip: {} was lost or not defaulted: %+v", g)
	}
	_, err = LoadBytes("m.yaml", []byte(strings.Replace(body, "gzip: {}", "gzip: ", 1)))
	if err == nil || !strings.Contains(err.Error(), "listeners[0].filters.gzip: is empty: write {}") {
		t.Fatalf("a null filter block must be reported, got %v", err)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	t.Setenv("PROTOGATE_BRIDGE_ADDRESS", "127.0.0.1:9999")
	t.Setenv("PROTOGATE_BRIDGE_ENDPOINTS", "bridge-a:8081, bridge-b:8081")
	t.Setenv("PROTOGATE_BRIDGE_HTTP2", "true")
	t.Setenv("PROTOGATE_XDS_ADMIN_ADDRESS", "127.0.0.1:19001")
	t.Setenv("PROTOGATE_XDS_MAX_STREAMS_PER_PEER", "4")
	cfg, err := LoadBytes("m.yaml", []byte(minimal+"bridge: { address: 127.0.0.1:8081 }\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bridge.Address != "127.0.0.1:9999" {
		t.Errorf("bridge.address = %s: the environment must win over the file", cfg.Bridge.Address)
	}
	if got := strings.Join(cfg.Bridge.Endpoints, "|"); got != "bridge-a:8081|bridge-b:8081" {
		t.Errorf("bridge.endpoints = %s", got)
	}
	if !cfg.Bridge.HTTP2 || cfg.XDS.AdminAddress != "127.0.0.1:19001" || cfg.XDS.MaxStreamsPerPeer != 4 {
		t.Errorf("overrides not applied: %+v %+v", cfg.Bridge, cfg.XDS)
	}
}

func TestEnvironmentOverrideProblemNamesTheVariable(t *testing.T) {
	t.Setenv("PROTOGATE_XDS_KEEPALIVE_TIME", "soon")
	_, err := LoadBytes("m.yaml", []byte(minimal))
	probs := mustProblems(t, err)
	want := `env PROTOGATE_XDS_KEEPALIVE_TIME: xds.keepalive_time: "soon" is not a duration (like "250ms", "2s", "1m")`
	if len(probs) != 1 || probs[0].String() != want {
		t.Fatalf("got %v, want %q", probs, want)
	}
}

func TestEnvironmentNeverSetsRoutes(t *testing.T) {
	for _, o := range EnvOverrides() {
		if !strings.HasPrefix(o[1], "bridge.") && !strings.HasPrefix(o[1], "xds.") {
			t.Errorf("%s overrides %s, which is not a server setting", o[0], o[1])
		}
	}
	if len(EnvOverrides()) < 10 {
		t.Errorf("only %d overrides", len(EnvOverrides()))
	}
}

func TestDirectoryMerge(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("10-a.yaml", minimal+"bridge: { max_body_size: 2MiB, address: 127.0.0.1:8081 }\n")
	write("20-b.json", `{"listeners": [{"name": "second", "address": "127.0.0.1:10001",
		"routes": [{"name": "pong", "match": {"path": "/pong"}, "nats": {"upstream": "events", "subject": "health.pong", "mode": "core"}}]}],
		"bridge": {"max_body_size": "4MiB"}}`)
	write("30-c.toml", "[bridge]\naddress = \"127.0.0.1:8082\"\n")
	write(".hidden.yaml", "not: [valid")
	write("notes.txt", "ignored")
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Listeners) != 2 || cfg.Listeners[1].Name != "second" {
		t.Fatalf("listeners were not concatenated in name order: %+v", cfg.Listeners)
	}
	if cfg.Bridge.MaxBodySize != 4<<20 || cfg.Bridge.Address != "127.0.0.1:8082" {
		t.Errorf("later files must override settings: %+v", cfg.Bridge)
	}
	if cfg.Listeners[0].Routes[0].BodyLimit != 4<<20 {
		t.Errorf("route body limit = %v, want the merged bridge default", cfg.Listeners[0].Routes[0].BodyLimit)
	}

	// A problem is reported against the file the entry came from.
	write("40-bad.yaml", "listeners:\n  - name: third\n    address: 127.0.0.1:10002\n    routes:\n      - name: x\n        match: { path: /x }\n        nats: { upstream: nope, subject: a.b }\n")
	_, err = Load(dir)
	probs := mustProblems(t, err)
	want := filepath.Join(dir, "40-bad.yaml") + `: listeners[2].routes[0].nats.upstream: no upstream is named "nope"`
	if len(probs) != 1 || probs[0].String() != want {
		t.Fatalf("got %v, want %s", probs, want)
	}
}

func TestEmptyDirectoryAndMissingFile(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir)
	if p := mustProblems(t, err); !strings.Contains(p[0].Msg, "no mapping files") {
		t.Errorf("got %v", p)
	}
	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if p := mustProblems(t, err); !strings.Contains(p[0].Msg, "no such file") {
		t.Errorf("got %v", p)
	}
}

func TestSyntaxErrorLines(t *testing.T) {
	tests := []struct {
		name, body string
		line       int
	}{
		{"m.yaml", "a: 1\nb: 2\nc: d: e\n", 3},
		{"m.yaml", "listeners:\n  - name: x\n    address: y\n   routes: []\n", 4},
		{"m.yaml", "a: 1\nb: [1, 2\nc: 3\n", 2},
		{"m.yaml", "a: 1\n\tb: 2\n", 2},
		{"m.yaml", "a: 1\nb:\n  - x\n - y\n", 4},
		{"m.yaml", "- just\n- a list\n", 1},
		{"m.json", "{\n\"a\": 1,\n\"b\": }\n", 3},
		{"m.json", "[1, 2]", 1},
		{"m.toml", "a = 1\nb = \n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			_, err := LoadBytes(tt.name, []byte(tt.body))
			p := mustProblems(t, err)
			if len(p) != 1 || p[0].Line != tt.line || !strings.HasPrefix(p[0].Msg, "syntax error: ") {
				t.Fatalf("got %q (line %d), want a syntax error on line %d", p, p[0].Line, tt.line)
			}
		})
	}
}

func TestUnknownKeysEverywhere(t *testing.T) {
	body := strings.Replace(minimal, "mode: request", "mode: request, subjct: x", 1) + "bridgee: { address: x }\nxds: { adress: x }\n"
	_, err := LoadBytes("m.yaml", []byte(body))
	got := mustProblems(t, err).Error()
	for _, want := range []string{
		`m.yaml: bridgee: unknown field (did you mean "bridge"?)`,
		`m.yaml: listeners[0].routes[0].nats.subjct: unknown field (did you mean "subject"?)`,
		`m.yaml: xds.adress: unknown field (did you mean "address"?)`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

func TestDecodeValues(t *testing.T) {
	tests := []struct {
		field, value, want string
	}{
		{"max_body_size", `"512KiB"`, ""},
		{"max_body_size", `2048`, ""},
		{"max_body_size", `"1.5MiB"`, `bridge.max_body_size: "1.5MiB" is not a size`},
		{"max_body_size", `-1`, `bridge.max_body_size: must be a size like 1024`},
		{"max_body_size", `"65MiB"`, `bridge.max_body_size: 65MiB is above the maximum 64MiB`},
		{"read_timeout", `"1m30s"`, ""},
		{"read_timeout", `"30"`, `bridge.read_timeout: "30" has no unit: write it like "30s" or "30ms"`},
		{"read_timeout", `[1]`, `bridge.read_timeout: must be a duration with a unit`},
		{"max_json_depth", `3.5`, `bridge.max_json_depth: must be a whole number, not the number 3.5`},
		{"max_json_depth", `0`, `bridge.max_json_depth: 0 is below the minimum 1`},
		{"http2", `"yes"`, `bridge.http2: must be true or false, not "yes"`},
		{"route_header", `7`, `bridge.route_header: must be a string, not the number 7 (quote it: "7")`},
		{"endpoints", `{a: 1}`, `bridge.endpoints: must be a list, not a mapping`},
		{"health_check", `[]`, `bridge.health_check: must be a mapping of keys to values, not a list`},
	}
	for _, tt := range tests {
		t.Run(tt.field+"="+tt.value, func(t *testing.T) {
			_, err := LoadBytes("m.yaml", []byte(minimal+"bridge: { "+tt.field+": "+tt.value+" }\n"))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseSizeAndDuration(t *testing.T) {
	sizes := map[string]Size{"0": 0, "512": 512, "64KiB": 64 << 10, "1MiB": 1 << 20, "1MB": 1e6, "2 GiB": 2 << 30, "10B": 10}
	for in, want := range sizes {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1TB", "KiB", "9223372036854775807GiB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
	for in, want := range map[string]string{"250ms": "250ms", "90s": "1m30s", "10m": "10m", "2h": "2h", "0": "0s"} {
		d, err := ParseDuration(in)
		if err != nil || d.String() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %s", in, d, err, want)
		}
	}
}

func TestRestartNeeded(t *testing.T) {
	a, err := LoadBytes("m.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := LoadBytes("m.yaml", []byte(minimal+"bridge: { address: 127.0.0.1:9000, max_body_size: 2MiB }\nxds: { keepalive_time: 1m, limits: { max_streams: 10 } }\n"))
	if got := strings.Join(RestartNeeded(a, b), ","); got != "bridge.address,xds.keepalive_time,xds.limits" {
		t.Fatalf("RestartNeeded = %s (max_body_size is applied by a reload)", got)
	}
	if got := RestartNeeded(a, a); len(got) != 0 {
		t.Fatalf("same mapping: %v", got)
	}
}
