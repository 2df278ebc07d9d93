package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
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
(with @type, and snake_case field names as in Envoy's documentation), in YAML or JSON. Nothing is started. --as-bootstrap prints one group as a
static Envoy bootstrap (routes inlined, endpoints assigned) for envoy --mode validate.`,
		Example: `  protogate translate -c examples/mappings/mixed.yaml
  protogate translate -c examples/mappings/mixed.yaml --node-group edge --type route -o json
  protogate translate -c examples/mappings/dubbo.yaml --as-bootstrap > envoy.yaml && envoy --mode validate -c envoy.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kinds, err := kindsOf(kind)
			if err == nil {
				err = checkOutput(format)
			}
			if err != nil {
				return usageError{cmd, err}
			}
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
				if res.Group(group) == nil {
					return noGroupError(res, group)
				}
				groups = []string{group}
			}
			if asBootstrap {
				return printBootstrap(cmd, res, group, format)
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
			return fmt.Errorf("--as-bootstrap needs --node-group: the mapping has groups %s", strings.Join(translator.GroupNames(res), ", "))
		}
		group = res.Groups[0].Name
	}
	g := res.Group(group)
	if g == nil {
		return noGroupError(res, group)
	}
	b, err := translator.StaticBootstrap(g, "127.0.0.1", 9901)
	if err != nil {
		return err
	}
	return printMessage(cmd, b, format)
}

// kindsOf reads --type: nil for all kinds.
func kindsOf(kind string) ([]string, error) {
	if kind == "all" {
		return nil, nil
	}
	if !slices.Contains(translator.Kinds, kind) {
		return nil, fmt.Errorf("--type %q: use one of %s or all", kind, strings.Join(translator.Kinds, ", "))
	}
	return []string{kind}, nil
}

// checkOutput reads -o before any work is done.
func checkOutput(format string) error {
	if format != "yaml" && format != "json" {
		return fmt.Errorf("--output %q: use yaml or json", format)
	}
	return nil
}

// noGroupError names the groups a mapping has when asked for another.
func noGroupError(res *translator.Result, group string) error {
	return fmt.Errorf("--node-group: the mapping has no node group %q (groups: %s)", group, strings.Join(translator.GroupNames(res), ", "))
}

// printMessage prints a message as Envoy's JSON, in YAML or JSON.
func printMessage(cmd *cobra.Command, m proto.Message, format string) error {
	js, err := translator.MessageJSON(m)
	if err != nil {
		return err
	}
	out, err := translator.Format(js, format)
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

// asProblems keeps Problems as they are and makes any other error one
// problem of the file.
func asProblems(path string, err error) error {
	var probs config.Problems
	if errors.As(err, &probs) {
		return err
	}
	return config.Problems{{File: path, Msg: err.Error()}}
}

func reportProblems(cmd *cobra.Command, path string, err error) error {
	var probs config.Problems
	if !errors.As(err, &probs) {
		return err
	}
	for _, p := range probs {
		if p.File == "" {
			p.File = path // problems found after loading name no file of their own
		}
		cmd.PrintErrln(p.String())
	}
	cmd.PrintErrf("%s: %s; nothing was loaded\n", path, plural(len(probs), "problem"))
	return exitError{"invalid mapping"}
}
