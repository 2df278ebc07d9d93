package main

import (
	"github.com/spf13/cobra"

	"github.com/protogate/protogate/config"
)

func newSchemaCmd() *cobra.Command {
	var markdown bool
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the mapping file",
		Long: `schema prints a JSON Schema (draft 2020-12) generated from the mapping model, for
editors to complete and check mapping files. --markdown prints the field reference that
docs/config.md holds instead.`,
		Example: `  protogate schema > protogate.schema.json
  # VS Code with the YAML extension, first line of a mapping file:
  # yaml-language-server: $schema=./protogate.schema.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if markdown {
				cmd.Print(config.Markdown())
				return nil
			}
			out, err := config.Schema()
			if err != nil {
				return err
			}
			cmd.Println(string(out))
			return nil
		},
	}
	cmd.Flags().BoolVar(&markdown, "markdown", false, "print the field reference as Markdown")
	return cmd
}
