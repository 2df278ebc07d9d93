package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/protogate/protogate/bridges"
	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/pipeline"
	"github.com/protogate/protogate/routetable"
	"github.com/protogate/protogate/routetable/routetablepb"
	"github.com/protogate/protogate/xds"
)

func newBridgeCmd() *cobra.Command {
	var path, address, group, xdsAddr, nodeID string
	var tlsOpts xds.ClientTLS
	cmd := &cobra.Command{
		Use:   "bridge -c FILE|DIR | --xds ADDR --node-group G",
		Short: "Run the HTTP bridges to Dubbo and NATS alone",
		Long: `bridge serves the mapping's Dubbo and NATS routes over HTTP: Envoy reaches it as an ordinary
cluster and names the route in a header it sets, or clients call it directly and it matches
method and path itself. Dubbo routes become generic calls (dubbo or triple, hessian2) to
providers found directly or through ZooKeeper; NATS routes become JetStream publishes with
ack, core publishes or requests. /healthz answers while the process runs; /readyz only while
every NATS upstream is connected. A change to the mapping (or SIGHUP) switches the routes if it is valid and
keeps the running ones if not. SIGINT or SIGTERM stops taking requests, finishes those in
flight (up to bridge.shutdown_timeout) and drains the NATS connections.

With --xds instead of -c, the bridge reads no file: it takes its node group's route table from
the control plane over ADS, ACKs each table it serves and NACKs (with the reason) one it
cannot, keeps serving the last one while the control plane is unreachable, and announces its
address in its node metadata. Its server settings are the defaults and PROTOGATE_BRIDGE_*
environment overrides. /readyz says not ready until the first table arrives. Against a
control plane with xds.security.tls, give --tls-cert, --tls-key and --tls-ca (re-read when
they change, so a rotated certificate is presented on the next connection).`,
		Example: `  go run ./examples/dubbo-provider &
  protogate bridge -c examples/mappings/dubbo.yaml
  protogate bridge -c examples/mappings/nats.yaml
  protogate bridge -c /etc/protogate/ --bridge-address 0.0.0.0:8081
  protogate bridge --xds 127.0.0.1:18000 --node-group default --node-id bridge-1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := loggerFrom(cmd)
			flagsAsEnv(map[string]string{"PROTOGATE_BRIDGE_ADDRESS": address})
			switch {
			case xdsAddr != "" && path != "":
				return usageError{cmd, errors.New("-c and --xds are exclusive: a bridge follows a file or the control plane")}
			case xdsAddr == "" && path == "":
				return usageError{cmd, errors.New("give -c FILE|DIR, or --xds ADDR to follow a control plane")}
			case xdsAddr == "" && (tlsOpts.Enabled() || tlsOpts.ServerName != ""):
				return usageError{cmd, errors.New("the --tls-* flags are for the connection to the control plane; they need --xds")}
			case xdsAddr != "":
				dial, err := clientDialOptions(tlsOpts, xdsAddr, log)
				if err != nil {
					return usageError{cmd, err}
				}
				return runXDSBridge(cmd, log, xdsAddr, nodeID, group, dial)
			}
			cfg, err := loadOrReport(cmd, path)
			if err != nil {
				return err
			}
			regs := &pipeline.Registries{Log: log}
			defer regs.Close()
			pl := &pipeline.Pipeline{Path: path, Log: log, Group: group, Running: cfg, Registries: regs}
			first, err := pl.Prepare(cfg)
			if err != nil {
				return reportProblems(cmd, path, asProblems(path, err))
			}
			srv, err := bridges.New(cfg.Bridge, first.Table, bridges.Options{Logger: log})
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
			pl.Bridges = srv
			first.Commit() // the mapping a registry change starts from
			regs.OnChange = func() {
				if err := pl.ApplyRefresh(); err != nil {
					log.Error("registry change not applied", "err", err.Error())
				}
			}
			reload := func(reason string) {
				if err := pl.Apply(); err != nil {
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
	cmd.Flags().StringVarP(&path, "config", "c", "", "mapping file or directory")
	cmd.Flags().StringVar(&address, "bridge-address", "", "listen address "+mappingDefault("bridge.address"))
	cmd.Flags().StringVar(&group, "node-group", "", "serve only the routes of this node group's listeners (default with -c: every HTTP listener; "+
		"required with --xds)")
	cmd.Flags().StringVar(&xdsAddr, "xds", "", "follow the control plane's ADS server at HOST:PORT instead of reading a file")
	cmd.Flags().StringVar(&nodeID, "node-id", "", "the node id given to the control plane (default: the host name)")
	addClientTLSFlags(cmd, &tlsOpts)
	// run spells it --bridge-address; the old spelling still works.
	aliasFlags(cmd, map[string]string{"address": "bridge-address"})
	return cmd
}

// runXDSBridge serves the route table the control plane sends for group.
func runXDSBridge(cmd *cobra.Command, log *slog.Logger, xdsAddr, nodeID, group string, dial []grpc.DialOption) error {
	if group == "" {
		return usageError{cmd, errors.New("--xds needs --node-group: the group whose route table to serve")}
	}
	if nodeID == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("--node-id not given and no host name: %w", err)
		}
		nodeID = host
	}
	settings, err := config.BridgeSettings()
	if err != nil {
		return reportProblems(cmd, "environment", err)
	}
	srv, err := bridges.New(settings, nil, bridges.Options{Logger: log, AwaitTable: true})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	announced := srv.Addr()
	if _, port, err := config.SplitEndpoint(settings.Address); err == nil && port > 0 && len(settings.Endpoints) > 0 {
		announced = settings.Endpoints[0]
	}
	if host, _, err := net.SplitHostPort(announced); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			log.Warn("the bridge announces an address nobody else can reach; set PROTOGATE_BRIDGE_ENDPOINTS to HOST:PORT others reach it at",
				"announced", announced)
		}
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tc := &xds.TableClient{
		Address: xdsAddr, NodeID: nodeID, Group: group, BridgeAddress: announced, Logger: log, DialOptions: dial,
		Apply: func(r *routetablepb.RouteTable) error {
			t, err := routetable.FromResource(r)
			if err != nil {
				return err
			}
			return srv.Apply(t)
		},
	}
	// The stream outlives the signal: the bridge leaves over it.
	follow, unfollow := context.WithCancel(context.Background())
	defer unfollow()
	done := make(chan error, 1)
	go func() { done <- tc.Run(follow) }()
	select {
	case err := <-done:
		if err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), settings.ShutdownTimeout.Std())
			defer cancel()
			_ = srv.Shutdown(sctx)
			return err
		}
	case <-ctx.Done():
	}
	// Leave the group's bridge endpoints first, and keep serving through
	// the drain window: Envoys take the change before the listener closes.
	srv.Drain()
	if err := tc.Leave(); err == nil && settings.DrainWindow > 0 {
		log.Info("left the bridge endpoints; draining", "window", settings.DrainWindow)
		time.Sleep(settings.DrainWindow.Std())
	}
	log.Info("shutting down: finishing requests in flight", "timeout", settings.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), settings.ShutdownTimeout.Std())
	defer cancel()
	return srv.Shutdown(sctx)
}
