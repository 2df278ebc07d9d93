package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strings"
)

// XDSSecurity is how the ADS and admin servers authenticate their clients.
type XDSSecurity struct {
	TLS     *XDSServerTLS    `json:"tls" restart:"true" doc:"Serve ADS over TLS and require every client to present a certificate signed by client_ca_file. Without it ADS is plain text (keep it on loopback then). The files are re-read when they change: a rotated certificate is served to new connections without a restart."`
	Clients []XDSClientRule  `json:"clients" restart:"true" doc:"Which client identities may use which node ids and groups. A stream is served when one rule matches the client's certificate, its node id and its group; any other is refused with PERMISSION_DENIED, logged and counted in protogate_xds_refused_streams_total. Empty: any client with a valid certificate. Needs tls."`
	Admin   XDSAdminSecurity `json:"admin" doc:"TLS and a bearer token for the admin server."`
}

// XDSServerTLS are the ADS server's certificate and the CA its clients'
// certificates must be signed by.
type XDSServerTLS struct {
	CertFile     string `json:"cert_file" required:"true" restart:"true" doc:"The PEM certificate chain the server presents." example:"/etc/protogate-tls/tls.crt"`
	KeyFile      string `json:"key_file" required:"true" restart:"true" doc:"The PEM private key of cert_file." example:"/etc/protogate-tls/tls.key"`
	ClientCAFile string `json:"client_ca_file" required:"true" restart:"true" doc:"PEM CA certificates a client certificate must chain to." example:"/etc/protogate-tls/ca.crt"`
}

// XDSClientRule lets one client identity use some node ids and groups.
type XDSClientRule struct {
	Identity string   `json:"identity" required:"true" doc:"An identity in the client's certificate: a URI SAN such as a SPIFFE ID (spiffe://trust-domain/path), or dns:NAME for a DNS SAN. A glob: * matches any run of characters but /, ? one character, [a-z] a class." example:"spiffe://example.org/ns/edge/sa/envoy"`
	NodeIDs  []string `json:"node_ids" required:"true" doc:"Globs of the node ids this identity may connect as (\"*\" for any)." example:"[envoy-*]"`
	Groups   []string `json:"groups" required:"true" doc:"Globs of the node groups (node.cluster, or the group metadata key) it may ask for (\"*\" for any)." example:"[edge]"`
}

// XDSAdminSecurity guards the admin server.
type XDSAdminSecurity struct {
	TLS       *XDSAdminTLS `json:"tls" restart:"true" doc:"Serve the admin endpoints over HTTPS. Kubernetes probes then need scheme: HTTPS."`
	TokenFile string       `json:"token_file" restart:"true" doc:"A file holding a bearer token that /status and /config_dump require (Authorization: Bearer TOKEN); /healthz, /readyz and /metrics stay open. The file is re-read when it changes. Without TLS the token crosses the network in clear: keep the admin on loopback then." example:"/etc/protogate-admin/token"`
}

// XDSAdminTLS is the admin server's certificate and, optionally, the CA
// its clients' certificates must be signed by.
type XDSAdminTLS struct {
	CertFile     string `json:"cert_file" required:"true" restart:"true" doc:"The PEM certificate chain the admin server presents." example:"/etc/protogate-tls/tls.crt"`
	KeyFile      string `json:"key_file" required:"true" restart:"true" doc:"The PEM private key of cert_file." example:"/etc/protogate-tls/tls.key"`
	ClientCAFile string `json:"client_ca_file" restart:"true" doc:"PEM CA certificates: when set, admin clients must present a certificate that chains to one (probes that cannot would fail)." example:"/etc/protogate-tls/ca.crt"`
}

// xdsSecurity checks xds.security: the files load, and every rule names
// an identity and valid globs.
func (v *validator) xdsSecurity() {
	s := &v.cfg.XDS.Security
	const p = "xds.security"
	if t := s.TLS; t != nil {
		v.keyPair(p+".tls", t.CertFile, t.KeyFile)
		v.caFile(p+".tls.client_ca_file", t.ClientCAFile)
	}
	if len(s.Clients) > 0 && s.TLS == nil {
		v.add(p+".clients", "identity rules need xds.security.tls: without client certificates there is no identity to check")
	}
	for i := range s.Clients {
		v.clientRule(&s.Clients[i], index(p+".clients", i))
	}
	if t := s.Admin.TLS; t != nil {
		v.keyPair(p+".admin.tls", t.CertFile, t.KeyFile)
		if t.ClientCAFile != "" {
			v.caFile(p+".admin.tls.client_ca_file", t.ClientCAFile)
		}
	}
	if f := s.Admin.TokenFile; f != "" {
		if tok, err := ReadToken(f); err != nil {
			v.add(p+".admin.token_file", "%v", err)
		} else if len(tok) < 16 {
			v.add(p+".admin.token_file", "the token is %d characters; use at least 16 (openssl rand -hex 32)", len(tok))
		}
	}
}

// clientRule checks one identity rule.
func (v *validator) clientRule(r *XDSClientRule, p string) {
	if r.Identity != "" {
		if err := checkIdentity(r.Identity); err != nil {
			v.add(p+".identity", "%v", err)
		}
	}
	for _, l := range []struct {
		name  string
		globs []string
	}{{"node_ids", r.NodeIDs}, {"groups", r.Groups}} {
		if l.globs != nil && len(l.globs) == 0 {
			v.add(p+"."+l.name, "is empty, so the rule allows nothing; use [\"*\"] for any")
		}
		for j, g := range l.globs {
			if err := checkGlob(g); err != nil {
				v.add(index(p+"."+l.name, j), "%v", err)
			}
		}
	}
}

// checkIdentity accepts dns:GLOB and URI globs with a scheme and an
// authority (spiffe://trust-domain/...).
func checkIdentity(id string) error {
	if name, ok := strings.CutPrefix(id, "dns:"); ok {
		if name == "" {
			return errors.New("dns: needs a name, like dns:bridge.protogate.svc")
		}
		return checkGlob(name)
	}
	scheme, rest, ok := strings.Cut(id, "://")
	if !ok || scheme == "" || rest == "" {
		return fmt.Errorf("%q is neither a URI SAN (like spiffe://example.org/ns/edge/sa/envoy) nor dns:NAME", id)
	}
	// The scheme must be a literal: a glob there would match any kind of SAN.
	if !uriScheme.MatchString(scheme) {
		return fmt.Errorf("%q: %q is not a URI scheme", id, scheme)
	}
	return checkGlob(id)
}

var uriScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

func checkGlob(g string) error {
	if g == "" {
		return errors.New("is empty")
	}
	if _, err := path.Match(g, ""); err != nil {
		return fmt.Errorf("%q is not a valid glob (* ? and [...] classes; every [ needs its ])", g)
	}
	return nil
}

// keyPair checks that a certificate file and its key load together.
func (v *validator) keyPair(p, certFile, keyFile string) {
	if certFile == "" || keyFile == "" {
		return // required, reported by the tags
	}
	certPEM, err := readFile(certFile)
	if err != nil {
		v.add(p+".cert_file", "%v", err)
		return
	}
	keyPEM, err := readFile(keyFile)
	if err != nil {
		v.add(p+".key_file", "%v", err)
		return
	}
	if n, err := pemCertificates(certPEM); err != nil || n == 0 {
		v.add(p+".cert_file", "%s holds no PEM certificate", certFile)
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		v.add(p+".key_file", "%s is not a PEM private key matching the certificate in %s", keyFile, certFile)
	}
}

// caFile checks that a file holds PEM CA certificates.
func (v *validator) caFile(p, file string) {
	if file == "" {
		return
	}
	raw, err := readFile(file)
	if err != nil {
		v.add(p, "%v", err)
		return
	}
	if n, err := pemCertificates(raw); err != nil || n == 0 {
		v.add(p, "%s holds no PEM certificate", file)
	}
}

// pemCertificates counts the certificates of a PEM file, failing on one
// that does not parse.
func pemCertificates(raw []byte) (int, error) {
	n := 0
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			return n, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return n, err
		}
		n++
	}
}

// readFile reads a file named by the mapping, saying plainly why not.
func readFile(name string) ([]byte, error) {
	raw, err := os.ReadFile(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s does not exist", name)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("%s cannot be read (permission denied)", name)
	case err != nil:
		return nil, fmt.Errorf("%s cannot be read", name)
	}
	return raw, nil
}

// ReadToken reads a bearer token file: its content without surrounding
// white space, which must not be empty.
func ReadToken(name string) (string, error) {
	raw, err := readFile(name)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(raw))
	if tok == "" {
		return "", fmt.Errorf("%s is empty", name)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%s holds more than one word; it must hold only the token", name)
	}
	return tok, nil
}
