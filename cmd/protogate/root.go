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
		newRunCmd(),
		newControlPlaneCmd(),
		newBridgeCmd(),
		newTranslateCmd(),
		newBootstrapCmd(),
		newDumpCmd(),
	)
	return root
}
