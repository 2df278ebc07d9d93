// Package nats publishes to NATS for the bridge: one shared connection per
// upstream, JetStream publishes that wait for the stream's ack, core
// publishes, and request-reply, with errors classified so callers can tell a
// missing stream from a timeout from an outage. It knows nothing of HTTP.
package nats

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/protogate/protogate/config"
)

// Conn is the shared connection to one NATS upstream.
type Conn struct {
	Upstream    string
	nc          *nats.Conn
	js          jetstream.JetStream
	log         *slog.Logger
	state       *linkState
	provisionMu sync.Mutex
	built       chan struct{} // closed once nc and js are set
	provision   bool          // the mapping asks for its streams to be provisioned
	provisioned atomic.Bool
}

// Connect opens the upstream's connection. A server that is down does not
// fail it: the connection keeps trying forever, with backoff and jitter, and
// Ready says when it is up. Only unreadable credentials fail here.
func Connect(u *config.NATSUpstream, urls []string, log *slog.Logger) (*Conn, error) {
	log = log.With("upstream", u.Name, "protocol", "nats")
	c := &Conn{Upstream: u.Name, log: log, state: &linkState{log: log}, built: make(chan struct{}), provision: u.Provision}
	opts := []nats.Option{
		nats.Name(u.ConnectionName),
		nats.Timeout(u.ConnectTimeout.Std()),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(u.ReconnectWait.Std()),
		nats.ReconnectJitter(u.ReconnectWait.Std()/2, u.ReconnectWait.Std()),
		// A publish while disconnected fails at once instead of sitting in
		// a buffer that vanishes if the process stops.
		nats.ReconnectBufSize(-1),
		// nats.go calls these once per change, in order, from one
		// goroutine: not per reconnect attempt and not per publish.
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // a close, reported by the closed handler or asked for by Drain
			}
			c.state.down(reason(err, "the connection was lost"))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.state.up(nc.ConnectedUrlRedacted())
			c.connected(u)
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			c.state.up(nc.ConnectedUrlRedacted())
			c.connected(u)
		}),
		// Drain replaces this handler: only a close nats.go decides on
		// (e.g. after an authorization violation) gets here.
		nats.ClosedHandler(func(nc *nats.Conn) {
			c.state.closed(reason(nc.LastError(), "the connection was closed"))
		}),
		nats.ErrorHandler(func(nc *nats.Conn, _ *nats.Subscription, err error) { c.asyncError(nc, err) }),
	}
	auth, err := authOptions(u)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", u.Name, err)
	}
	opts = append(opts, auth...)
	nc, err := nats.Connect(strings.Join(urls, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", u.Name, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("upstream %q: %w", u.Name, err)
	}
	c.nc, c.js = nc, js
	close(c.built) // provisioning waits for this; nats.go's connect callback starts it
	// A server down at start calls no handler until it is up.
	c.state.downAtStart(func() bool { return nc.Status() == nats.CONNECTED }, reason(nc.LastError(), "no server answered"))
	return c, nil
}

// asyncError logs an error the server sent outside any request (a
// permission violation, say). One that closes the connection is told by
// the closed handler; the same error again within repeatQuiet is DEBUG, as
// it can come once per publish.
func (c *Conn) asyncError(nc *nats.Conn, err error) {
	if nc.IsClosed() || c.state.repeated(err.Error(), time.Now()) {
		c.log.Debug("NATS error", "err", err)
		return
	}
	c.log.Warn("NATS error", "err", err)
}

// repeatQuiet is how long the same asynchronous error is logged only once.
const repeatQuiet = time.Minute

// reason is err's text for a log line, or otherwise when nats.go has none.
func reason(err error, otherwise string) string {
	if err == nil {
		return otherwise
	}
	return err.Error()
}

// linkState logs the connection's changes of state, once each: the upstream
// unavailable, then available again, whatever the number of publishes or
// reconnect attempts in between.
type linkState struct {
	log       *slog.Logger
	mu        sync.Mutex
	isDown    bool
	connected bool // it has been up at least once
	lastError string
	lastAt    time.Time
}

// repeated says whether msg is the asynchronous error last seen, less than
// repeatQuiet ago, and remembers it.
func (s *linkState) repeated(msg string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if msg == s.lastError && now.Sub(s.lastAt) < repeatQuiet {
		return true
	}
	s.lastError, s.lastAt = msg, now
	return false
}

func (s *linkState) down(why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isDown {
		return
	}
	s.isDown = true
	s.log.Warn("upstream unavailable", "reason", why)
}

func (s *linkState) up(server string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.isDown:
		s.log.Info("upstream available again", "server", server)
	case !s.connected:
		s.log.Info("upstream connected", "server", server)
	}
	s.isDown, s.connected = false, true
}

// downAtStart marks the upstream down when it is not connected right after
// Connect. The check runs under the lock the handlers take, so a connect
// handler racing it either sees the mark and clears it, or ran first.
func (s *linkState) downAtStart(isConnected func() bool, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connected || s.isDown || isConnected() {
		return
	}
	s.isDown = true
	s.log.Warn("upstream unavailable", "reason", why)
}

func (s *linkState) closed(why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.isDown = true
	s.log.Error("upstream connection closed for good; restart the bridge to reconnect", "reason", why)
}

// connected provisions the upstream's streams, when asked to, each time a
// connection is made: a server that was down at start, or that lost its
// state, gets them as soon as it is back.
func (c *Conn) connected(u *config.NATSUpstream) {
	if !u.Provision {
		return
	}
	go func() {
		c.provisionMu.Lock()
		defer c.provisionMu.Unlock()
		<-c.built // the connect callback can run before Connect returns
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Every reconnect provisions again (the server may have lost its
		// state); only the first time is news at INFO.
		lv := slog.LevelInfo
		if c.provisioned.Load() {
			lv = slog.LevelDebug
		}
		if err := c.provisionAt(ctx, u.Streams, lv); err != nil {
			c.log.Error("stream provisioning failed; publishes to those streams will fail", "err", err)
			return
		}
		c.provisioned.Store(true)
	}()
}

// authOptions reads credentials from files; secrets never sit in the
// mapping and are never logged.
func authOptions(u *config.NATSUpstream) ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case u.Credentials != "":
		if _, err := os.Stat(u.Credentials); err != nil {
			return nil, fmt.Errorf("credentials: %w", err)
		}
		opts = append(opts, nats.UserCredentials(u.Credentials))
	case u.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(u.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nkey_seed_file: %w", err)
		}
		opts = append(opts, o)
	case u.User != "":
		pw, err := readSecret(u.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("password_file: %w", err)
		}
		opts = append(opts, nats.UserInfo(u.User, pw))
	case u.TokenFile != "":
		tok, err := readSecret(u.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("token_file: %w", err)
		}
		opts = append(opts, nats.Token(tok))
	}
	if t := u.TLS; t != nil {
		// Secure first: RootCAs and ClientCert add to the config it sets.
		opts = append(opts, nats.Secure(&tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}))
		if t.CA != "" {
			opts = append(opts, nats.RootCAs(t.CA))
		}
		if t.Cert != "" {
			opts = append(opts, nats.ClientCert(t.Cert, t.Key))
		}
	}
	return opts, nil
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Ready reports whether the connection is up and, when the mapping asks
// for provisioning, the streams exist.
func (c *Conn) Ready() bool {
	return c.nc.Status() == nats.CONNECTED && (!c.provision || c.provisioned.Load())
}

// connectedNow is the connection state alone, for publishing: a publish does
// not wait for provisioning, the server tells if a stream is missing.
func (c *Conn) connectedNow() bool { return c.nc.Status() == nats.CONNECTED }

// MaxPayload is the largest message the server accepts (0 until connected).
func (c *Conn) MaxPayload() int64 { return c.nc.MaxPayload() }

// Drain lets in-flight requests finish, then closes the connection.
func (c *Conn) Drain(timeout time.Duration) {
	done := make(chan struct{})
	c.nc.SetClosedHandler(func(*nats.Conn) { close(done) })
	if err := c.nc.Drain(); err != nil {
		c.nc.Close()
		return
	}
	select {
	case <-done:
	case <-time.After(timeout):
		c.nc.Close()
	}
}

// Errors a publish can end with, for the caller to map to its own terms.
var (
	// ErrNotConnected: the connection is down; nothing was sent.
	ErrNotConnected = errors.New("not connected to NATS")
	// ErrNoStream: no stream takes the subject; nothing was stored.
	ErrNoStream = errors.New("no stream takes this subject")
	// ErrAckTimeout: the ack did not come in time. The message may still
	// be stored; a retry with the same message id is safe.
	ErrAckTimeout = errors.New("no acknowledgement in time; the message may or may not be stored")
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

// ServiceError is a reply from a NATS micro service that reports an error.
type ServiceError struct {
	Code        int
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

// Ack is the stream's acknowledgement.
type Ack struct {
	Stream    string `json:"stream"`
	Sequence  uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
}

// PublishJetStream publishes and waits for the stream's ack until ctx ends.
func (c *Conn) PublishJetStream(ctx context.Context, m *Message, e Expect) (*Ack, error) {
	if !c.connectedNow() {
		return nil, ErrNotConnected
	}
	var opts []jetstream.PublishOpt
	if e.MsgID != "" {
		opts = append(opts, jetstream.WithMsgID(e.MsgID))
	}
	if e.Stream != "" {
		opts = append(opts, jetstream.WithExpectStream(e.Stream))
	}
	if e.LastSequence != nil {
		opts = append(opts, jetstream.WithExpectLastSequence(*e.LastSequence))
	}
	ack, err := c.js.PublishMsg(ctx, m.msg(), opts...)
	if err != nil {
		return nil, classifyPublish(ctx, err)
	}
	return &Ack{Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

func classifyPublish(ctx context.Context, err error) error {
	var api *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return ErrNoStream
	case errors.Is(err, nats.ErrMaxPayload):
		return ErrTooLarge
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), ctx.Err() != nil:
		return ErrAckTimeout
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrConnectionDraining):
		return ErrNotConnected
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

// PublishCore publishes without waiting for anything: at most once.
func (c *Conn) PublishCore(m *Message) error {
	if !c.connectedNow() {
		return ErrNotConnected
	}
	err := c.nc.PublishMsg(m.msg())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, nats.ErrMaxPayload):
		return ErrTooLarge
	case errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrConnectionDraining):
		return ErrNotConnected
	}
	return err
}

// Reply is a request's answer.
type Reply struct {
	Header nats.Header
	Data   []byte
}

// Request sends a request and waits for the reply until ctx ends. A reply
// carrying Nats-Service-Error-Code is a ServiceError.
func (c *Conn) Request(ctx context.Context, m *Message) (*Reply, error) {
	if !c.connectedNow() {
		return nil, ErrNotConnected
	}
	resp, err := c.nc.RequestMsgWithContext(ctx, m.msg())
	switch {
	case err == nil:
	case errors.Is(err, nats.ErrNoResponders):
		return nil, ErrNoResponders
	case errors.Is(err, nats.ErrMaxPayload):
		return nil, ErrTooLarge
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil, ErrReplyTimeout
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrConnectionDraining):
		return nil, ErrNotConnected
	default:
		return nil, err
	}
	if code := resp.Header.Get("Nats-Service-Error-Code"); code != "" {
		se := &ServiceError{Description: resp.Header.Get("Nats-Service-Error"), Header: resp.Header, Data: resp.Data}
		fmt.Sscanf(code, "%d", &se.Code)
		return nil, se
	}
	return &Reply{Header: resp.Header, Data: resp.Data}, nil
}

// Provision creates or updates the streams the mapping lists.
func (c *Conn) Provision(ctx context.Context, streams []config.Stream) error {
	return c.provisionAt(ctx, streams, slog.LevelInfo)
}

// provisionAt is Provision logging each stream at level lv.
func (c *Conn) provisionAt(ctx context.Context, streams []config.Stream, lv slog.Level) error {
	for _, s := range streams {
		storage := jetstream.FileStorage
		if s.Storage == "memory" {
			storage = jetstream.MemoryStorage
		}
		_, err := c.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: s.Name, Subjects: s.Subjects, Storage: storage, Replicas: s.Replicas, Duplicates: s.DuplicateWindow.Std(),
		})
		if err != nil {
			return fmt.Errorf("stream %s: %w", s.Name, err)
		}
		c.log.Log(ctx, lv, "stream provisioned", "stream", s.Name, "subjects", s.Subjects)
	}
	return nil
}
