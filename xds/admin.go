package xds

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"

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
	Ready      bool                  `json:"ready"`
	Groups     map[string]*published `json:"groups"`
	Nodes      []NodeStatus          `json:"nodes"`
	LastReload reloadStatus          `json:"last_reload"`
	// Upstreams is set where bridges run in this process.
	Upstreams []UpstreamHealth `json:"upstreams,omitempty"`
}

// Status returns the server's state.
func (s *Server) Status() Status {
	s.mu.RLock()
	groups := make(map[string]*published, len(s.groups))
	for k, v := range s.groups {
		groups[k] = v
	}
	st := Status{Ready: s.ready.Load(), Groups: groups, LastReload: s.reload}
	s.mu.RUnlock()
	st.Nodes = s.tracker.Nodes()
	if s.opts.Upstreams != nil {
		st.Upstreams = s.opts.Upstreams()
		for _, u := range st.Upstreams {
			st.Ready = st.Ready && u.Usable
		}
	}
	return st
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
				if !u.Usable {
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
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Status()) })
	mux.HandleFunc("GET /config_dump", s.configDump)
	return mux
}

// envoyJSON prints field names as Envoy's own config_dump does.
var envoyJSON = protojson.MarshalOptions{UseProtoNames: true}

// configDump shows exactly what a node is served: the snapshot of its group
// (or the fallback), as Envoy's JSON.
func (s *Server) configDump(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("node")
	if id == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "give the node: /config_dump?node=ID"})
		return
	}
	var node *NodeStatus
	for _, n := range s.tracker.Nodes() {
		if n.ID == id {
			node = &n
		}
	}
	if node == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no node " + id + " has connected"})
		return
	}
	key := node.Group
	if node.Fallback {
		key = FallbackGroup
	}
	snap, err := s.cache.GetSnapshot(key)
	if err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	out := map[string]any{"node": id, "group": node.Group, "fallback": node.Fallback}
	resources := map[string]any{}
	for _, typ := range Types {
		names := []string{}
		byName := snap.GetResources(typ)
		for n := range byName {
			names = append(names, n)
		}
		sort.Strings(names)
		list := []json.RawMessage{}
		for _, n := range names {
			a, err := anypb.New(byName[n])
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
				return
			}
			raw, _ := envoyJSON.Marshal(a)
			var buf bytes.Buffer
			_ = json.Compact(&buf, raw)
			list = append(list, buf.Bytes())
		}
		resources[typ] = map[string]any{"version": snap.GetVersion(typ), "resources": list}
	}
	out["resources"] = resources
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
