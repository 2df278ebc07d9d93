package bridges

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"time"
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
	retry    int // seconds for Retry-After, when a retry will likely work
}

// retryAfter asks the client to come back after secs seconds.
func (e *apiError) retryAfter(secs int) *apiError {
	e.retry = secs
	return e
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.allow != "" {
		w.Header().Set("Allow", e.allow)
	}
	if e.retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retry))
	}
	body := *e
	body.Message = redactAddresses(e.Message)
	writeJSON(w, e.Status, map[string]*apiError{"error": &body})
}

// Addresses inside error text (a dial error, a provider URL in dubbo-go's
// message) tell a client how the network behind the gateway is laid out;
// the log keeps them, the body says "<address>" instead.
var addressPatterns = []*regexp.Regexp{
	// URL authorities, with any user:password in them: nats://h:4222, dubbo://…
	regexp.MustCompile(`\b([a-zA-Z][a-zA-Z0-9+.-]*)://[^\s/?#"'<>,;()\[\]]+`),
	// [IPv6]:port, the form Go's net errors print IPv6 in.
	regexp.MustCompile(`\[[0-9a-zA-Z.%]*:[0-9a-zA-Z:.%]*\](?::\d{1,5})?`),
	// IPv4, with or without a port.
	regexp.MustCompile(`\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b`),
	// host:port where the host is a name (localhost:4222, nats.internal:4222).
	regexp.MustCompile(`\b(?:[a-zA-Z0-9-]+\.)*[a-zA-Z][a-zA-Z0-9-]*:\d{1,5}\b`),
}

func redactAddresses(msg string) string {
	msg = addressPatterns[0].ReplaceAllString(msg, "$1://<address>")
	for _, re := range addressPatterns[1:] {
		msg = re.ReplaceAllString(msg, "<address>")
	}
	return msg
}

// readBody reads a request body up to limit bytes: 413 beyond it (before
// reading when Content-Length already says so), 400 if it cannot be read.
//
// The body must arrive within the bridge's body_timeout: a slower one is a
// 408, and the connection is not held for longer. The read error itself is
// never shown, as it names socket addresses.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, fail func(int, string, string, ...any) *apiError) ([]byte, *apiError) {
	if r.ContentLength > limit {
		return nil, fail(http.StatusRequestEntityTooLarge, "body_too_large", "the body is %d bytes; this route takes at most %d", r.ContentLength, limit)
	}
	if d := bodyTimeout(r); d > 0 {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		var nerr net.Error
		switch {
		case errors.As(err, &tooBig):
			return nil, fail(http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than this route takes (%d bytes)", limit)
		case errors.As(err, &nerr) && nerr.Timeout():
			w.Header().Set("Connection", "close")
			return nil, fail(http.StatusRequestTimeout, "body_timeout", "the body did not arrive within %s", bodyTimeout(r))
		}
		return nil, fail(http.StatusBadRequest, "bad_body", "the body could not be read (the client closed it or sent a malformed chunk)")
	}
	return body, nil
}

type bodyTimeoutKey struct{}

// bodyTimeout is the bridge's body_timeout, which ServeHTTP puts in the
// request context.
func bodyTimeout(r *http.Request) time.Duration {
	d, _ := r.Context().Value(bodyTimeoutKey{}).(time.Duration)
	return d
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
