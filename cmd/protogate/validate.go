package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/routetable"
	"github.com/protogate/protogate/translator"
)

func newValidateCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "validate -c FILE|DIR",
		Short: "Check a mapping file or directory and report every problem",
		Long: `validate loads a mapping the way the gateway does (a file, or every .yaml, .yml,
.json and .toml file of a directory merged in name order, with PROTOGATE_ environment
overrides), checks it, translates it for Envoy and builds the bridges' route table, so a
mapping it accepts is accepted by translate, controlplane, bridge and run. It exits 0 with a one-line summary, or 1 listing every problem
with its file, field path and reason.`,
		Example: `  protogate validate -c examples/mappings/dubbo.yaml
  protogate validate -c /etc/protogate/mapping.d/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadOrReport(cmd, path)
			if err != nil {
				return err
			}
			// What translate, controlplane, bridge and run would refuse,
			// validate refuses too: the Envoy translation with Envoy's own
			// rules and each group's bridge route table, and the table of
			// every listener that bridge and run serve from a file.
			if _, err := translator.Translate(cfg); err != nil {
				return reportProblems(cmd, path, err)
			}
			if _, err := routetable.FromConfig(cfg, ""); err != nil {
				return reportProblems(cmd, path, config.Problems{{File: path, Msg: err.Error()}})
			}
			files, _ := config.Files(path)
			cmd.Printf("ok: %s: %s, %s, %s (%s)\n", path,
				plural(len(cfg.Listeners), "listener"), plural(cfg.Routes(), "route"),
				plural(cfg.Upstreams.Count(), "upstream"), plural(len(files), "file"))
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "mapping file or directory (required)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, strings.TrimSuffix(word, "s"))
}
