package dubbo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
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
	"dubbo.apache.org/dubbo-go/v3/registry"
	hessian "github.com/apache/dubbo-go-hessian2"

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
	Class   string // the Java exception class; empty over triple, which loses it
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
	Upstream *config.DubboUpstream
	Service  string
	Version  string
	Group    string
	Method   string
	Types    []string // erased Java type names
	Args     []any
	Timeout  time.Duration
	// RefTimeout bounds every call through the shared reference: the
	// longest timeout of the routes to this service.
	RefTimeout  time.Duration
	Retries     int // extra attempts, for idempotent methods only
	Attachments map[string]string
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
	return &Invoker{log: log, ins: instance, refs: map[refKey]*reference{}, health: newHealth(log), wire: wc}, nil
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
	if len(c.Attachments) > 0 {
		att := make(map[string]any, len(c.Attachments))
		for k, v := range c.Attachments {
			att[k] = v
		}
		ctx = context.WithValue(ctx, constant.AttachmentKey, att)
	}
	args := make([]hessian.Object, len(c.Args))
	for i, a := range c.Args {
		args[i] = a
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	retries, unsent := 0, 0
	for {
		v, err := call(ctx, ref.svc, c.Method, c.Types, args)
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

// errNotSent marks a failure that happened before the request was written:
// getty refuses to write to a closed session.
var errNotSent = errors.New("the request was not sent")

// maxUnsentRetries bounds the retries of requests that were never sent;
// getty picks a connection at random, so a few attempts find a live one,
// and each costs no more than a lookup while none is live.
const maxUnsentRetries = 8

// call runs one invocation, bounded by ctx even if dubbo-go is not.
func call(ctx context.Context, svc *generic.GenericService, method string, types []string, args []hessian.Object) (any, error) {
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
		v, err := svc.Invoke(ctx, method, types, args)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, classify(r.err)
	case <-ctx.Done():
		return nil, ErrTimeout
	}
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
	timeout := c.RefTimeout
	if timeout < c.Timeout {
		timeout = c.Timeout
	}
	// Failfast: dubbo-go's failover retries twice by default, which would
	// run a non-idempotent call three times; retries happen in Invoke.
	refOpts := []client.ReferenceOption{client.WithRequestTimeout(timeout), client.WithRetries(0), client.WithClusterFailFast()}
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

// classify turns dubbo-go's errors into the kinds a caller acts on.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ge *hessian2.GenericException
	if errors.As(err, &ge) {
		return &ProviderError{Class: ge.ExceptionClass, Message: ge.ExceptionMessage}
	}
	msg := err.Error()
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "session already closed"):
		return fmt.Errorf("%w: %w: %s", ErrNoProvider, errNotSent, msg)
	case strings.Contains(lower, "no provider"), strings.Contains(lower, "connection refused"),
		strings.Contains(lower, "no available"),
		strings.Contains(lower, "unavailable"):
		return fmt.Errorf("%w: %s", ErrNoProvider, msg)
	case strings.Contains(lower, "timeout"), strings.Contains(lower, "deadline exceeded"):
		return ErrTimeout
	case strings.HasPrefix(msg, "java exception:"):
		rest := strings.TrimSpace(strings.TrimPrefix(msg, "java exception:"))
		class, text, _ := strings.Cut(rest, " - ")
		return &ProviderError{Class: class, Message: text}
	}
	// Over triple the exception class is lost; the message remains.
	return &ProviderError{Message: msg}
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
