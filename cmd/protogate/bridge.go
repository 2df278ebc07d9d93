package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/protogate/protogate/bridges"
	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/routetable"
)

func newBridgeCmd() *cobra.Command {
	var path, address, group string
	cmd := &cobra.Command{
		Use:   "bridge -c FILE|DIR",
		Short: "Run the HTTP bridges to Dubbo and NATS alone",
		Long: `bridge serves the mapping's Dubbo and NATS routes over HTTP: Envoy reaches it as an ordinary
cluster and names the route in a header it sets, or clients call it directly and it matches
method and path itself. Dubbo routes become generic calls (dubbo or triple, hessian2) to
providers found directly or through ZooKeeper; NATS routes become JetStream publishes with
ack, core publishes or requests. /healthz answers while the process runs; /readyz only while
every NATS upstream is connected. A change to the mapping (or SIGHUP) switches the routes if it is valid and
keeps the running ones if not. SIGINT or SIGTERM stops taking requests, finishes those in
flight (up to bridge.shutdown_timeout) and drains the NATS connections.`,
		Example: `  go run ./examples/dubbo-provider &
  protogate bridge -c examples/mappings/dubbo.yaml
  protogate bridge -c examples/mappings/nats.yaml
  protogate bridge -c /etc/protogate/ --bridge-address 0.0.0.0:8081`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := loggerFrom(cmd)
			flagsAsEnv(map[string]string{"PROTOGATE_BRIDGE_ADDRESS": address})
			cfg, err := loadOrReport(cmd, path)
			if err != nil {
				return err
			}
			table, err := routetable.FromConfig(cfg, group)
			if err != nil {
				return reportProblems(cmd, path, config.Problems{{File: path, Msg: err.Error()}})
			}
			srv, err := bridges.New(cfg.Bridge, table, bridges.Options{Logger: log})
			if err != nil {
				return err
			}
			if err := srv.Start(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// Reload routes when the mapping changes (or on SIGHUP); a bad
			// change is logged and the running routes stay.
			reload := func(reason string) {
				c, err := config.Load(path)
				var t *routetable.Table
				if err == nil {
					t, err = routetable.FromConfig(c, group)
				}
				if err == nil {
					warnRestart(log, cfg, c)
					err = srv.Apply(t)
				}
				if err != nil {
					log.Error("reload rejected; still serving the last good mapping", "reason", reason, "problems", err.Error())
					return
				}
				log.Info("reloaded", "reason", reason)
			}
			if err := config.Watch(ctx, path, cfg.XDS.ReloadDebounce.Std(), func() { reload("file change") }); err != nil {
				log.Error("cannot watch the mapping; reload with SIGHUP", "err", err)
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for range hup {
					reload("SIGHUP")
				}
			}()
			<-ctx.Done()
			log.Info("shutting down: finishing requests in flight", "timeout", cfg.Bridge.ShutdownTimeout)
			sctx, cancel := context.WithTimeout(context.Background(), cfg.Bridge.ShutdownTimeout.Std())
			defer cancel()
			return srv.Shutdown(sctx)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "mapping file or directory (required)")
	cmd.Flags().StringVar(&address, "bridge-address", "", "listen address "+mappingDefault("bridge.address"))
	cmd.Flags().StringVar(&group, "node-group", "", "serve only the routes of this node group's listeners (default: every HTTP listener)")
	// run spells it --bridge-address; the old spelling still works.
	aliasFlags(cmd, map[string]string{"address": "bridge-address"})
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
