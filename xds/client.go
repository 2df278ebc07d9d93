package xds

import (
	"context"
	"fmt"
	"strings"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
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
// fallback, which would look like a group that serves nothing.
func Dump(ctx context.Context, address string, node *core.Node, types []resource.Type) (map[resource.Type][]*anypb.Any, error) {
	// go-control-plane's client hides the response's version; the stream
	// interceptor reads it on the way in.
	var seen versionRecorder
	conn, err := grpc.NewClient(address,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStreamInterceptor(seen.intercept))
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
