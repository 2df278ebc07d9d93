package xds

import (
	"fmt"
	"net"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/protogate/protogate/config"
)

// Defaults of xds.limits, for Options that leave a limit at zero; they are
// the mapping's defaults (see config.XDSLimits).
const (
	DefaultMaxConnections       = 10000
	DefaultMaxStreams           = 20000
	DefaultMaxNodeMetadataSize  = 64 << 10
	DefaultMaxNodeIDLength      = 512
	DefaultForgetAfter          = 10 * time.Minute
	DefaultMaxDisconnectedNodes = 10000
)

// limits are xds.limits with every zero at its default.
type limits struct {
	maxConnections, maxStreams int
	maxMetadata, maxID         int
	forgetAfter                time.Duration
	maxDisconnected            int
}

func limitsOf(l config.XDSLimits) limits {
	or := func(v, def int) int {
		if v > 0 {
			return v
		}
		return def
	}
	forget := l.ForgetAfter.Std()
	if forget <= 0 {
		forget = DefaultForgetAfter
	}
	return limits{
		maxConnections:  or(l.MaxConnections, DefaultMaxConnections),
		maxStreams:      or(l.MaxStreams, DefaultMaxStreams),
		maxMetadata:     or(int(l.MaxNodeMetadataSize), DefaultMaxNodeMetadataSize),
		maxID:           or(l.MaxNodeIDLength, DefaultMaxNodeIDLength),
		forgetAfter:     forget,
		maxDisconnected: or(l.MaxDisconnectedNodes, DefaultMaxDisconnectedNodes),
	}
}

// limitError is a node refused for a limit, with what its client is told.
type limitError struct {
	limit string // the metric label
	msg   string
}

func (e *limitError) status() error { return status.Error(codes.InvalidArgument, e.msg) }

// checkNode refuses a node whose id, group or metadata would make the
// server hold more than the limits allow: the stream keeps the node for
// its lifetime, and /status the id and group for forget_after.
func (l limits) checkNode(node *core.Node, groupKey string) *limitError {
	if n := len(node.GetId()); n > l.maxID {
		return &limitError{"node_id", fmt.Sprintf("node id is %d bytes; this control plane takes at most %d (xds.limits.max_node_id_length)", n, l.maxID)}
	}
	group := node.GetCluster()
	if groupKey != "" {
		group = node.GetMetadata().GetFields()[groupKey].GetStringValue()
	}
	if n := len(group); n > l.maxID {
		return &limitError{"node_id", fmt.Sprintf("node group is %d bytes; this control plane takes at most %d (xds.limits.max_node_id_length)", n, l.maxID)}
	}
	if n := proto.Size(node.GetMetadata()); n > l.maxMetadata {
		return &limitError{"node_metadata", fmt.Sprintf("node metadata is %d bytes; this control plane takes at most %d (xds.limits.max_node_metadata_size)", n, l.maxMetadata)}
	}
	return nil
}

func streamsExhausted(max int) error {
	return status.Errorf(codes.ResourceExhausted, "this control plane serves at most %d xDS streams (xds.limits.max_streams); retry later or use another replica", max)
}

// refuse counts a refusal for limit and logs it, at most once per
// refusalLogEvery for each limit, and returns err.
func (s *Server) refuse(limit string, err error) error {
	s.metrics.refusals.WithLabelValues(limit).Inc()
	if n, ok := s.metrics.refusalLog.due(limit, time.Now()); ok {
		s.log.Warn("xDS client refused at a limit", "limit", limit, "reason", status.Convert(err).Message(), "refused_since_last_log", n)
	}
	return err
}

// refusalLogEvery spaces the log lines of one limit's refusals: a client
// retrying in a loop must not flood the log.
const refusalLogEvery = 10 * time.Second

// throttle says when a kind of event is due to be logged again, and how
// many happened since it last was.
type throttle struct {
	mu   sync.Mutex
	last map[string]time.Time
	n    map[string]int
}

func (th *throttle) due(kind string, now time.Time) (int, bool) {
	th.mu.Lock()
	defer th.mu.Unlock()
	if th.last == nil {
		th.last, th.n = map[string]time.Time{}, map[string]int{}
	}
	th.n[kind]++
	if at, ok := th.last[kind]; ok && now.Sub(at) < refusalLogEvery {
		return 0, false
	}
	n := th.n[kind]
	th.last[kind], th.n[kind] = now, 0
	return n, true
}

// limitListener bounds the ADS server's open connections: one past
// xds.limits.max_connections is closed as soon as it is accepted, so its
// client fails at once and retries, rather than hanging in the backlog.
func (s *Server) limitListener(lis net.Listener) net.Listener {
	return &connLimit{Listener: lis, slots: make(chan struct{}, limitsOf(s.opts.Limits).maxConnections), s: s}
}

type connLimit struct {
	net.Listener
	slots chan struct{}
	s     *Server
}

func (l *connLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			l.s.metrics.connections.Inc()
			return &limitedConn{Conn: c, release: sync.OnceFunc(func() {
				<-l.slots
				l.s.metrics.connections.Dec()
			})}, nil
		default:
			c.Close()
			_ = l.s.refuse("connections", status.Errorf(codes.ResourceExhausted,
				"this control plane takes at most %d connections (xds.limits.max_connections)", cap(l.slots)))
		}
	}
}

// limitedConn frees its slot when closed, once.
type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	c.release()
	return c.Conn.Close()
}

// limitOptions are the gRPC server's options that go with the limits (the
// message size and streams per connection are set in Start from
// xds.max_message_size and xds.max_streams_per_peer). limitListener's
// connections are not *net.TCPConn, so grpc-go would read each through a
// 32 KiB buffer held for the connection's life, most of the memory of an
// idle Envoy; unbuffered reads cost a syscall or two per frame, which xDS
// traffic does not notice.
func (s *Server) limitOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ReadBufferSize(0)}
}

// cacheKey is the snapshot cache key group's nodes are served under.
func (s *Server) cacheKey(group string) string {
	s.mu.RLock()
	_, ok := s.groups[group]
	s.mu.RUnlock()
	if ok {
		return group
	}
	return FallbackGroup
}
