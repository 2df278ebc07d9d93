package wire

import (
	"fmt"
	"reflect"

	hessian "github.com/apache/dubbo-go-hessian2"
	"github.com/apache/dubbo-go-hessian2/java_exception"
)

// genericException is org.apache.dubbo.rpc.service.GenericException, in
// which a Java provider's generic filter wraps what the method threw.
// hessian knows only the com.alibaba one; unregistered, this one would
// decode without exceptionClass, losing the real class.
type genericException struct {
	SerialVersionUID     int64
	DetailMessage        string
	SuppressedExceptions []java_exception.Throwabler
	StackTrace           []java_exception.StackTraceElement
	Cause                java_exception.Throwabler
	ExceptionClass       string
	ExceptionMessage     string
}

func (genericException) JavaClassName() string {
	return "org.apache.dubbo.rpc.service.GenericException"
}
func (e genericException) Error() string { return e.DetailMessage }
func (e genericException) GetStackTrace() []java_exception.StackTraceElement {
	return e.StackTrace
}

func init() { hessian.RegisterPOJO(&genericException{}) }

// dubboGoNoExporter starts what a dubbo-go provider answers (as an
// exception of class java.lang.Throwable, status OK) for a service key it
// does not export; the key follows.
const dubboGoNoExporter = "don't have this exporter, key: "

// exceptionError is the error for an exception the provider answered
// with. dubbo-go's "no exporter" answer is recognised by its class and
// the exact service key asked for, not by words in a message.
func exceptionError(ex any, inv *Invocation) error {
	class, msg := exceptionText(ex)
	if class == "java.lang.Throwable" && msg == dubboGoNoExporter+inv.serviceKey() {
		return inv.notFound(msg)
	}
	return &ProviderException{Class: class, Message: msg}
}

// exceptionText is the Java class and message of a decoded exception.
func exceptionText(ex any) (class, msg string) {
	switch e := ex.(type) {
	case *genericException:
		return e.ExceptionClass, e.ExceptionMessage
	case *java_exception.DubboGenericException:
		return e.ExceptionClass, e.ExceptionMessage
	case java_exception.Throwabler:
		return e.JavaClassName(), detailMessage(e)
	case map[string]any: // a class hessian does not know and not Throwable-shaped
		return str(e[hessian.ClassKey]), str(e["detailMessage"])
	case map[any]any:
		return str(e[hessian.ClassKey]), str(e["detailMessage"])
	case string:
		return "", e
	case nil:
		return "", ""
	}
	return "", fmt.Sprint(ex)
}

// detailMessage reads Throwable.detailMessage; Error() of hessian's
// stand-in for unknown exception classes adds words of its own.
func detailMessage(t java_exception.Throwabler) string {
	v := reflect.Indirect(reflect.ValueOf(t))
	if v.Kind() == reflect.Struct {
		if f := v.FieldByName("DetailMessage"); f.IsValid() && f.Kind() == reflect.String {
			return f.String()
		}
	}
	return t.Error()
}

func str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}
