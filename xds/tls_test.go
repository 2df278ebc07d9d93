package xds_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/xds"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

func serial(t *testing.T) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// leaf is a certificate the CA issued, PEM encoded.
type leaf struct {
	cert, key string
	serial    *big.Int
}

// issue makes a certificate for SANs: "dns:NAME", "ip:ADDR" or a URI.
func (ca *testCA) issue(t *testing.T, usage x509.ExtKeyUsage, sans ...string) leaf {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	for _, s := range sans {
		switch {
		case strings.HasPrefix(s, "dns:"):
			tmpl.DNSNames = append(tmpl.DNSNames, strings.TrimPrefix(s, "dns:"))
		case strings.HasPrefix(s, "ip:"):
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(strings.TrimPrefix(s, "ip:")))
		default:
			u, err := url.Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			tmpl.URIs = append(tmpl.URIs, u)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return leaf{
		cert:   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		key:    string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})),
		serial: tmpl.SerialNumber,
	}
}

// files writes the leaf and a CA into dir as NAME.crt, NAME.key, ca.crt.
func (l leaf) files(t *testing.T, dir, name string, ca *testCA) xds.ClientTLS {
	t.Helper()
	c := xds.ClientTLS{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key"), CAFile: filepath.Join(dir, "ca-"+name+".crt")}
	writeFile(t, c.CertFile, l.cert)
	writeFile(t, c.KeyFile, l.key)
	writeFile(t, c.CAFile, ca.pem)
	return c
}

// logBuffer collects the control plane's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) lines(substr string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// tlsPlane is a control plane serving the test mapping over mTLS: its
// certificate (for 127.0.0.1) and the CA clients must chain to.
type tlsPlane struct {
	srv      *xds.Server
	serverCA *testCA // signed the server's certificate
	clientCA *testCA // clients' certificates must chain to it
	dir      string
	tls      *config.XDSServerTLS
	log      *logBuffer
}

func startTLS(t *testing.T, rules []config.XDSClientRule, admin config.XDSAdminSecurity) *tlsPlane {
	t.Helper()
	p := &tlsPlane{serverCA: newCA(t, "server CA"), clientCA: newCA(t, "client CA"), dir: t.TempDir(), log: &logBuffer{}}
	p.tls = &config.XDSServerTLS{CertFile: filepath.Join(p.dir, "server.crt"), KeyFile: filepath.Join(p.dir, "server.key"), ClientCAFile: filepath.Join(p.dir, "clients-ca.crt")}
	p.rotateServer(t)
	writeFile(t, p.tls.ClientCAFile, p.clientCA.pem)
	p.srv = xds.New(xds.Options{
		Address: "127.0.0.1:0", AdminAddress: "127.0.0.1:0", MaxMessageSize: 16 << 20, MaxStreamsPerPeer: 16,
		KeepaliveTime: 30 * time.Second, KeepaliveTimeout: 5 * time.Second,
		Security: config.XDSSecurity{TLS: p.tls, Clients: rules, Admin: admin},
		Logger:   slog.New(slog.NewTextHandler(p.log, nil)),
	})
	if err := p.srv.Reload("start", source(mappingFile(t, mapping))); err != nil {
		t.Fatal(err)
	}
	if err := p.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		p.srv.Shutdown(ctx)
	})
	return p
}

// rotateServer writes a new server certificate and key, as a renewal
// does, and returns the new certificate's serial.
func (p *tlsPlane) rotateServer(t *testing.T) *big.Int {
	l := p.serverCA.issue(t, x509.ExtKeyUsageServerAuth, "ip:127.0.0.1", "dns:protogate-xds")
	writeFile(t, p.tls.CertFile, l.cert)
	writeFile(t, p.tls.KeyFile, l.key)
	return l.serial
}

// client gets a certificate of the client CA with these SANs.
func (p *tlsPlane) client(t *testing.T, name string, sans ...string) xds.ClientTLS {
	return p.clientCA.issue(t, x509.ExtKeyUsageClientAuth, sans...).files(t, t.TempDir(), name, p.serverCA)
}

func (p *tlsPlane) dialTLS(t *testing.T, c xds.ClientTLS) *grpc.ClientConn {
	t.Helper()
	opt, err := c.DialOption(p.srv.XDSAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return dialWith(t, p.srv.XDSAddr(), opt)
}

func dialWith(t *testing.T, addr string, opt grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// refusedCount reads protogate_xds_refused_streams_total{reason}.
func (p *tlsPlane) refusedCount(t *testing.T, reason string) float64 {
	t.Helper()
	fams, err := p.srv.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "protogate_xds_refused_streams_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelIs(m, "reason", reason) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func labelIs(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// sotwFetch opens a state-of-the-world stream with go-control-plane's
// client and returns the listeners of the first response, or the error.
func sotwFetch(t *testing.T, conn *grpc.ClientConn, id, group string) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := sotw.NewADSClient(ctx, &core.Node{Id: id, Cluster: group}, resource.ListenerType)
	if err := c.InitConnect(conn); err != nil {
		return 0, err
	}
	resp, err := c.Fetch()
	if err != nil {
		return 0, err
	}
	return len(resp.Resources), nil
}

// deltaFetch does the same over a raw delta stream.
func deltaFetch(t *testing.T, conn *grpc.ClientConn, id, group string) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		return 0, err
	}
	if err := s.Send(&discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: id, Cluster: group}, TypeUrl: resource.ListenerType}); err != nil {
		return 0, err
	}
	resp, err := s.Recv()
	if err != nil {
		return 0, err
	}
	return len(resp.Resources), nil
}

var tlsRules = []config.XDSClientRule{
	{Identity: "spiffe://example.org/ns/edge/sa/envoy", NodeIDs: []string{"envoy-*"}, Groups: []string{"edge"}},
	{Identity: "dns:*.bridges.protogate.svc", NodeIDs: []string{"bridge-?"}, Groups: []string{"*"}},
}

// TestTLSIdentityRules: a stream is served only when a rule lets the
// client certificate's identity use its node id and group; any other is
// refused with PermissionDenied, one WARN line and a count by reason.
func TestTLSIdentityRules(t *testing.T) {
	p := startTLS(t, tlsRules, config.XDSAdminSecurity{})
	envoy := p.dialTLS(t, p.client(t, "envoy", "spiffe://example.org/ns/edge/sa/envoy"))
	bridge := p.dialTLS(t, p.client(t, "bridge", "dns:b1.bridges.protogate.svc"))
	// Both SANs of the rules, but as the other kind: a DNS SAN does not
	// match a URI rule nor a URI SAN a dns: rule.
	crossed := p.dialTLS(t, p.client(t, "crossed", "dns:spiffe", "spiffe://b1.bridges.protogate.svc"))
	tests := []struct {
		name      string
		conn      *grpc.ClientConn
		fetch     func(*testing.T, *grpc.ClientConn, string, string) (int, error)
		id, group string
		reason    string // empty: served
		message   string
	}{
		{"envoy in its group", envoy, sotwFetch, "envoy-1", "edge", "", ""},
		{"envoy over delta", envoy, deltaFetch, "envoy-2", "edge", "", ""},
		{"bridge in any group", bridge, deltaFetch, "bridge-1", "rpc", "", ""},
		{"envoy posing as a bridge", envoy, sotwFetch, "bridge-1", "edge", "node_id", `may not connect as node id "bridge-1"`},
		{"envoy asking for another group", envoy, sotwFetch, "envoy-1", "rpc", "group", `may not ask for group "rpc"`},
		{"envoy asking for another group over delta", envoy, deltaFetch, "envoy-3", "rpc", "group", `may not ask for group "rpc"`},
		{"bridge id pattern is one character", bridge, sotwFetch, "bridge-12", "edge", "node_id", `node id "bridge-12"`},
		{"identities of the wrong kind", crossed, sotwFetch, "bridge-1", "edge", "identity", "no rule of the control plane allows this client certificate's identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := p.refusedCount(t, tt.reason)
			logged := len(p.log.lines("xds stream refused"))
			n, err := tt.fetch(t, tt.conn, tt.id, tt.group)
			if tt.reason == "" {
				if err != nil || n == 0 {
					t.Fatalf("got %d listeners, err %v; want the group's listeners", n, err)
				}
				return
			}
			if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), tt.message) {
				t.Fatalf("got %d listeners, err %v; want PermissionDenied saying %q", n, err, tt.message)
			}
			if got := p.refusedCount(t, tt.reason); got != before+1 {
				t.Errorf("refused streams{reason=%q} = %v, want %v", tt.reason, got, before+1)
			}
			lines := p.log.lines("xds stream refused")
			if len(lines) != logged+1 {
				t.Fatalf("%d refusal log lines, want %d", len(lines), logged+1)
			}
			last := lines[len(lines)-1]
			for _, want := range []string{"level=WARN", "reason=" + tt.reason, "node=" + tt.id, "group=" + tt.group, "identity="} {
				if !strings.Contains(last, want) {
					t.Errorf("log line %q lacks %q", last, want)
				}
			}
		})
	}
}

// TestTLSNodeSwitchMidStream: a client that starts as an allowed node
// and then names another group in a later request is cut off.
func TestTLSNodeSwitchMidStream(t *testing.T) {
	p := startTLS(t, tlsRules, config.XDSAdminSecurity{})
	conn := p.dialTLS(t, p.client(t, "envoy", "spiffe://example.org/ns/edge/sa/envoy"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: "envoy-1", Cluster: "edge"}, TypeUrl: resource.ListenerType}); err != nil {
		t.Fatal(err)
	}
	resp, err := s.Recv()
	if err != nil || len(resp.Resources) == 0 {
		t.Fatalf("the allowed node got %v, %v", resp, err)
	}
	if err := s.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: "envoy-1", Cluster: "rpc"}, TypeUrl: resource.ListenerType,
		VersionInfo: resp.VersionInfo, ResponseNonce: resp.Nonce}); err != nil {
		t.Fatal(err)
	}
	for {
		r, err := s.Recv()
		if err != nil {
			if status.Code(err) != codes.PermissionDenied {
				t.Fatalf("stream ended with %v, want PermissionDenied", err)
			}
			break
		}
		for _, a := range r.Resources {
			if strings.Contains(string(a.Value), "rpc") {
				t.Fatalf("the switched stream was served group rpc's listener")
			}
		}
	}
	if got := p.refusedCount(t, "group"); got != 1 {
		t.Errorf("refused streams{reason=group} = %v, want 1", got)
	}
}

// TestTLSRefusesUnverifiedClients: without a certificate of the client CA
// no stream gets anything, over either protocol.
func TestTLSRefusesUnverifiedClients(t *testing.T) {
	p := startTLS(t, nil, config.XDSAdminSecurity{})
	roots := x509.NewCertPool()
	roots.AddCert(p.serverCA.cert)
	other := newCA(t, "another CA").issue(t, x509.ExtKeyUsageClientAuth, "spiffe://example.org/ns/edge/sa/envoy")
	otherCert, err := tls.X509KeyPair([]byte(other.cert), []byte(other.key))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opt  grpc.DialOption
	}{
		{"plain text", grpc.WithTransportCredentials(insecure.NewCredentials())},
		{"no client certificate", grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}))},
		{"a certificate from another CA", grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{otherCert}}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := dialWith(t, p.srv.XDSAddr(), tt.opt)
			for name, fetch := range map[string]func(*testing.T, *grpc.ClientConn, string, string) (int, error){"sotw": sotwFetch, "delta": deltaFetch} {
				if n, err := fetch(t, conn, "envoy-1", "edge"); err == nil || n > 0 {
					t.Errorf("%s: got %d listeners, err %v; want no stream", name, n, err)
				}
			}
		})
	}
	// Any client the CA vouches for is served when no rules are given,
	// and dump's client speaks the same mTLS.
	c := p.client(t, "any", "dns:whoever.example")
	if n, err := sotwFetch(t, p.dialTLS(t, c), "envoy-1", "edge"); err != nil || n == 0 {
		t.Fatalf("a verified client without rules: %d listeners, %v", n, err)
	}
	opt, err := c.DialOption(p.srv.XDSAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := xds.Dump(ctx, p.srv.XDSAddr(), &core.Node{Id: "dump-1", Cluster: "edge"}, []resource.Type{resource.ListenerType}, opt)
	if err != nil || len(got[resource.ListenerType]) == 0 {
		t.Fatalf("dump over mTLS: %v, %v", got, err)
	}
	// A client checks the server's name: this certificate is for
	// 127.0.0.1 and protogate-xds, not for another name.
	c.ServerName = "elsewhere.example"
	opt, err = c.DialOption(p.srv.XDSAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := xds.Dump(ctx, p.srv.XDSAddr(), &core.Node{Id: "dump-2", Cluster: "edge"}, []resource.Type{resource.ListenerType}, opt); err == nil {
		t.Fatal("dump accepted a server certificate for another name")
	}
}

// serverSerial is the serial of the certificate a new connection is served.
func serverSerial(t *testing.T, p *tlsPlane, c xds.ClientTLS) *big.Int {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.serverCA.cert)
	conn, err := tls.Dial("tcp", p.srv.XDSAddr(), &tls.Config{RootCAs: roots, ServerName: "protogate-xds", Certificates: []tls.Certificate{pair}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

// waitSerial polls new connections until they are served want.
func waitSerial(t *testing.T, p *tlsPlane, c xds.ClientTLS, want *big.Int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for serverSerial(t, p, c).Cmp(want) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("new connections are still served the old certificate")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTLSRotation: renewed certificate files are served to new
// connections without a restart; a certificate written before its key
// keeps the old pair serving until the key arrives.
func TestTLSRotation(t *testing.T) {
	p := startTLS(t, nil, config.XDSAdminSecurity{})
	c := p.client(t, "envoy", "spiffe://example.org/ns/edge/sa/envoy")
	first := serverSerial(t, p, c)

	next := p.serverCA.issue(t, x509.ExtKeyUsageServerAuth, "ip:127.0.0.1", "dns:protogate-xds")
	writeFile(t, p.tls.CertFile, next.cert) // the key is not there yet
	time.Sleep(1200 * time.Millisecond)     // past a reload check
	if got := serverSerial(t, p, c); got.Cmp(first) != 0 {
		t.Fatalf("serial %v during a half-written rotation, want the old %v", got, first)
	}
	writeFile(t, p.tls.KeyFile, next.key)
	waitSerial(t, p, c, next.serial)
	if n, err := sotwFetch(t, p.dialTLS(t, c), "envoy-1", "edge"); err != nil || n == 0 {
		t.Fatalf("after rotation: %d listeners, %v", n, err)
	}
	if lines := p.log.lines("changed files not taken"); len(lines) != 1 {
		t.Errorf("%d warnings about the half-written rotation, want 1: %q", len(lines), lines)
	}

	// A new client CA is taken the same way: its clients are served, the
	// old CA's are not.
	ca2 := newCA(t, "client CA 2")
	writeFile(t, p.tls.ClientCAFile, ca2.pem)
	fresh := ca2.issue(t, x509.ExtKeyUsageClientAuth, "dns:fresh.example").files(t, t.TempDir(), "fresh", p.serverCA)
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := sotwFetch(t, p.dialTLS(t, fresh), "envoy-1", "edge")
		if err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a client of the new CA is still refused: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, err := sotwFetch(t, p.dialTLS(t, c), "envoy-1", "edge"); err == nil || n > 0 {
		t.Fatalf("a client of the replaced CA got %d listeners", n)
	}
}

// adminClient trusts the server CA, optionally with a client certificate.
func adminClient(p *tlsPlane, cert *tls.Certificate) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(p.serverCA.cert)
	cfg := &tls.Config{RootCAs: roots}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

func adminStatus(t *testing.T, c *http.Client, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestTLSAdmin: with a token, /status and /config_dump need it (a new
// token is taken from the file without a restart); probes and metrics
// stay open; the admin speaks HTTPS with the configured certificate.
func TestTLSAdmin(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	writeFile(t, tokenFile, "first-token-0123456789\n")
	admin := config.XDSAdminSecurity{TokenFile: tokenFile, TLS: &config.XDSAdminTLS{
		CertFile: filepath.Join(dir, "admin.crt"), KeyFile: filepath.Join(dir, "admin.key"),
	}}
	ca := newCA(t, "admin CA")
	l := ca.issue(t, x509.ExtKeyUsageServerAuth, "ip:127.0.0.1")
	writeFile(t, admin.TLS.CertFile, l.cert)
	writeFile(t, admin.TLS.KeyFile, l.key)
	p := startTLS(t, nil, admin)
	p.serverCA = ca // the admin client trusts the admin's CA
	c := adminClient(p, nil)
	base := "https://" + p.srv.AdminAddr()
	tests := []struct {
		path, token string
		want        int
	}{
		{"/healthz", "", 200},
		{"/readyz", "", 200},
		{"/metrics", "", 200},
		{"/status", "", 401},
		{"/status", "wrong-token-0123456789", 401},
		{"/status", "first-token-0123456789", 200},
		{"/config_dump?node=nobody", "", 401},
		{"/config_dump?node=nobody", "first-token-0123456789", 404},
		{"/debug/pprof/heap", "", 401}, // profiles are the operator's too
		{"/debug/pprof/heap?gc=1", "first-token-0123456789", 200},
	}
	for _, tt := range tests {
		if got := adminStatus(t, c, base+tt.path, tt.token); got != tt.want {
			t.Errorf("GET %s with token %q = %d, want %d", tt.path, tt.token, got, tt.want)
		}
	}
	if resp, err := http.Get("http://" + p.srv.AdminAddr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("the admin served plain HTTP")
		}
	}

	writeFile(t, tokenFile, "second-token-0123456789")
	deadline := time.Now().Add(5 * time.Second)
	for adminStatus(t, c, base+"/status", "second-token-0123456789") != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the rotated token is not accepted")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := adminStatus(t, c, base+"/status", "first-token-0123456789"); got != 401 {
		t.Errorf("the old token after rotation: %d, want 401", got)
	}
}

// TestTLSAdminClientCertificates: with admin.tls.client_ca_file the admin
// takes only clients with a certificate of that CA.
func TestTLSAdminClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "admin CA")
	admin := config.XDSAdminSecurity{TLS: &config.XDSAdminTLS{
		CertFile: filepath.Join(dir, "admin.crt"), KeyFile: filepath.Join(dir, "admin.key"), ClientCAFile: filepath.Join(dir, "ca.crt"),
	}}
	l := ca.issue(t, x509.ExtKeyUsageServerAuth, "ip:127.0.0.1")
	writeFile(t, admin.TLS.CertFile, l.cert)
	writeFile(t, admin.TLS.KeyFile, l.key)
	writeFile(t, admin.TLS.ClientCAFile, ca.pem)
	p := startTLS(t, nil, admin)
	p.serverCA = ca
	cl := ca.issue(t, x509.ExtKeyUsageClientAuth, "dns:operator.example")
	pair, err := tls.X509KeyPair([]byte(cl.cert), []byte(cl.key))
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + p.srv.AdminAddr() + "/status"
	if got := adminStatus(t, adminClient(p, &pair), url, ""); got != 200 {
		t.Fatalf("a client with a certificate: %d", got)
	}
	resp, err := adminClient(p, nil).Get(url)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a client without a certificate got %d", resp.StatusCode)
	}
}

// TestTLSMappingValidation: xds.security is checked when the mapping
// loads, each problem at its field.
func TestTLSMappingValidation(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "CA")
	l := ca.issue(t, x509.ExtKeyUsageServerAuth, "dns:protogate-xds")
	other := ca.issue(t, x509.ExtKeyUsageServerAuth, "dns:protogate-xds")
	files := map[string]string{"tls.crt": l.cert, "tls.key": l.key, "other.key": other.key, "ca.crt": ca.pem,
		"junk.crt": "not a certificate\n", "token": "0123456789abcdef0123\n", "short": "abc\n", "empty": "\n"}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	tlsBlock := func(cert, key, ca string) string {
		return "    tls: { cert_file: " + f(cert) + ", key_file: " + f(key) + ", client_ca_file: " + f(ca) + " }\n"
	}
	tests := []struct {
		name, security string
		want           []string // problems; none: valid
	}{
		{"valid", tlsBlock("tls.crt", "tls.key", "ca.crt") + `    clients:
      - { identity: "spiffe://example.org/ns/edge/sa/envoy", node_ids: ["envoy-*"], groups: [edge] }
      - { identity: "dns:*.bridges.svc", node_ids: ["*"], groups: ["*"] }
    admin: { token_file: ` + f("token") + ` }
`, nil},
		{"missing file", tlsBlock("nope.crt", "tls.key", "ca.crt"), []string{"xds.security.tls.cert_file: " + f("nope.crt") + " does not exist"}},
		{"key of another certificate", tlsBlock("tls.crt", "other.key", "ca.crt"), []string{"xds.security.tls.key_file: " + f("other.key") + " is not a PEM private key matching the certificate in " + f("tls.crt")}},
		{"CA that is no certificate", tlsBlock("tls.crt", "tls.key", "junk.crt"), []string{"xds.security.tls.client_ca_file: " + f("junk.crt") + " holds no PEM certificate"}},
		{"partial tls", "    tls: { cert_file: " + f("tls.crt") + " }\n", []string{"xds.security.tls.client_ca_file: is required", "xds.security.tls.key_file: is required"}},
		{"rules without tls", "    clients: [ { identity: \"dns:a\", node_ids: [\"*\"], groups: [\"*\"] } ]\n", []string{"xds.security.clients: identity rules need xds.security.tls"}},
		{"rule without identity", tlsBlock("tls.crt", "tls.key", "ca.crt") + "    clients: [ { node_ids: [\"*\"], groups: [\"*\"] } ]\n", []string{"xds.security.clients[0].identity: is required"}},
		{"bad globs", tlsBlock("tls.crt", "tls.key", "ca.crt") + "    clients: [ { identity: \"spiffe://x/[a\", node_ids: [\"ok\", \"envoy-[\"], groups: [] } ]\n", []string{
			"xds.security.clients[0].groups: is empty, so the rule allows nothing",
			`xds.security.clients[0].identity: "spiffe://x/[a" is not a valid glob`,
			`xds.security.clients[0].node_ids[1]: "envoy-[" is not a valid glob`}},
		{"identity of no known form", tlsBlock("tls.crt", "tls.key", "ca.crt") + "    clients: [ { identity: \"envoy\", node_ids: [\"*\"], groups: [\"*\"] } ]\n", []string{
			`xds.security.clients[0].identity: "envoy" is neither a URI SAN`}},
		{"short token", "    admin: { token_file: " + f("short") + " }\n", []string{"xds.security.admin.token_file: the token is 3 characters; use at least 16"}},
		{"empty token", "    admin: { token_file: " + f("empty") + " }\n", []string{"xds.security.admin.token_file: " + f("empty") + " is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.LoadBytes("m.yaml", []byte(mapping+"  security:\n"+tt.security))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("refused a valid mapping: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want %q", tt.want)
			}
			probs := strings.Split(err.Error(), "\n")
			if len(probs) != len(tt.want) {
				t.Fatalf("problems:\n%v\nwant %d: %q", err, len(tt.want), tt.want)
			}
			for i, want := range tt.want {
				if !strings.Contains(probs[i], want) {
					t.Errorf("problem %d = %q, want %q", i, probs[i], want)
				}
			}
		})
	}
}
