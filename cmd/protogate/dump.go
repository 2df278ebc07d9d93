package main

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/protogate/protogate/translator"
	"github.com/protogate/protogate/xds"
)

var kindTypes = map[string]resource.Type{
	translator.KindListener: resource.ListenerType,
	translator.KindRoute:    resource.RouteType,
	translator.KindCluster:  resource.ClusterType,
	translator.KindEndpoint: resource.EndpointType,
}

func newDumpCmd() *cobra.Command {
	var addr, nodeID, group, metadataKey, kind, format string
	var timeout time.Duration
	var tlsOpts xds.ClientTLS
	cmd := &cobra.Command{
		Use:   "dump --xds ADDR --node-id ID --node-group G",
		Short: "Ask a running control plane, as an Envoy would, what it serves a node",
		Long: `dump connects to a control plane with go-control-plane's ADS client as the given node,
receives and ACKs each resource type, and prints what it got in the same form as translate.
A group the control plane does not know is an error (it would serve such a node an empty
configuration), naming the groups it has. Against a control plane with xds.security.tls,
give --tls-cert, --tls-key and --tls-ca: an identity its rules allow for the node id and group.`,
		Example: `  protogate dump --xds 127.0.0.1:18000 --node-id envoy-1 --node-group edge
  protogate dump --xds 127.0.0.1:18000 --node-id envoy-1 --node-group edge --type route -o json
  protogate dump --xds protogate-xds:18000 --node-id envoy-debug --node-group edge \
    --tls-cert client.crt --tls-key client.key --tls-ca ca.crt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kinds, err := kindsOf(kind)
			if err == nil {
				err = checkOutput(format)
			}
			var dial []grpc.DialOption
			if err == nil {
				dial, err = clientDialOptions(tlsOpts, addr, loggerFrom(cmd))
			}
			if err != nil {
				return usageError{cmd, err}
			}
			var types []resource.Type
			for _, k := range translator.Kinds {
				if kinds == nil || k == kind {
					types = append(types, kindTypes[k])
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			got, err := xds.Dump(ctx, addr, dumpNode(nodeID, group, metadataKey), types, dial...)
			if err != nil {
				return err
			}
			g := translator.Group{Name: group}
			for _, typ := range types {
				for _, a := range got[typ] {
					m, err := unpack(a)
					if err != nil {
						return err
					}
					switch r := m.(type) {
					case *listener.Listener:
						g.Listeners = append(g.Listeners, r)
					case *route.RouteConfiguration:
						g.Routes = append(g.Routes, r)
					case *cluster.Cluster:
						g.Clusters = append(g.Clusters, r)
					case *endpoint.ClusterLoadAssignment:
						g.Endpoints = append(g.Endpoints, r)
					}
				}
			}
			sortGroup(&g)
			out, err := translator.Render(&translator.Result{Groups: []translator.Group{g}}, nil, kinds, format)
			if err != nil {
				return err
			}
			cmd.Print(string(out))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "xds", "127.0.0.1:18000", "HOST:PORT of the control plane")
	f.StringVar(&nodeID, "node-id", "", "the node id to ask as (required)")
	f.StringVar(&group, "node-group", "", "the node group, sent as node.cluster (required)")
	f.StringVar(&metadataKey, "group-metadata-key", "", "also send the group under this node metadata key (as xds.group_metadata_key)")
	f.StringVar(&kind, "type", "all", "listener, route, cluster, endpoint or all")
	f.StringVarP(&format, "output", "o", "yaml", "yaml or json")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	addClientTLSFlags(cmd, &tlsOpts)
	_ = cmd.MarkFlagRequired("node-id")
	_ = cmd.MarkFlagRequired("node-group")
	return cmd
}

// addClientTLSFlags are the mTLS flags of the control plane's clients
// (dump, bridge --xds).
func addClientTLSFlags(cmd *cobra.Command, t *xds.ClientTLS) {
	f := cmd.Flags()
	f.StringVar(&t.CertFile, "tls-cert", "", "client certificate (PEM) for the control plane's mTLS; with --tls-key and --tls-ca")
	f.StringVar(&t.KeyFile, "tls-key", "", "the private key of --tls-cert (PEM)")
	f.StringVar(&t.CAFile, "tls-ca", "", "the CA the control plane's certificate must chain to (PEM)")
	f.StringVar(&t.ServerName, "tls-server-name", "", "the name the control plane's certificate must hold (default: the host of --xds)")
}

// clientDialOptions are the transport to the control plane: mTLS when
// the TLS flags are given, plain text (nil) otherwise.
func clientDialOptions(t xds.ClientTLS, addr string, log *slog.Logger) ([]grpc.DialOption, error) {
	if !t.Enabled() {
		if t.ServerName != "" {
			return nil, errors.New("--tls-server-name needs --tls-cert, --tls-key and --tls-ca")
		}
		return nil, nil
	}
	opt, err := t.DialOption(addr, log)
	if err != nil {
		return nil, err
	}
	return []grpc.DialOption{opt}, nil
}

// dumpNode is the node dump asks as, the group placed as bootstrap places
// it for Envoy.
func dumpNode(id, group, metadataKey string) *core.Node {
	n := &core.Node{Id: id, Cluster: group}
	if metadataKey != "" {
		n.Metadata = &structpb.Struct{Fields: map[string]*structpb.Value{metadataKey: structpb.NewStringValue(group)}}
	}
	return n
}

func unpack(a *anypb.Any) (proto.Message, error) {
	return a.UnmarshalNew()
}

// sortGroup orders resources by name, as translate prints them.
func sortGroup(g *translator.Group) {
	slices.SortFunc(g.Listeners, func(a, b *listener.Listener) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(g.Routes, func(a, b *route.RouteConfiguration) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(g.Clusters, func(a, b *cluster.Cluster) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(g.Endpoints, func(a, b *endpoint.ClusterLoadAssignment) int { return strings.Compare(a.ClusterName, b.ClusterName) })
}
