package bridges

import (
	"context"
	"errors"
	"fmt"
	"go.opentelemetry.io/otel/attribute"
	"net/http"
	"strconv"
	"time"

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
	query := r.URL.Query()
	subj, err := rt.subject.Fill(n.MaxTokenLength, func(tok subject.Token) (string, bool) {
		switch tok.Source {
		case subject.FromPath:
			v, ok := vars[tok.Name]
			return v, ok
		case subject.FromQuery:
			if !query.Has(tok.Name) {
				return "", false
			}
			return query.Get(tok.Name), true
		case subject.FromHeader:
			if _, ok := r.Header[http.CanonicalHeaderKey(tok.Name)]; !ok {
				return "", false
			}
			return r.Header.Get(tok.Name), true
		}
		return "", false
	})
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
	for _, h := range n.Headers {
		for _, v := range r.Header.Values(h) {
			msg.Header.Add(http.CanonicalHeaderKey(h), v)
		}
	}
	tc, endSpan := clientSpan(st, r, "publish "+n.Subject, attribute.String("messaging.system", "nats"),
		attribute.String("messaging.destination.name", subj), attribute.String("messaging.operation.type", "send"),
		attribute.String("protogate.upstream", n.Upstream))
	for k, v := range tc {
		msg.Header.Set(k, v) // as OpenTelemetry's NATS propagation names them
	}
	began := time.Now()
	var sendErr error
	defer func() { endSpan(sendErr) }()

	ctx, cancel := context.WithTimeout(r.Context(), rt.row.Timeout.Std())
	defer cancel()
	switch n.Mode {
	case config.NATSModeCore:
		err := conn.PublishCore(msg)
		sendErr = err
		s.metrics.observeUpstream(n.Upstream, "nats", "publish", began)
		if err != nil {
			return natsFailure(fail, err, n, "")
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"subject": subj, "delivery": "at-most-once"})
	case config.NATSModeRequest:
		reply, err := conn.Request(ctx, msg)
		sendErr = err
		s.metrics.observeUpstream(n.Upstream, "nats", "request", began)
		var svc *natsproto.ServiceError
		switch {
		case errors.As(err, &svc) && svc.Code >= 400 && svc.Code <= 599 && len(svc.Data) > 0:
			// The service's own error body is the answer, with its status.
			writeReply(w, svc.Code, svc.Header, svc.Data, n.ReplyHeaders)
		case err != nil:
			return natsFailure(fail, err, n, "")
		default:
			writeReply(w, http.StatusOK, reply.Header, reply.Data, n.ReplyHeaders)
		}
	default:
		var exp natsproto.Expect
		key := r.Header.Get(n.IdempotencyHeader)
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
		ack, err := conn.PublishJetStream(ctx, msg, exp)
		sendErr = err
		s.metrics.observeUpstream(n.Upstream, "nats", "jetstream_publish", began)
		if err != nil {
			return natsFailure(fail, err, n, key)
		}
		writeJSON(w, http.StatusCreated, ack)
	}
	return nil
}

// writeReply answers with a NATS reply: its content type (or
// application/octet-stream, never sniffed) and the headers the route lists.
func writeReply(w http.ResponseWriter, status int, h nats.Header, data []byte, replyHeaders []string) {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	for _, name := range replyHeaders {
		for _, v := range h.Values(http.CanonicalHeaderKey(name)) {
			w.Header().Add(name, v)
		}
	}
	// The responder's trace context, when it sends one, goes back too
	// (NATS headers keep the case they were set in).
	replyTraceContext(w.Header(), func(k string) string {
		if v := h.Get(k); v != "" {
			return v
		}
		return h.Get(http.CanonicalHeaderKey(k))
	})
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
