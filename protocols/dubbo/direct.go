package dubbo

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/protogate/protogate/protocols/dubbo/wire"
)

// ErrServiceNotFound: the provider exports no service with the version
// and group the route asks for.
var ErrServiceNotFound = errors.New("no such service")

// ErrResponseTooLarge: the provider's answer is over the size limit.
var ErrResponseTooLarge = errors.New("the provider's answer is larger than the bridge takes")

// RequestTooLargeError: the call's arguments encode to more than the
// protocol carries; nothing was sent.
type RequestTooLargeError struct{ Size, Limit int64 }

func (e *RequestTooLargeError) Error() string {
	return fmt.Sprintf("the call's arguments encode to %d bytes, over the protocol's limit of %d", e.Size, e.Limit)
}

// ResponseTooLargeError says how large, when the transport knows it.
type ResponseTooLargeError struct {
	Size  int64 // 0: unknown
	Limit int64
}

func (e *ResponseTooLargeError) Error() string {
	if e.Size > 0 {
		return fmt.Sprintf("the provider's answer of %d bytes is over the limit of %d", e.Size, e.Limit)
	}
	return fmt.Sprintf("the provider's answer is over the limit of %d bytes", e.Limit)
}

func (e *ResponseTooLargeError) Is(t error) bool { return t == ErrResponseTooLarge }

// ServiceNotFoundError names what was looked for.
type ServiceNotFoundError struct{ Service, Version, Group string }

func (e *ServiceNotFoundError) Error() string {
	return fmt.Sprintf("no provider exports %s with version %q and group %q", e.Service, e.Version, e.Group)
}

func (e *ServiceNotFoundError) Is(t error) bool { return t == ErrServiceNotFound }

// callAddrs are the providers a direct call may go to: those discovered,
// or the upstream's URLs. None discovered is no provider at all.
func callAddrs(c *Call) ([]string, error) {
	switch {
	case c.Endpoints != nil:
		if len(c.Endpoints) == 0 {
			return nil, fmt.Errorf("%w: no provider of %s is registered", ErrNoProvider, serviceKey(c))
		}
		return c.Endpoints, nil
	case c.URLAddrs != nil:
		return c.URLAddrs, nil
	}
	return providerAddrs(c.Upstream.URLs)
}

// callDirect calls one of the upstream's providers, starting at the next
// in turn. A call that certainly never reached a provider (unreachable,
// shutting down, a connection that broke before the write) goes to the
// next provider whatever the method; one that may have run goes again only
// on idempotent routes, and never after the method itself threw.
func (inv *Invoker) callDirect(ctx context.Context, c *Call) (any, error) {
	addrs, err := callAddrs(c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	inv2 := wire.Invocation{Service: c.Service, Version: c.Version, Group: c.Group, Method: c.Method,
		Types: c.Types, Args: c.Args, Attachments: c.Attachments, MaxResponseBytes: int(c.Upstream.MaxResponse)}
	order := inv.outliers.order(addrs, int(inv.next.Add(1)), inv.wire)
	retries := 0
	var last error
	for i := 0; i < len(order)+c.Retries; i++ {
		addr := order[i%len(order)]
		if inv.wire.Closing(addr) && len(order) > 1 {
			inv.outliers.observe(addr, neutral) // a trial it may have been given is over
			continue
		}
		v, reply, err := inv.wire.Call(ctx, addr, inv2)
		c.Reply = reply
		inv.outliers.observe(addr, directOutcome(ctx, err))
		if err == nil {
			return v, nil
		}
		last = err
		switch {
		case ctx.Err() != nil:
			return nil, directError(c, err)
		case wire.NotSent(err):
			continue
		case retryable(err) && retries < c.Retries:
			retries++
			continue
		}
		return nil, directError(c, err)
	}
	return nil, directError(c, last)
}

// directOutcome says what a dubbo-protocol call's end tells about its
// provider.
func directOutcome(ctx context.Context, err error) failureKind {
	if err == nil {
		return answered
	}
	var pe *wire.ProviderException
	switch {
	case errors.As(err, &pe), errors.Is(err, wire.ErrServiceNotFound):
		return answered
	case errors.Is(ctx.Err(), context.Canceled), errors.Is(err, wire.ErrProviderClosing), errors.Is(err, wire.ErrClientClosed):
		return neutral
	case errors.Is(err, wire.ErrUnreachable):
		return unreachable
	case errors.Is(err, wire.ErrTimeout), errors.Is(err, wire.ErrConnectionLost), errors.Is(err, wire.ErrServerError),
		errors.Is(err, wire.ErrThreadPoolExhausted), errors.Is(err, context.DeadlineExceeded):
		return gateway
	}
	return neutral
}

// retryable are failures after which an idempotent call may run again.
func retryable(err error) bool {
	return errors.Is(err, wire.ErrConnectionLost) || errors.Is(err, wire.ErrServerError) || errors.Is(err, wire.ErrThreadPoolExhausted)
}

// directError turns the transport's kinds into the invoker's.
func directError(c *Call, err error) error {
	var (
		pe *wire.ProviderException
		tl *wire.TooLargeError
	)
	switch {
	case err == nil, errors.Is(err, wire.ErrUnreachable), errors.Is(err, wire.ErrProviderClosing),
		errors.Is(err, wire.ErrConnectionLost), errors.Is(err, wire.ErrClientClosed):
		return ErrNoProvider
	case errors.As(err, &pe):
		return &ProviderError{Class: pe.Class, Message: pe.Message}
	case errors.Is(err, wire.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return ErrTimeout
	case errors.Is(err, wire.ErrServiceNotFound):
		return &ServiceNotFoundError{Service: c.Service, Version: c.Version, Group: c.Group}
	case errors.As(err, &tl) && tl.Response:
		return &ResponseTooLargeError{Size: int64(tl.Size), Limit: int64(tl.Limit)}
	case errors.As(err, &tl):
		return &RequestTooLargeError{Size: int64(tl.Size), Limit: int64(tl.Limit)}
	case errors.Is(err, wire.ErrServerError), errors.Is(err, wire.ErrThreadPoolExhausted):
		return ErrNoProvider
	}
	return err
}

// ProviderAddrs reads HOST:PORT from the dubbo://HOST:PORT URLs of an
// upstream, for a route to give its calls as Call.URLAddrs.
func ProviderAddrs(urls []string) ([]string, error) { return providerAddrs(urls) }

// providerAddrs reads HOST:PORT from dubbo://HOST:PORT URLs.
func providerAddrs(urls []string) ([]string, error) {
	out := make([]string, 0, len(urls))
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("provider URL %q: not dubbo://HOST:PORT", s)
		}
		out = append(out, u.Host)
	}
	return out, nil
}
