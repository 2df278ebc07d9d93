package xds

import "github.com/protogate/protogate/internal/promnames"

// MetricNames lists the names of the control plane's own metrics (the Go
// and process collectors' aside), for the tests that tie dashboards to
// the code.
func (s *Server) MetricNames() []string {
	return promnames.Of(append(promnames.Fields(s.metrics), promnames.Fields(s.guard)...)...)
}
