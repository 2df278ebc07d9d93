package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/translator"
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
			cfg, err := loadOrReport(cmd, path)
			if err != nil {
				return err
			}
			if xdsAddr != "" {
				cfg.XDS.Address = xdsAddr
			}
			if adminAddr != "" {
				cfg.XDS.AdminAddress = adminAddr
			}
			srv := xds.New(xdsOptions(cfg, log))
			rl := &reloader{path: path, srv: srv, log: log}
			if err := rl.publish(cfg); err != nil {
				return err
			}
			srv.RecordReload("start", nil)
			if err := srv.Start(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rl.watch(ctx, cfg.XDS.ReloadDebounce.Std())
			<-ctx.Done()
			log.Info("shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "mapping file or directory (required)")
	cmd.Flags().StringVar(&xdsAddr, "xds-address", "", "ADS listen address (default: xds.address of the mapping)")
	cmd.Flags().StringVar(&adminAddr, "admin-address", "", "admin listen address (default: xds.admin_address of the mapping)")
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
		Logger:            log,
	}
}

// reloader runs load → validate → translate → check → publish, one at a
// time. Any failure is logged with every problem and recorded; the server
// keeps the last good snapshot.
type reloader struct {
	path string
	srv  *xds.Server
	log  *slog.Logger
	mu   sync.Mutex
}

func (r *reloader) publish(cfg *config.Config) error {
	res, err := translator.Translate(cfg)
	if err != nil {
		return err
	}
	groups := map[string]xds.Resources{}
	for i := range res.Groups {
		groups[res.Groups[i].Name] = res.Groups[i].ByType()
	}
	return r.srv.Publish(groups)
}

func (r *reloader) reload(source string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg, err := config.Load(r.path)
	if err == nil {
		err = r.publish(cfg)
	}
	if err == nil {
		r.log.Info("reloaded", "source", source, "path", r.path)
		r.srv.RecordReload(source, nil)
		return
	}
	var problems []string
	var probs config.Problems
	if errors.As(err, &probs) {
		for _, p := range probs {
			problems = append(problems, p.String())
		}
	} else {
		problems = []string{err.Error()}
	}
	for _, p := range problems {
		r.log.Error("reload rejected; still serving the last good mapping", "source", source, "problem", p)
	}
	r.srv.RecordReload(source, problems)
}

// watch reloads on file changes and on SIGHUP until ctx ends.
func (r *reloader) watch(ctx context.Context, debounce time.Duration) {
	if err := config.Watch(ctx, r.path, debounce, func() { r.reload("file change") }); err != nil {
		r.log.Error("cannot watch the mapping; reload with SIGHUP", "err", err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				r.reload("SIGHUP")
			}
		}
	}()
}
