package bridges

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/nats-io/nats.go"

	"github.com/protogate/protogate/config"
	natsproto "github.com/protogate/protogate/protocols/nats"
	"github.com/protogate/protogate/protocols/nats/subject"
)

// Request headers that carry JetStream expectations, named as NATS names
// them so NATS users recognise them.
const (
	headerExpectedStream  = "Nats-Expected-Stream"
	headerExpectedLastSeq = "Nats-Expected-Last-Sequence"
	maxIdempotencyKey     = 256
)

// serveNATS fills the route's subject, reads the body within the route's
// and the server's limits, publishes in the route's mode and answers.
// Nothing is published unless every check passed.
func (s *Server) serveNATS(w http.ResponseWriter, r *http.Request, st *state, rt *route, vars map[string]string) *apiError {
	n := rt.row.NATS
	fail := func(status int, code, format string, args ...any) *apiError {
		return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...), Route: rt.row.Name, Upstream: n.Upstream}
	}
	conn := st.nats[n.Upstream]
	subj, err := fillSubject(rt, r, vars)
	if err != nil {
		return fail(http.StatusBadRequest, "invalid_subject_token", "%v", err)
	}

	limit := int64(rt.row.BodyLimit)
	if mp := conn.MaxPayload(); mp > 0 && mp < limit {
		limit = mp // a message over max_payload would be refused by NATS
	}
	body, aerr := readBody(w, r, limit, fail)
	if aerr != nil {
		return aerr
	}

	msg := &natsproto.Message{Subject: subj, Header: nats.Header{}, Data: body}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		msg.Header.Set("Content-Type", ct)
	}
	for _, h := range rt.natsHeaders.copied {
		for _, v := range r.Header[h] {
			msg.Header.Add(h, v)
		}
	}
	tc, endSpan := natsSpan(st, r, n, subj)
	for k, v := range tc {
		msg.Header.Set(k, v) // as OpenTelemetry's NATS propagation names them
	}
	began := time.Now()
	var sendErr error
	defer func() { endSpan(sendErr) }()

	switch n.Mode {
	case config.NATSModeCore:
		err := conn.PublishCore(msg)
		sendErr = err
		s.metrics.observeNATS(rt, began)
		if err != nil {
			return natsFailure(fail, err, n, "")
		}
		writeAccepted(w, subj)
	case config.NATSModeRequest:
		reply, err := conn.Request(r.Context(), rt.row.Timeout.Std(), msg)
		sendErr = err
		s.metrics.observeNATS(rt, began)
		var svc *natsproto.ServiceError
		switch {
		case errors.As(err, &svc) && svc.Code >= 400 && svc.Code <= 599 && len(svc.Data) > 0:
			// The service's own error body is the answer, with its status.
			writeReply(w, svc.Code, svc.Header, svc.Data, rt.natsHeaders.reply)
		case err != nil:
			return natsFailure(fail, err, n, "")
		default:
			writeReply(w, http.StatusOK, reply.Header, reply.Data, rt.natsHeaders.reply)
		}
	default:
		var exp natsproto.Expect
		key := headerValue(r.Header, rt.natsHeaders.idempotency)
		if len(key) > maxIdempotencyKey {
			return fail(http.StatusBadRequest, "bad_idempotency_key", "%s is longer than %d characters", n.IdempotencyHeader, maxIdempotencyKey)
		}
		exp.MsgID = key
		exp.Stream = r.Header.Get(headerExpectedStream)
		if v := r.Header.Get(headerExpectedLastSeq); v != "" {
			seq, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return fail(http.StatusBadRequest, "bad_expected_sequence", "%s must be a whole number, not %q", headerExpectedLastSeq, v)
			}
			exp.LastSequence = &seq
		}
		ack, err := conn.PublishJetStream(r.Context(), rt.row.Timeout.Std(), msg, exp)
		sendErr = err
		s.metrics.observeNATS(rt, began)
		if err != nil {
			return natsFailure(fail, err, n, key)
		}
		writeAck(w, ack)
	}
	return nil
}

// fillSubject is the route's subject with the request's values; the query
// is parsed only for a template that reads it.
func fillSubject(rt *route, r *http.Request, vars map[string]string) (string, error) {
	var query url.Values
	return rt.subject.Fill(rt.row.NATS.MaxTokenLength, func(tok subject.Token) (string, bool) {
		switch tok.Source {
		case subject.FromPath:
			v, ok := vars[tok.Name]
			return v, ok
		case subject.FromQuery:
			if query == nil {
				query = r.URL.Query()
			}
			if !query.Has(tok.Name) {
				return "", false
			}
			return query.Get(tok.Name), true
		case subject.FromHeader:
			vs, ok := r.Header[http.CanonicalHeaderKey(tok.Name)]
			if !ok {
				return "", false
			}
			if len(vs) == 0 {
				return "", true
			}
			return vs[0], true
		}
		return "", false
	})
}

// natsSpan is the publish's client span when the bridge traces, else the
// caller's trace context passed on; without tracing nothing is built for
// a span that will not exist.
func natsSpan(st *state, r *http.Request, n *config.NATSTarget, subj string) (map[string]string, func(error)) {
	if st.tracing == nil {
		return traceContext(r.Header), endNoSpan
	}
	return clientSpan(st, r, "publish "+n.Subject, attribute.String("messaging.system", "nats"),
		attribute.String("messaging.destination.name", subj), attribute.String("messaging.operation.type", "send"),
		attribute.String("protogate.upstream", n.Upstream))
}

func endNoSpan(error) {}

// writeAck answers a stored message with the stream's ack, as
// encoding/json would write the Ack, built without reflection.
func writeAck(w http.ResponseWriter, ack *natsproto.Ack) {
	bp := getBuf()
	defer putBuf(bp)
	b := append((*bp)[:0], `{"stream":`...)
	b = appendJSONString(b, ack.Stream)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, ack.Sequence, 10)
	b = append(b, `,"duplicate":`...)
	b = strconv.AppendBool(b, ack.Duplicate)
	b = append(b, "}\n"...)
	*bp = b
	writeBody(w, http.StatusCreated, jsonContentType, b)
}

// writeAccepted answers a core publish (encoding/json's order of the keys).
func writeAccepted(w http.ResponseWriter, subj string) {
	bp := getBuf()
	defer putBuf(bp)
	b := append((*bp)[:0], `{"delivery":"at-most-once","subject":`...)
	b = appendJSONString(b, subj)
	b = append(b, "}\n"...)
	*bp = b
	writeBody(w, http.StatusAccepted, jsonContentType, b)
}

// natsHeaderNames are the header names a NATS route reads and copies, made
// canonical once: net/http's header lookups would canonicalize (and
// allocate for) a name written in lower case on every request.
type natsHeaderNames struct {
	copied      []string // request headers copied to the message
	reply       []string // reply headers copied to the answer
	idempotency string
}

func canonicalNames(n *config.NATSTarget) *natsHeaderNames {
	c := &natsHeaderNames{idempotency: http.CanonicalHeaderKey(n.IdempotencyHeader)}
	for _, h := range n.Headers {
		c.copied = append(c.copied, http.CanonicalHeaderKey(h))
	}
	for _, h := range n.ReplyHeaders {
		c.reply = append(c.reply, http.CanonicalHeaderKey(h))
	}
	return c
}

// headerValue is h.Get of a name already canonical.
func headerValue(h http.Header, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// writeReply answers with a NATS reply: its content type (or
// application/octet-stream, never sniffed) and the headers the route lists
// (canonical names).
func writeReply(w http.ResponseWriter, status int, h nats.Header, data []byte, replyHeaders []string) {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	hdr := w.Header()
	hdr.Set("Content-Type", ct)
	hdr["X-Content-Type-Options"] = noSniff
	for _, name := range replyHeaders {
		for _, v := range h.Values(name) {
			hdr[name] = append(hdr[name], v)
		}
	}
	// The responder's trace context, when it sends one, goes back too
	// (NATS headers keep the case they were set in).
	replyTraceContext(hdr, func(k string) string {
		if v := h.Get(k); v != "" {
			return v
		}
		return h.Get(http.CanonicalHeaderKey(k))
	})
	setLength(hdr, len(data))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// natsFailure turns a publish error into the status a client can act on.
func natsFailure(fail func(int, string, string, ...any) *apiError, err error, n *config.NATSTarget, key string) *apiError {
	var conflict *natsproto.ConflictError
	var svc *natsproto.ServiceError
	var limit *natsproto.LimitError
	var dup *natsproto.IdempotencyConflictError
	switch {
	case errors.Is(err, natsproto.ErrNotConnected):
		return fail(http.StatusServiceUnavailable, "upstream_unavailable", "NATS upstream %s is not connected; nothing was sent", n.Upstream).retryAfter(1)
	case errors.As(err, &limit):
		switch limit.Field {
		case "subject":
			return fail(http.StatusBadRequest, "subject_too_long", "the subject would be %d bytes; upstream %s takes at most %d", limit.Size, n.Upstream, limit.Limit)
		case "headers":
			return fail(http.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "the copied headers are %d bytes; with this body upstream %s takes at most %d", limit.Size, n.Upstream, limit.Limit)
		}
		return fail(http.StatusRequestEntityTooLarge, "body_too_large", "the body is %d bytes; upstream %s takes at most %d", limit.Size, n.Upstream, limit.Limit)
	case errors.As(err, &dup):
		return fail(http.StatusConflict, "idempotency_conflict", "%s %q was already used for another message (stored in %s at seq %d, with another subject or body); nothing new was stored: use a new key for a new message",
			n.IdempotencyHeader, dup.MsgID, dup.Stream, dup.Sequence)
	case errors.Is(err, natsproto.ErrOutcomeUnknown):
		if n.Mode == config.NATSModeRequest {
			return fail(http.StatusBadGateway, "reply_lost", "the connection to upstream %s was lost before the reply came; the service may or may not have acted on the request", n.Upstream)
		}
		advice := "retry with the same " + n.IdempotencyHeader + " to publish it exactly once"
		if key == "" {
			advice = "send an " + n.IdempotencyHeader + " header so a retry cannot store it twice"
		}
		return fail(http.StatusServiceUnavailable, "ack_lost", "the connection to upstream %s was lost before the acknowledgement came; the message may or may not be stored: %s", n.Upstream, advice).retryAfter(1)
	case errors.Is(err, natsproto.ErrNoStream):
		return fail(http.StatusServiceUnavailable, "no_stream", "no JetStream stream on upstream %s takes this subject; nothing was stored", n.Upstream)
	case errors.Is(err, natsproto.ErrAckTimeout):
		advice := "retry with the same " + n.IdempotencyHeader + " to publish it exactly once"
		if key == "" {
			advice = "send an " + n.IdempotencyHeader + " header so a retry cannot store it twice"
		}
		return fail(http.StatusGatewayTimeout, "ack_timeout", "no acknowledgement from upstream %s within %s; the message may or may not be stored: %s", n.Upstream, n.Timeout, advice)
	case errors.Is(err, natsproto.ErrNoResponders):
		return fail(http.StatusServiceUnavailable, "no_responders", "no service on upstream %s answers this request", n.Upstream)
	case errors.Is(err, natsproto.ErrReplyTimeout):
		return fail(http.StatusGatewayTimeout, "reply_timeout", "the service on upstream %s did not answer within %s", n.Upstream, n.Timeout)
	case errors.Is(err, natsproto.ErrTooLarge):
		return fail(http.StatusRequestEntityTooLarge, "body_too_large", "the message is larger than upstream %s accepts", n.Upstream)
	case errors.As(err, &conflict):
		return fail(http.StatusConflict, "expectation_failed", "%s", conflict.Reason)
	case errors.As(err, &svc):
		if svc.Code < 400 || svc.Code > 599 {
			return fail(http.StatusBadGateway, "service_error", "the service on upstream %s answered with error code %q, which is not an HTTP error status: %s", n.Upstream, svc.CodeText, svc.Description)
		}
		return fail(svc.Code, "service_error", "%s", svc.Description)
	}
	return fail(http.StatusBadGateway, "upstream_error", "NATS upstream %s: %v", n.Upstream, err)
}
