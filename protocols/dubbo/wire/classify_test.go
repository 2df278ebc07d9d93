package wire

import (
	"errors"
	"reflect"
	"testing"

	hessian "github.com/apache/dubbo-go-hessian2"
	"github.com/apache/dubbo-go-hessian2/java_exception"
)

var testInv = &Invocation{Service: "com.example.UserService", Version: "1.0.0", Group: "blue", Method: "getUser"}

// Every non-OK status maps to one kind, whatever its message says.
func TestStatusError(t *testing.T) {
	const javaNotFound = "org.apache.dubbo.remoting.RemotingException: Not found exported service: blue/com.example.UserService:1.0.0:20880 in [], may be version or group mismatch\n\tat org.apache.dubbo..."
	tests := []struct {
		status byte
		msg    string
		want   error
	}{
		{hessian.Response_CLIENT_TIMEOUT, "x", ErrTimeout},
		{hessian.Response_SERVER_TIMEOUT, "Waiting server-side response timeout", ErrTimeout},
		{hessian.Response_SERVICE_NOT_FOUND, "x", ErrServiceNotFound},
		{hessian.Response_SERVICE_ERROR, javaNotFound, ErrServiceNotFound},
		{hessian.Response_SERVICE_ERROR, "java.lang.IllegalStateException: service unavailable, timeout", ErrServerError},
		{hessian.Response_SERVER_ERROR, "Not found exported service", ErrServerError},
		{statusThreadPoolExhausted, "Thread pool is EXHAUSTED!", ErrThreadPoolExhausted},
		{hessian.Response_BAD_REQUEST, "x", ErrBadRequest},
		{hessian.Response_CLIENT_ERROR, "x", ErrBadRequest},
		{hessian.Response_BAD_RESPONSE, "x", ErrBadResponse},
		{123, "x", ErrBadResponse},
	}
	kinds := []error{ErrTimeout, ErrServiceNotFound, ErrServerError, ErrThreadPoolExhausted, ErrBadRequest, ErrBadResponse}
	for _, tt := range tests {
		err := statusError(tt.status, tt.msg, testInv)
		for _, k := range kinds {
			if errors.Is(err, k) != (k == tt.want) {
				t.Errorf("status %d %q: %v; errors.Is(%v) = %v", tt.status, tt.msg, err, k, !(k == tt.want))
			}
		}
	}
	var nf *ServiceNotFoundError
	if err := statusError(hessian.Response_SERVICE_ERROR, javaNotFound, testInv); !errors.As(err, &nf) ||
		nf.Version != "1.0.0" || nf.Group != "blue" || nf.Message != javaNotFound[:len(javaNotFound)-len("\n\tat org.apache.dubbo...")] {
		t.Errorf("java not found: %#v", err)
	}
}

// Bodies packed by hessian's own codec, as a provider packs them, decode to
// the value, the attachments and the exception's class and message.
func TestDecodeResponseBody(t *testing.T) {
	att := map[string]string{"dubbo": "2.0.2", "k": "v"} // the version makes the codec add attachments
	tests := []struct {
		name    string
		status  byte
		res     *hessian.Response
		want    any
		wantAtt map[string]string
		wantErr error // matched with errors.Is, or compared for *ProviderException
	}{
		{"value", hessian.Response_OK, hessian.NewResponse("hi", nil, att), "hi", att, nil},
		{"value without attachments", hessian.Response_OK, hessian.NewResponse(int64(5), nil, nil), int64(5), nil, nil},
		{"null", hessian.Response_OK, hessian.NewResponse(nil, nil, att), nil, att, nil},
		{"Java exception", hessian.Response_OK,
			hessian.NewResponse(nil, java_exception.NewIllegalArgumentException("bad id"), att), nil, att,
			&ProviderException{Class: "java.lang.IllegalArgumentException", Message: "bad id"}},
		{"Java generic filter's wrapper", hessian.Response_OK,
			hessian.NewResponse(nil, &genericException{DetailMessage: "com.example.NoUser: 7\n\tat ...", ExceptionClass: "com.example.NoUser", ExceptionMessage: "7"}, nil), nil, nil,
			&ProviderException{Class: "com.example.NoUser", Message: "7"}},
		{"dubbo-go's generic exception", hessian.Response_OK,
			hessian.NewResponse(nil, java_exception.NewDubboGenericException("com.example.Denied", "no"), nil), nil, nil,
			&ProviderException{Class: "com.example.Denied", Message: "no"}},
		{"dubbo-go's missing exporter", hessian.Response_OK,
			hessian.NewResponse(nil, java_exception.NewThrowable(dubboGoNoExporter+"blue/com.example.UserService:1.0.0"), nil), nil, nil,
			ErrServiceNotFound},
		{"another service's missing exporter is an exception", hessian.Response_OK,
			hessian.NewResponse(nil, java_exception.NewThrowable(dubboGoNoExporter+"com.example.Other"), nil), nil, nil,
			&ProviderException{Class: "java.lang.Throwable", Message: dubboGoNoExporter + "com.example.Other"}},
		{"server timeout status", hessian.Response_SERVER_TIMEOUT, hessian.NewResponse(nil, errors.New("took too long"), nil), nil, nil, ErrTimeout},
		{"thread pool status", statusThreadPoolExhausted, hessian.NewResponse(nil, errors.New("EXHAUSTED"), nil), nil, nil, ErrThreadPoolExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := hessian.DubboHeader{SerialID: serialHessian2, Type: hessian.PackageResponse, ID: 1, ResponseStatus: tt.status}
			frame, err := hessian.NewHessianCodec(nil).Write(hessian.Service{}, hdr, tt.res)
			if err != nil {
				t.Fatal(err)
			}
			v, gotAtt, err := decodeReply(reply{status: tt.status, body: frame[hessian.HEADER_LENGTH:]}, testInv)
			if pe, ok := tt.wantErr.(*ProviderException); ok {
				var got *ProviderException
				if !errors.As(err, &got) || *got != *pe {
					t.Fatalf("error %#v, want %#v", err, pe)
				}
			} else if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(v, tt.want) {
				t.Fatalf("value %#v, want %#v", v, tt.want)
			}
			if tt.wantAtt != nil && !reflect.DeepEqual(gotAtt, tt.wantAtt) {
				t.Fatalf("attachments %v, want %v", gotAtt, tt.wantAtt)
			}
		})
	}
}

func TestNotSent(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&UnreachableError{}, true},
		{&ProviderClosingError{}, true},
		{&TooLargeError{}, true},
		{&ConnectionLostError{Sent: false}, true},
		{&ConnectionLostError{Sent: true}, false},
		{&TimeoutError{Sent: false}, true},
		{&TimeoutError{Sent: true}, false},
		{&TooLargeError{Response: true}, false},
		{&ProviderException{}, false},
		{&StatusError{Status: hessian.Response_SERVER_ERROR}, false},
	}
	for _, tt := range tests {
		if got := NotSent(tt.err); got != tt.want {
			t.Errorf("NotSent(%T %v) = %v", tt.err, tt.err, got)
		}
	}
}
