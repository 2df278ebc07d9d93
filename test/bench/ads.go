package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The ADS clients of the control-plane rows must cost little, or this
// process and not the control plane is what is measured: each decodes a
// response shallowly (version, type URL and nonce, the resources
// skipped without a copy) and ACKs it.

// shallowCodec marshals requests as protobuf and decodes only fields 1
// (version_info / system_version_info), 4 (type_url) and 5 (nonce) of a
// DiscoveryResponse or DeltaDiscoveryResponse.
type shallowCodec struct{}

// received counts the response bytes every client has decoded.
var received atomic.Int64

func (shallowCodec) Name() string { return "proto" } // the server's codec

func (shallowCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, err := proto.Marshal(v.(proto.Message))
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (shallowCodec) Unmarshal(data mem.BufferSlice, v any) error {
	received.Add(int64(data.Len()))
	var version, typeURL, nonce string
	r := sliceReader{bufs: data}
	for !r.eof() {
		tag, err := r.varint()
		if err != nil {
			return err
		}
		num, typ := protowire.Number(tag>>3), protowire.Type(tag&7)
		if typ == protowire.BytesType && (num == 1 || num == 4 || num == 5) {
			s, err := r.str()
			if err != nil {
				return err
			}
			switch num {
			case 1:
				version = s
			case 4:
				typeURL = s
			case 5:
				nonce = s
			}
			continue
		}
		if err := r.skip(typ); err != nil {
			return err
		}
	}
	switch m := v.(type) {
	case *discovery.DiscoveryResponse:
		m.VersionInfo, m.TypeUrl, m.Nonce = version, typeURL, nonce
	case *discovery.DeltaDiscoveryResponse:
		m.SystemVersionInfo, m.TypeUrl, m.Nonce = version, typeURL, nonce
	default:
		return fmt.Errorf("shallow codec: cannot decode into %T", v)
	}
	return nil
}

// sliceReader reads protobuf wire data across the buffers gRPC received
// it in.
type sliceReader struct {
	bufs mem.BufferSlice
	i    int    // current buffer
	cur  []byte // what is left of it
	init bool
}

func (r *sliceReader) fill() bool {
	if !r.init {
		r.init = true
		if len(r.bufs) > 0 {
			r.cur = r.bufs[0].ReadOnlyData()
		}
	}
	for len(r.cur) == 0 {
		r.i++
		if r.i >= len(r.bufs) {
			return false
		}
		r.cur = r.bufs[r.i].ReadOnlyData()
	}
	return true
}

func (r *sliceReader) eof() bool { return !r.fill() }

func (r *sliceReader) byte() (byte, error) {
	if !r.fill() {
		return 0, io.ErrUnexpectedEOF
	}
	b := r.cur[0]
	r.cur = r.cur[1:]
	return b, nil
}

func (r *sliceReader) varint() (uint64, error) {
	var v uint64
	for shift := 0; shift < 64; shift += 7 {
		b, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("shallow codec: varint too long")
}

func (r *sliceReader) advance(n uint64) error {
	for n > 0 {
		if !r.fill() {
			return io.ErrUnexpectedEOF
		}
		k := min(n, uint64(len(r.cur)))
		r.cur = r.cur[k:]
		n -= k
	}
	return nil
}

func (r *sliceReader) str() (string, error) {
	n, err := r.varint()
	if err != nil {
		return "", err
	}
	if n > 1<<20 {
		return "", fmt.Errorf("shallow codec: a %d-byte string field", n)
	}
	b := make([]byte, 0, n)
	for uint64(len(b)) < n {
		if !r.fill() {
			return "", io.ErrUnexpectedEOF
		}
		k := min(n-uint64(len(b)), uint64(len(r.cur)))
		b = append(b, r.cur[:k]...)
		r.cur = r.cur[k:]
	}
	return string(b), nil
}

func (r *sliceReader) skip(typ protowire.Type) error {
	switch typ {
	case protowire.VarintType:
		_, err := r.varint()
		return err
	case protowire.Fixed64Type:
		return r.advance(8)
	case protowire.Fixed32Type:
		return r.advance(4)
	case protowire.BytesType:
		n, err := r.varint()
		if err != nil {
			return err
		}
		return r.advance(n)
	}
	return fmt.Errorf("shallow codec: wire type %d", typ)
}

// subscription is what every client asks for: every cluster and listener
// (wildcard), and by name the endpoints and route configurations the
// translation of the same mapping has.
type subscription struct {
	group      string
	eds, rds   []string
	delta      bool
	maxMsgSize int
}

// The four types in the order Envoy asks for them.
var adsTypes = []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType}

func (s *subscription) names(typ string) []string {
	switch typ {
	case resource.EndpointType:
		return s.eds
	case resource.RouteType:
		return s.rds
	}
	return nil
}

// adsClient is one Envoy-like ADS client on a connection of its own.
type adsClient struct {
	id   int
	node *core.Node
	conn *grpc.ClientConn
	sub  *subscription

	mu       sync.Mutex
	acked    map[string]bool // types ACKed at least once
	rdsGen   int             // RDS changes ACKed
	rdsAt    time.Time       // when the latest was ACKed
	dropped  error           // the stream ended while it should not have
	complete bool            // every type ACKed
}

// fleet is every client of a control-plane row.
type fleet struct {
	clients  []*adsClient
	ctx      context.Context
	cancel   context.CancelFunc
	complete atomic.Int64 // clients that ACKed every type
	dropped  atomic.Int64
	wg       sync.WaitGroup
}

// connect starts n clients at once, as a fleet of Envoys reconnecting
// would.
func connect(addr string, n int, sub *subscription) *fleet {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleet{ctx: ctx, cancel: cancel}
	for i := range n {
		c := &adsClient{id: i, sub: sub, acked: map[string]bool{},
			node: &core.Node{Id: fmt.Sprintf("bench-envoy-%04d", i), Cluster: sub.group}}
		f.clients = append(f.clients, c)
	}
	for _, c := range f.clients {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := c.run(ctx, addr, f); err != nil && ctx.Err() == nil {
				c.mu.Lock()
				c.dropped = err
				c.mu.Unlock()
				f.dropped.Add(1)
			}
		}()
	}
	return f
}

// close ends every stream and connection.
func (f *fleet) close() {
	f.cancel()
	f.wg.Wait()
}

// firstDrop is the error of a dropped stream, if any.
func (f *fleet) firstDrop() error {
	for _, c := range f.clients {
		c.mu.Lock()
		err := c.dropped
		c.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// rdsGens is every client's count of RDS changes.
func (f *fleet) rdsGens() []int {
	out := make([]int, len(f.clients))
	for i, c := range f.clients {
		c.mu.Lock()
		out[i] = c.rdsGen
		c.mu.Unlock()
	}
	return out
}

// updated counts the live clients that ACKed an RDS change since base,
// and the time of the latest such ACK.
func (f *fleet) updated(base []int) (done, live int, last time.Time) {
	for i, c := range f.clients {
		c.mu.Lock()
		if c.dropped == nil {
			live++
			if c.rdsGen > base[i] {
				done++
				if c.rdsAt.After(last) {
					last = c.rdsAt
				}
			}
		}
		c.mu.Unlock()
	}
	return done, live, last
}

func (c *adsClient) dial(addr string) error {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Envoy's HTTP/2 windows are large; grpc-go's small default
		// would cost a window update round trip per 64 KiB.
		grpc.WithInitialWindowSize(16<<20), grpc.WithInitialConnWindowSize(16<<20),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(c.sub.maxMsgSize), grpc.ForceCodecV2(shallowCodec{})))
	if err != nil {
		return fmt.Errorf("client %d: %w", c.id, err)
	}
	c.conn = conn
	return nil
}

// run subscribes to every type and ACKs each response until ctx ends.
func (c *adsClient) run(ctx context.Context, addr string, f *fleet) error {
	if err := c.dial(addr); err != nil {
		return err
	}
	defer c.conn.Close()
	ads := discovery.NewAggregatedDiscoveryServiceClient(c.conn)
	if c.sub.delta {
		return c.runDelta(ctx, ads, f)
	}
	s, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		return fmt.Errorf("client %d: opening the stream: %w", c.id, err)
	}
	for _, typ := range adsTypes {
		if err := s.Send(&discovery.DiscoveryRequest{Node: c.node, TypeUrl: typ, ResourceNames: c.sub.names(typ)}); err != nil {
			return fmt.Errorf("client %d: subscribing to %s: %w", c.id, typ, err)
		}
	}
	versions := map[string]string{}
	for {
		resp, err := s.Recv()
		if err != nil {
			return fmt.Errorf("client %d: %w", c.id, err)
		}
		typ := resp.TypeUrl
		ack := &discovery.DiscoveryRequest{Node: c.node, TypeUrl: typ, VersionInfo: resp.VersionInfo, ResponseNonce: resp.Nonce, ResourceNames: c.sub.names(typ)}
		if err := s.Send(ack); err != nil {
			return fmt.Errorf("client %d: ACK of %s: %w", c.id, typ, err)
		}
		changed := versions[typ] != resp.VersionInfo
		versions[typ] = resp.VersionInfo
		c.acked1(typ, changed, f)
	}
}

// runDelta is run over the incremental protocol: wildcard clusters and
// listeners, named endpoints and routes.
func (c *adsClient) runDelta(ctx context.Context, ads discovery.AggregatedDiscoveryServiceClient, f *fleet) error {
	s, err := ads.DeltaAggregatedResources(ctx)
	if err != nil {
		return fmt.Errorf("client %d: opening the delta stream: %w", c.id, err)
	}
	for _, typ := range adsTypes {
		if err := s.Send(&discovery.DeltaDiscoveryRequest{Node: c.node, TypeUrl: typ, ResourceNamesSubscribe: c.sub.names(typ)}); err != nil {
			return fmt.Errorf("client %d: subscribing to %s: %w", c.id, typ, err)
		}
	}
	for {
		resp, err := s.Recv()
		if err != nil {
			return fmt.Errorf("client %d: %w", c.id, err)
		}
		if err := s.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resp.TypeUrl, ResponseNonce: resp.Nonce}); err != nil {
			return fmt.Errorf("client %d: ACK of %s: %w", c.id, resp.TypeUrl, err)
		}
		// every delta response carries a change
		c.acked1(resp.TypeUrl, true, f)
	}
}

// acked1 records an ACK just sent.
func (c *adsClient) acked1(typ string, changed bool, f *fleet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := !c.acked[typ]
	c.acked[typ] = true
	if typ == resource.RouteType && changed && !first {
		c.rdsGen++
		c.rdsAt = time.Now()
	}
	if !c.complete {
		for _, t := range adsTypes {
			if !c.acked[t] {
				return
			}
		}
		c.complete = true
		f.complete.Add(1)
	}
}
