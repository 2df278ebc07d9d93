package xds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
)

// UnknownGroupError is Dump's answer when the control plane served the
// node its fallback: it has no group by the name the node gave.
type UnknownGroupError struct {
	Group  string
	Groups []string // the groups it has, when Listed
	Listed bool
}

func (e *UnknownGroupError) Error() string {
	switch {
	case !e.Listed:
		return fmt.Sprintf("the control plane has no node group %q (it did not list its groups; its /status shows them)", e.Group)
	case len(e.Groups) == 0:
		return fmt.Sprintf("the control plane has no node group %q (it has published no groups yet)", e.Group)
	}
	return fmt.Sprintf("the control plane has no node group %q (groups: %s)", e.Group, strings.Join(e.Groups, ", "))
}

// Dump connects to a control plane as an Envoy node would, with
// go-control-plane's own ADS client: for each type it opens a stream,
// receives the resources, ACKs them and returns them. A node the control
// plane puts in no group gets an *UnknownGroupError instead of the empty
// fallback, which would look like a group that serves nothing. Without
// dial options it speaks plain text (ClientTLS.DialOption gives mTLS).
func Dump(ctx context.Context, address string, node *core.Node, types []resource.Type, dial ...grpc.DialOption) (map[resource.Type][]*anypb.Any, error) {
	if len(dial) == 0 {
		dial = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	// go-control-plane's client hides the response's version; the stream
	// interceptor reads it on the way in.
	var seen versionRecorder
	conn, err := grpc.NewClient(address, append(dial, grpc.WithStreamInterceptor(seen.intercept))...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", address, err)
	}
	defer conn.Close()
	out := map[resource.Type][]*anypb.Any{}
	for _, typ := range types {
		c := sotw.NewADSClient(ctx, node, typ)
		if err := c.InitConnect(conn); err != nil {
			return nil, fmt.Errorf("%s: connect: %w", address, err)
		}
		resp, err := c.Fetch()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", address, typ, err)
		}
		if groups, listed, fallback := FallbackGroups(seen.last()); fallback {
			return nil, &UnknownGroupError{Group: node.GetCluster(), Groups: groups, Listed: listed}
		}
		if err := c.Ack(); err != nil {
			return nil, fmt.Errorf("%s: ack %s: %w", address, typ, err)
		}
		// Closing the stream only after the server has ended it means
		// it read the ACK: /status then shows what dump received.
		seen.closeStream()
		out[typ] = resp.Resources
	}
	return out, nil
}

// versionRecorder keeps the version of the last discovery response
// received on any stream of a connection.
type versionRecorder struct {
	mu      sync.Mutex
	version string
	stream  grpc.ClientStream // the latest stream opened
}

// closeStream half-closes the latest stream and waits for the server to
// end it, which it does once it has handled every request sent before.
func (v *versionRecorder) closeStream() {
	v.mu.Lock()
	s := v.stream
	v.mu.Unlock()
	if s == nil || s.CloseSend() != nil {
		return
	}
	for s.RecvMsg(new(discovery.DiscoveryResponse)) == nil {
	}
}

func (v *versionRecorder) last() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.version
}

func (v *versionRecorder) intercept(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	v.stream = s
	v.mu.Unlock()
	return &recordingStream{ClientStream: s, v: v}, nil
}

type recordingStream struct {
	grpc.ClientStream
	v *versionRecorder
}

func (r *recordingStream) RecvMsg(m any) error {
	err := r.ClientStream.RecvMsg(m)
	if resp, ok := m.(*discovery.DiscoveryResponse); ok && err == nil {
		r.v.mu.Lock()
		r.v.version = resp.GetVersionInfo()
		r.v.mu.Unlock()
	}
	return err
}

// ClientTLS is how a client of the control plane (dump, a bridge) proves
// who it is and checks the server: its certificate and key, the CA the
// server's certificate must chain to, and the name it must carry. The
// files are re-read when they change, so a long-running bridge presents a
// rotated certificate on its next connection.
type ClientTLS struct {
	CertFile, KeyFile, CAFile string
	// ServerName is the DNS name or IP the server's certificate must
	// hold; empty: the host of the address dialled.
	ServerName string
}

// Enabled says whether any TLS file is given.
func (c ClientTLS) Enabled() bool { return c.CertFile != "" || c.KeyFile != "" || c.CAFile != "" }

// Check refuses a partial set: mTLS needs all three files.
func (c ClientTLS) Check() error {
	if c.CertFile == "" || c.KeyFile == "" || c.CAFile == "" {
		return errors.New("--tls-cert, --tls-key and --tls-ca go together: the control plane requires a client certificate, and its own is checked against the CA")
	}
	return nil
}

// DialOption is the transport for address: TLS 1.2 or later with the
// client certificate, verifying the server against the CA and name.
func (c ClientTLS) DialOption(address string, log *slog.Logger) (grpc.DialOption, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	name := c.ServerName
	if name == "" {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return nil, fmt.Errorf("%q is not HOST:PORT", address)
		}
		name = host
	}
	if log == nil {
		log = slog.Default()
	}
	r, err := newReloading("xds client tls", log, c.parse, c.CertFile, c.KeyFile, c.CAFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: name,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			st, _ := r.get()
			return &st.cert, nil
		},
		// The server is verified below against the CA as last read, so a
		// rotated CA file is taken without a restart; crypto/tls's own
		// check would keep the pool it was given.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			st, _ := r.get()
			return verifyServer(cs, st.roots, name)
		},
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(cfg)), nil
}

// clientState is a parsed client certificate and CA pool.
type clientState struct {
	cert  tls.Certificate
	roots *x509.CertPool
}

func (c ClientTLS) parse(raw [][]byte) (clientState, error) {
	cert, err := tls.X509KeyPair(raw[0], raw[1])
	if err != nil {
		return clientState{}, fmt.Errorf("%s is not a PEM private key matching the certificate in %s", c.KeyFile, c.CertFile)
	}
	roots, err := certPool(raw[2], c.CAFile)
	if err != nil {
		return clientState{}, err
	}
	return clientState{cert: cert, roots: roots}, nil
}

// verifyServer does what crypto/tls does for a client: the chain to the
// roots, for server use, naming the server.
func verifyServer(cs tls.ConnectionState, roots *x509.CertPool, name string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the control plane presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, DNSName: name,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("the control plane's certificate: %w", err)
	}
	return nil
}
