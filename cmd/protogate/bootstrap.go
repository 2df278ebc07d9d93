package main

import (
	"net"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/xds"
)

func newBootstrapCmd() *cobra.Command {
	var (
		o                      xds.BootstrapOptions
		admin, format, maxHeap string
	)
	cmd := &cobra.Command{
		Use:   "bootstrap --node-id ID --node-group G --xds ADDR",
		Short: "Print an Envoy bootstrap that connects to the control plane",
		Long: `bootstrap prints a complete Envoy bootstrap for one node: its identity and group, ADS over
gRPC (or delta xDS) to the control plane with an initial fetch timeout, Envoy's admin on
loopback, and the overload manager Envoy recommends at the edge (heap and connection limits).`,
		Example: `  protogate bootstrap --node-id envoy-1 --node-group edge --xds 127.0.0.1:18000 > envoy.yaml
  envoy -c envoy.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, port, err := net.SplitHostPort(admin)
			if err != nil {
				return err
			}
			p, err := strconv.Atoi(port)
			if err != nil {
				return err
			}
			o.AdminAddress, o.AdminPort = host, uint32(p)
			heap, err := config.ParseSize(maxHeap)
			if err != nil {
				return err
			}
			o.MaxHeapBytes = uint64(heap)
			b, err := xds.Bootstrap(o)
			if err != nil {
				return err
			}
			return printMessage(cmd, b, format)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.NodeID, "node-id", "", "the node's id (required)")
	f.StringVar(&o.NodeGroup, "node-group", "", "the node group, sent as node.cluster (required)")
	f.StringVar(&o.XDSAddress, "xds", "", "HOST:PORT of the control plane (required)")
	f.BoolVar(&o.Delta, "delta", false, "use incremental (delta) xDS")
	f.StringVar(&o.GroupMetadataKey, "group-metadata-key", "", "also send the group under this node metadata key")
	f.StringVar(&admin, "admin-address", "127.0.0.1:9901", "Envoy's admin address (keep it on loopback)")
	f.StringVar(&maxHeap, "max-heap", "1GiB", "heap size at which Envoy starts shedding load")
	f.Uint64Var(&o.MaxConnections, "max-connections", 50000, "downstream connections Envoy accepts at most")
	f.StringVarP(&format, "output", "o", "yaml", "yaml or json")
	for _, n := range []string{"node-id", "node-group", "xds"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}
