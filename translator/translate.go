package translator

import (
	"fmt"
	"slices"
	"sort"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/routetable"
)

// Resources are the Envoy resources one node group is served, each list
// sorted by name.
type Resources struct {
	Listeners []*listener.Listener
	Routes    []*route.RouteConfiguration
	Clusters  []*cluster.Cluster
	Endpoints []*endpoint.ClusterLoadAssignment
}

// Group is a node group's name, its Envoy resources, and the route table
// its bridges execute.
type Group struct {
	Name string
	Resources
	Table *routetable.Table
	// OnDemandClusters are the clusters of Clusters that the group's
	// Envoys load on demand, sorted: those only routes of listeners with
	// on_demand_clusters send to. The control plane leaves them out of a
	// wildcard delta subscription; an Envoy gets one by naming it.
	OnDemandClusters []string
}

// Result is a whole translation: every group, sorted by name.
type Result struct {
	Groups []Group
}

// Group returns the named group, or nil.
func (r *Result) Group(name string) *Group {
	for i := range r.Groups {
		if r.Groups[i].Name == name {
			return &r.Groups[i]
		}
	}
	return nil
}

// OnDemand returns each group's on-demand clusters, for groups that have
// some.
func (r *Result) OnDemand() map[string][]string {
	out := map[string][]string{}
	for _, g := range r.Groups {
		if len(g.OnDemandClusters) > 0 {
			out[g.Name] = g.OnDemandClusters
		}
	}
	return out
}

// ByGroup returns each group's resources keyed by type URL, as the control
// plane publishes them: Envoy's types, and the bridges' route table.
func (r *Result) ByGroup() map[string]map[resource.Type][]types.Resource {
	out := make(map[string]map[resource.Type][]types.Resource, len(r.Groups))
	for i := range r.Groups {
		g := &r.Groups[i]
		m := g.ByType()
		if g.Table != nil {
			// Marshalling plain data cannot fail.
			if tr, err := g.Table.Resource(); err == nil {
				m[routetable.TypeURL] = []types.Resource{tr}
			}
		}
		out[g.Name] = m
	}
	return out
}

// build is the state of one translation.
type build struct {
	cfg      *config.Config
	problems config.Problems

	// everything built once, then picked per group
	listeners map[string]*listener.Listener
	routes    map[string]*route.RouteConfiguration
	clusters  map[string]*cluster.Cluster
	endpoints map[string]*endpoint.ClusterLoadAssignment
	// clusters each listener needs, directly or through its filters
	needs map[string][]string
	// eager are the clusters a listener needs up front: all but those
	// only its HTTP-upstream routes name (see needRoute)
	eager map[string]map[string]bool
	// onDemand are the listeners with on_demand_clusters
	onDemand map[string]bool
	// disc holds the providers found in registries (nil: none)
	disc routetable.Discovered
	// tracer is every HTTP listener's tracing (nil: no collector)
	tracer *hcm.HttpConnectionManager_Tracing
}

// Translate turns a validated mapping into Envoy resources per node group.
// On failure it returns every problem with its mapping field path, and no
// resources.
func Translate(cfg *config.Config) (*Result, error) {
	return TranslateWith(cfg, nil)
}

// TranslateWith is Translate with the providers found in registries: they
// are the endpoints of the Dubbo upstreams' clusters (Envoy calls them over
// the dubbo protocol) and of the bridges' route tables.
func TranslateWith(cfg *config.Config, disc routetable.Discovered) (*Result, error) {
	b := &build{
		disc:      disc,
		cfg:       cfg,
		listeners: map[string]*listener.Listener{},
		routes:    map[string]*route.RouteConfiguration{},
		clusters:  map[string]*cluster.Cluster{},
		endpoints: map[string]*endpoint.ClusterLoadAssignment{},
		needs:     map[string][]string{},
		eager:     map[string]map[string]bool{},
		onDemand:  map[string]bool{},
	}
	b.buildClusters()
	b.tracer = b.tracingConfig()
	for i := range cfg.Listeners {
		b.buildListener(&cfg.Listeners[i], fmt.Sprintf("listeners[%d]", i))
	}
	if len(b.problems) > 0 {
		b.problems.Sort()
		return nil, b.problems
	}
	res := &Result{}
	for i, g := range cfg.XDS.Groups {
		out := b.group(g)
		t, err := routetable.BuildWith(cfg, g, b.disc)
		if err != nil {
			b.fail(fmt.Sprintf("xds.groups[%d]", i), "the bridge route table of group %q: %v", g.Name, err)
			continue
		}
		if cfg.Bridge.Discovery == config.BridgeDiscoveryXDS {
			for _, c := range out.Clusters {
				if c.GetName() == BridgeDubboCluster || c.GetName() == BridgeNATSCluster {
					t.BridgeClusters = append(t.BridgeClusters, c.GetName())
				}
			}
		}
		out.Table = t
		res.Groups = append(res.Groups, out)
	}
	sort.Slice(res.Groups, func(i, j int) bool { return res.Groups[i].Name < res.Groups[j].Name })
	for _, g := range res.Groups {
		if err := g.check(); err != nil {
			b.fail("xds.groups", "group %q: %v", g.Name, err)
		}
	}
	if len(b.problems) > 0 {
		return nil, b.problems
	}
	return res, nil
}

// group picks a group's listeners and everything they reach.
func (b *build) group(g config.NodeGroup) Group {
	out := Group{Name: g.Name}
	want := map[string]bool{}
	for _, name := range g.Listeners {
		out.Listeners = append(out.Listeners, b.listeners[name])
		if rc, ok := b.routes[name]; ok {
			out.Routes = append(out.Routes, rc)
		}
		for _, c := range b.needs[name] {
			want[c] = true
		}
	}
	for name := range want {
		c := b.clusters[name]
		out.Clusters = append(out.Clusters, c)
		if cla, ok := b.endpoints[name]; ok {
			out.Endpoints = append(out.Endpoints, cla)
		}
	}
	sort.Slice(out.Listeners, func(i, j int) bool { return out.Listeners[i].Name < out.Listeners[j].Name })
	sort.Slice(out.Routes, func(i, j int) bool { return out.Routes[i].Name < out.Routes[j].Name })
	sort.Slice(out.Clusters, func(i, j int) bool { return out.Clusters[i].Name < out.Clusters[j].Name })
	sort.Slice(out.Endpoints, func(i, j int) bool { return out.Endpoints[i].ClusterName < out.Endpoints[j].ClusterName })
	out.OnDemandClusters = b.onDemandClusters(g)
	return out
}

// onDemandClusters lists a group's clusters its Envoys can load on
// demand: named by routes of its on-demand listeners and needed up front by
// nothing else of the group (another listener, a filter, a bridge route).
func (b *build) onDemandClusters(g config.NodeGroup) []string {
	lazy, keep := map[string]bool{}, map[string]bool{}
	for _, name := range g.Listeners {
		for _, c := range b.needs[name] {
			if b.onDemand[name] && !b.eager[name][c] {
				lazy[c] = true
			} else {
				keep[c] = true
			}
		}
	}
	var out []string
	for c := range lazy {
		if !keep[c] {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// need records that a listener depends on a cluster up front.
func (b *build) need(l *config.Listener, clusterName string) {
	b.needRoute(l, clusterName)
	if b.eager[l.Name] == nil {
		b.eager[l.Name] = map[string]bool{}
	}
	b.eager[l.Name][clusterName] = true
}

// needRoute records that a listener's route sends to a cluster: on an
// on-demand listener, Envoy loads it when the route is first used.
func (b *build) needRoute(l *config.Listener, clusterName string) {
	if !slices.Contains(b.needs[l.Name], clusterName) {
		b.needs[l.Name] = append(b.needs[l.Name], clusterName)
	}
}

func dur(d config.Duration) *durationpb.Duration { return durationpb.New(d.Std()) }

func stdDur(d time.Duration) *durationpb.Duration { return durationpb.New(d) }
