package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/pipeline"
	"github.com/protogate/protogate/xds"
)

func newControlPlaneCmd() *cobra.Command {
	var path, xdsAddr, adminAddr string
	cmd := &cobra.Command{
		Use:   "controlplane -c FILE|DIR",
		Short: "Serve the mapping to Envoy over ADS (xDS), reloading it when it changes",
		Long: `controlplane translates the mapping and serves it to Envoy nodes over ADS (state of the
world and delta on one port), one snapshot per node group. It watches the mapping (and
reloads on SIGHUP): a valid change is pushed within a second; an invalid one is logged,
shown on /status and in protogate_config_last_reload_success, and the last good
configuration keeps serving. The admin server has /healthz, /readyz, /metrics, /status and
/config_dump?node=ID.`,
		Example: `  protogate controlplane -c examples/mappings/mixed.yaml
  protogate controlplane -c /etc/protogate/ --xds-address 0.0.0.0:18000 --admin-address 127.0.0.1:19000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := loggerFrom(cmd)
			flagsAsEnv(map[string]string{"PROTOGATE_XDS_ADDRESS": xdsAddr, "PROTOGATE_XDS_ADMIN_ADDRESS": adminAddr})
			cfg, err := loadOrReport(cmd, path)
			if err != nil {
				return err
			}
			srv := xds.New(xdsOptions(cfg, log))
			// The control plane is the one reader of the registries: what
			// they hold goes to Envoy (EDS) and to the bridges' tables.
			regs := &pipeline.Registries{Log: log}
			defer regs.Close()
			pl := &pipeline.Pipeline{Path: path, Log: log, Running: cfg, Registries: regs}
			regs.OnChange = func() { _ = srv.Reload("registry change", pl.Refresh()) }
			src := pl.Source()
			if err := srv.Reload("start", pl.LoadedSource(cfg)); err != nil {
				return reportProblems(cmd, path, err)
			}
			if err := srv.Start(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv.Watch(ctx, path, cfg.XDS.ReloadDebounce.Std(), src)
			<-ctx.Done()
			log.Info("shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "mapping file or directory (required)")
	cmd.Flags().StringVar(&xdsAddr, "xds-address", "", "ADS listen address "+mappingDefault("xds.address"))
	cmd.Flags().StringVar(&adminAddr, "admin-address", "", "admin listen address "+mappingDefault("xds.admin_address"))
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func xdsOptions(cfg *config.Config, log *slog.Logger) xds.Options {
	return xds.Options{
		Address:           cfg.XDS.Address,
		AdminAddress:      cfg.XDS.AdminAddress,
		MaxMessageSize:    int(cfg.XDS.MaxMessageSize),
		MaxStreamsPerPeer: uint32(cfg.XDS.MaxStreamsPerPeer),
		KeepaliveTime:     cfg.XDS.KeepaliveTime.Std(),
		KeepaliveTimeout:  cfg.XDS.KeepaliveTimeout.Std(),
		GroupMetadataKey:  cfg.XDS.GroupMetadataKey,
		Security:          cfg.XDS.Security,
		Limits:            cfg.XDS.Limits,
		Rollout:           cfg.XDS.Rollout,
		Logger:            log,
	}
}
