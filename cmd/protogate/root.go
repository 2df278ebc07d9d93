package main

import (
	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "protogate",
		Short: "Reach Dubbo services and NATS streams over plain HTTP through Envoy",
		Long: `protogate turns a protocol-mapping file into Envoy configuration served over xDS,
and runs the bridges that turn HTTP requests into Dubbo generic calls and NATS publishes.`,
		Example: `  protogate validate -c examples/mappings/dubbo.yaml
  protogate schema > protogate.schema.json`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newValidateCmd(),
		newSchemaCmd(),
		newVersionCmd(),
		pendingCmd("run", "Run the control plane and the bridges in one process",
			"  protogate run -c examples/mappings/mixed.yaml",
			"the control plane and the bridges together, fed by one translated state"),
		pendingCmd("controlplane", "Serve the mapping to Envoy over ADS (xDS)",
			"  protogate controlplane -c examples/mappings/mixed.yaml --xds-address 127.0.0.1:18000",
			"the ADS server with node groups, hot reload and NACK tracking"),
		pendingCmd("bridge", "Run the HTTP to Dubbo and NATS bridges alone",
			"  protogate bridge -c examples/mappings/dubbo.yaml",
			"the bridge HTTP server with the Dubbo and NATS handlers"),
		newTranslateCmd(),
		pendingCmd("bootstrap", "Print an Envoy bootstrap that connects to the control plane",
			"  protogate bootstrap --node-id envoy-1 --node-group edge --xds 127.0.0.1:18000",
			"the Envoy bootstrap with ADS, admin and overload settings"),
		pendingCmd("dump", "Ask a running control plane, as an Envoy would, what it serves",
			"  protogate dump --xds 127.0.0.1:18000 --node-id envoy-1 --node-group edge -o yaml",
			"an xDS client that fetches, ACKs and prints a node's resources"),
	)
	return root
}

// pendingCmd is a command whose implementation has not landed yet. It says
// so and fails, so no script mistakes it for having run.
func pendingCmd(name, short, example, what string) *cobra.Command {
	return &cobra.Command{
		Use:     name,
		Short:   short + " (not ready yet)",
		Example: example,
		// Accept the flags the finished command will take, so scripts get
		// the plain "not ready" message rather than a flag error.
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
		Args:               cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.PrintErrf("protogate %s is not ready yet; it is to provide %s.\n"+
				"Today you can check a mapping with: protogate validate -c FILE|DIR\n", name, what)
			return exitError{"not ready"}
		},
	}
}
