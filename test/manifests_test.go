package test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/protogate/protogate/config"
)

// protogateBinary builds the CLI once for the tests of this package.
func protogateBinary(t *testing.T) string {
	t.Helper()
	return binary(t, "../cmd/protogate")
}

type doc = map[string]any

// get walks a YAML document by keys and list indexes.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(doc)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func loadManifests(t *testing.T) map[string]doc {
	t.Helper()
	files, _ := filepath.Glob("../examples/kubernetes/*.yaml")
	if len(files) < 6 {
		t.Fatalf("found only %v", files)
	}
	out := map[string]doc{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var d doc
			if err := dec.Decode(&d); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			kind, _ := d["kind"].(string)
			name, _ := get(d, "metadata", "name").(string)
			if d["apiVersion"] == nil || kind == "" || name == "" {
				t.Fatalf("%s: a document without apiVersion, kind or metadata.name", f)
			}
			out[kind+"/"+name] = d
		}
	}
	return out
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// containerPort finds a named port of a workload's first container.
func containerPort(d doc, name string) int {
	ports, _ := get(d, "spec", "template", "spec", "containers", 0, "ports").([]any)
	for _, p := range ports {
		if get(p, "name") == name {
			n, _ := get(p, "containerPort").(int)
			return n
		}
	}
	return 0
}

func probe(d doc, which string) (string, any) {
	c := get(d, "spec", "template", "spec", "containers", 0, which)
	path, _ := get(c, "httpGet", "path").(string)
	return path, get(c, "httpGet", "port")
}

// TestKubernetesManifests checks what the product relies on: the mapping is
// valid and mounted where the commands read it; ports and probes agree with
// the mapping's server settings; Services reach named container ports; the
// Envoy bootstrap is the one protogate prints.
func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	cm := m["ConfigMap/protogate-mapping"]
	text, _ := get(cm, "data", "mapping.yaml").(string)
	cfg, err := config.LoadBytes("mapping.yaml", []byte(text))
	if err != nil {
		t.Fatalf("the mapping in the ConfigMap is invalid:\n%v", err)
	}

	// The control plane reads the mapping; the bridges follow the control
	// plane over ADS and read no file.
	xdsSvcPort, _ := get(m["Service/protogate-xds"], "spec", "ports", 0, "port").(int)
	bridgeArgs, _ := get(m["Deployment/protogate-bridges"], "spec", "template", "spec", "containers", 0, "args").([]any)
	wantArgs := []any{"bridge", "--xds", "protogate-xds:" + strconv.Itoa(xdsSvcPort), "--node-group", cfg.XDS.Groups[0].Name}
	if len(bridgeArgs) < len(wantArgs) || fmt.Sprint(bridgeArgs[:len(wantArgs)]) != fmt.Sprint(wantArgs) {
		t.Errorf("the bridges run %v, want %v...: the control plane's Service and a group of the mapping", bridgeArgs, wantArgs)
	}
	if v := get(m["Deployment/protogate-bridges"], "spec", "template", "spec", "volumes"); v != nil {
		t.Errorf("the bridges mount %v; they read no mapping file", v)
	}
	bridgeAddr := ""
	envs, _ := get(m["Deployment/protogate-bridges"], "spec", "template", "spec", "containers", 0, "env").([]any)
	for _, e := range envs {
		if em, _ := e.(map[string]any); em["name"] == "PROTOGATE_BRIDGE_ADDRESS" {
			bridgeAddr, _ = em["value"].(string)
		}
	}
	for _, w := range []struct {
		name, command, port, portAddr string
	}{
		{"Deployment/protogate-controlplane", "controlplane", "admin", cfg.XDS.AdminAddress},
		{"Deployment/protogate-bridges", "bridge", "http", bridgeAddr},
	} {
		d := m[w.name]
		if d == nil {
			t.Fatalf("%s is missing", w.name)
		}
		if w.command == "controlplane" {
			args, _ := get(d, "spec", "template", "spec", "containers", 0, "args").([]any)
			if len(args) < 3 || args[0] != w.command || args[1] != "-c" || args[2] != "/etc/protogate/mapping.yaml" {
				t.Errorf("%s runs %v, want %s -c /etc/protogate/mapping.yaml", w.name, args, w.command)
			}
			if get(d, "spec", "template", "spec", "containers", 0, "volumeMounts", 0, "mountPath") != "/etc/protogate" ||
				get(d, "spec", "template", "spec", "volumes", 0, "configMap", "name") != "protogate-mapping" {
				t.Errorf("%s does not mount protogate-mapping at /etc/protogate", w.name)
			}
		}
		if got := containerPort(d, w.port); got != port(t, w.portAddr) {
			t.Errorf("%s port %s = %d, the mapping serves on %s", w.name, w.port, got, w.portAddr)
		}
		for probeName, want := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
			if path, p := probe(d, probeName); path != want || p != w.port {
				t.Errorf("%s %s = %s on %v, want %s on %s", w.name, probeName, path, p, want, w.port)
			}
		}
	}
	if got := containerPort(m["Deployment/protogate-controlplane"], "xds"); got != port(t, cfg.XDS.Address) {
		t.Errorf("xds container port %d, the mapping serves ADS on %s", got, cfg.XDS.Address)
	}
	if r, _ := get(m["Deployment/protogate-bridges"], "spec", "replicas").(int); r < 2 {
		t.Errorf("bridges run %d replica(s); they are stateless, run several", r)
	}
	grace, _ := get(m["Deployment/protogate-bridges"], "spec", "template", "spec", "terminationGracePeriodSeconds").(int)
	if float64(grace) <= (cfg.Bridge.DrainWindow + cfg.Bridge.ShutdownTimeout).Std().Seconds() {
		t.Errorf("bridges get %ds to stop, less than bridge.drain_window %s + shutdown_timeout %s", grace, cfg.Bridge.DrainWindow, cfg.Bridge.ShutdownTimeout)
	}
	// Envoy reaches the bridges through their Service, as the mapping says.
	svcPort, _ := get(m["Service/protogate-bridges"], "spec", "ports", 0, "port").(int)
	if len(cfg.Bridge.Endpoints) != 1 || cfg.Bridge.Endpoints[0] != "protogate-bridges:"+strconv.Itoa(svcPort) {
		t.Errorf("bridge.endpoints %v, the Service is protogate-bridges:%d", cfg.Bridge.Endpoints, svcPort)
	}

	// Every Service selects a workload and targets one of its named ports.
	for key, d := range m {
		if !strings.HasPrefix(key, "Service/") {
			continue
		}
		sel, _ := get(d, "spec", "selector").(doc)
		var target doc
		for wkey, w := range m {
			if !strings.HasPrefix(wkey, "Deployment/") && !strings.HasPrefix(wkey, "StatefulSet/") {
				continue
			}
			labels, _ := get(w, "spec", "template", "metadata", "labels").(doc)
			match := len(sel) > 0
			for k, v := range sel {
				if labels[k] != v {
					match = false
				}
			}
			if match {
				target = w
			}
		}
		if target == nil {
			t.Errorf("%s selects no workload", key)
			continue
		}
		ports, _ := get(d, "spec", "ports").([]any)
		for _, p := range ports {
			if name, _ := get(p, "targetPort").(string); containerPort(target, name) == 0 {
				t.Errorf("%s targets port %q, which its workload does not name", key, name)
			}
		}
	}

	// Envoy: the bootstrap is protogate's own, for a group the mapping has,
	// and the listener port is the one the Service and container expose.
	envoy := m["Deployment/envoy"]
	listenerPort := port(t, cfg.Listeners[0].Address)
	if containerPort(envoy, "http") != listenerPort {
		t.Errorf("Envoy's container port %d, the listener is on %d", containerPort(envoy, "http"), listenerPort)
	}
	if get(m["Service/envoy"], "spec", "type") != "LoadBalancer" {
		t.Error("the Envoy Service is not a LoadBalancer")
	}
	want, err := exec.Command(protogateBinary(t), "bootstrap", "--node-id", "envoy", "--node-group", "edge", "--xds", "protogate-xds:18000").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := get(m["ConfigMap/envoy-bootstrap"], "data", "envoy.yaml"); got != string(want) {
		t.Errorf("the envoy-bootstrap ConfigMap differs from `protogate bootstrap --node-id envoy --node-group edge --xds protogate-xds:18000`")
	}
	if cfg.XDS.Groups[0].Name != "edge" || get(m["Service/protogate-xds"], "spec", "ports", 0, "port") != port(t, cfg.XDS.Address) {
		t.Error("the bootstrap's group or control-plane port does not match the mapping")
	}
}

// TestEnvoyExampleBootstrap keeps examples/envoy/envoy.yaml equal to what
// its README says produces it.
func TestEnvoyExampleBootstrap(t *testing.T) {
	want, err := exec.Command(protogateBinary(t), "bootstrap", "--node-id", "envoy-1", "--node-group", "default", "--xds", "127.0.0.1:18000").Output()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../examples/envoy/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("examples/envoy/envoy.yaml is not what protogate bootstrap prints; regenerate it as its README says")
	}
}
