package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/translator"
	"github.com/protogate/protogate/xds"
)

const rolloutMapping = `
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - { name: web, match: { prefix: %s }, http: { upstream: web } }
upstreams:
  http: [ { name: web, endpoints: [ "127.0.0.1:8080" ] } ]
`

// TestRolloutCommand: status, promote and abort through the admin API.
func TestRolloutCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mapping.yaml")
	src := func(prefix string) xds.Source {
		return func() (map[string]xds.Resources, xds.Outcome, error) {
			if err := os.WriteFile(path, []byte(strings.Replace(rolloutMapping, "%s", prefix, 1)), 0o644); err != nil {
				return nil, nil, err
			}
			cfg, err := config.Load(path)
			if err != nil {
				return nil, nil, err
			}
			res, err := translator.Translate(cfg)
			if err != nil {
				return nil, nil, err
			}
			return res.ByGroup(), nil, nil
		}
	}
	srv := xds.New(xds.Options{Address: "127.0.0.1:0", AdminAddress: "127.0.0.1:0", MaxMessageSize: 4 << 20, MaxStreamsPerPeer: 16,
		KeepaliveTime: time.Minute, KeepaliveTimeout: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Rollout: &config.Rollout{CanaryPercent: 10, BakeTime: config.Duration(time.Hour), StateFile: filepath.Join(t.TempDir(), "state.json")}})
	if err := srv.Reload("start", src("/a")); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	admin := srv.AdminAddr()
	if _, _, err := run("rollout", "abort", "--group", "default", "--admin", admin); err == nil || !strings.Contains(err.Error(), "no rollout in progress") {
		t.Fatalf("abort with nothing under way = %v", err)
	}
	if err := srv.Reload("edit", src("/b")); err != nil {
		t.Fatal(err)
	}
	out, _, err := run("rollout", "status", "--admin", admin)
	if err != nil || !strings.Contains(out, `"candidate": "`) || !strings.Contains(out, `"enabled": true`) {
		t.Fatalf("status during the rollout = %v\n%s", err, out)
	}
	if _, _, err := run("rollout", "promote", "--admin", admin); err == nil || !strings.Contains(err.Error(), "--group") {
		t.Fatalf("promote without a group = %v", err)
	}
	if out, _, err := run("rollout", "promote", "--group", "default", "--admin", admin); err != nil || !strings.Contains(out, `"ok": true`) {
		t.Fatalf("promote = %v %s", err, out)
	}
	out, _, err = run("rollout", "status", "--admin", admin)
	if err != nil || strings.Contains(out, `"candidate"`) {
		t.Fatalf("status after the promotion = %v\n%s", err, out)
	}
}
