package bridges

import (
	"encoding/json"
	"net/http"
)

// apiError is a failure told to the client as
// {"error": {"code", "message", "route", "upstream"}} with a status it can
// act on: 4xx for what the request got wrong, 5xx naming the upstream.
type apiError struct {
	Status   int    `json:"-"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Route    string `json:"route,omitempty"`
	Upstream string `json:"upstream,omitempty"`
	allow    string
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.allow != "" {
		w.Header().Set("Allow", e.allow)
	}
	writeJSON(w, e.Status, map[string]*apiError{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
