package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/openapi"
	"github.com/protogate/protogate/routetable"
)

func newOpenAPICmd() *cobra.Command {
	var path, listener, group string
	cmd := &cobra.Command{
		Use:   "openapi -c FILE|DIR",
		Short: "Print the OpenAPI 3.1 description of the HTTP routes a mapping serves",
		Long: `openapi loads and validates a mapping, builds the bridges' route table from it (every HTTP
listener's, or one node group's with --node-group) and prints the OpenAPI 3.1 document (JSON)
describing those routes: paths and methods, parameters and bodies with JSON Schemas from the
mapping's Java types, and every answer a route can give, errors included. --listener keeps one
listener's routes. The bridges serve the same document at bridge.openapi_path when it is set.`,
		Example: `  protogate openapi -c examples/quickstart.yaml > openapi.json
  protogate openapi -c examples/mappings/mixed.yaml --node-group edge --listener public`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadOrReport(cmd, path)
			if err != nil {
				return err
			}
			if err := checkListener(cfg, listener); err != nil {
				return usageError{cmd, err}
			}
			t, err := routetable.FromConfig(cfg, group)
			if err != nil {
				return usageError{cmd, fmt.Errorf("--node-group: %w", err)}
			}
			if listener != "" && !slices.ContainsFunc(t.Routes, func(r routetable.Route) bool { return r.Listener == listener }) {
				if group == "" {
					return usageError{cmd, fmt.Errorf("--listener %q has no routes to describe", listener)}
				}
				return usageError{cmd, fmt.Errorf("--listener %q: node group %q does not serve it, or it has no routes", listener, group)}
			}
			doc, err := openapi.Document(t, listener)
			if err != nil {
				return fmt.Errorf("describing %s: %w", path, err)
			}
			cmd.Print(string(doc))
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "mapping file or directory (required)")
	cmd.Flags().StringVar(&listener, "listener", "", "describe only this HTTP listener's routes")
	cmd.Flags().StringVar(&group, "node-group", "", "describe only the routes of this node group")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// checkListener names what is wrong with --listener: no such listener, or
// one that is not HTTP (only HTTP listeners have described routes).
func checkListener(cfg *config.Config, name string) error {
	if name == "" {
		return nil
	}
	var http []string
	for _, l := range cfg.Listeners {
		if l.Name == name && l.Protocol != config.ProtocolHTTP {
			return fmt.Errorf("--listener %q is a %s listener; only http listeners have routes to describe", name, l.Protocol)
		}
		if l.Protocol == config.ProtocolHTTP {
			http = append(http, l.Name)
		}
	}
	if !slices.Contains(http, name) {
		return fmt.Errorf("--listener: the mapping has no listener %q (http listeners: %s)", name, strings.Join(http, ", "))
	}
	return nil
}
