package bridges

import (
	"encoding/json"
	"errors"
	"io"
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

// readBody reads a request body up to limit bytes: 413 beyond it (before
// reading when Content-Length already says so), 400 if it cannot be read.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, fail func(int, string, string, ...any) *apiError) ([]byte, *apiError) {
	if r.ContentLength > limit {
		return nil, fail(http.StatusRequestEntityTooLarge, "body_too_large", "the body is %d bytes; this route takes at most %d", r.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, fail(http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than this route takes (%d bytes)", limit)
		}
		return nil, fail(http.StatusBadRequest, "bad_body", "reading the body: %v", err)
	}
	return body, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
