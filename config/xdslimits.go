package config

// XDSLimits bound the state xDS clients make the control plane hold. The
// message size (xds.max_message_size) and the streams of one connection
// (xds.max_streams_per_peer) are set beside them in xds. They are read
// once at start.
type XDSLimits struct {
	MaxConnections       int      `json:"max_connections" default:"10000" min:"1" max:"1000000" doc:"Open connections to the ADS port; one more is closed as soon as it is accepted."`
	MaxStreams           int      `json:"max_streams" default:"20000" min:"1" max:"1000000" doc:"Open xDS streams over all connections; one more is refused with RESOURCE_EXHAUSTED."`
	MaxNodeMetadataSize  Size     `json:"max_node_metadata_size" default:"64KiB" min:"1KiB" max:"16MiB" doc:"The largest node metadata (encoded size) a stream may send; a larger one is refused with INVALID_ARGUMENT on the first request."`
	MaxNodeIDLength      int      `json:"max_node_id_length" default:"512" min:"16" max:"65536" doc:"The longest node id, and group name, a stream may send (bytes); a longer one is refused with INVALID_ARGUMENT."`
	ForgetAfter          Duration `json:"forget_after" default:"10m" min:"1s" max:"168h" doc:"How long /status keeps a node whose streams all closed."`
	MaxDisconnectedNodes int      `json:"max_disconnected_nodes" default:"10000" min:"1" max:"1000000" doc:"Disconnected nodes /status keeps at most; past it, those gone longest are forgotten first."`
}

// xdsLimits checks xds.limits against the rest of the xds section.
func (v *validator) xdsLimits() {
	l, x := v.cfg.XDS.Limits, v.cfg.XDS
	if x.MaxMessageSize > 0 && l.MaxNodeMetadataSize >= x.MaxMessageSize {
		v.add("xds.limits.max_node_metadata_size", "%s must be below xds.max_message_size (%s): a request carries the metadata and more", l.MaxNodeMetadataSize, x.MaxMessageSize)
	}
}
