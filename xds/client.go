package xds

import (
	"context"
	"fmt"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
)

// Dump connects to a control plane as an Envoy node would, with
// go-control-plane's own ADS client: for each type it opens a stream,
// receives the resources, ACKs them and returns them.
func Dump(ctx context.Context, address string, node *core.Node, types []resource.Type) (map[resource.Type][]*anypb.Any, error) {
	conn, err := grpc.NewClient(address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
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
		if err := c.Ack(); err != nil {
			return nil, fmt.Errorf("%s: ack %s: %w", address, typ, err)
		}
		out[typ] = resp.Resources
	}
	return out, nil
}
