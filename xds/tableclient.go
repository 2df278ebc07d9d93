package xds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/protogate/protogate/routetable/routetablepb"
)

// BridgeAddressKey is the node metadata field in which a bridge announces
// the HOST:PORT it serves on.
const BridgeAddressKey = "protogate.bridge_address"

// TableClient keeps a bridge's route table in step with the control plane:
// one delta ADS stream subscribed to its group's table. Every table is
// handed to Apply, and ACKed if Apply takes it or NACKed with Apply's
// error; what Apply last took keeps serving while the control plane is
// unreachable, and a reconnect names its version, so an unchanged table is
// not sent again.
type TableClient struct {
	Address string // the control plane's ADS address
	NodeID  string
	Group   string
	// BridgeAddress is announced in the node's metadata.
	BridgeAddress string
	// Apply serves a table; an error rejects it and the bridge keeps the
	// one it has.
	Apply  func(*routetablepb.RouteTable) error
	Logger *slog.Logger
	// DialOptions replace the default plain-text transport.
	DialOptions []grpc.DialOption

	held string // the resource version of the table Apply last took

	mu      sync.Mutex // guards sends on stream, and leaving
	stream  discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	leaving bool
}

// Leave tells the control plane this bridge is going away: it unsubscribes
// from its table, which takes it out of its group's bridge endpoints at
// once; the table keeps serving. It does not reconnect after. The bridge
// then waits its drain window before closing its listener.
func (c *TableClient) Leave() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leaving = true
	if c.stream == nil {
		return errors.New("not connected to the control plane")
	}
	return c.stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: TableType, ResourceNamesUnsubscribe: []string{c.Group}})
}

func (c *TableClient) send(req *discovery.DeltaDiscoveryRequest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leaving {
		return nil // after Leave nothing more is asked or acknowledged
	}
	return c.stream.Send(req)
}

// Backoff bounds between attempts to reach the control plane.
const (
	tableMinBackoff = 200 * time.Millisecond
	tableMaxBackoff = 5 * time.Second
)

// Run follows the control plane until ctx ends.
func (c *TableClient) Run(ctx context.Context) error {
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	opts := c.DialOptions
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(c.Address, opts...)
	if err != nil {
		return fmt.Errorf("control plane %s: %w", c.Address, err)
	}
	defer conn.Close()
	backoff := tableMinBackoff
	connected := true // so the first failure is logged
	for ctx.Err() == nil {
		got, err := c.follow(ctx, conn, log)
		c.mu.Lock()
		left := c.leaving
		c.stream = nil
		c.mu.Unlock()
		if ctx.Err() != nil || left {
			return nil
		}
		if got {
			backoff = tableMinBackoff
		}
		if connected || got {
			log.Warn("control plane unreachable; serving the last route table taken", "xds", c.Address, "group", c.Group, "err", err)
		}
		connected = false
		// Jitter keeps a fleet of bridges from reconnecting in step.
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(backoff*2, tableMaxBackoff)
	}
	return nil
}

// follow runs one stream until it breaks; got says whether a response
// arrived on it.
func (c *TableClient) follow(ctx context.Context, conn *grpc.ClientConn, log *slog.Logger) (got bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		return false, err
	}
	first := &discovery.DeltaDiscoveryRequest{
		Node:                   c.node(),
		TypeUrl:                TableType,
		ResourceNamesSubscribe: []string{c.Group},
	}
	if c.held != "" {
		first.InitialResourceVersions = map[string]string{c.Group: c.held}
	}
	c.mu.Lock()
	if c.leaving {
		c.mu.Unlock()
		return false, errors.New("leaving")
	}
	c.stream = stream
	c.mu.Unlock()
	if err := c.send(first); err != nil {
		return false, err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the control plane closed the stream")
			}
			return got, err
		}
		if !got {
			log.Info("connected to the control plane", "xds", c.Address, "group", c.Group)
		}
		got = true
		ack := &discovery.DeltaDiscoveryRequest{TypeUrl: TableType, ResponseNonce: resp.GetNonce()}
		if err := c.take(resp, log); err != nil {
			ack.ErrorDetail = &status.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}
		}
		if err := c.send(ack); err != nil {
			return got, err
		}
	}
}

// take applies the group's table from a response.
func (c *TableClient) take(resp *discovery.DeltaDiscoveryResponse, log *slog.Logger) error {
	for _, name := range resp.GetRemovedResources() {
		if name == c.Group {
			log.Warn("the control plane serves no route table for this group any more; keeping the last one", "group", c.Group)
		}
	}
	for _, r := range resp.GetResources() {
		if r.GetName() != c.Group {
			continue
		}
		var t routetablepb.RouteTable
		if err := r.GetResource().UnmarshalTo(&t); err != nil {
			err = fmt.Errorf("route table %q: %w", r.GetName(), err)
			log.Error("route table rejected; keeping the last one", "group", c.Group, "reason", err.Error())
			return err
		}
		if err := c.Apply(&t); err != nil {
			log.Error("route table rejected; keeping the last one", "group", c.Group, "version", t.GetVersion(), "reason", err.Error())
			return err
		}
		c.held = r.GetVersion()
		log.Info("route table taken", "group", c.Group, "version", t.GetVersion())
	}
	return nil
}

func (c *TableClient) node() *core.Node {
	n := &core.Node{Id: c.NodeID, Cluster: c.Group}
	if c.BridgeAddress != "" {
		n.Metadata = &structpb.Struct{Fields: map[string]*structpb.Value{
			BridgeAddressKey: structpb.NewStringValue(c.BridgeAddress),
		}}
	}
	return n
}
