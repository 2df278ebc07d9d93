// Command protogate is the protocol-translation gateway: it validates and
// translates mapping files, serves them to Envoy over xDS, and runs the
// bridges that turn HTTP into Dubbo calls and NATS publishes.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		var quiet exitError
		if !errors.As(err, &quiet) {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(1)
	}
}

// exitError fails the command after it has already said why.
type exitError struct{ msg string }

func (e exitError) Error() string { return e.msg }
