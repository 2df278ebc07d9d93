package bridges

import (
	"net/http"

	"github.com/protogate/protogate/routetable"
)

// openAPIOf describes a table's routes (OpenAPI 3.1, JSON).
func openAPIOf(t *routetable.Table) ([]byte, error) { return nil, nil }

// serveOpenAPI answers GET for the description.
func serveOpenAPI(w http.ResponseWriter, r *http.Request, doc []byte) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc)
}
