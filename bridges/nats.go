package bridges

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

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
	n := rt.cfg.NATS
	fail := func(status int, code, format string, args ...any) *apiError {
		return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...), Route: rt.cfg.Name, Upstream: n.Upstream}
	}
	conn := st.nats[n.Upstream]
	query := r.URL.Query()
	subj, err := rt.subject.Fill(func(tok subject.Token) (string, bool) {
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

	limit := int64(rt.cfg.BodyLimit)
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

	ctx, cancel := context.WithTimeout(r.Context(), n.Timeout.Std())
	defer cancel()
	switch n.Mode {
	case config.NATSModeCore:
		if err := conn.PublishCore(msg); err != nil {
			return natsFailure(fail, err, n, "")
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"subject": subj, "delivery": "at-most-once"})
	case config.NATSModeRequest:
		reply, err := conn.Request(ctx, msg)
		if err != nil {
			return natsFailure(fail, err, n, "")
		}
		for _, h := range append([]string{"Content-Type"}, n.ReplyHeaders...) {
			for _, v := range reply.Header.Values(http.CanonicalHeaderKey(h)) {
				w.Header().Add(h, v)
			}
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(reply.Data)
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
		if err != nil {
			return natsFailure(fail, err, n, key)
		}
		writeJSON(w, http.StatusCreated, ack)
	}
	return nil
}

// natsFailure turns a publish error into the status a client can act on.
func natsFailure(fail func(int, string, string, ...any) *apiError, err error, n *config.NATSTarget, key string) *apiError {
	var conflict *natsproto.ConflictError
	var svc *natsproto.ServiceError
	switch {
	case errors.Is(err, natsproto.ErrNotConnected):
		return fail(http.StatusServiceUnavailable, "upstream_unavailable", "NATS upstream %s is not connected; nothing was published", n.Upstream)
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
		status := svc.Code
		if status < 400 || status > 599 {
			status = http.StatusBadGateway
		}
		return fail(status, "service_error", "%s", svc.Description)
	}
	return fail(http.StatusBadGateway, "upstream_error", "NATS upstream %s: %v", n.Upstream, err)
}
