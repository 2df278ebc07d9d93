package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/translator"
)

func newTranslateCmd() *cobra.Command {
	var (
		path, group, kind, format string
		asBootstrap               bool
	)
	cmd := &cobra.Command{
		Use:   "translate -c FILE|DIR",
		Short: "Print the Envoy resources a mapping produces",
		Long: `translate loads and validates a mapping, translates it exactly as the control plane does,
and prints each node group's listeners, routes, clusters and endpoints as Envoy's own JSON
(with @type), in YAML or JSON. Nothing is started. --as-bootstrap prints one group as a
static Envoy bootstrap (routes inlined, endpoints assigned) for envoy --mode validate.`,
		Example: `  protogate translate -c examples/mappings/mixed.yaml
  protogate translate -c examples/mappings/mixed.yaml --node-group edge --type route -o json
  protogate translate -c examples/mappings/dubbo.yaml --as-bootstrap > envoy.yaml && envoy --mode validate -c envoy.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadOrReport(cmd, path)
			if err != nil {
				return err
			}
			res, err := translator.Translate(cfg)
			if err != nil {
				return reportProblems(cmd, path, err)
			}
			var groups []string
			if group != "" {
				groups = []string{group}
			}
			if asBootstrap {
				return printBootstrap(cmd, res, group, format)
			}
			var kinds []string
			if kind != "all" {
				if !slices.Contains(translator.Kinds, kind) {
					return fmt.Errorf("--type %q: use one of %s or all", kind, strings.Join(translator.Kinds, ", "))
				}
				kinds = []string{kind}
			}
			out, err := translator.Render(res, groups, kinds, format)
			if err != nil {
				return err
			}
			cmd.Print(string(out))
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "mapping file or directory (required)")
	cmd.Flags().StringVar(&group, "node-group", "", "print only this node group")
	cmd.Flags().StringVar(&kind, "type", "all", "listener, route, cluster, endpoint or all")
	cmd.Flags().StringVarP(&format, "output", "o", "yaml", "yaml or json")
	cmd.Flags().BoolVar(&asBootstrap, "as-bootstrap", false, "print one group as a static Envoy bootstrap")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func printBootstrap(cmd *cobra.Command, res *translator.Result, group, format string) error {
	if group == "" {
		if len(res.Groups) != 1 {
			names := make([]string, len(res.Groups))
			for i, g := range res.Groups {
				names[i] = g.Name
			}
			return fmt.Errorf("--as-bootstrap needs --node-group: the mapping has groups %s", strings.Join(names, ", "))
		}
		group = res.Groups[0].Name
	}
	g := res.Group(group)
	if g == nil {
		return fmt.Errorf("no node group named %q", group)
	}
	b, err := translator.StaticBootstrap(g, "127.0.0.1", 9901)
	if err != nil {
		return err
	}
	return printMessage(cmd, b, format)
}

// printMessage prints a message as Envoy's JSON, in YAML or JSON.
func printMessage(cmd *cobra.Command, m proto.Message, format string) error {
	raw, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return err
	}
	out, err := translator.Format(compact.Bytes(), format)
	if err != nil {
		return err
	}
	cmd.Print(string(out))
	return nil
}

// loadOrReport loads a mapping, printing every problem when it fails.
func loadOrReport(cmd *cobra.Command, path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, reportProblems(cmd, path, err)
	}
	return cfg, nil
}

func reportProblems(cmd *cobra.Command, path string, err error) error {
	var probs config.Problems
	if !errors.As(err, &probs) {
		return err
	}
	for _, p := range probs {
		cmd.PrintErrln(p.String())
	}
	cmd.PrintErrf("%s: %s; nothing was loaded\n", path, plural(len(probs), "problem"))
	return exitError{"invalid mapping"}
}
