package xds

// MetricNames lists the names of the metrics the control plane registers,
// for the tests that tie dashboards to the code.
func (s *Server) MetricNames() []string { return s.metrics.registry.Names() }
