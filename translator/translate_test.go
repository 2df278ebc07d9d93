package translator

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/protogate/protogate/config"
)

var update = flag.Bool("update", false, "rewrite the golden files under test/testdata/translate")

const goldenDir = "../test/testdata/translate"

func load(t testing.TB, path string) *config.Config {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cfg
}

func loadString(t testing.TB, body string) *config.Config {
	t.Helper()
	cfg, err := config.LoadBytes("m.yaml", []byte(body))
	if err != nil {
		t.Fatalf("%v", err)
	}
	return cfg
}

// TestGolden translates every test/testdata/translate/NAME.in.yaml and
// compares it with NAME.out.yaml. Regenerate with:
//
//	go test ./translator -run TestGolden -update
func TestGolden(t *testing.T) {
	inputs, _ := filepath.Glob(filepath.Join(goldenDir, "*.in.yaml"))
	if len(inputs) < 15 {
		t.Fatalf("found only %d golden inputs", len(inputs))
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			res, err := Translate(load(t, in))
			if err != nil {
				t.Fatalf("translate: %v", err)
			}
			got, err := Render(res, nil, nil, "yaml")
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join(goldenDir, name+".out.yaml"), got)
			tables, err := RenderTables(res, "yaml")
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join(goldenDir, name+".table.yaml"), tables)
		})
	}
}

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the translation; review the change and run with -update\n%s", file, firstDiff(string(want), string(got)))
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) && i < len(g); i++ {
		if w[i] != g[i] {
			return fmt.Sprintf("line %d:\n want: %s\n  got: %s", i+1, w[i], g[i])
		}
	}
	return "lengths differ"
}

// TestDeterministic translates the richest input 100 times, loading it
// afresh each time: the rendered bytes never change, so versions can be
// content hashes.
func TestDeterministic(t *testing.T) {
	in := filepath.Join(goldenDir, "everything.in.yaml")
	var first []byte
	for i := 0; i < 100; i++ {
		res, err := Translate(load(t, in))
		if err != nil {
			t.Fatal(err)
		}
		var wire bytes.Buffer
		for _, g := range res.Groups {
			byType := g.ByType()
			for _, typ := range []string{resource.ListenerType, resource.RouteType, resource.ClusterType, resource.EndpointType} {
				for _, r := range byType[typ] {
					b, err := deterministic.Marshal(r)
					if err != nil {
						t.Fatal(err)
					}
					wire.Write(b)
				}
			}
		}
		out, err := Render(res, nil, nil, "json")
		if err != nil {
			t.Fatal(err)
		}
		cur := append(out, wire.Bytes()...)
		if i == 0 {
			first = cur
			continue
		}
		if !bytes.Equal(first, cur) {
			t.Fatalf("run %d produced different output", i)
		}
	}
}

// TestRouteHeaderCannotBeInjected checks, in the resources themselves, that
// a client's copy of the route header never reaches an upstream: the route
// configuration removes it from every request, and each bridge route sets it
// with OVERWRITE to its own name.
func TestRouteHeaderCannotBeInjected(t *testing.T) {
	res, err := Translate(load(t, filepath.Join(goldenDir, "listener-http.in.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	g := res.Group(config.DefaultGroup)
	rc := g.Routes[0]
	if len(rc.RequestHeadersToRemove) != 1 || rc.RequestHeadersToRemove[0] != "x-protogate-route" {
		t.Fatalf("route config removes %v, want [x-protogate-route]", rc.RequestHeadersToRemove)
	}
	bridged := 0
	for _, r := range rc.VirtualHosts[0].Routes {
		cluster := r.GetRoute().GetCluster()
		isBridge := cluster == BridgeDubboCluster || cluster == BridgeNATSCluster
		var set []*core.HeaderValueOption
		for _, h := range r.RequestHeadersToAdd {
			if h.Header.Key == "x-protogate-route" {
				set = append(set, h)
			}
		}
		switch {
		case isBridge && (len(set) != 1 || set[0].Header.Value != r.Name || set[0].AppendAction != core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD):
			t.Errorf("bridge route %s sets the route header as %v", r.Name, set)
		case !isBridge && len(set) > 0:
			t.Errorf("route %s to %s must not carry the route header", r.Name, cluster)
		}
		if isBridge {
			bridged++
		}
		for _, h := range r.Match.Headers {
			if h.Name == "x-protogate-route" {
				t.Errorf("route %s matches on the route header", r.Name)
			}
		}
	}
	if bridged != 2 {
		t.Fatalf("expected 2 bridge routes, found %d", bridged)
	}
}

// TestEnvoyRulesAreChecked feeds settings the mapping's own validation lets
// through but Envoy's rules refuse: the translator must find them inside the
// packed typed configs and report them at the mapping's field path.
func TestEnvoyRulesAreChecked(t *testing.T) {
	long := strings.Repeat("a", 16385) // the mapping takes it; Envoy's header values stop at 16384 bytes
	tests := []struct {
		name, filters, routeFilters, upstreamFilters, wantPath string
	}{
		{name: "listener filter: header value over Envoy's 16 KiB",
			filters:  `header_mutation: { request_add: [ { name: x-a, value: "` + long + `" } ] }`,
			wantPath: "listeners[0].filters.header_mutation"},
		{name: "per-route config: header value over Envoy's 16 KiB",
			filters:      `header_mutation: {}`,
			routeFilters: `header_mutation: { response_add: [ { name: x-b, value: "` + long + `" } ] }`,
			wantPath:     "listeners[0].routes[0].filters.header_mutation"},
		{name: "cluster upstream filter: header value over Envoy's 16 KiB",
			upstreamFilters: `header_mutation: { request_add: [ { name: x-c, value: "` + long + `" } ] }`,
			wantPath:        "upstreams.http[0].filters.header_mutation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := loadString(t, `
listeners:
  - name: public
    address: 127.0.0.1:10000
    filters: { `+tt.filters+` }
    routes:
      - name: web
        match: { prefix: / }
        http: { upstream: web }
        filters: { `+tt.routeFilters+` }
upstreams:
  http: [ { name: web, endpoints: [ "127.0.0.1:9000" ], filters: { `+tt.upstreamFilters+` } } ]
`)
			res, err := Translate(cfg)
			if res != nil {
				t.Fatal("a failed translation returned resources")
			}
			var probs config.Problems
			if !errors.As(err, &probs) {
				t.Fatalf("want Problems, got %v", err)
			}
			found := false
			for _, p := range probs {
				if p.Path == tt.wantPath && strings.Contains(p.Msg, "envoy.filters.http.header_mutation: Envoy would reject this config") &&
					strings.Contains(p.Msg, `value length must be at most 16384 bytes`) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no Envoy-rule problem at %s in:\n%v", tt.wantPath, probs)
			}
		})
	}
}

// TestEveryProblemAtOnce: two bad settings in two places both come back.
func TestEveryProblemAtOnce(t *testing.T) {
	long := strings.Repeat("a", 16385)
	cfg := loadString(t, `
listeners:
  - name: public
    address: 127.0.0.1:10000
    filters: { header_mutation: { request_add: [ { name: x-a, value: "`+long+`" } ] } }
    routes:
      - name: web
        match: { prefix: / }
        http: { upstream: web }
        filters: { header_mutation: { response_add: [ { name: x-b, value: "`+long+`" } ] } }
upstreams:
  http: [ { name: web, endpoints: [ "127.0.0.1:9000" ] } ]
`)
	_, err := Translate(cfg)
	var probs config.Problems
	if !errors.As(err, &probs) || len(probs) != 2 {
		t.Fatalf("want 2 problems, got %v", err)
	}
	if probs[0].Path != "listeners[0].filters.header_mutation" || probs[1].Path != "listeners[0].routes[0].filters.header_mutation" {
		t.Fatalf("paths: %v", probs)
	}
}

// TestBrokenReferencesNeverTranslate: the model the translator gets has
// been validated, so it checks the resources it built hang together. A
// dangling reference made by hand is caught by the consistency check.
func TestBrokenReferencesNeverTranslate(t *testing.T) {
	res, err := Translate(load(t, filepath.Join(goldenDir, "listener-http.in.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	g := res.Group(config.DefaultGroup)
	g.Routes[0].VirtualHosts[0].Routes[0].GetRoute().ClusterSpecifier = &route.RouteAction_Cluster{Cluster: "nowhere"}
	if err := g.check(); err == nil || !strings.Contains(err.Error(), `sends to cluster "nowhere"`) {
		t.Fatalf("dangling route cluster not caught: %v", err)
	}
	res, _ = Translate(load(t, filepath.Join(goldenDir, "listener-http.in.yaml")))
	g = res.Group(config.DefaultGroup)
	g.Endpoints = g.Endpoints[1:] // an EDS cluster loses its assignment
	if err := g.check(); err == nil || !strings.Contains(err.Error(), "inconsistent") {
		t.Fatalf("missing assignment not caught: %v", err)
	}
	res, _ = Translate(load(t, filepath.Join(goldenDir, "listener-http.in.yaml")))
	g = res.Group(config.DefaultGroup)
	g.Routes = nil // the listener's RDS name has no route configuration
	if err := g.check(); err == nil {
		t.Fatal("missing route configuration not caught")
	}
	// And the loader stops a mapping whose references do not resolve.
	if _, err := config.Load("../test/testdata/invalid/references.yaml"); err == nil {
		t.Fatal("broken references loaded")
	}
}

// TestGroupsGetOnlyTheirResources: a group gets its listeners and the
// clusters they reach, nothing of another group's.
func TestGroupsGetOnlyTheirResources(t *testing.T) {
	res, err := Translate(load(t, filepath.Join(goldenDir, "everything.in.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	names := func(g *Group) (ls, cs []string) {
		for _, l := range g.Listeners {
			ls = append(ls, l.Name)
		}
		for _, c := range g.Clusters {
			cs = append(cs, c.Name)
		}
		return
	}
	ls, cs := names(res.Group("rpc"))
	if strings.Join(ls, ",") != "dubbo-in" || strings.Join(cs, ",") != "dubbo/users" {
		t.Errorf("rpc group: listeners %v clusters %v", ls, cs)
	}
	ls, cs = names(res.Group("edge"))
	if strings.Join(ls, ",") != "nats-in,public" || strings.Join(cs, ",") != "http/auth,http/legacy,nats/events,protogate/bridge-dubbo,protogate/bridge-nats" {
		t.Errorf("edge group: listeners %v clusters %v", ls, cs)
	}
}

// TestEnvoyValidate runs `envoy --mode validate` on the static bootstrap of
// every golden input when an envoy binary is on PATH.
func TestEnvoyValidate(t *testing.T) {
	envoy, err := exec.LookPath("envoy")
	if err != nil {
		t.Skip("SKIPPED: no envoy binary on PATH, so the bootstraps were not checked by Envoy itself; install Envoy and rerun to run this tier")
	}
	inputs, _ := filepath.Glob(filepath.Join(goldenDir, "*.in.yaml"))
	for _, in := range inputs {
		res, err := Translate(load(t, in))
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range res.Groups {
			b, err := StaticBootstrap(&g, "127.0.0.1", 0)
			if err != nil {
				t.Fatalf("%s/%s: %v", in, g.Name, err)
			}
			js, err := ResourceJSON(b)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "bootstrap.json")
			if err := os.WriteFile(file, stripType(js), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(envoy, "--mode", "validate", "-c", file).CombinedOutput()
			if err != nil {
				t.Errorf("%s group %s: envoy rejects the config:\n%s", in, g.Name, out)
			}
		}
	}
}

// stripType drops the top-level @type ResourceJSON adds; a bootstrap file
// has none.
func stripType(js []byte) []byte {
	i := bytes.IndexByte(js, ',')
	return append([]byte{'{'}, js[i+1:]...)
}
