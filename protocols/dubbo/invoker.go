package dubbo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"dubbo.apache.org/dubbo-go/v3"
	"dubbo.apache.org/dubbo-go/v3/client"
	"dubbo.apache.org/dubbo-go/v3/common/constant"
	"dubbo.apache.org/dubbo-go/v3/filter/generic"
	"dubbo.apache.org/dubbo-go/v3/graceful_shutdown"
	// dubbo-go wires protocols, filters, clusters and registries through
	// these side effects; a trimmed set leaves a nil invoker at call time.
	_ "dubbo.apache.org/dubbo-go/v3/imports"
	"dubbo.apache.org/dubbo-go/v3/protocol/dubbo/hessian2"
	tri "dubbo.apache.org/dubbo-go/v3/protocol/triple/triple_protocol"
	"dubbo.apache.org/dubbo-go/v3/registry"
	getty "github.com/apache/dubbo-getty"
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
}

// refKey is what one pooled reference is for: one per service, shared by
// every route to it. A second interface-level ZooKeeper reference to the
// same service in one process sees no providers, and references from one
// dubbo-go client share settings, so each reference gets its own client and
// per-call differences (timeout, retries) are handled here, not in dubbo-go.
type refKey struct {
	upstream, service, version, group string
}

// Invoker makes generic calls, holding one reference per refKey, created on
// first use and reused by every request after.
type Invoker struct {
	log    *slog.Logger
	ins    *dubbo.Instance
	mu     sync.Mutex
	refs   map[refKey]*reference
	health *health
	// wire is protogate's own dubbo-protocol transport, for providers
	// listed by address; next turns the round robin over them.
	wire *wire.Client
	next atomic.Int64
	// triple calls triple providers listed by address.
	triple *tripleClients
}

type reference struct {
	once sync.Once
	svc  *generic.GenericService
	err  error
}

// One dubbo-go instance per process: creating another rewrites global
// state (getty's logger) that the first instance's connections are reading.
var (
	instanceOnce sync.Once
	instance     *dubbo.Instance
	instanceErr  error
)

// NewInvoker returns an invoker on the process's dubbo-go instance. What
// dubbo-go itself prints goes to log too (its loggers are process-wide: to
// the log of the latest invoker).
func NewInvoker(log *slog.Logger) (*Invoker, error) {
	SetLogger(log)
	instanceOnce.Do(func() {
		instance, instanceErr = dubbo.NewInstance(
			dubbo.WithName("protogate-bridge"),
			LoggerOption(log),
			// dubbo-go's own signal handler would exit the process; the
			// bridge shuts down on its own terms.
			dubbo.WithShutdown(graceful_shutdown.WithoutInternalSignal()),
		)
	})
	if instanceErr != nil {
		return nil, fmt.Errorf("dubbo-go: %w", instanceErr)
	}
	wc, err := wire.NewClient(wire.Options{Logger: log.With("component", "dubbo-wire")})
	if err != nil {
		return nil, fmt.Errorf("dubbo transport: %w", err)
	}
	return &Invoker{log: log, ins: instance, refs: map[refKey]*reference{}, health: newHealth(log), wire: wc,
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
}

// Invoke calls the method and returns the provider's result as dubbo-go
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
	if direct(c) {
		return inv.callDirect(ctx, c)
	}
	if tripleDirect(c) {
		return inv.callTriple(ctx, c)
	}
	key := refKey{c.Upstream.Name, c.Service, c.Version, c.Group}
	inv.mu.Lock()
	ref, ok := inv.refs[key]
	if !ok {
		ref = &reference{}
		inv.refs[key] = ref
	}
	inv.mu.Unlock()
	ref.once.Do(func() { ref.svc, ref.err = inv.refer(c) })
	if ref.err != nil {
		// A failed reference is not kept: the next request tries again.
		inv.mu.Lock()
		if inv.refs[key] == ref {
			delete(inv.refs, key)
		}
		inv.mu.Unlock()
		return nil, ref.err
	}
	if att := genericAttachments(c); len(att) > 0 {
		ctx = context.WithValue(ctx, constant.AttachmentKey, att)
	}
	types, args := genericArgs(c)
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	retries, unsent := 0, 0
	for {
		v, err := call(ctx, ref.svc, c, types, args)
		switch {
		case err == nil, ctx.Err() != nil:
			return v, err
		case errors.Is(err, errNotSent) && unsent < maxUnsentRetries:
			// The request never left this process (a connection that died
			// is still in getty's pool until it has reconnected every other
			// one, seconds after a provider restart): another connection
			// is tried, whatever the method.
			unsent++
		case errors.Is(err, ErrNoProvider) && retries < c.Retries:
			// Only a call that never reached a provider is retried, and
			// only for methods the mapping marks idempotent (Retries is 0
			// otherwise).
			retries++
		default:
			return v, err
		}
	}
}

// genericAttachments are the route's attachments and, over the dubbo
// protocol, the call's own timeout: dubbo-go's dubbo invoker takes a
// "timeout" attachment as this call's timeout and hands it on to the
// provider in milliseconds. (Over triple it would go out verbatim as an
// attachment; there the context's deadline is what the provider gets.)
func genericAttachments(c *Call) map[string]any {
	att := make(map[string]any, len(c.Attachments)+1)
	for k, v := range c.Attachments {
		att[k] = v
	}
	if c.Upstream.Protocol != config.DubboProtocolTriple {
		att[constant.TimeoutKey] = c.Timeout.String()
	}
	return att
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

// errNotSent marks a failure that happened before the request was written:
// getty refuses to write to a closed session.
var errNotSent = errors.New("the request was not sent")

// maxUnsentRetries bounds the retries of requests that were never sent;
// getty picks a connection at random, so a few attempts find a live one,
// and each costs no more than a lookup while none is live.
const maxUnsentRetries = 8

// call runs one invocation, bounded by ctx even if dubbo-go is not.
func call(ctx context.Context, svc *generic.GenericService, c *Call, types []string, args []hessian.Object) (any, error) {
	type result struct {
		v   any
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- result{nil, fmt.Errorf("%w: the call failed inside dubbo-go: %v", ErrNoProvider, r)}
			}
		}()
		v, err := svc.Invoke(ctx, c.Method, types, args)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		err := classify(r.err, c)
		if errors.Is(err, ErrNoProvider) && !errors.Is(err, errNotSent) && nearDeadline(ctx) {
			// getty's own timer for the same timeout fired: its wheel
			// ticks every 10 ms and can end a call before the deadline.
			return nil, ErrTimeout
		}
		return r.v, err
	case <-ctx.Done():
		return nil, ErrTimeout
	}
}

// timerSlack is how early before the context's deadline getty's timer
// wheel may give up on a call (its ticks are 10 ms).
const timerSlack = 25 * time.Millisecond

// nearDeadline reports whether ctx is done or about to be.
func nearDeadline(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && time.Until(dl) < timerSlack
}

// refer creates a reference. For direct URLs the providers are dialled
// first: dubbo-go panics building a reference to a provider that is down.
func (inv *Invoker) refer(c *Call) (svc *generic.GenericService, err error) {
	u := c.Upstream
	opts := []client.ClientOption{client.WithClientSerialization(constant.Hessian2Serialization)}
	if u.Protocol == config.DubboProtocolTriple {
		opts = append(opts, client.WithClientProtocolTriple())
	} else {
		opts = append(opts, client.WithClientProtocolDubbo())
	}
	// Failfast: dubbo-go's failover retries twice by default, which would
	// run a non-idempotent call three times; retries happen in Invoke. No
	// request timeout: dubbo-go replaces a reference's with the client's
	// (3 s) anyway; each call brings its own (genericAttachments, and the
	// context's deadline, which dubbo-go's triple client keeps when set).
	// The receive limit is the upstream's: dubbo-go's triple client reads it
	// from this URL parameter (4 MiB when absent).
	refOpts := []client.ReferenceOption{client.WithRetries(0), client.WithClusterFailFast(),
		client.WithParam(constant.MaxCallRecvMsgSize, strconv.FormatInt(int64(u.MaxResponse), 10))}
	if c.Version != "" {
		refOpts = append(refOpts, client.WithVersion(c.Version))
	}
	if c.Group != "" {
		refOpts = append(refOpts, client.WithGroup(c.Group))
	}
	if len(u.URLs) > 0 {
		reachable := reachableURLs(u.URLs, time.Second)
		if len(reachable) == 0 {
			return nil, fmt.Errorf("%w: none of %s answers", ErrNoProvider, strings.Join(hosts(u.URLs), ", "))
		}
		refOpts = append(refOpts, client.WithURL(strings.Join(reachable, ";")))
	} else {
		ru, perr := url.Parse(u.Registry)
		if perr != nil {
			return nil, perr
		}
		reg := []registry.Option{registry.WithZookeeper(), registry.WithAddress(ru.Host), registry.WithTimeout(5 * time.Second)}
		if u.Registration == "application" {
			reg = append(reg, registry.WithRegisterService())
		} else {
			reg = append(reg, registry.WithRegisterInterface())
		}
		opts = append(opts, client.WithClientRegistry(reg...))
	}
	defer func() {
		if r := recover(); r != nil {
			svc, err = nil, fmt.Errorf("%w: dubbo-go could not build a reference: %v", ErrNoProvider, r)
		}
	}()
	cli, err := inv.ins.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", u.Name, err)
	}
	svc, err = cli.NewGenericService(c.Service, refOpts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoProvider, err)
	}
	inv.log.Info("dubbo reference created", "upstream", u.Name, "service", c.Service, "version", c.Version, "group", c.Group, "protocol", u.Protocol)
	return svc, nil
}

// reachableURLs keeps the direct provider URLs that accept a connection.
func reachableURLs(urls []string, timeout time.Duration) []string {
	var out []string
	for _, raw := range urls {
		pu, err := url.Parse(raw)
		if err != nil {
			continue
		}
		conn, err := net.DialTimeout("tcp", pu.Host, timeout)
		if err != nil {
			continue
		}
		conn.Close()
		out = append(out, raw)
	}
	return out
}

func hosts(urls []string) []string {
	out := make([]string, len(urls))
	for i, raw := range urls {
		out[i] = raw
		if pu, err := url.Parse(raw); err == nil {
			out[i] = pu.Host
		}
	}
	return out
}

// classify turns dubbo-go's errors into the kinds a caller acts on, by
// what they are: an exception the provider sent, a triple status, getty's
// closed session; never by their text.
func classify(err error, c *Call) error {
	if err == nil {
		return nil
	}
	var (
		ge  *hessian2.GenericException
		gev hessian2.GenericException
		te  *tri.Error
	)
	switch {
	case errors.As(err, &ge):
		return &ProviderError{Class: ge.ExceptionClass, Message: ge.ExceptionMessage}
	case errors.As(err, &gev):
		return &ProviderError{Class: gev.ExceptionClass, Message: gev.ExceptionMessage}
	case errors.As(err, &te):
		return classifyTriple(err, c)
	case errors.Is(err, getty.ErrSessionClosed):
		return fmt.Errorf("%w: %w: %v", ErrNoProvider, errNotSent, err)
	case errors.Is(err, context.DeadlineExceeded):
		return ErrTimeout
	}
	// Anything else is dubbo-go's own, made without an answer from a
	// provider: none in its directory (its cluster's "no provider
	// available"), a destroyed invoker, a connection it could not make.
	return fmt.Errorf("%w: %v", ErrNoProvider, err)
}

// Over triple, a call to providers listed by address goes through dubbo-go's
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
// and cause never travel. Providers found in a registry still go through
// dubbo-go's generic service, where null results over triple still fail
// and the client-wide "timeout" attachment is still sent (the deadline and
// the classification are right there too).

// tripleDirect reports whether a call goes to triple providers listed by
// address.
func tripleDirect(c *Call) bool {
	return c.Upstream.Protocol == config.DubboProtocolTriple && (c.Endpoints != nil || c.Upstream.Registry == "" && len(c.Upstream.URLs) > 0)
}

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
	start := int(inv.next.Add(1))
	retries := 0
	var last error
	for i := 0; i < len(addrs)+c.Retries; i++ {
		v, err := inv.tripleOnce(ctx, addrs[(start+i)%len(addrs)], c)
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
	if err := inv.triple.client(addr, c).CallUnary(ctx, req, constant.Generic, tri.NewResponse(&res)); err != nil {
		return nil, classifyTriple(err, c)
	}
	return res.value, nil
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
	log      *slog.Logger
	now      func() time.Time
	mu       sync.Mutex
	services map[string]map[string]*serviceHealth // upstream → service key
	down     map[string]int                       // upstream → services down
}

type serviceHealth struct {
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
	return &health{log: log, now: time.Now, services: map[string]map[string]*serviceHealth{}, down: map[string]int{}}
}

// observe records what a call says about reachability: an answer or an
// exception means a provider was reached, ErrNoProvider that none was; a
// timeout or anything else says nothing either way.
func (h *health) observe(c *Call, err error) {
	var pe *ProviderError
	switch {
	case err == nil, errors.As(err, &pe):
		h.reached(c)
	case errors.Is(err, ErrNoProvider):
		h.missed(c, err)
	}
}

// service returns the state of c's service; h.mu is held.
func (h *health) service(c *Call) *serviceHealth {
	byKey := h.services[c.Upstream.Name]
	if byKey == nil {
		byKey = map[string]*serviceHealth{}
		h.services[c.Upstream.Name] = byKey
	}
	key := serviceKey(c)
	s := byKey[key]
	if s == nil {
		s = &serviceHealth{}
		byKey[key] = s
	}
	return s
}

func (h *health) missed(c *Call, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.service(c)
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
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.service(c)
	s.reached, s.failingSince = true, time.Time{}
	if !s.down {
		return
	}
	s.down = false
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
