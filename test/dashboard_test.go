package test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/protogate/protogate/bridges"
	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/xds"
)

var metricName = regexp.MustCompile(`\bprotogate_[a-z0-9_]+`)

// TestDashboardQueriesExist: every metric a panel of the example Grafana
// dashboard queries is one the bridges or the control plane register, so
// a renamed metric cannot leave a panel silently empty; and every panel
// has a query, a data source and its own id.
func TestDashboardQueriesExist(t *testing.T) {
	raw, err := os.ReadFile("../examples/grafana/protogate.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource any    `json:"datasource"`
			Targets    []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	settings, err := config.BridgeSettings()
	if err != nil {
		t.Fatal(err)
	}
	b, err := bridges.New(settings, nil, bridges.Options{Logger: quiet(), AwaitTable: true})
	if err != nil {
		t.Fatal(err)
	}
	cp := xds.New(xds.Options{Logger: quiet()})
	known := append(b.MetricNames(), cp.MetricNames()...)
	for _, must := range []string{"protogate_bridge_requests_total", "protogate_xds_nacks_total"} {
		if !slices.Contains(known, must) {
			t.Fatalf("the metric names the code reports lack %s: %v", must, known)
		}
	}
	ids := map[int]bool{}
	queried := 0
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d is used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 || p.Datasource == nil {
			t.Errorf("panel %q has no query or no data source", p.Title)
		}
		for _, tg := range p.Targets {
			for _, name := range metricName.FindAllString(tg.Expr, -1) {
				queried++
				base := name
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if s, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(known, s) {
						base = s
					}
				}
				if !slices.Contains(known, base) {
					t.Errorf("panel %q queries %s, which no code registers", p.Title, name)
				}
			}
		}
	}
	if queried < 15 {
		t.Fatalf("only %d metric references in the dashboard", queried)
	}
}
