package xds

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/pprof"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
)

// reloadStatus is the outcome of the last attempt to load the mapping.
type reloadStatus struct {
	At       time.Time `json:"at"`
	OK       bool      `json:"ok"`
	Source   string    `json:"source"`
	Problems []string  `json:"problems,omitempty"`
	Serving  string    `json:"serving"` // what clients get: the new config or the last good one
}

// RecordReload notes the outcome of a reload: problems is empty when the
// mapping was published. The last good snapshot keeps serving either way.
func (s *Server) RecordReload(source string, problems []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reload = reloadStatus{At: time.Now(), OK: len(problems) == 0, Source: source, Problems: problems}
	if len(problems) == 0 {
		s.reload.Serving = "this mapping"
		s.metrics.reloads.WithLabelValues("success").Inc()
		s.metrics.reloadHealthy.Set(1)
		return
	}
	s.reload.Serving = "the last good mapping"
	s.metrics.reloads.WithLabelValues("failure").Inc()
	s.metrics.reloadHealthy.Set(0)
}

// Status is what /status shows.
type Status struct {
	Ready  bool                  `json:"ready"`
	Groups map[string]*published `json:"groups"`
	// Nodes are the nodes remembered, by id and group; over HTTP one
	// page of those matching the query, of NodesTotal.
	Nodes      []NodeStatus `json:"nodes"`
	NodesTotal int          `json:"nodes_total"`
	// NextOffset is the offset of the next page, when there is one.
	NextOffset int          `json:"next_offset,omitempty"`
	LastReload reloadStatus `json:"last_reload"`
	// Upstreams is set where bridges run in this process.
	Upstreams []UpstreamHealth `json:"upstreams,omitempty"`
}

// Status returns the server's state, with every node.
func (s *Server) Status() Status {
	st := s.status(nodeQuery{limit: -1})
	return st
}

// status is the server's state with the nodes q selects.
func (s *Server) status(q nodeQuery) Status {
	s.mu.RLock()
	groups := make(map[string]*published, len(s.groups))
	for k, v := range s.groups {
		groups[k] = v
	}
	st := Status{Ready: s.ready.Load(), Groups: groups, LastReload: s.reload}
	s.mu.RUnlock()
	nodes := s.tracker.nodesWhere(q.match)
	st.NodesTotal = len(nodes)
	st.Nodes, st.NextOffset = q.page(nodes)
	if s.opts.Upstreams != nil {
		st.Upstreams = s.opts.Upstreams()
		for _, u := range st.Upstreams {
			st.Ready = st.Ready && (u.Usable || u.Optional)
		}
	}
	return st
}

// nodeQuery is /status?node=&group=&limit=&offset=.
type nodeQuery struct {
	node, group   string
	limit, offset int // limit < 0: all
}

// Paging of /status: a page holds DefaultStatusLimit nodes unless the
// query asks for more, up to MaxStatusLimit.
const (
	DefaultStatusLimit = 100
	MaxStatusLimit     = 1000
)

func parseNodeQuery(v url.Values) (nodeQuery, error) {
	q := nodeQuery{node: v.Get("node"), group: v.Get("group"), limit: DefaultStatusLimit}
	var err error
	if q.limit, err = intParam(v, "limit", DefaultStatusLimit, 1, MaxStatusLimit); err != nil {
		return q, err
	}
	if q.offset, err = intParam(v, "offset", 0, 0, math.MaxInt32); err != nil {
		return q, err
	}
	return q, nil
}

// intParam reads a whole-number query parameter in [lo, hi].
func intParam(v url.Values, name string, def, lo, hi int) (int, error) {
	raw := v.Get(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s must be a whole number from %d to %d", name, lo, hi)
	}
	return n, nil
}

func (q nodeQuery) match(n *NodeStatus) bool {
	return (q.node == "" || n.ID == q.node) && (q.group == "" || n.Group == q.group)
}

// page cuts one page out of nodes and says where the next starts (0: none).
func (q nodeQuery) page(nodes []NodeStatus) ([]NodeStatus, int) {
	if q.limit < 0 {
		return nodes, 0
	}
	from := min(q.offset, len(nodes))
	to := min(from+q.limit, len(nodes))
	next := 0
	if to < len(nodes) {
		next = to
	}
	return nodes[from:to], next
}

func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "no configuration published yet", http.StatusServiceUnavailable)
			return
		}
		if s.opts.Upstreams != nil {
			var down []string
			for _, u := range s.opts.Upstreams() {
				if !u.Usable && !u.Optional {
					down = append(down, u.Name+": "+u.Reason)
				}
			}
			if len(down) > 0 {
				http.Error(w, "upstreams unusable: "+strings.Join(down, "; "), http.StatusServiceUnavailable)
				return
			}
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", s.statusPage)
	mux.HandleFunc("GET /config_dump", s.configDump)
	mux.HandleFunc("GET /rollout", s.rolloutPage)
	mux.HandleFunc("POST /rollout/promote", s.rolloutAction)
	mux.HandleFunc("POST /rollout/abort", s.rolloutAction)
	// Go's profiles, for where the control plane's memory and CPU go;
	// behind the admin token as /status is. /debug/pprof/heap?gc=1
	// collects garbage first, so /metrics then shows the live heap.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// statusPage is /status, filtered and paged by its query.
func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	q, err := parseNodeQuery(r.URL.Query())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, s.status(q))
}

// envoyJSON prints field names as Envoy's own config_dump does.
var envoyJSON = protojson.MarshalOptions{UseProtoNames: true}

// configDump shows, for /config_dump?node=ID[&group=G], what the node's
// group is served now ("resources", as Envoy's JSON), what the node last
// ACKed of each type ("acked": the version, and its resources when the
// control plane still knows them), and what its open streams were sent
// and have not ACKed ("pending", and "nacked" with the client's error).
func (s *Server) configDump(w http.ResponseWriter, r *http.Request) {
	id, group := r.URL.Query().Get("node"), r.URL.Query().Get("group")
	if id == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "give the node: /config_dump?node=ID"})
		return
	}
	nodes := s.tracker.nodesWhere(func(n *NodeStatus) bool { return n.ID == id && (group == "" || n.Group == group) })
	switch {
	case len(nodes) == 0 && group != "":
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no node %s has connected in group %s", id, group)})
		return
	case len(nodes) == 0:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no node " + id + " has connected"})
		return
	case len(nodes) > 1:
		var groups []string
		for _, n := range nodes {
			groups = append(groups, n.Group)
		}
		writeJSON(w, http.StatusConflict, map[string]string{"error": fmt.Sprintf("node %s is in groups %s: add &group=", id, strings.Join(groups, ", "))})
		return
	}
	node := nodes[0]
	snap, err := s.cache.GetSnapshot(s.nodeCacheKey(node.Group, node.Canary))
	if err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "nothing is published for the group of node " + id})
		return
	}
	out := map[string]any{"node": id, "group": node.Group, "fallback": node.Fallback, "canary": node.Canary}
	resources := map[string]any{}
	for _, typ := range Types {
		resources[typ] = map[string]any{"version": snap.GetVersion(typ), "resources": resourceJSON(dumpResources(snap, typ))}
	}
	out["resources"] = resources
	out["acked"] = s.ackedDump(node)
	out["pending"], out["nacked"] = s.tracker.inflight(nodeKey{node.ID, node.Group})
	writeJSON(w, http.StatusOK, out)
}

// ackedDump is each type's last ACKed version, with its resources when a
// snapshot that served that version is known.
func (s *Server) ackedDump(node NodeStatus) map[string]any {
	out := map[string]any{}
	for typ, ack := range node.LastACK {
		entry := map[string]any{"version": ack.Version, "at": ack.At}
		if typ != TableType {
			if snap := s.tracker.resourcesOf(node.Group, typ, ack.Version); snap != nil {
				entry["resources"] = resourceJSON(dumpResources(snap, typ))
			}
		}
		out[typ] = entry
	}
	return out
}

// resourceJSON prints resources sorted by name, each as Envoy's JSON of
// its Any. A resource that does not pack is left out (the snapshot was
// checked when published, so none is expected).
func resourceJSON(byName map[string]types.Resource) []json.RawMessage {
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	list := []json.RawMessage{}
	for _, n := range names {
		a, err := anypb.New(byName[n])
		if err != nil {
			continue
		}
		raw, _ := envoyJSON.Marshal(a)
		var buf bytes.Buffer
		_ = json.Compact(&buf, raw)
		list = append(list, buf.Bytes())
	}
	return list
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// dumpResources are snap's resources of typ as /config_dump shows them:
// route configurations with VHDS whole, virtual hosts and all, as the
// mapping made them (delta Envoys load the virtual hosts one by one,
// state-of-the-world ones get them without VHDS).
func dumpResources(snap cache.ResourceSnapshot, typ string) map[string]types.Resource {
	res := snap.GetResources(typ)
	ss, ok := snap.(*servedSnapshot)
	if !ok || typ != resource.RouteType || len(ss.whole) == 0 {
		return res
	}
	out := make(map[string]types.Resource, len(res))
	for name, r := range res {
		if w, ok := ss.whole[name]; ok {
			r = w
		}
		out[name] = r
	}
	return out
}
