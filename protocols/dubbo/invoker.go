package dubbo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"dubbo.apache.org/dubbo-go/v3/common/constant"
	tri "dubbo.apache.org/dubbo-go/v3/protocol/triple/triple_protocol"
	hessian "github.com/apache/dubbo-go-hessian2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/protocols/dubbo/wire"
)

// Errors a call can end with, for the caller to map to its own terms.
var (
	// ErrNoProvider: no provider of the service can be reached.
	ErrNoProvider = errors.New("no provider available")
	// ErrTimeout: the provider did not answer in time.
	ErrTimeout = errors.New("the provider did not answer in time")
)

// ProviderError is an exception the provider threw.
type ProviderError struct {
	Class   string // the Java exception class; empty when the provider sent none (a plain error)
	Message string
}

func (e *ProviderError) Error() string {
	if e.Class == "" {
		return e.Message
	}
	return e.Class + ": " + e.Message
}

// Call is one generic invocation.
type Call struct {
	Upstream    *config.DubboUpstream
	Service     string
	Version     string
	Group       string
	Method      string
	Types       []string // erased Java type names
	Args        []any
	Timeout     time.Duration
	Retries     int // extra attempts, for idempotent methods only
	Attachments map[string]string
	// Endpoints are the providers (HOST:PORT) the control plane found for
	// this service in the upstream's registry; nil when nothing discovered
	// them (the bridge's own registry client is used then).
	Endpoints []string
	// URLAddrs are the upstream's URLs read once as HOST:PORT
	// (ProviderAddrs), so a call does not parse them; nil: they are read
	// per call.
	URLAddrs []string
	// Reply is set by Invoke to the attachments (dubbo) or headers
	// (triple) the provider answered with.
	Reply map[string]string
}

// Invoker makes generic calls to the providers a call names: over the
// dubbo protocol through protogate's own transport, over triple through
// dubbo-go's triple client with protogate's codec. It runs no registry
// client: providers found in a registry come with the call.
type Invoker struct {
	log    *slog.Logger
	health *health
	// wire is protogate's own dubbo-protocol transport, for providers
	// listed by address; next turns the round robin over them.
	wire *wire.Client
	next atomic.Int64
	// outliers puts providers that keep failing last in the turn.
	outliers *outliers
	// triple calls triple providers listed by address.
	triple *tripleClients
}

// NewInvoker returns an invoker logging to log. What dubbo-go's libraries
// print goes there too (their loggers are process-wide: to the log of the
// latest invoker).
func NewInvoker(log *slog.Logger) (*Invoker, error) {
	SetLogger(log)
	wc, err := wire.NewClient(wire.Options{Logger: log.With("component", "dubbo-wire")})
	if err != nil {
		return nil, fmt.Errorf("dubbo transport: %w", err)
	}
	return &Invoker{log: log, health: newHealth(log), wire: wc, outliers: newOutliers(log),
		triple: newTripleClients()}, nil
}

// Providers lists the provider addresses the dubbo-protocol transport
// holds connections for.
func (inv *Invoker) Providers() []string { return inv.wire.Addrs() }

// Retain keeps the connections to the provider addresses in keep
// (HOST:PORT) and closes the others: the providers of an upstream a reload
// changed are released once no table names them.
func (inv *Invoker) Retain(keep map[string]bool) {
	inv.wire.Retain(keep)
	inv.triple.retain(keep)
	inv.outliers.retain(keep)
}

// Invoke calls the method and returns the provider's result as hessian
// decoded it. A failed call is logged at DEBUG only: the upstream going
// away and coming back is logged once each way, whatever the calls.
func (inv *Invoker) Invoke(ctx context.Context, c *Call) (any, error) {
	v, err := inv.invoke(ctx, c)
	if err != nil {
		inv.log.Debug("dubbo call failed", "upstream", c.Upstream.Name, "service", c.Service,
			"method", c.Method, "err", err)
	}
	inv.health.observe(c, err)
	return v, err
}

func (inv *Invoker) invoke(ctx context.Context, c *Call) (any, error) {
	if c.Upstream.Registry != "" && c.Endpoints == nil {
		// Bridges run no registry client: the control plane reads the
		// registry and puts the providers in the route table.
		return nil, fmt.Errorf("%w: no providers of %s have been discovered yet", ErrNoProvider, serviceKey(c))
	}
	if c.Upstream.Protocol == config.DubboProtocolTriple {
		return inv.callTriple(ctx, c)
	}
	return inv.callDirect(ctx, c)
}

// genericArgs are the parameter types and values of $invoke, never nil: a
// nil slice travels as a hessian null, which dubbo-go's triple server cannot
// decode into the String[] and Object[] of $invoke ("@in is nil"), so a
// method without parameters must send two empty arrays.
func genericArgs(c *Call) ([]string, []hessian.Object) {
	types := make([]string, len(c.Types))
	copy(types, c.Types)
	args := make([]hessian.Object, len(c.Args))
	for i, a := range c.Args {
		args[i] = a
	}
	return types, args
}

// errNotSent marks a failure that happened before the request was written
// (a triple connection that could not be dialled).
var errNotSent = errors.New("the request was not sent")

// Over triple, a call goes through dubbo-go's
// triple client (its triple_protocol package: gRPC over HTTP/2, the $invoke
// TripleRequestWrapper) with a codec of protogate's own instead of through
// dubbo-go's generic service, for three things the latter gets wrong:
//   - a null or void result: dubbo-go's hessian2 codec refuses to decode a
//     hessian null ("@in is nil", in reflectResponse), so every method that
//     returns null failed; this codec decodes it as nil;
//   - the timeout: the generic service sends the client-wide request timeout
//     (3 s) as a "timeout" attachment whatever the call; here the context's
//     deadline alone goes out (as grpc-timeout), so the provider sees the
//     route's own timeout;
//   - the receive limit, here the upstream's max_response_size per client.
//
// What dubbo-go's triple server sends for an exception: gRPC status 2
// (unknown; 17, biz error, from IDL services), grpc-message and the same in
// grpc-status-details-bin (a google.rpc.Status with no details) holding the
// error's text, and no trailer or attachment naming the class. For a
// *hessian2.GenericException that text is "java exception: CLASS - MESSAGE"
// (its Error()), from which the class is read; a plain error is its text
// alone, so it has no class. What remains: a GenericException with an empty
// message prints as its bare class and cannot be told from a plain error
// (it comes back as the message, without a class); the exception's stack
// and cause never travel.

// tripleClients holds one triple client per provider and service, all on
// one HTTP/2 transport (one connection per provider).
type tripleClients struct {
	http    *http.Client
	mu      sync.Mutex
	clients map[tripleKey]*tri.Client
}

type tripleKey struct {
	addr, service, version, group string
	maxResponse                   int64
}

// retain drops the clients of providers not in keep and the idle
// connections to them.
func (t *tripleClients) retain(keep map[string]bool) {
	t.mu.Lock()
	dropped := false
	for k := range t.clients {
		if !keep[k.addr] {
			delete(t.clients, k)
			dropped = true
		}
	}
	t.mu.Unlock()
	// The transport closes idle connections to every host at once; only
	// worth it when a provider went away.
	if tr, ok := t.http.Transport.(*http.Transport); ok && dropped {
		tr.CloseIdleConnections()
	}
}

func newTripleClients() *tripleClients {
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true) // triple without TLS is h2c
	tr := &http.Transport{
		Protocols:   &protocols,
		DialContext: (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		// A connection whose provider vanished is found by pings, not by
		// the next call hanging on it.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 10 * time.Second, PingTimeout: 5 * time.Second},
	}
	return &tripleClients{http: &http.Client{Transport: tr}, clients: map[tripleKey]*tri.Client{}}
}

func (tc *tripleClients) client(addr string, c *Call) *tri.Client {
	k := tripleKey{addr, c.Service, c.Version, c.Group, int64(c.Upstream.MaxResponse)}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if cli, ok := tc.clients[k]; ok {
		return cli
	}
	cli := tri.NewClient(tc.http, "http://"+addr+"/"+c.Service, tri.WithCodec(genericCodec{}),
		tri.WithReadMaxBytes(int(c.Upstream.MaxResponse)), tri.WithGroup(c.Group), tri.WithVersion(c.Version))
	tc.clients[k] = cli
	return cli
}

// callTriple calls one of the upstream's triple providers, starting at the
// next in turn. A call that never left (its connection could not be made)
// goes to the next provider whatever the method; one that found no provider
// after that goes again only on idempotent routes; an exception never.
func (inv *Invoker) callTriple(ctx context.Context, c *Call) (any, error) {
	addrs, err := callAddrs(c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	order := inv.outliers.order(addrs, int(inv.next.Add(1)), nil)
	retries := 0
	var last error
	for i := 0; i < len(order)+c.Retries; i++ {
		addr := order[i%len(order)]
		v, err := inv.tripleOnce(ctx, addr, c)
		inv.outliers.observe(addr, tripleOutcome(ctx, err))
		if err == nil {
			return v, nil
		}
		last = err
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return nil, ErrTimeout
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, errNotSent):
			continue
		case errors.Is(err, ErrNoProvider) && retries < c.Retries:
			retries++
			continue
		}
		return nil, err
	}
	return nil, last
}

// tripleOnce makes one $invoke call to the provider at addr.
func (inv *Invoker) tripleOnce(ctx context.Context, addr string, c *Call) (any, error) {
	types, args := genericArgs(c)
	req := tri.NewRequest(&genericRequest{method: c.Method, types: types, args: args})
	// Attachments are headers, lower-cased as dubbo-go sends them; generic
	// says what a generic consumer says.
	req.Header()[constant.GenericKey] = []string{"true"}
	for k, v := range c.Attachments {
		req.Header()[strings.ToLower(k)] = []string{v}
	}
	var res genericResult
	resp := tri.NewResponse(&res)
	if err := inv.triple.client(addr, c).CallUnary(ctx, req, constant.Generic, resp); err != nil {
		return nil, classifyTriple(err, c)
	}
	c.Reply = map[string]string{}
	for k, v := range resp.Header() {
		if len(v) > 0 {
			c.Reply[strings.ToLower(k)] = v[0]
		}
	}
	return res.value, nil
}

// tripleOutcome says what a triple call's end tells about its provider.
func tripleOutcome(ctx context.Context, err error) failureKind {
	var pe *ProviderError
	switch {
	case err == nil, errors.As(err, &pe), errors.Is(err, ErrServiceNotFound):
		return answered
	case errors.Is(ctx.Err(), context.Canceled):
		return neutral
	case errors.Is(err, errNotSent):
		return unreachable
	case errors.Is(err, ErrNoProvider), errors.Is(err, ErrTimeout), errors.Is(ctx.Err(), context.DeadlineExceeded):
		return gateway
	}
	return neutral
}

// classifyTriple turns a triple error into the invoker's kinds by its
// status code and by who set it: the provider (a wire error) or this side.
func classifyTriple(err error, c *Call) error {
	code := tri.CodeOf(err)
	if tri.IsWireError(err) {
		switch code {
		case tri.CodeUnknown, tri.CodeBizError:
			var te *tri.Error
			errors.As(err, &te)
			return tripleException(te.Message())
		case tri.CodeUnimplemented:
			return &ServiceNotFoundError{Service: c.Service, Version: c.Version, Group: c.Group}
		case tri.CodeDeadlineExceeded:
			return ErrTimeout
		case tri.CodeUnavailable:
			return fmt.Errorf("%w: the provider is not serving", ErrNoProvider)
		}
		return &tripleStatusError{code: code, provider: true}
	}
	var op *net.OpError
	switch code {
	case tri.CodeDeadlineExceeded:
		return ErrTimeout
	case tri.CodeUnavailable:
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("%w: %w: %v", ErrNoProvider, errNotSent, err)
		}
		return fmt.Errorf("%w: %v", ErrNoProvider, err)
	case tri.CodeResourceExhausted:
		// Refused while reading: the only limit on this side is the
		// receive limit (sends are unbounded).
		return &ResponseTooLargeError{Limit: int64(c.Upstream.MaxResponse)}
	}
	return &tripleStatusError{code: code}
}

// javaExceptionPrefix starts hessian2.GenericException's Error(), the text
// dubbo-go's triple server sends for an exception with a class.
const javaExceptionPrefix = "java exception: "

// tripleException reads an exception from the status message of a triple
// provider: "java exception: CLASS - MESSAGE", or a plain error's text.
func tripleException(msg string) *ProviderError {
	if rest, ok := strings.CutPrefix(msg, javaExceptionPrefix); ok {
		if class, text, ok := strings.Cut(rest, " - "); ok && javaClassName(class) {
			return &ProviderError{Class: class, Message: text}
		}
	}
	return &ProviderError{Message: msg}
}

// javaClassName reports whether s looks like a binary Java class name.
func javaClassName(s string) bool {
	if s == "" || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") {
		return false
	}
	for _, r := range s {
		if !(r == '.' || r == '$' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// tripleStatusError is a triple status that is neither an exception nor a
// kind the caller acts on; its text names the status in plain words.
type tripleStatusError struct {
	code     tri.Code
	provider bool // the provider set it; otherwise this side did
}

func (e *tripleStatusError) Error() string {
	what := strings.ReplaceAll(e.code.String(), "_", " ")
	if e.provider {
		return "the provider failed the call with status " + strconv.Itoa(int(e.code)) + " (" + what + ")"
	}
	return "the provider's answer could not be read (" + what + ")"
}

// genericRequest is $invoke(String method, String[] types, Object[] args).
type genericRequest struct {
	method string
	types  []string
	args   []hessian.Object
}

// genericResult is what $invoke returned, nil for null or void.
type genericResult struct{ value any }

// genericCodec is triple's non-IDL hessian2 format: a TripleRequestWrapper
// (serializeType 1, args 2, argTypes 3) of hessian2 values out, a
// TripleResponseWrapper (serializeType 1, data 2, type 3) in, each a
// protobuf message on the wire ("application/grpc+proto").
type genericCodec struct{}

// genericArgTypes are the Java types of $invoke's three parameters.
var genericArgTypes = []string{"java.lang.String", "[Ljava.lang.String;", "[Ljava.lang.Object;"}

func (genericCodec) Name() string          { return constant.Hessian2Serialization }
func (genericCodec) WireCodecName() string { return "proto" }

func (genericCodec) Marshal(msg any) ([]byte, error) {
	req, ok := msg.(*genericRequest)
	if !ok {
		return nil, fmt.Errorf("generic codec: cannot send %T", msg)
	}
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, constant.Hessian2Serialization)
	for _, v := range []any{req.method, req.types, req.args} {
		enc := hessian.NewEncoder()
		if err := enc.Encode(v); err != nil {
			return nil, fmt.Errorf("encoding the call: %w", err)
		}
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, enc.Buffer())
	}
	for _, t := range genericArgTypes {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendString(b, t)
	}
	return b, nil
}

func (genericCodec) Unmarshal(raw []byte, msg any) error {
	res, ok := msg.(*genericResult)
	if !ok {
		return fmt.Errorf("generic codec: cannot read into %T", msg)
	}
	data, err := responseData(raw)
	if err != nil {
		return err
	}
	res.value = nil
	if len(data) == 0 {
		return nil // a void method, or null sent as no data
	}
	v, err := hessian.NewDecoder(data).Decode()
	if err != nil {
		return fmt.Errorf("decoding the answer: %w", err)
	}
	res.value = v
	return nil
}

// responseData returns the data field of a TripleResponseWrapper.
func responseData(b []byte) ([]byte, error) {
	var data []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("reading the answer: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if num == 2 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, fmt.Errorf("reading the answer: %w", protowire.ParseError(n))
			}
			data, b = v, b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, fmt.Errorf("reading the answer: %w", protowire.ParseError(n))
		}
		b = b[n:]
	}
	return data, nil
}

// health follows whether each service's calls reach a provider, and
// reports per upstream: unavailable when its first service stops reaching
// one, available again when none is left that does not, so a provider going
// away and coming back is one line each way however many calls and services
// see it. (A state per service alone would also repeat itself; a state per
// upstream alone would flap when one service of a registry has providers
// and another has none.) Each service's own changes are DEBUG.
type health struct {
	log *slog.Logger
	now func() time.Time
	// mu is read-locked alone on the way of an answer that changes
	// nothing, the usual case.
	mu       sync.RWMutex
	services map[healthKey]*serviceHealth
	down     map[string]int // upstream → services down
}

type healthKey struct{ upstream, service, version, group string }

func healthKeyOf(c *Call) healthKey {
	return healthKey{c.Upstream.Name, c.Service, c.Version, c.Group}
}

type serviceHealth struct {
	// steady: reached, not failing, not down; an answer leaves it as it
	// is. Written under mu held for writing.
	steady       atomic.Bool
	reached      bool      // a call has reached a provider
	failingSince time.Time // zero while calls reach a provider
	down         bool
}

// outageSettle is how long calls to a service that worked must keep
// finding no provider before it counts as down: one dead connection picked
// from a pool that is reconnecting is not an outage. A service that never
// worked is down at its first such call.
const outageSettle = time.Second

func newHealth(log *slog.Logger) *health {
	return &health{log: log, now: time.Now, services: map[healthKey]*serviceHealth{}, down: map[string]int{}}
}

// observe records what a call says about reachability: an answer or an
// exception means a provider was reached, ErrNoProvider that none was; a
// timeout or anything else says nothing either way.
func (h *health) observe(c *Call, err error) {
	if err == nil {
		h.reached(c)
		return
	}
	var pe *ProviderError
	switch {
	case errors.As(err, &pe):
		h.reached(c)
	case errors.Is(err, ErrNoProvider):
		h.missed(c, err)
	}
}

// service returns the state of c's service; h.mu is held for writing.
func (h *health) service(c *Call) *serviceHealth {
	k := healthKeyOf(c)
	s := h.services[k]
	if s == nil {
		s = &serviceHealth{}
		h.services[k] = s
	}
	return s
}

func (h *health) missed(c *Call, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.service(c)
	s.steady.Store(false)
	if s.down {
		return
	}
	now := h.now()
	if s.failingSince.IsZero() {
		s.failingSince = now
	}
	if s.reached && now.Sub(s.failingSince) < outageSettle {
		return
	}
	s.down = true
	name := c.Upstream.Name
	h.down[name]++
	if h.down[name] == 1 {
		h.log.Warn("upstream unavailable", "upstream", name, "protocol", "dubbo", "service", serviceKey(c), "reason", err.Error())
		return
	}
	h.log.Debug("dubbo service unreachable", "upstream", name, "service", serviceKey(c), "reason", err.Error())
}

func (h *health) reached(c *Call) {
	h.mu.RLock()
	s := h.services[healthKeyOf(c)]
	h.mu.RUnlock()
	if s != nil && s.steady.Load() {
		return // a miss that clears steady takes the write lock: it comes after
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s = h.service(c)
	s.reached, s.failingSince = true, time.Time{}
	wasDown := s.down
	s.down = false
	s.steady.Store(true)
	if !wasDown {
		return
	}
	name := c.Upstream.Name
	h.down[name]--
	if h.down[name] == 0 {
		h.log.Info("upstream available again", "upstream", name, "protocol", "dubbo")
		return
	}
	h.log.Debug("dubbo service reachable again", "upstream", name, "service", serviceKey(c), "services_down", h.down[name])
}

// serviceKey names a service as dubbo does: group/interface:version.
func serviceKey(c *Call) string {
	k := c.Service
	if c.Group != "" {
		k = c.Group + "/" + k
	}
	if c.Version != "" {
		k += ":" + c.Version
	}
	return k
}
