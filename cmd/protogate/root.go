package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

type loggerKey struct{}

// loggerFrom returns the logger the root command set up.
func loggerFrom(cmd *cobra.Command) *slog.Logger {
	if l, ok := cmd.Context().Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

func newRootCmd() *cobra.Command {
	var logLevel, logFormat string
	root := &cobra.Command{
		Use:   "protogate",
		Short: "Reach Dubbo services and NATS streams over plain HTTP through Envoy",
		Long: `protogate turns a protocol-mapping file into Envoy configuration served over xDS,
and runs the bridges that turn HTTP requests into Dubbo generic calls and NATS publishes.`,
		Example: `  protogate validate -c examples/mappings/dubbo.yaml
  protogate schema > protogate.schema.json`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd.ErrOrStderr(), logLevel, logFormat)
			if err != nil {
				return err
			}
			cmd.SetContext(context.WithValue(cmd.Context(), loggerKey{}, log))
			return nil
		},
	}
	// cobra's Print goes to stderr unless told otherwise; results belong on
	// stdout so they can be piped and redirected.
	root.SetOut(os.Stdout)
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	root.PersistentFlags().StringVar(&logFormat, "log-format", "text", "text or json")
	root.AddCommand(
		newValidateCmd(),
		newSchemaCmd(),
		newVersionCmd(),
		pendingCmd("run", "Run the control plane and the bridges in one process",
			"  protogate run -c examples/mappings/mixed.yaml",
			"the control plane and the bridges together, fed by one translated state"),
		newControlPlaneCmd(),
		newBridgeCmd(),
		newTranslateCmd(),
		newBootstrapCmd(),
		newDumpCmd(),
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
