package wire

import (
	"strings"

	hessian "github.com/apache/dubbo-go-hessian2"
)

// statusThreadPoolExhausted is Dubbo's SERVER_THREADPOOL_EXHAUSTED_ERROR;
// dubbo-go-hessian2 v1.12.5 has no constant for it.
const statusThreadPoolExhausted byte = 100

// statusName is the protocol's name of a response status.
func statusName(s byte) string {
	switch s {
	case hessian.Response_OK:
		return "OK"
	case hessian.Response_CLIENT_TIMEOUT:
		return "CLIENT_TIMEOUT"
	case hessian.Response_SERVER_TIMEOUT:
		return "SERVER_TIMEOUT"
	case hessian.Response_BAD_REQUEST:
		return "BAD_REQUEST"
	case hessian.Response_BAD_RESPONSE:
		return "BAD_RESPONSE"
	case hessian.Response_SERVICE_NOT_FOUND:
		return "SERVICE_NOT_FOUND"
	case hessian.Response_SERVICE_ERROR:
		return "SERVICE_ERROR"
	case hessian.Response_SERVER_ERROR:
		return "SERVER_ERROR"
	case hessian.Response_CLIENT_ERROR:
		return "CLIENT_ERROR"
	case statusThreadPoolExhausted:
		return "SERVER_THREADPOOL_EXHAUSTED_ERROR"
	}
	return "unknown"
}

// statusKind is the sentinel a StatusError with status s matches.
func statusKind(s byte) error {
	switch s {
	case hessian.Response_SERVICE_ERROR, hessian.Response_SERVER_ERROR:
		return ErrServerError
	case statusThreadPoolExhausted:
		return ErrThreadPoolExhausted
	case hessian.Response_BAD_REQUEST, hessian.Response_CLIENT_ERROR:
		return ErrBadRequest
	}
	return ErrBadResponse
}

// Java providers answer an unknown service, version or group with
// SERVICE_ERROR and the text of a RemotingException whose message starts
// so (DubboProtocol.getInvoker); the class and the fixed start are
// matched, not words inside a message.
var javaNotFoundPrefixes = []string{
	"org.apache.dubbo.remoting.RemotingException: Not found exported service",
	"com.alibaba.dubbo.remoting.RemotingException: Not found exported service",
}

// statusError turns a non-OK status and the provider's message into the
// error Call returns.
func statusError(status byte, msg string, inv *Invocation) error {
	first, _, _ := strings.Cut(msg, "\n") // Java sends the stack trace too
	first = strings.TrimSpace(first)
	switch status {
	case hessian.Response_CLIENT_TIMEOUT, hessian.Response_SERVER_TIMEOUT:
		return &TimeoutError{Server: true, Sent: true, Message: first}
	case hessian.Response_SERVICE_NOT_FOUND:
		return inv.notFound(first)
	case hessian.Response_SERVICE_ERROR:
		for _, p := range javaNotFoundPrefixes {
			if strings.HasPrefix(first, p) {
				return inv.notFound(first)
			}
		}
	}
	return &StatusError{Status: status, Message: first}
}
