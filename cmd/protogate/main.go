// Command protogate is the protocol-translation gateway: it validates and
// translates mapping files, serves them to Envoy over xDS, and runs the
// bridges that turn HTTP into Dubbo calls and NATS publishes.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(execute(newRootCmd()))
}

// execute runs the command line and returns the exit code. A failure is
// reported on stderr once; a mistake in the command line itself (a flag
// missing, unknown or malformed) also gets the command's usage line, since
// the root command keeps usage out of runtime errors.
func execute(root *cobra.Command) int {
	err := root.Execute()
	if err == nil {
		return 0
	}
	w := root.ErrOrStderr()
	var quiet exitError
	if !errors.As(err, &quiet) {
		fmt.Fprintln(w, "error:", err)
	}
	var usage usageError
	if errors.As(err, &usage) {
		fmt.Fprintf(w, "Usage: %s\nRun '%s --help' for every flag.\n", usage.cmd.UseLine(), usage.cmd.CommandPath())
	}
	return 1
}

// exitError fails the command after it has already said why.
type exitError struct{ msg string }

func (e exitError) Error() string { return e.msg }

// usageError is a mistake in how a command was called.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }
