package test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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
	cfg := loadWithMountedFiles(t, m, text)

	// The control plane reads the mapping; the bridges follow the control
	// plane over ADS and read no file.
	xdsSvcPort, _ := get(m["Service/protogate-xds"], "spec", "ports", 0, "port").(int)
	bridgeArgs, _ := get(m["Deployment/protogate-bridges"], "spec", "template", "spec", "containers", 0, "args").([]any)
	wantArgs := []any{"bridge", "--xds", "protogate-xds:" + strconv.Itoa(xdsSvcPort), "--node-group", cfg.XDS.Groups[0].Name}
	if len(bridgeArgs) < len(wantArgs) || fmt.Sprint(bridgeArgs[:len(wantArgs)]) != fmt.Sprint(wantArgs) {
		t.Errorf("the bridges run %v, want %v...: the control plane's Service and a group of the mapping", bridgeArgs, wantArgs)
	}
	vols, _ := get(m["Deployment/protogate-bridges"], "spec", "template", "spec", "volumes").([]any)
	for _, v := range vols {
		if get(v, "secret") == nil {
			t.Errorf("the bridges mount %v; they read no mapping file, only their certificate", v)
		}
	}
	checkBridgeTLS(t, m, bridgeArgs)
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
		scheme := "HTTP"
		if w.command == "controlplane" && cfg.XDS.Security.Admin.TLS != nil {
			scheme = "HTTPS" // the kubelet does not verify a probe's certificate
		}
		for probeName, want := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
			path, p := probe(d, probeName)
			got, _ := get(d, "spec", "template", "spec", "containers", 0, probeName, "httpGet", "scheme").(string)
			if got == "" {
				got = "HTTP"
			}
			if path != want || p != w.port || got != scheme {
				t.Errorf("%s %s = %s %s on %v, want %s %s on %s", w.name, probeName, got, path, p, scheme, want, w.port)
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
		if typ, _ := get(d, "spec", "type").(string); key != "Service/envoy" && typ != "" && typ != "ClusterIP" {
			t.Errorf("%s is of type %s; only Envoy is exposed outside the cluster", key, typ)
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
	for _, e := range envoyWorkloads(cfg) {
		checkEnvoyBootstrap(t, m, e)
	}
	if cfg.XDS.Groups[0].Name != "edge" || get(m["Service/protogate-xds"], "spec", "ports", 0, "port") != port(t, cfg.XDS.Address) {
		t.Error("the bootstrap's group or control-plane port does not match the mapping")
	}
	checkClientRules(t, m, cfg)
	checkCanaries(t, m, cfg)
	checkWhoDialsWhom(t, m, bridgeArgs)
}

// secretMount finds the Secret a workload mounts at dir, and the mount.
func secretMount(d doc, dir string) string {
	c := get(d, "spec", "template", "spec", "containers", 0)
	mounts, _ := get(c, "volumeMounts").([]any)
	vols, _ := get(d, "spec", "template", "spec", "volumes").([]any)
	for _, mt := range mounts {
		if get(mt, "mountPath") != dir {
			continue
		}
		for _, v := range vols {
			if get(v, "name") == get(mt, "name") {
				name, _ := get(v, "secret", "secretName").(string)
				return name
			}
		}
	}
	return ""
}

// certificateOf is the cert-manager Certificate that writes a Secret.
func certificateOf(m map[string]doc, secret string) doc {
	for key, d := range m {
		if strings.HasPrefix(key, "Certificate/") && get(d, "spec", "secretName") == secret {
			return d
		}
	}
	return nil
}

// certFiles are the keys of a cert-manager Secret.
var certFiles = map[string]bool{"tls.crt": true, "tls.key": true, "ca.crt": true}

// loadWithMountedFiles loads the mapping with every file of xds.security
// in place: each must be in a directory where the control plane mounts a
// Secret, a cert-manager Certificate's (with its keys) or the admin token
// the README tells how to create. Test files stand in for them.
func loadWithMountedFiles(t *testing.T, m map[string]doc, text string) *config.Config {
	t.Helper()
	var raw doc
	if err := yaml.Unmarshal([]byte(text), &raw); err != nil {
		t.Fatal(err)
	}
	sec := get(raw, "xds", "security")
	files := map[string]string{}
	for _, p := range [][]any{{"tls", "cert_file"}, {"tls", "key_file"}, {"tls", "client_ca_file"},
		{"admin", "tls", "cert_file"}, {"admin", "tls", "key_file"}, {"admin", "tls", "client_ca_file"}, {"admin", "token_file"}} {
		if f, _ := get(sec, p...).(string); f != "" {
			files[f] = fmt.Sprint(p...)
		}
	}
	if files["/etc/protogate-tls/tls.crt"] == "" || len(files) < 4 {
		t.Fatalf("the mapping's xds.security names %v; the example runs xDS with mTLS and an admin token", files)
	}
	cp := m["Deployment/protogate-controlplane"]
	readme, _ := os.ReadFile("../examples/kubernetes/README.md")
	stand := map[string]string{} // mounted directory → its stand-in
	for f := range files {
		dir, base := filepath.Dir(f), filepath.Base(f)
		secret := secretMount(cp, dir)
		switch {
		case secret == "":
			t.Errorf("xds.security names %s, but the control plane mounts no Secret at %s", f, dir)
			continue
		case certificateOf(m, secret) != nil:
			if !certFiles[base] {
				t.Errorf("%s: a cert-manager Secret holds tls.crt, tls.key and ca.crt, not %s", f, base)
			}
		case !bytes.Contains(readme, []byte("kubectl create secret generic "+secret+" --from-literal="+base+"=")):
			t.Errorf("%s is in Secret %s, which no Certificate writes and the README does not tell how to create", f, secret)
		}
		if stand[dir] == "" {
			stand[dir] = standInFiles(t, certificateOf(m, secret))
		}
	}
	for dir, tmp := range stand {
		text = strings.ReplaceAll(text, dir+"/", tmp+"/")
	}
	cfg, err := config.LoadBytes("mapping.yaml", []byte(text))
	if err != nil {
		t.Fatalf("the mapping in the ConfigMap is invalid:\n%v", err)
	}
	return cfg
}

// standInFiles makes a directory with what the Secret holds: a CA, a
// certificate for the Certificate's names with its key, and a token.
func standInFiles(t *testing.T, cert doc) string {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stand-in CA"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	names, _ := get(cert, "spec", "dnsNames").([]any)
	for _, n := range names {
		tmpl.DNSNames = append(tmpl.DNSNames, fmt.Sprint(n))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	for name, body := range map[string][]byte{
		"ca.crt":  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		"token":   []byte("0123456789abcdef0123456789abcdef\n"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// tlsArgs reads --tls-cert, --tls-key and --tls-ca from a command line.
func tlsArgs(args []any) map[string]string {
	out := map[string]string{}
	for i := 0; i+1 < len(args); i++ {
		if a := fmt.Sprint(args[i]); strings.HasPrefix(a, "--tls-") {
			out[a] = fmt.Sprint(args[i+1])
		}
	}
	return out
}

// checkBridgeTLS: the bridges dial the control plane with the files of
// their Certificate's Secret, by the name the server certificate holds.
func checkBridgeTLS(t *testing.T, m map[string]doc, args []any) {
	t.Helper()
	flags := tlsArgs(args)
	dir := filepath.Dir(flags["--tls-cert"])
	want := map[string]string{"--tls-cert": dir + "/tls.crt", "--tls-key": dir + "/tls.key", "--tls-ca": dir + "/ca.crt"}
	for f, v := range want {
		if flags[f] != v {
			t.Errorf("the bridges run with %s %q, want %q", f, flags[f], v)
		}
	}
	secret := secretMount(m["Deployment/protogate-bridges"], dir)
	if secret == "" || certificateOf(m, secret) == nil {
		t.Errorf("the bridges mount no Certificate's Secret at %s", dir)
	}
	names, _ := get(certificateOf(m, secretMount(m["Deployment/protogate-controlplane"], "/etc/protogate-tls")), "spec", "dnsNames").([]any)
	if len(names) == 0 || fmt.Sprint(names[0]) != "protogate-xds" {
		t.Errorf("the control plane's certificate names %v; its clients dial protogate-xds", names)
	}
}

// envoyWorkload is an Envoy Deployment, the ConfigMap of its bootstrap,
// the control plane's Service it dials and the node metadata it sends.
type envoyWorkload struct {
	deployment, configMap, xdsService string
	metadata                          []string // --node-metadata flags
}

// envoyWorkloads: the main Envoys on protogate-xds, and the canaries on
// the canary control plane, with the mapping's canary label set.
func envoyWorkloads(cfg *config.Config) []envoyWorkload {
	label := ""
	if cfg.XDS.Rollout != nil {
		label = cfg.XDS.Rollout.CanaryLabel
	}
	return []envoyWorkload{
		{"Deployment/envoy", "envoy-bootstrap", "protogate-xds", nil},
		{"Deployment/envoy-canary", "envoy-canary-bootstrap", "protogate-xds-canary", []string{label + "=true"}},
	}
}

// checkEnvoyBootstrap: an Envoy's bootstrap ConfigMap is what protogate
// bootstrap prints and writes for the files Envoy mounts and the Service
// of the control plane it dials.
func checkEnvoyBootstrap(t *testing.T, m map[string]doc, e envoyWorkload) {
	t.Helper()
	envoy := m[e.deployment]
	if envoy == nil {
		t.Errorf("%s is missing", e.deployment)
		return
	}
	const tlsDir, sdsDir = "/etc/envoy-tls", "/etc/envoy"
	if s := secretMount(envoy, tlsDir); s == "" || certificateOf(m, s) == nil {
		t.Errorf("%s mounts no Certificate's Secret at %s", e.deployment, tlsDir)
	}
	if get(envoy, "spec", "template", "spec", "containers", 0, "volumeMounts", 0, "mountPath") != sdsDir ||
		get(envoy, "spec", "template", "spec", "volumes", 0, "configMap", "name") != e.configMap {
		t.Errorf("%s does not mount %s at %s", e.deployment, e.configMap, sdsDir)
	}
	svcPort, _ := get(m["Service/"+e.xdsService], "spec", "ports", 0, "port").(int)
	out := t.TempDir()
	args := []string{"bootstrap", "--node-id", "envoy", "--node-group", "edge", "--xds", e.xdsService + ":" + strconv.Itoa(svcPort)}
	for _, kv := range e.metadata {
		args = append(args, "--node-metadata", kv)
	}
	args = append(args, "--tls-cert", tlsDir+"/tls.crt", "--tls-key", tlsDir+"/tls.key", "--tls-ca", tlsDir+"/ca.crt", "--tls-sds-dir", sdsDir, "--sds-output", out)
	want, err := exec.Command(protogateBinary(t), args...).Output()
	if err != nil {
		t.Fatalf("protogate %s: %v", strings.Join(args, " "), err)
	}
	data, _ := get(m["ConfigMap/"+e.configMap], "data").(doc)
	if data["envoy.yaml"] != string(want) {
		t.Errorf("the %s ConfigMap's envoy.yaml differs from `protogate %s`", e.configMap, strings.Join(args, " "))
	}
	written, _ := os.ReadDir(out)
	if len(data) != len(written)+1 {
		t.Errorf("%s holds %d files, bootstrap writes %d SDS files beside envoy.yaml", e.configMap, len(data), len(written))
	}
	for _, f := range written {
		body, _ := os.ReadFile(filepath.Join(out, f.Name()))
		if data[f.Name()] != string(body) {
			t.Errorf("the %s ConfigMap's %s differs from what bootstrap --sds-output writes", e.configMap, f.Name())
		}
	}
}

// bootstrapOf parses the envoy.yaml of a bootstrap ConfigMap.
func bootstrapOf(t *testing.T, m map[string]doc, configMap string) doc {
	t.Helper()
	text, _ := get(m["ConfigMap/"+configMap], "data", "envoy.yaml").(string)
	var b doc
	if err := yaml.Unmarshal([]byte(text), &b); err != nil {
		t.Fatalf("%s: envoy.yaml: %v", configMap, err)
	}
	return b
}

// xdsHost is the host an Envoy bootstrap dials for ADS.
func xdsHost(b doc) string {
	h, _ := get(b, "static_resources", "clusters", 0, "load_assignment", "endpoints", 0, "lb_endpoints", 0,
		"endpoint", "address", "socket_address", "address").(string)
	return h
}

// matches says whether every label of sel is among labels; an empty
// selector matches everything, as a NetworkPolicy's podSelector does.
func matches(sel, labels doc) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func podLabels(d doc) doc {
	l, _ := get(d, "spec", "template", "metadata", "labels").(doc)
	return l
}

// podSpecBut is a workload's pod spec with its container images and the
// ConfigMap names of its volumes blanked: what two variants of one
// workload must share.
func podSpecBut(t *testing.T, d doc) string {
	t.Helper()
	raw, err := yaml.Marshal(get(d, "spec", "template", "spec"))
	if err != nil {
		t.Fatal(err)
	}
	var spec doc
	if err := yaml.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	cs, _ := get(spec, "containers").([]any)
	for _, c := range cs {
		delete(c.(doc), "image")
	}
	vols, _ := get(spec, "volumes").([]any)
	for _, v := range vols {
		if cm, ok := get(v, "configMap").(doc); ok {
			delete(cm, "name")
		}
	}
	out, _ := yaml.Marshal(spec)
	return string(out)
}

// imageRepo is an image reference without its tag.
func imageRepo(d doc) string {
	img, _ := get(d, "spec", "template", "spec", "containers", 0, "image").(string)
	if i := strings.LastIndex(img, ":"); i > strings.LastIndex(img, "/") {
		img = img[:i]
	}
	return img
}

// checkCanaries: the canary Envoys say in their node metadata, and in
// their pods' labels, the canary label the mapping's rollout reads; they
// and the canary control plane run what the main ones run but for the
// image; Envoy's public Service takes both kinds of Envoy, and no
// Deployment adopts another's pods.
func checkCanaries(t *testing.T, m map[string]doc, cfg *config.Config) {
	t.Helper()
	r := cfg.XDS.Rollout
	if r == nil || r.CanaryLabel == "" {
		t.Fatal("the mapping has no xds.rollout.canary_label; the canary Envoys are chosen by it")
	}
	for _, e := range envoyWorkloads(cfg) {
		canary := len(e.metadata) > 0
		meta, _ := get(bootstrapOf(t, m, e.configMap), "node", "metadata").(doc)
		if got := meta[r.CanaryLabel]; (got == "true") != canary || (!canary && got != nil) {
			t.Errorf("%s: node metadata %s = %v; canary_label of the mapping is %s, and only canaries set it", e.configMap, r.CanaryLabel, got, r.CanaryLabel)
		}
		if got := podLabels(m[e.deployment])[r.CanaryLabel]; (got == "true") != canary || (!canary && got != nil) {
			t.Errorf("%s: pod label %s = %v, want it \"true\" on canaries only", e.deployment, r.CanaryLabel, got)
		}
		if !matches(get(m["Service/envoy"], "spec", "selector").(doc), podLabels(m[e.deployment])) {
			t.Errorf("the Service envoy does not select the pods of %s", e.deployment)
		}
	}
	for _, pair := range [][2]string{
		{"Deployment/envoy", "Deployment/envoy-canary"},
		{"Deployment/protogate-controlplane", "Deployment/protogate-controlplane-canary"},
	} {
		main, canary := m[pair[0]], m[pair[1]]
		if canary == nil {
			t.Errorf("%s is missing", pair[1])
			continue
		}
		if podSpecBut(t, main) != podSpecBut(t, canary) {
			t.Errorf("%s runs otherwise than %s: only the image (and the bootstrap's ConfigMap) may differ", pair[1], pair[0])
		}
		if imageRepo(main) != imageRepo(canary) {
			t.Errorf("%s runs %s, %s %s: a canary is another tag of the same image", pair[1], imageRepo(canary), pair[0], imageRepo(main))
		}
	}
	// Each control plane keeps its rollout state on a writable volume of
	// its own: the root filesystem is read-only.
	dir := filepath.Dir(r.StateFile)
	for _, name := range []string{"Deployment/protogate-controlplane", "Deployment/protogate-controlplane-canary"} {
		if !writableVolumeAt(m[name], dir) {
			t.Errorf("%s: xds.rollout.state_file is in %s, where it mounts no writable emptyDir or volume claim", name, dir)
		}
	}
	for ka, a := range m {
		for kb, b := range m {
			if ka == kb || !strings.HasPrefix(ka, "Deployment/") || !strings.HasPrefix(kb, "Deployment/") {
				continue
			}
			if sel, _ := get(a, "spec", "selector", "matchLabels").(doc); matches(sel, podLabels(b)) {
				t.Errorf("%s's selector also matches the pods of %s", ka, kb)
			}
		}
	}
}

// writableVolumeAt: a workload mounts an emptyDir or a claim at dir.
func writableVolumeAt(d doc, dir string) bool {
	mounts, _ := get(d, "spec", "template", "spec", "containers", 0, "volumeMounts").([]any)
	vols, _ := get(d, "spec", "template", "spec", "volumes").([]any)
	for _, mt := range mounts {
		if get(mt, "mountPath") != dir || get(mt, "readOnly") == true {
			continue
		}
		for _, v := range vols {
			if get(v, "name") == get(mt, "name") && (get(v, "emptyDir") != nil || get(v, "persistentVolumeClaim") != nil) {
				return true
			}
		}
	}
	return false
}

// checkWhoDialsWhom: the main Envoys and the bridges dial the main control
// plane, the canary Envoys the canary one, each through a Service its
// certificate names, and each control plane's NetworkPolicy lets in on the
// xDS port exactly the clients that dial it.
func checkWhoDialsWhom(t *testing.T, m map[string]doc, bridgeArgs []any) {
	t.Helper()
	bridgeHost := ""
	for i := 0; i+1 < len(bridgeArgs); i++ {
		if bridgeArgs[i] == "--xds" {
			bridgeHost, _, _ = net.SplitHostPort(fmt.Sprint(bridgeArgs[i+1]))
		}
	}
	clients := []struct{ workload, host, controlPlane string }{
		{"Deployment/envoy", xdsHost(bootstrapOf(t, m, "envoy-bootstrap")), "Deployment/protogate-controlplane"},
		{"Deployment/envoy-canary", xdsHost(bootstrapOf(t, m, "envoy-canary-bootstrap")), "Deployment/protogate-controlplane-canary"},
		{"Deployment/protogate-bridges", bridgeHost, "Deployment/protogate-controlplane"},
	}
	for _, c := range clients {
		sel, _ := get(m["Service/"+c.host], "spec", "selector").(doc)
		for _, cp := range []string{"Deployment/protogate-controlplane", "Deployment/protogate-controlplane-canary"} {
			if reaches := len(sel) > 0 && matches(sel, podLabels(m[cp])); reaches != (cp == c.controlPlane) {
				t.Errorf("%s dials the Service %q, which selects %s: %v; want only %s", c.workload, c.host, cp, reaches, c.controlPlane)
			}
		}
		names, _ := get(certificateOf(m, secretMount(m[c.controlPlane], "/etc/protogate-tls")), "spec", "dnsNames").([]any)
		if !slices.Contains(names, any(c.host)) {
			t.Errorf("%s dials %s, which the certificate of %s does not name (%v)", c.workload, c.host, c.controlPlane, names)
		}
		for _, cp := range []string{"Deployment/protogate-controlplane", "Deployment/protogate-controlplane-canary"} {
			if got := admitted(m, cp, podLabels(m[c.workload]), "xds"); got != (cp == c.controlPlane) {
				t.Errorf("the NetworkPolicy of %s admits %s on xds: %v, want %v", cp, c.workload, got, cp == c.controlPlane)
			}
		}
	}
}

// admitted says whether the NetworkPolicies selecting a workload's pods
// let pods with the labels from reach its port (a pod no policy selects
// admits everyone, but every control plane here has one).
func admitted(m map[string]doc, workload string, from doc, port string) bool {
	selected := false
	for key, np := range m {
		if !strings.HasPrefix(key, "NetworkPolicy/") {
			continue
		}
		sel, _ := get(np, "spec", "podSelector", "matchLabels").(doc)
		if !matches(sel, podLabels(m[workload])) {
			continue
		}
		selected = true
		rules, _ := get(np, "spec", "ingress").([]any)
		for _, r := range rules {
			ports, _ := get(r, "ports").([]any)
			portOK := len(ports) == 0
			for _, p := range ports {
				portOK = portOK || get(p, "port") == port
			}
			peers, _ := get(r, "from").([]any)
			for _, peer := range peers {
				ps, ok := get(peer, "podSelector").(doc)
				if ml, _ := get(ps, "matchLabels").(doc); portOK && ok && matches(ml, from) {
					return true
				}
			}
			if portOK && len(peers) == 0 {
				return true
			}
		}
	}
	return !selected
}

// checkClientRules: the mapping's identity rules let Envoy and the bridges,
// as their Certificates name them, connect as their pods do.
func checkClientRules(t *testing.T, m map[string]doc, cfg *config.Config) {
	t.Helper()
	for _, c := range []struct{ workload, dir string }{
		{"Deployment/envoy", "/etc/envoy-tls"},
		{"Deployment/envoy-canary", "/etc/envoy-tls"},
		{"Deployment/protogate-bridges", "/etc/protogate-tls"},
	} {
		uris, _ := get(certificateOf(m, secretMount(m[c.workload], c.dir)), "spec", "uris").([]any)
		if len(uris) != 1 {
			t.Errorf("%s: its Certificate names %v, want one URI identity", c.workload, uris)
			continue
		}
		// Both run with the pod's name as node id: the Deployment's name
		// and two generated parts.
		nodeID := strings.TrimPrefix(c.workload, "Deployment/") + "-7c9f8d6b5-x2k4q"
		if !ruleAllows(cfg.XDS.Security.Clients, fmt.Sprint(uris[0]), nodeID, cfg.XDS.Groups[0].Name) {
			t.Errorf("no rule of xds.security.clients lets %s connect as %s in group %s", uris[0], nodeID, cfg.XDS.Groups[0].Name)
		}
	}
}

func ruleAllows(rules []config.XDSClientRule, id, node, group string) bool {
	match := func(globs []string, s string) bool {
		for _, g := range globs {
			if ok, _ := path.Match(g, s); ok {
				return true
			}
		}
		return false
	}
	for _, r := range rules {
		if match([]string{r.Identity}, id) && match(r.NodeIDs, node) && match(r.Groups, group) {
			return true
		}
	}
	return false
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
