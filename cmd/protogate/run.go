package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/protogate/protogate/bridges"
	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/pipeline"
	natsproto "github.com/protogate/protogate/protocols/nats"
	"github.com/protogate/protogate/xds"
)

func newRunCmd() *cobra.Command {
	var path, xdsAddr, adminAddr, bridgeAddr string
	cmd := &cobra.Command{
		Use:   "run -c FILE|DIR",
		Short: "Run the whole gateway: the control plane and the bridges in one process",
		Long: `run serves the mapping to Envoy over xDS and runs the bridges, both fed by one translated state.
Where no Envoy runs, the bridges serve every route of the HTTP listeners directly on
bridge.address (Dubbo and NATS routes themselves, plain HTTP routes by proxying). A change to
the mapping is validated and translated once; only if it is good is it pushed to Envoy and
switched in the bridges, together. NATS upstreams marked embedded: true get an in-process
NATS server with JetStream, for development only.`,
		Example: `  protogate run -c examples/quickstart.yaml
  protogate run -c /etc/protogate/ --bridge-address 0.0.0.0:8081`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := loggerFrom(cmd)
			flagsAsEnv(map[string]string{"PROTOGATE_XDS_ADDRESS": xdsAddr, "PROTOGATE_XDS_ADMIN_ADDRESS": adminAddr, "PROTOGATE_BRIDGE_ADDRESS": bridgeAddr})
			cfg, err := loadOrReport(cmd, path)
			if err != nil {
				return err
			}
			urls := map[string][]string{}
			for i := range cfg.Upstreams.NATS {
				u := &cfg.Upstreams.NATS[i]
				if !u.Embedded {
					continue
				}
				e, err := natsproto.StartEmbedded(u)
				if err != nil {
					return err
				}
				defer e.Shutdown()
				urls[u.Name] = []string{e.URL()}
				log.Warn("embedded NATS server started: for development only (one node, no replication, no auth)",
					"upstream", u.Name, "url", e.URL(), "data_dir", e.Dir())
			}
			// One pipeline for both: the bridges prepare the same mapping
			// Envoy is sent, and switch only once it is published; the
			// registries are read here, once, for both.
			regs := &pipeline.Registries{Log: log}
			defer regs.Close()
			pl := &pipeline.Pipeline{Path: path, Log: log, Running: cfg, Registries: regs}
			first, err := pl.Prepare(cfg)
			if err != nil {
				return reportProblems(cmd, path, asProblems(path, err))
			}
			br, err := bridges.New(cfg.Bridge, first.Table, bridges.Options{Logger: log, NATSURLs: urls})
			if err != nil {
				return err
			}
			opts := xdsOptions(cfg, log)
			opts.Upstreams = func() []xds.UpstreamHealth {
				var out []xds.UpstreamHealth
				for _, u := range br.Upstreams() {
					out = append(out, xds.UpstreamHealth(u))
				}
				return out
			}
			opts.BridgeErrors = br.RouteAnswers
			srv := xds.New(opts)
			pl.Bridges = br
			regs.OnChange = func() { _ = srv.Reload("registry change", pl.Refresh()) }
			src := pl.Source()
			// At start the bridges already serve cfg (bridges.New); Envoy
			// gets the same mapping without reading the file again.
			if err := srv.Reload("start", first.Source()); err != nil {
				return reportProblems(cmd, path, err)
			}
			if err := srv.Start(); err != nil {
				return err
			}
			if err := br.Start(); err != nil {
				return err
			}
			printRoutes(cmd, cfg, br.Addr(), srv.XDSAddr(), srv.AdminAddr())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv.Watch(ctx, path, cfg.XDS.ReloadDebounce.Std(), src)
			<-ctx.Done()
			log.Info("shutting down: finishing requests in flight")
			sctx, cancel := context.WithTimeout(context.Background(), cfg.Bridge.ShutdownTimeout.Std())
			defer cancel()
			_ = br.Shutdown(sctx)
			xctx, xcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer xcancel()
			srv.Shutdown(xctx)
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "mapping file or directory (required)")
	cmd.Flags().StringVar(&xdsAddr, "xds-address", "", "ADS listen address "+mappingDefault("xds.address"))
	cmd.Flags().StringVar(&adminAddr, "admin-address", "", "admin listen address "+mappingDefault("xds.admin_address"))
	cmd.Flags().StringVar(&bridgeAddr, "bridge-address", "", "where the bridges serve routes directly "+mappingDefault("bridge.address"))
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// flagsAsEnv passes address flags on as PROTOGATE_ overrides, so every
// reload of the mapping sees them too (and the bridge endpoints Envoy is
// told about follow the bridge address).
func flagsAsEnv(flags map[string]string) {
	for name, v := range flags {
		if v != "" {
			os.Setenv(name, v)
		}
	}
}

// printRoutes tells a first-time user what to try.
func printRoutes(cmd *cobra.Command, cfg *config.Config, bridgeAddr, xdsAddr, adminAddr string) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "protogate is running.\n\nRoutes, served directly at http://%s:\n", bridgeAddr)
	for _, l := range cfg.Listeners {
		if l.Protocol != config.ProtocolHTTP {
			continue
		}
		for _, r := range l.Routes {
			methods := "ANY"
			if len(r.Match.Methods) > 0 {
				methods = strings.Join(r.Match.Methods, ",")
			}
			path := r.Match.Path + r.Match.Prefix + r.Match.Regex
			target := ""
			switch {
			case r.Dubbo != nil:
				target = fmt.Sprintf("dubbo %s.%s", r.Dubbo.Service, r.Dubbo.Method)
			case r.NATS != nil:
				target = fmt.Sprintf("nats %s %s", r.NATS.Mode, r.NATS.Subject)
			case r.HTTP != nil:
				target = "http " + r.HTTP.Upstream
			}
			fmt.Fprintf(out, "  %-11s http://%s%s  →  %s\n", methods, bridgeAddr, path, target)
		}
	}
	fmt.Fprintf(out, "\nEnvoy, where it is installed: %s bootstrap --node-id envoy-1 --node-group %s --xds %s > envoy.yaml && envoy -c envoy.yaml\n",
		selfPath(), cfg.XDS.Groups[0].Name, xdsAddr)
	fmt.Fprintf(out, "Status: curl -s http://%s/status\n", adminAddr)
	fmt.Fprintf(out, "Edit the mapping and save: the change is checked, then served by Envoy and the bridges together.\n\n")
}

// selfPath is how to run this binary from the working directory: a bare
// "protogate" is usually not on PATH when it was built into bin/.
func selfPath() string {
	exe, err := os.Executable()
	if err != nil {
		return "protogate"
	}
	wd, err := os.Getwd()
	if err != nil {
		return shellWord(exe)
	}
	// The kernel reports exe with symlinks resolved; resolve wd alike.
	if real, err := filepath.EvalSymlinks(wd); err == nil {
		wd = real
	}
	return shellWord(shownPath(exe, wd))
}

// shownPath is exe relative to wd when it lies under wd, else absolute.
func shownPath(exe, wd string) string {
	rel, err := filepath.Rel(wd, exe)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return exe
	}
	if !strings.ContainsRune(rel, filepath.Separator) {
		return "." + string(filepath.Separator) + rel // a bare name would be looked up on PATH
	}
	return rel
}

// shellWord quotes a path for a POSIX shell when it needs it.
func shellWord(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
