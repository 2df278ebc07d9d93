package bridges

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
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
	body, err := readAllOf(w, r, limit)
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

// readAllOf reads the whole body. A body whose Content-Length is known
// (and within limit, which readBody checked) is read into one buffer of
// its size, up to preallocMax: a client declaring a large body must send
// it before the bridge holds it. net/http's body already stops at that
// length. Otherwise the body is read through http.MaxBytesReader, which
// stops at limit.
// preallocMax is the most readAllOf allocates before bytes arrive.
const preallocMax = 64 << 10

func readAllOf(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	n := r.ContentLength
	if n < 0 || n > limit {
		return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	}
	// One byte more, so the read that finds the end has room.
	buf := make([]byte, 0, min(n, preallocMax)+1)
	for {
		m, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return buf, err
		case len(buf) == cap(buf):
			// Past what was allocated: more of a large body, or a body
			// longer than it said (net/http's reader tells).
			buf = append(buf, 0)[:len(buf)]
		}
	}
}

// bodyTimeout is the bridge's body_timeout, which ServeHTTP puts in the
// request's info.
func bodyTimeout(r *http.Request) time.Duration {
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		return info.bodyTimeout
	}
	return 0
}

// Header values shared by every answer; net/http only reads them.
var (
	jsonContentType = []string{"application/json"}
	noSniff         = []string{"nosniff"}
)

// chunkingSize is where net/http stops computing Content-Length itself
// (its buffer before chunking): a larger body gets one set here, so no
// answer is chunked.
const chunkingSize = 2048

func writeJSON(w http.ResponseWriter, status int, v any) {
	bp := getBuf()
	defer putBuf(bp)
	buf := bytes.NewBuffer((*bp)[:0])
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		buf.Reset() // as before: the status, and no half-written body
	}
	*bp = buf.Bytes()
	writeBody(w, status, jsonContentType, *bp)
}

// writeBody answers with a whole body in one Write.
func writeBody(w http.ResponseWriter, status int, contentType []string, body []byte) {
	h := w.Header()
	h["Content-Type"] = contentType
	h["X-Content-Type-Options"] = noSniff
	setLength(h, len(body))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// setLength gives a body net/http would chunk its Content-Length; a
// smaller one gets it from net/http, without an allocation.
func setLength(h http.Header, n int) {
	if _, set := h["Content-Length"]; !set && n >= chunkingSize {
		h["Content-Length"] = []string{strconv.Itoa(n)}
	}
}

// bufs are the buffers answers are built in; w.Write copies what it is
// given, so a buffer is free again once the answer is written.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func getBuf() *[]byte { return bufs.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= 64<<10 { // a rare large answer is not kept
		*b = (*b)[:0]
		bufs.Put(b)
	}
}

// appendJSONString appends s as encoding/json writes a string: plain
// characters as they are, anything it would escape through encoding/json
// itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
