package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/protogate/protogate/config"
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
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			// cobra checks required flags only after this hook, and its
			// error would carry no usage line; checking first lets it.
			if err := cmd.ValidateRequiredFlags(); err != nil {
				return usageError{cmd, err}
			}
			log, err := newLogger(cmd.ErrOrStderr(), logLevel, logFormat)
			if err != nil {
				return usageError{cmd, err}
			}
			cmd.SetContext(context.WithValue(cmd.Context(), loggerKey{}, log))
			if cmd.Flags().Lookup("config") != nil {
				warnUnknownEnv(log)
			}
			return nil
		},
	}
	// cobra's Print goes to stderr unless told otherwise; results belong on
	// stdout so they can be piped and redirected.
	root.SetOut(os.Stdout)
	root.SetVersionTemplate(versionLine() + "\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{c, err} })
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
		newRolloutCmd(),
		newOpenAPICmd(),
	)
	for _, c := range root.Commands() {
		argsAreUsage(c)
	}
	return root
}

// argsAreUsage makes a command's positional-argument errors usage errors.
func argsAreUsage(c *cobra.Command) {
	check := c.Args
	if check == nil {
		return
	}
	c.Args = func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{cmd, err}
		}
		return nil
	}
}

// warnUnknownEnv logs each PROTOGATE_ variable that names no setting, for
// the commands that load a mapping (which is what reads them).
func warnUnknownEnv(log *slog.Logger) {
	for _, msg := range config.UnknownEnvNow() {
		log.Warn(msg)
	}
}

// aliasFlags accepts old flag names as hidden spellings of current ones:
// help shows one name per setting, and scripts using the old name work.
func aliasFlags(cmd *cobra.Command, aliases map[string]string) {
	cmd.Flags().SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if to, ok := aliases[name]; ok {
			return pflag.NormalizedName(to)
		}
		return pflag.NormalizedName(name)
	})
}

// mappingDefault is the help text of a flag that overrides a mapping
// setting: the key, and the value it resolves to when the mapping leaves
// it out.
func mappingDefault(key string) string {
	if v := config.ServerDefault(key); v != "" {
		return fmt.Sprintf("(default: %s of the mapping, %s unless set)", key, v)
	}
	return fmt.Sprintf("(default: %s of the mapping)", key)
}
