package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/translator"
	"github.com/protogate/protogate/xds"
)

func newBootstrapCmd() *cobra.Command {
	var (
		o                      xds.BootstrapOptions
		admin, format, maxHeap string
		tlsOpts                xds.BootstrapTLS
		sdsOut                 string
		metadata               []string
	)
	cmd := &cobra.Command{
		Use:   "bootstrap --node-id ID --node-group G --xds ADDR",
		Short: "Print an Envoy bootstrap that connects to the control plane",
		Long: `bootstrap prints a complete Envoy bootstrap for one node: its identity and group, ADS over
gRPC (or delta xDS) to the control plane with an initial fetch timeout, Envoy's admin on
loopback, and the overload manager Envoy recommends at the edge (heap and connection limits;
--max-heap 0 leaves it out). Field names are Envoy's own snake_case, as in its documentation.

With --tls-cert, --tls-key and --tls-ca (paths as Envoy will read them), the xDS connection
is mTLS: Envoy presents the certificate and checks the control plane's against the CA and
--tls-server-name (default: the host of --xds). Envoy reloads certificate files only for
secrets it gets over SDS, so the bootstrap reads them through two small SDS files in
--tls-sds-dir; --sds-output DIR writes those files (put them where --tls-sds-dir says).
Envoy then re-reads the certificate, key and CA when they are replaced in their directory
(a Kubernetes Secret update, or any rename into it), without a restart.`,
		Example: `  protogate bootstrap --node-id envoy-1 --node-group edge --xds 127.0.0.1:18000 > envoy.yaml
  envoy -c envoy.yaml
  protogate bootstrap --node-id envoy-9 --node-group edge --xds 127.0.0.1:18000 --node-metadata protogate.canary=true
  protogate bootstrap --node-id envoy-1 --node-group edge --xds protogate-xds:18000 \
    --tls-cert /etc/envoy/tls/tls.crt --tls-key /etc/envoy/tls/tls.key --tls-ca /etc/envoy/tls/ca.crt \
    --tls-sds-dir /etc/envoy --sds-output . > envoy.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Every error here is about a flag's value.
			var err error
			if o.AdminAddress, o.AdminPort, err = adminAddress(admin); err != nil {
				return usageError{cmd, err}
			}
			if o.MaxHeapBytes, err = heapLimit(maxHeap); err != nil {
				return usageError{cmd, err}
			}
			if o.MaxHeapBytes == 0 && cmd.Flags().Changed("max-connections") {
				return usageError{cmd, errors.New("--max-connections is a limit of the overload manager, which --max-heap 0 leaves out")}
			}
			if err := checkOutput(format); err != nil {
				return usageError{cmd, err}
			}
			if o.NodeMetadata, err = nodeMetadata(metadata); err != nil {
				return usageError{cmd, err}
			}
			if err := bootstrapTLS(cmd, &o, &tlsOpts, sdsOut); err != nil {
				return usageError{cmd, err}
			}
			b, err := xds.Bootstrap(o)
			if err != nil {
				return usageError{cmd, err}
			}
			for _, w := range o.Warnings() {
				loggerFrom(cmd).Warn(w)
			}
			if sdsOut != "" {
				if err := writeSDSFiles(o.TLS, sdsOut); err != nil {
					return err
				}
			}
			return printMessage(cmd, b, format)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.NodeID, "node-id", "", "the node's id (required)")
	f.StringVar(&o.NodeGroup, "node-group", "", "the node group, sent as node.cluster (required)")
	f.StringVar(&o.XDSAddress, "xds", "", "HOST:PORT of the control plane (required)")
	f.BoolVar(&o.Delta, "delta", false, "use incremental (delta) xDS")
	f.StringVar(&o.GroupMetadataKey, "group-metadata-key", "", "also send the group under this node metadata key (as xds.group_metadata_key)")
	f.StringArrayVar(&metadata, "node-metadata", nil, "KEY=VALUE added to the node's metadata (repeatable); a canary of xds.rollout sets its canary_label key to true")
	f.StringVar(&admin, "admin-address", "127.0.0.1:9901", "Envoy's own admin address (keep it on loopback; not protogate's admin)")
	f.StringVar(&maxHeap, "max-heap", "1GiB", "heap size at which Envoy starts shedding load; 0 disables the overload manager (and its connection limit)")
	f.Uint64Var(&o.MaxConnections, "max-connections", 50000, "downstream connections Envoy accepts at most (an overload manager limit)")
	f.StringVarP(&format, "output", "o", "yaml", "yaml or json")
	f.StringVar(&tlsOpts.CertFile, "tls-cert", "", "Envoy's client certificate for the xDS connection (PEM; a path as Envoy reads it)")
	f.StringVar(&tlsOpts.KeyFile, "tls-key", "", "the private key of --tls-cert (PEM)")
	f.StringVar(&tlsOpts.CAFile, "tls-ca", "", "the CA the control plane's certificate must chain to (PEM)")
	f.StringVar(&tlsOpts.ServerName, "tls-server-name", "", "the name the control plane's certificate must hold (default: the host of --xds)")
	f.StringVar(&tlsOpts.SDSDir, "tls-sds-dir", "/etc/envoy", "where Envoy finds the two SDS files that name the certificate files")
	f.StringVar(&sdsOut, "sds-output", "", "also write the two SDS files into this directory")
	for _, n := range []string{"node-id", "node-group", "xds"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

// adminAddress splits --admin-address into Envoy's host and port.
func adminAddress(addr string) (string, uint32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("--admin-address %q: %w", addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("--admin-address %q: bad port", addr)
	}
	return host, uint32(p), nil
}

// nodeMetadata reads the --node-metadata flags. Values stay strings, as
// xds.rollout.canary_label compares with "true"; a key given twice is a
// mistake, not an override.
func nodeMetadata(flags []string) (map[string]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range flags {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--node-metadata %q: want KEY=VALUE", kv)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("--node-metadata: %s is given twice", k)
		}
		out[k] = v
	}
	return out, nil
}

// heapLimit reads --max-heap; 0 means no overload manager.
func heapLimit(s string) (uint64, error) {
	n, err := config.ParseSize(s)
	if err != nil {
		return 0, fmt.Errorf("--max-heap: %w", err)
	}
	return uint64(n), nil
}

// bootstrapTLS sets o.TLS when any TLS flag is given.
func bootstrapTLS(cmd *cobra.Command, o *xds.BootstrapOptions, t *xds.BootstrapTLS, sdsOut string) error {
	set := false
	for _, n := range []string{"tls-cert", "tls-key", "tls-ca", "tls-server-name", "tls-sds-dir"} {
		set = set || cmd.Flags().Changed(n)
	}
	switch {
	case set:
		o.TLS = t
	case sdsOut != "":
		return errors.New("--sds-output writes the SDS files of --tls-cert, --tls-key and --tls-ca; give those too")
	}
	return nil
}

// writeSDSFiles writes the SDS files the bootstrap's TLS names into dir.
func writeSDSFiles(t *xds.BootstrapTLS, dir string) error {
	files, err := t.SDSFiles()
	if err != nil {
		return err
	}
	for name, resp := range files {
		js, err := translator.MessageJSON(resp)
		if err != nil {
			return err
		}
		out, err := translator.Format(js, "yaml")
		if err != nil {
			return err
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, out, 0o644); err != nil {
			return fmt.Errorf("--sds-output: %w", err)
		}
	}
	return nil
}
