package bridges

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/protogate/protogate/openapi"
	"github.com/protogate/protogate/routetable"
)

// openAPIOf describes a table's routes (OpenAPI 3.1, JSON): every
// listener's, as the bridge serves them all.
func openAPIOf(t *routetable.Table) ([]byte, error) { return openapi.Document(t, "") }

// serveOpenAPI answers GET and HEAD for the description. Its ETag is the
// route table's version, so a client revalidates cheaply and learns of a
// reload by the tag changing.
func serveOpenAPI(w http.ResponseWriter, r *http.Request, doc []byte, version string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: "the API description is read with GET or HEAD", allow: "GET, HEAD"})
		return
	}
	h := w.Header()
	etag := strconv.Quote(version)
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache") // a reload changes it: revalidate each time
	if matchesETag(r.Header.Values("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(doc)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(doc)
	}
}

// matchesETag reads If-None-Match: a list of tags, weak or strong, or *.
func matchesETag(values []string, etag string) bool {
	for _, v := range values {
		for _, tag := range bytes.Split([]byte(v), []byte(",")) {
			tag = bytes.TrimSpace(tag)
			tag = bytes.TrimPrefix(tag, []byte("W/"))
			if string(tag) == "*" || string(tag) == etag {
				return true
			}
		}
	}
	return false
}
