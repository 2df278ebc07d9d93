package nats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors a publish can end with, for the caller to map to its own terms.
var (
	// ErrNotConnected: the connection is down; nothing was sent.
	ErrNotConnected = errors.New("not connected to NATS")
	// ErrNoStream: no stream takes the subject; nothing was stored.
	ErrNoStream = errors.New("no stream takes this subject")
	// ErrAckTimeout: the ack did not come in time. The message may still
	// be stored; a retry with the same message id is safe.
	ErrAckTimeout = errors.New("no acknowledgement in time; the message may or may not be stored")
	// ErrOutcomeUnknown: the connection was lost after the message was
	// handed to it and before the answer came: it may or may not have
	// arrived. Known as soon as the connection drops, not at the timeout.
	ErrOutcomeUnknown = errors.New("the connection was lost before the answer came; the message may or may not have arrived")
	// ErrNoResponders: nobody listens on the request subject.
	ErrNoResponders = errors.New("no service answers on this subject")
	// ErrReplyTimeout: the service did not answer in time.
	ErrReplyTimeout = errors.New("the service did not answer in time")
	// ErrTooLarge: the message is over the server's max_payload.
	ErrTooLarge = errors.New("the message is larger than the NATS server accepts")
)

// jsErrExpectedStreamMismatch is the server's "expected stream does not
// match" (nats.go names no constant for it).
const jsErrExpectedStreamMismatch jetstream.ErrorCode = 10060

// ConflictError is a JetStream expectation that did not hold (expected
// stream or last sequence).
type ConflictError struct{ Reason string }

func (e *ConflictError) Error() string { return e.Reason }

// IdempotencyConflictError is a message id already stored with another
// subject or payload: the new message was not stored, and the stored one
// is not what the caller sent.
type IdempotencyConflictError struct {
	MsgID    string
	Stream   string
	Sequence uint64
}

func (e *IdempotencyConflictError) Error() string {
	return fmt.Sprintf("message id %q is already stored in %s at sequence %d with another subject or payload", e.MsgID, e.Stream, e.Sequence)
}

// LimitError is a message the server would refuse. The server answers
// such a message by closing the connection, so it is never sent.
type LimitError struct {
	Field string // subject, headers or body
	Size  int
	Limit int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("the %s is %d bytes; the NATS server takes at most %d", e.Field, e.Size, e.Limit)
}

// ServiceError is a reply from a NATS micro service that reports an error.
type ServiceError struct {
	Code        int    // 0 when the service's code is not a number
	CodeText    string // the code as the service sent it
	Description string
	Header      nats.Header
	Data        []byte
}

func (e *ServiceError) Error() string {
	return fmt.Sprintf("service error %d: %s", e.Code, e.Description)
}

// Message is what a caller publishes: the subject, headers and raw payload.
type Message struct {
	Subject string
	Header  nats.Header
	Data    []byte
}

func (m *Message) msg() *nats.Msg {
	return &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}
}

// Expect are JetStream publish expectations.
type Expect struct {
	MsgID        string // de-duplication key (Nats-Msg-Id)
	Stream       string // the stream that must take the subject
	LastSequence *uint64
}

// controlLineReserve is what a publish's protocol line holds besides the
// subject: the verb, a reply inbox (nats.go's are under 64 bytes), the two
// sizes and the line end.
const controlLineReserve = 128

// CheckLimits refuses, before anything is sent, a message the server would
// answer with a protocol error and a closed connection: a subject that
// makes the control line too long, or headers and body over max_payload.
// e holds the headers JetStream adds.
func (c *Conn) CheckLimits(m *Message, e *Expect) error {
	if max := int(c.u.MaxControlLine); max > 0 && len(m.Subject)+controlLineReserve > max {
		return &LimitError{Field: "subject", Size: len(m.Subject), Limit: max - controlLineReserve}
	}
	maxPayload := int(c.MaxPayload())
	if maxPayload <= 0 {
		return nil // not connected: the publish fails without sending
	}
	hdr := headerSize(m.Header, e)
	switch {
	case len(m.Data) > maxPayload:
		return &LimitError{Field: "body", Size: len(m.Data), Limit: maxPayload}
	case hdr+len(m.Data) > maxPayload:
		return &LimitError{Field: "headers", Size: hdr, Limit: maxPayload - len(m.Data)}
	}
	return nil
}

// headerSize is the encoded size of a header block as nats.go writes it
// ("NATS/1.0\r\n", a "Key: value\r\n" line each, "\r\n"), with the
// JetStream headers an Expect adds.
func headerSize(h nats.Header, e *Expect) int {
	line := func(k, v string) int { return len(k) + 2 + len(v) + 2 }
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += line(k, v)
		}
	}
	if e != nil {
		if e.MsgID != "" {
			n += line(jetstream.MsgIDHeader, e.MsgID)
		}
		if e.Stream != "" {
			n += line(jetstream.ExpectedStreamHeader, e.Stream)
		}
		if e.LastSequence != nil {
			n += line(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(*e.LastSequence, 10))
		}
	}
	if n == 0 {
		return 0
	}
	return len("NATS/1.0\r\n") + n + 2
}

// Ack is the stream's acknowledgement.
type Ack struct {
	Stream    string `json:"stream"`
	Sequence  uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
}

// waiting is a call in flight on a link: its context ends at the call's
// timeout, with the caller's context, or as soon as the link's episode
// current at sending ends.
type waiting struct {
	ep     *episode
	stop   func() bool
	cancel context.CancelFunc
}

// within derives the context a call waits in from ctx and timeout (none
// when 0). One context and one registration on the episode per call: a
// publish is on the bridge's hot path.
func (l *link) within(ctx context.Context, timeout time.Duration) (context.Context, waiting) {
	w := waiting{ep: l.episode.Load()}
	if timeout > 0 {
		ctx, w.cancel = context.WithTimeout(ctx, timeout)
	} else {
		ctx, w.cancel = context.WithCancel(ctx)
	}
	w.stop = context.AfterFunc(w.ep.ctx, w.cancel)
	return ctx, w
}

func (w waiting) done() {
	w.stop()
	w.cancel()
}

// lost says whether the connection was lost since the call was sent.
func (w waiting) lost() bool { return w.ep.ctx.Err() != nil }

// PublishJetStream publishes and waits for the stream's ack until ctx ends,
// timeout passes (0: ctx alone) or the connection is lost. A duplicate of a
// stored message id is checked against what is stored: another subject or
// payload is an IdempotencyConflictError, never a silent drop of the new
// payload. The wait is nats.go's own request: no flush of its own, so
// nats.go's flusher writes concurrent publishes together.
func (c *Conn) PublishJetStream(ctx context.Context, timeout time.Duration, m *Message, e Expect) (*Ack, error) {
	l := c.cur.Load()
	if l.nc.Status() != nats.CONNECTED {
		return nil, ErrNotConnected
	}
	if err := c.CheckLimits(m, &e); err != nil {
		return nil, err
	}
	setExpectations(m, &e)
	wctx, w := l.within(ctx, timeout)
	defer w.done()
	ack, err := l.js.PublishMsg(wctx, m.msg())
	if err != nil {
		return nil, classifyPublish(wctx, w.lost(), err)
	}
	out := &Ack{Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}
	if ack.Duplicate && e.MsgID != "" {
		if err := c.sameAsStored(wctx, w, l, m, e.MsgID, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// setExpectations puts e in m's headers as jetstream's publish options
// would (the same header names and values), without a closure and an
// options slice per publish.
func setExpectations(m *Message, e *Expect) {
	if e.MsgID == "" && e.Stream == "" && e.LastSequence == nil {
		return
	}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	if e.MsgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, e.MsgID)
	}
	if e.Stream != "" {
		m.Header.Set(jetstream.ExpectedStreamHeader, e.Stream)
	}
	if e.LastSequence != nil {
		m.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(*e.LastSequence, 10))
	}
}

// sameAsStored compares a duplicate with the message stored under its id.
// A message no longer in the stream (removed by its limits) cannot be
// compared and counts as the same.
func (c *Conn) sameAsStored(ctx context.Context, w waiting, l *link, m *Message, id string, ack *Ack) error {
	s, err := c.stream(ctx, l, ack.Stream)
	if err != nil {
		return classifyPublish(ctx, w.lost(), err)
	}
	stored, err := s.GetMsg(ctx, ack.Sequence)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil
	case err != nil:
		return classifyPublish(ctx, w.lost(), err)
	}
	if stored.Subject != m.Subject || !bytes.Equal(stored.Data, m.Data) {
		return &IdempotencyConflictError{MsgID: id, Stream: ack.Stream, Sequence: ack.Sequence}
	}
	return nil
}

// stream is a handle on a stream, looked up once per link.
func (c *Conn) stream(ctx context.Context, l *link, name string) (jetstream.Stream, error) {
	c.streamsMu.Lock()
	defer c.streamsMu.Unlock()
	key := fmt.Sprintf("%p/%s", l, name)
	if s, ok := c.streams[key]; ok {
		return s, nil
	}
	s, err := l.js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	c.streams[key] = s
	return s, nil
}

// classifyPublish names a JetStream publish's failure; lost: the connection
// was lost since the message was sent.
func classifyPublish(ctx context.Context, lost bool, err error) error {
	var api *jetstream.APIError
	switch {
	case errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrConnectionDraining):
		return ErrNotConnected
	case lost, lostAfterSending(err):
		return ErrOutcomeUnknown
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return ErrNoStream
	case errors.Is(err, nats.ErrMaxPayload):
		return ErrTooLarge
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), ctx.Err() != nil:
		return ErrAckTimeout
	case errors.As(err, &api):
		switch api.ErrorCode {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return &ConflictError{Reason: "the stream's last sequence is not the one expected"}
		case jsErrExpectedStreamMismatch:
			return &ConflictError{Reason: "the subject belongs to another stream than the one expected"}
		}
	}
	return err
}

// lostAfterSending is how nats.go ends a request whose connection closes
// while it waits for the answer (a server error that closes it, say): the
// message went out, so whether it arrived is unknown. nats.go gives the
// same error for a connection already closed before sending, a narrow race
// after the status check; "unknown" is true then too, whereas "nothing was
// sent" would be false in the first case.
func lostAfterSending(err error) bool {
	return errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrDisconnected)
}

// notSent is an error nats.go returns before writing anything.
func notSent(err error) bool {
	return errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrConnectionDraining)
}

// PublishCore publishes without waiting for anything: at most once.
func (c *Conn) PublishCore(m *Message) error {
	l := c.cur.Load()
	if l.nc.Status() != nats.CONNECTED {
		return ErrNotConnected
	}
	if err := c.CheckLimits(m, nil); err != nil {
		return err
	}
	err := l.nc.PublishMsg(m.msg())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, nats.ErrMaxPayload):
		return ErrTooLarge
	case notSent(err):
		return ErrNotConnected
	}
	return err
}

// Reply is a request's answer.
type Reply struct {
	Header nats.Header
	Data   []byte
}

// Request sends a request and waits for the reply until ctx ends, timeout
// passes (0: ctx alone) or the connection is lost. A reply carrying
// Nats-Service-Error-Code is a ServiceError.
func (c *Conn) Request(ctx context.Context, timeout time.Duration, m *Message) (*Reply, error) {
	l := c.cur.Load()
	if l.nc.Status() != nats.CONNECTED {
		return nil, ErrNotConnected
	}
	if err := c.CheckLimits(m, nil); err != nil {
		return nil, err
	}
	wctx, w := l.within(ctx, timeout)
	defer w.done()
	resp, err := l.nc.RequestMsgWithContext(wctx, m.msg())
	switch {
	case err == nil:
	case w.lost(), lostAfterSending(err):
		return nil, ErrOutcomeUnknown
	case notSent(err):
		return nil, ErrNotConnected
	case errors.Is(err, nats.ErrNoResponders):
		return nil, ErrNoResponders
	case errors.Is(err, nats.ErrMaxPayload):
		return nil, ErrTooLarge
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil, ErrReplyTimeout
	default:
		return nil, err
	}
	if code := resp.Header.Get("Nats-Service-Error-Code"); code != "" {
		se := &ServiceError{CodeText: code, Description: resp.Header.Get("Nats-Service-Error"), Header: resp.Header, Data: resp.Data}
		se.Code, _ = strconv.Atoi(code)
		return nil, se
	}
	return &Reply{Header: resp.Header, Data: resp.Data}, nil
}
