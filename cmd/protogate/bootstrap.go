package main

import (
	"errors"
	"fmt"
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
loopback, and the overload manager Envoy recommends at the edge (heap and connection limits;
--max-heap 0 leaves it out). Field names are Envoy's own snake_case, as in its documentation.`,
		Example: `  protogate bootstrap --node-id envoy-1 --node-group edge --xds 127.0.0.1:18000 > envoy.yaml
  envoy -c envoy.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Every error here is about a flag's value.
			var err error
			if o.AdminAddress, o.AdminPort, err = adminAddress(admin); err != nil {
				return usageError{cmd, err}
			}
			if o.MaxHeapBytes, err = heapLimit(maxHeap); err != nil {
				return usageError{cmd, err}
			}
			if o.MaxHeapBytes == 0 && cmd.Flags().Changed("max-connections") {
				return usageError{cmd, errors.New("--max-connections is a limit of the overload manager, which --max-heap 0 leaves out")}
			}
			if err := checkOutput(format); err != nil {
				return usageError{cmd, err}
			}
			b, err := xds.Bootstrap(o)
			if err != nil {
				return usageError{cmd, err}
			}
			for _, w := range o.Warnings() {
				loggerFrom(cmd).Warn(w)
			}
			return printMessage(cmd, b, format)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.NodeID, "node-id", "", "the node's id (required)")
	f.StringVar(&o.NodeGroup, "node-group", "", "the node group, sent as node.cluster (required)")
	f.StringVar(&o.XDSAddress, "xds", "", "HOST:PORT of the control plane (required)")
	f.BoolVar(&o.Delta, "delta", false, "use incremental (delta) xDS")
	f.StringVar(&o.GroupMetadataKey, "group-metadata-key", "", "also send the group under this node metadata key (as xds.group_metadata_key)")
	f.StringVar(&admin, "admin-address", "127.0.0.1:9901", "Envoy's own admin address (keep it on loopback; not protogate's admin)")
	f.StringVar(&maxHeap, "max-heap", "1GiB", "heap size at which Envoy starts shedding load; 0 disables the overload manager (and its connection limit)")
	f.Uint64Var(&o.MaxConnections, "max-connections", 50000, "downstream connections Envoy accepts at most (an overload manager limit)")
	f.StringVarP(&format, "output", "o", "yaml", "yaml or json")
	for _, n := range []string{"node-id", "node-group", "xds"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

// adminAddress splits --admin-address into Envoy's host and port.
func adminAddress(addr string) (string, uint32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("--admin-address %q: %w", addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("--admin-address %q: bad port", addr)
	}
	return host, uint32(p), nil
}

// heapLimit reads --max-heap; 0 means no overload manager.
func heapLimit(s string) (uint64, error) {
	n, err := config.ParseSize(s)
	if err != nil {
		return 0, fmt.Errorf("--max-heap: %w", err)
	}
	return uint64(n), nil
}
