package xds

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/protogate/protogate/config"
)

// reloadCheckEvery bounds how often watched files are read again: at most
// once a second, and only when a handshake or request needs them.
const reloadCheckEvery = time.Second

// reloading is a value parsed from files, parsed again when their content
// changes. A change that does not parse (a certificate written before its
// key, say) keeps the last good value and is retried at the next check.
type reloading[T any] struct {
	what  string
	files []string
	parse func([][]byte) (T, error)
	log   *slog.Logger

	mu      sync.Mutex
	checked time.Time
	raw     [][]byte // the contents val was parsed from
	val     T
	ok      bool     // val holds a parsed value
	bad     [][]byte // the last contents that failed, logged once
	readErr string   // the last read failure, logged once
}

func newReloading[T any](what string, log *slog.Logger, parse func([][]byte) (T, error), files ...string) (*reloading[T], error) {
	r := &reloading[T]{what: what, files: files, parse: parse, log: log}
	raw, err := readFiles(files)
	if err == nil {
		r.val, err = parse(raw)
	}
	r.checked = time.Now()
	if err != nil {
		return r, fmt.Errorf("%s: %w", what, err)
	}
	r.raw, r.ok = raw, true
	return r, nil
}

// get returns the current value, reading the files again if the last
// check is over a second old; ok is false while no content ever parsed.
func (r *reloading[T]) get() (val T, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < reloadCheckEvery {
		return r.val, r.ok
	}
	r.checked = time.Now()
	raw, err := readFiles(r.files)
	if err != nil {
		if err.Error() != r.readErr {
			r.readErr = err.Error()
			r.log.Warn("watched files unreadable; keeping the last good ones", "what", r.what, "reason", r.readErr)
		}
		return r.val, r.ok
	}
	r.readErr = ""
	if sameContents(raw, r.raw) {
		return r.val, r.ok
	}
	v, err := r.parse(raw)
	if err != nil {
		r.warn(raw, err)
		return r.val, r.ok
	}
	r.raw, r.val, r.ok, r.bad = raw, v, true, nil
	r.log.Info("reloaded", "what", r.what, "files", strings.Join(r.files, ", "))
	return r.val, r.ok
}

// warn logs a failed parse once per distinct content.
func (r *reloading[T]) warn(raw [][]byte, err error) {
	if sameContents(raw, r.bad) {
		return
	}
	r.bad = raw
	r.log.Warn("changed files not taken; keeping the last good ones", "what", r.what, "reason", err.Error())
}

func readFiles(names []string) ([][]byte, error) {
	out := make([][]byte, len(names))
	for i, n := range names {
		raw, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("%s cannot be read", n)
		}
		out[i] = raw
	}
	return out, nil
}

func sameContents(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// certPool parses PEM CA certificates.
func certPool(raw []byte, file string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// serverTLS is a server's TLS configuration whose certificate, key and
// (optional) client CA are re-read when their files change: each
// handshake takes the current ones. With a CA, client certificates are
// required and verified against it.
func serverTLS(what string, log *slog.Logger, certFile, keyFile, caFile string, protos []string) (*tls.Config, error) {
	files := []string{certFile, keyFile}
	if caFile != "" {
		files = append(files, caFile)
	}
	parse := func(raw [][]byte) (*tls.Config, error) {
		cert, err := tls.X509KeyPair(raw[0], raw[1])
		if err != nil {
			return nil, fmt.Errorf("%s is not a PEM private key matching the certificate in %s", keyFile, certFile)
		}
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: protos}
		if caFile != "" {
			if cfg.ClientCAs, err = certPool(raw[2], caFile); err != nil {
				return nil, err
			}
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
		return cfg, nil
	}
	r, err := newReloading(what, log, parse, files...)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: protos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cfg, _ := r.get() // parsed at least once: newReloading succeeded
			return cfg, nil
		},
	}, nil
}

// securityOptions are the ADS server's transport credentials and identity
// checks (xds.security).
func (s *Server) securityOptions() ([]grpc.ServerOption, error) {
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "protogate_xds_refused_streams_total",
		Help: "xDS streams refused because the client's certificate identity may not use the node id or group it gave, by reason.",
	}, []string{"reason"})
	if err := s.metrics.registry.Register(refused); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("refused streams metric: %w", err)
		}
		refused = are.ExistingCollector.(*prometheus.CounterVec)
	}
	sec := s.opts.Security
	if sec.TLS == nil {
		return nil, nil
	}
	cfg, err := serverTLS("xds tls", s.log, sec.TLS.CertFile, sec.TLS.KeyFile, sec.TLS.ClientCAFile, []string{"h2"})
	if err != nil {
		return nil, fmt.Errorf("xds.security.tls: %w", err)
	}
	g := &guard{rules: sec.Clients, groupOf: s.groupOf, refused: refused, log: s.log}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(cfg)), grpc.ChainStreamInterceptor(g.intercept)}, nil
}

// guard checks each stream's node id and group against the identity
// rules for the client's certificate.
type guard struct {
	rules   []config.XDSClientRule
	groupOf func(*core.Node) (string, bool)
	refused *prometheus.CounterVec
	log     *slog.Logger
}

// Reasons a stream is refused, the values of the metric's reason label.
const (
	refusedNoNode   = "no_node"
	refusedIdentity = "identity"
	refusedNodeID   = "node_id"
	refusedGroup    = "group"
)

// intercept checks every request that carries a node, not only the
// first: go-control-plane takes a later request's node as the stream's
// node, so a client could otherwise switch to another group mid-stream.
func (g *guard) intercept(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if len(g.rules) == 0 {
		return handler(srv, ss) // any client the CA vouches for
	}
	gs := &guardedStream{ServerStream: ss, g: g, ids: peerIdentities(ss.Context())}
	err := handler(srv, gs)
	if r := gs.refusal(); r != nil {
		// The server saw the stream end and returned; the client is told why.
		return r
	}
	return err
}

// guardedStream refuses a request whose node the identities may not use.
type guardedStream struct {
	grpc.ServerStream
	g    *guard
	ids  []string
	seen bool

	mu      sync.Mutex
	refused error
}

func (gs *guardedStream) RecvMsg(m any) error {
	if err := gs.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	req, ok := m.(interface{ GetNode() *core.Node })
	if !ok {
		return nil
	}
	node := req.GetNode()
	if gs.seen && node == nil {
		return nil // the stream's node stays the first one's
	}
	gs.seen = true
	if err := gs.g.check(gs.ids, node); err != nil {
		gs.mu.Lock()
		gs.refused = err
		gs.mu.Unlock()
		return err
	}
	return nil
}

func (gs *guardedStream) refusal() error {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	return gs.refused
}

// check finds a rule letting one of ids use node's id and group; without
// one the refusal is logged, counted and returned as PermissionDenied.
func (g *guard) check(ids []string, node *core.Node) error {
	if node == nil {
		return g.refuse(refusedNoNode, ids, "", "", "the first request of a stream must carry the node")
	}
	group, _ := g.groupOf(node)
	var byID, byNode []config.XDSClientRule
	for _, r := range g.rules {
		if identityMatches(r.Identity, ids) {
			byID = append(byID, r)
		}
	}
	for _, r := range byID {
		if anyGlob(r.NodeIDs, node.GetId()) {
			byNode = append(byNode, r)
		}
	}
	for _, r := range byNode {
		if anyGlob(r.Groups, group) {
			return nil
		}
	}
	switch {
	case len(byID) == 0:
		return g.refuse(refusedIdentity, ids, node.GetId(), group, "no rule of the control plane allows this client certificate's identity")
	case len(byNode) == 0:
		return g.refuse(refusedNodeID, ids, node.GetId(), group, fmt.Sprintf("this client certificate may not connect as node id %q", node.GetId()))
	}
	return g.refuse(refusedGroup, ids, node.GetId(), group, fmt.Sprintf("node %q with this client certificate may not ask for group %q", node.GetId(), group))
}

func (g *guard) refuse(reason string, ids []string, node, group, msg string) error {
	g.refused.WithLabelValues(reason).Inc()
	g.log.Warn("xds stream refused", "reason", reason, "node", node, "group", group, "identity", strings.Join(ids, ","))
	return status.Error(codes.PermissionDenied, msg)
}

// peerIdentities are the SANs of the client's verified certificate: URIs
// (SPIFFE IDs included) as they are, DNS names as dns:NAME.
func peerIdentities(ctx context.Context) []string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return nil
	}
	leaf := info.State.VerifiedChains[0][0]
	var ids []string
	for _, u := range leaf.URIs {
		ids = append(ids, u.String())
	}
	for _, d := range leaf.DNSNames {
		ids = append(ids, "dns:"+d)
	}
	return ids
}

// identityMatches: a dns: rule matches DNS SANs only, any other rule
// URI SANs only (a URI's "://" keeps the two apart).
func identityMatches(rule string, ids []string) bool {
	for _, id := range ids {
		if strings.HasPrefix(rule, "dns:") != strings.HasPrefix(id, "dns:") {
			continue
		}
		if ok, _ := path.Match(rule, id); ok {
			return true
		}
	}
	return false
}

func anyGlob(globs []string, s string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}

// adminOpen are the admin paths that stay open with a token configured:
// probes and scrapers; everything else needs the token.
var adminOpen = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// adminAuth guards the admin endpoints that show configuration.
func (s *Server) adminAuth(h http.Handler) http.Handler {
	file := s.opts.Security.Admin.TokenFile
	if file == "" {
		return h
	}
	tok, err := newReloading("admin token", s.log, parseToken, file)
	if err != nil {
		// Fail closed until the file can be read.
		s.log.Error("admin token unreadable; /status and /config_dump refuse every request until it is", "err", err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if adminOpen[r.URL.Path] {
			h.ServeHTTP(w, r)
			return
		}
		want, ok := tok.get()
		if !ok {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the admin token cannot be read; see the control plane's log"})
			return
		}
		if !bearerMatches(r.Header.Get("Authorization"), want) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="protogate admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "this endpoint needs the header Authorization: Bearer TOKEN, with the admin token"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// tokenDigest is a token's SHA-256: comparing digests in constant time
// reveals neither the token nor its length.
type tokenDigest [sha256.Size]byte

func parseToken(raw [][]byte) (tokenDigest, error) {
	tok := strings.TrimSpace(string(raw[0]))
	if tok == "" {
		return tokenDigest{}, errors.New("the token file is empty")
	}
	return sha256.Sum256([]byte(tok)), nil
}

func bearerMatches(header string, want tokenDigest) bool {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// adminTLS serves the admin listener over TLS when configured.
func (s *Server) adminTLS(lis net.Listener) (net.Listener, error) {
	t := s.opts.Security.Admin.TLS
	if t == nil {
		return lis, nil
	}
	cfg, err := serverTLS("admin tls", s.log, t.CertFile, t.KeyFile, t.ClientCAFile, []string{"http/1.1"})
	if err != nil {
		lis.Close()
		return lis, fmt.Errorf("xds.security.admin.tls: %w", err)
	}
	return tls.NewListener(lis, cfg), nil
}
