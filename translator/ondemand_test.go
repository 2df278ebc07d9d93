package translator

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/protogate/protogate/config"
)

// TestOnDemandClusters: a group's on-demand clusters are those only the
// routes of its on-demand listeners name; a cluster another listener, a
// filter or a bridge route needs stays loaded up front.
func TestOnDemandClusters(t *testing.T) {
	const twoGroups = `
listeners:
  - name: lazy
    address: 127.0.0.1:10000
    on_demand_clusters: true
    routes:
      - { name: a, match: { prefix: /a/ }, http: { upstream: a } }
      - { name: b, match: { prefix: /b/ }, http: { upstream: b } }
  - name: eager
    address: 127.0.0.1:10001
    routes:
      - { name: b2, match: { prefix: /b/ }, http: { upstream: b } }
upstreams:
  http:
    - { name: a, endpoints: [ "127.0.0.1:9001" ] }
    - { name: b, endpoints: [ "127.0.0.1:9002" ] }
xds:
  groups:
    - { name: lazy-only, listeners: [ lazy ] }
    - { name: mixed, listeners: [ lazy, eager ] }
    - { name: eager-only, listeners: [ eager ] }
`
	golden := load(t, filepath.Join(goldenDir, "on-demand.in.yaml"))
	tests := []struct {
		name  string
		cfg   *config.Config
		group string
		want  []string
	}{
		{"golden: bridge, ext_authz and shared clusters stay", golden, config.DefaultGroup, []string{"http/catalog", "http/search"}},
		{"only on-demand listeners", loadString(t, twoGroups), "lazy-only", []string{"http/a", "http/b"}},
		{"a cluster an eager listener names stays", loadString(t, twoGroups), "mixed", []string{"http/a"}},
		{"no on-demand listener", loadString(t, twoGroups), "eager-only", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Translate(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			g := res.Group(tt.group)
			if !slices.Equal(g.OnDemandClusters, tt.want) {
				t.Fatalf("on-demand clusters %v, want %v", g.OnDemandClusters, tt.want)
			}
			// The group still holds them: named subscriptions are served
			// from the same snapshot.
			for _, c := range tt.want {
				if !slices.ContainsFunc(g.Clusters, func(x *cluster.Cluster) bool { return x.Name == c }) {
					t.Errorf("cluster %s is not in the group's clusters", c)
				}
			}
			if _, listed := res.OnDemand()[tt.group]; listed != (len(tt.want) > 0) {
				t.Errorf("Result.OnDemand lists group %s: %v", tt.group, listed)
			}
		})
	}
}

// TestOnDemandOnlyOnHTTPListeners: the setting on a tcp listener is a
// problem at its field path.
func TestOnDemandOnlyOnHTTPListeners(t *testing.T) {
	cfg := loadString(t, `
listeners:
  - name: nats-in
    address: 127.0.0.1:4223
    protocol: tcp
    upstream: events
    on_demand_clusters: true
upstreams:
  nats: [ { name: events, urls: [ "nats://127.0.0.1:4222" ] } ]
`)
	_, err := Translate(cfg)
	var probs config.Problems
	if !errors.As(err, &probs) || len(probs) != 1 {
		t.Fatalf("want one problem, got %v", err)
	}
	if probs[0].Path != "listeners[0].on_demand_clusters" || !strings.Contains(probs[0].Msg, "http listeners only") {
		t.Fatalf("problem: %v", probs[0])
	}
}
