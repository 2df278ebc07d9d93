package wire

import (
	"errors"
	"fmt"
	"time"
)

// Sentinels for errors.Is. Every error Call returns matches exactly one of
// them (or is a *ProviderException, or wraps a context error for a
// cancelled call), so callers map kinds to statuses without reading text.
var (
	// ErrTimeout: the call's deadline passed (Sent tells whether the
	// request left), or the provider answered with a timeout status.
	ErrTimeout = errors.New("the provider did not answer in time")
	// ErrServiceNotFound: the provider does not export the service with
	// that version and group.
	ErrServiceNotFound = errors.New("no such service on the provider")
	// ErrUnreachable: no connection could be made; nothing was sent.
	ErrUnreachable = errors.New("the provider cannot be reached")
	// ErrConnectionLost: the connection broke with the call pending.
	ErrConnectionLost = errors.New("the connection to the provider was lost")
	// ErrProviderClosing: the provider announced it is shutting down;
	// the call was not sent so it can go to another provider.
	ErrProviderClosing = errors.New("the provider is shutting down")
	// ErrResponseTooLarge: the provider's answer exceeds the limit.
	ErrResponseTooLarge = errors.New("response too large")
	// ErrRequestTooLarge: the encoded request exceeds the limit; nothing
	// was sent.
	ErrRequestTooLarge = errors.New("request too large")
	// ErrServerError: the provider failed outside the method (statuses
	// SERVICE_ERROR 70 and SERVER_ERROR 80).
	ErrServerError = errors.New("the provider failed to handle the call")
	// ErrThreadPoolExhausted: the provider has no thread free (status 100).
	ErrThreadPoolExhausted = errors.New("the provider is overloaded")
	// ErrBadRequest: the provider could not read the request (statuses
	// BAD_REQUEST 40 and CLIENT_ERROR 90), or it could not be encoded.
	ErrBadRequest = errors.New("the provider refused the request as malformed")
	// ErrBadResponse: the answer could not be understood (status
	// BAD_RESPONSE 50, an unknown status, or an undecodable body).
	ErrBadResponse = errors.New("the provider's answer could not be read")
	// ErrClientClosed: Call after Close.
	ErrClientClosed = errors.New("the dubbo client is closed")
)

// ProviderException is an exception the called method threw: the Java
// class and its message, as the provider encoded them.
type ProviderException struct {
	Class   string
	Message string
}

func (e *ProviderException) Error() string {
	if e.Class == "" {
		return e.Message
	}
	return e.Class + ": " + e.Message
}

// TimeoutError is a call that ran out of time.
type TimeoutError struct {
	Timeout time.Duration // the time the call had; 0 when the provider said so
	Server  bool          // the provider answered with a timeout status
	Sent    bool          // the request was written
	Message string        // the provider's message, for Server
}

func (e *TimeoutError) Error() string {
	if e.Server {
		return "the provider timed out: " + e.Message
	}
	return fmt.Sprintf("no answer within %s", e.Timeout)
}

func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// ServiceNotFoundError names the service key that was looked for.
type ServiceNotFoundError struct {
	Service, Version, Group string
	Message                 string // the provider's own words
}

func (e *ServiceNotFoundError) Error() string {
	return fmt.Sprintf("the provider exports no service %s (version %q, group %q)", e.Service, e.Version, e.Group)
}

func (e *ServiceNotFoundError) Is(target error) bool { return target == ErrServiceNotFound }

// StatusError is a non-OK protocol status other than a timeout or a
// missing service.
type StatusError struct {
	Status  byte
	Message string // the provider's message (first line)
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("provider status %d (%s): %s", e.Status, statusName(e.Status), e.Message)
}

func (e *StatusError) Is(target error) bool { return target == statusKind(e.Status) }

// UnreachableError is a failed dial.
type UnreachableError struct {
	Addr  string // for logs; kept out of Error so it never reaches clients
	Cause error
}

func (e *UnreachableError) Error() string   { return "the provider cannot be reached" }
func (e *UnreachableError) Unwrap() error   { return e.Cause }
func (e *UnreachableError) Is(t error) bool { return t == ErrUnreachable }

// ConnectionLostError is a pending call on a connection that broke.
type ConnectionLostError struct {
	Sent  bool // the request was written (the method may have run)
	Cause error
}

func (e *ConnectionLostError) Error() string {
	if e.Sent {
		return "the connection to the provider was lost after the request was sent"
	}
	return "the connection to the provider was lost before the request was sent"
}

func (e *ConnectionLostError) Is(t error) bool { return t == ErrConnectionLost }
func (e *ConnectionLostError) Unwrap() error   { return e.Cause }

// ProviderClosingError: the address announced its shutdown; not sent.
type ProviderClosingError struct{ Addr string }

func (e *ProviderClosingError) Error() string   { return "the provider is shutting down" }
func (e *ProviderClosingError) Is(t error) bool { return t == ErrProviderClosing }

// TooLargeError is a request or response over its limit.
type TooLargeError struct {
	Response bool // false: the request
	Size     int
	Limit    int
}

func (e *TooLargeError) Error() string {
	what := "request"
	if e.Response {
		what = "response"
	}
	return fmt.Sprintf("%s too large: %d bytes, the limit is %d", what, e.Size, e.Limit)
}

func (e *TooLargeError) Is(t error) bool {
	if e.Response {
		return t == ErrResponseTooLarge
	}
	return t == ErrRequestTooLarge
}

// NotSent reports whether err certainly left the provider untouched, so the
// call may go to another provider whatever the method does.
func NotSent(err error) bool {
	var (
		cl *ConnectionLostError
		to *TimeoutError
	)
	switch {
	case errors.As(err, &cl):
		return !cl.Sent
	case errors.As(err, &to):
		return !to.Sent
	}
	return errors.Is(err, ErrUnreachable) || errors.Is(err, ErrProviderClosing) ||
		errors.Is(err, ErrRequestTooLarge) || errors.Is(err, ErrClientClosed)
}
