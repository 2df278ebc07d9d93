package xds

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/protogate/protogate/routetable"
	"github.com/protogate/protogate/routetable/routetablepb"
)

// TableType is the xDS type of the bridges' route tables. go-control-plane's
// snapshot cache knows only Envoy's types, so tables live in a linear cache
// of their own, muxed onto the same ADS server; a bridge subscribes to the
// table named by its group.
const TableType = routetable.TypeURL

// DefaultBridgeAckTimeout bounds how long a reload waits for the connected
// bridges of a group to take its new table before Envoy is sent the routes
// that need it.
const DefaultBridgeAckTimeout = 10 * time.Second

// DefaultEnvoyAckTimeout bounds how long a reload that drops routes waits
// for the group's Envoys to take the routes without them before the
// bridges forget them.
const DefaultEnvoyAckTimeout = 10 * time.Second

// muxCache sends route-table requests to the linear cache and everything
// else to the (NACK-guarded) snapshot cache.
func (s *Server) muxCache() cache.Cache {
	classify := func(typeURL string) string {
		if typeURL == TableType {
			return "tables"
		}
		return "envoy"
	}
	return &cache.MuxCache{
		Classify:      func(r *cache.Request) string { return classify(r.GetTypeUrl()) },
		ClassifyDelta: func(r *cache.DeltaRequest) string { return classify(r.GetTypeUrl()) },
		Caches:        map[string]cache.Cache{"envoy": nackGuard{s.cache, s}, "tables": s.tables},
	}
}

// tableVersionOf reads the table version a delta response carries.
func tableVersionOf(resp *discovery.DeltaDiscoveryResponse) string {
	for _, r := range resp.GetResources() {
		var t routetablepb.RouteTable
		if err := r.GetResource().UnmarshalTo(&t); err == nil {
			return t.GetVersion()
		}
	}
	return ""
}

// groupTable is a group's table as published, decoded and validated.
type groupTable struct {
	table *routetable.Table
	res   *routetablepb.RouteTable
}

// tablesOf takes the route tables out of the groups' resources, checking
// that each decodes and validates as a bridge would.
func tablesOf(groups map[string]Resources) (map[string]*groupTable, error) {
	out := map[string]*groupTable{}
	for name, res := range groups {
		list := res[TableType]
		if len(list) == 0 {
			continue
		}
		tr, ok := list[0].(*routetablepb.RouteTable)
		if !ok || len(list) != 1 {
			return nil, fmt.Errorf("group %q: the route table must be one %s", name, TableType)
		}
		t, err := routetable.FromResource(tr)
		if err != nil {
			return nil, fmt.Errorf("group %q: %w", name, err)
		}
		out[name] = &groupTable{table: t, res: tr}
	}
	return out, nil
}

// setTable serves a group's bridges a table; nil withdraws it.
func (s *Server) setTable(group string, t *routetable.Table) error {
	if t == nil {
		return s.tables.DeleteResource(group)
	}
	r, err := t.Resource()
	if err != nil {
		return err
	}
	r.Name = group
	return s.tables.UpdateResource(group, r)
}

// waitBridges waits until every bridge connected for group holds table
// version v. A bridge that rejects it fails the wait with its reason; so
// does one that neither takes nor rejects it in time.
func (s *Server) waitBridges(ctx context.Context, group, v string) error {
	return s.tracker.wait(ctx, func(st *streamState) (bool, string) {
		if !st.bridge || st.group != group {
			return true, ""
		}
		if n, ok := st.nacked[TableType]; ok && n.Version == v {
			return false, fmt.Sprintf("bridge %s rejected route table %s: %s", st.node, v, n.Error)
		}
		return st.acked[TableType] == v, ""
	}, "bridges of group "+group+" to take route table "+v)
}

// waitEnvoys waits until every Envoy connected for group holds route
// version v, or the wait times out (the caller goes on: a stuck Envoy must
// not hold the bridges on a table forever).
func (s *Server) waitEnvoys(ctx context.Context, group, v string) error {
	return s.tracker.wait(ctx, func(st *streamState) (bool, string) {
		if st.bridge || st.group != group {
			return true, ""
		}
		if _, asked := st.sent[resource.RouteType]; !asked {
			return true, "" // a stream that never asked for routes
		}
		return st.acked[resource.RouteType] == v, ""
	}, "Envoys of group "+group+" to take routes "+v)
}

// wait blocks until done holds for every stream, one stream reports a
// failure, or ctx ends (the error then names the streams still waited on).
func (t *tracker) wait(ctx context.Context, done func(*streamState) (bool, string), what string) error {
	for {
		t.mu.Lock()
		var pending []string
		for _, st := range t.streams {
			ok, failure := done(st)
			if failure != "" {
				t.mu.Unlock()
				return fmt.Errorf("%s", failure)
			}
			if !ok {
				pending = append(pending, st.node)
			}
		}
		ch := t.acked
		t.mu.Unlock()
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			sort.Strings(pending)
			return fmt.Errorf("timed out waiting for %s; still waiting on %s", what, strings.Join(pending, ", "))
		}
	}
}

// envoyRouteVersion is the route version of a published group.
func envoyRouteVersion(p *published) string { return p.Types[resource.RouteType] }

var _ types.Resource = (*routetablepb.RouteTable)(nil)

// Nodes lists every node seen (Envoys, bridges, dump), as /status does.
func (s *Server) Nodes() []NodeStatus { return s.tracker.Nodes() }

// bridgeCount is how many bridge streams of group are open.
func (s *Server) bridgeCount(group string) int {
	s.tracker.mu.Lock()
	defer s.tracker.mu.Unlock()
	n := 0
	for _, st := range s.tracker.streams {
		if st.bridge && st.group == group {
			n++
		}
	}
	return n
}
