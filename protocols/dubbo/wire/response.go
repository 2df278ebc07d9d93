package wire

import (
	"fmt"

	hessian "github.com/apache/dubbo-go-hessian2"
)

// decodeReply turns an answer into the call's result. The body is
// decoded here rather than with the codec's ReadBody, which needs the
// whole body in the connection's read buffer (8 MiB per connection for
// the default limit) and flattens the exception to text, losing its class.
func decodeReply(r reply, inv *Invocation) (any, map[string]string, error) {
	if r.err != nil {
		return nil, nil, r.err
	}
	if r.status != hessian.Response_OK {
		return nil, nil, statusError(r.status, errorMessage(r.body), inv)
	}
	return decodeResult(r.body, inv)
}

// decodeResult reads an OK body: its kind, then the value or exception,
// then the attachments when the kind says there are some.
func decodeResult(body []byte, inv *Invocation) (any, map[string]string, error) {
	if v, att, ok := fastResult(body, inv); ok {
		return v, att, nil
	}
	d := newDecoder(body)
	kind, err := d.Decode()
	if err != nil {
		return nil, nil, badBody("kind", err)
	}
	k, ok := kind.(int32)
	if !ok {
		return nil, nil, fmt.Errorf("%w: the response kind is %T", ErrBadResponse, kind)
	}
	var v any
	switch k {
	case hessian.RESPONSE_VALUE, hessian.RESPONSE_VALUE_WITH_ATTACHMENTS,
		hessian.RESPONSE_WITH_EXCEPTION, hessian.RESPONSE_WITH_EXCEPTION_WITH_ATTACHMENTS:
		if v, err = d.Decode(); err != nil {
			return nil, nil, badBody("value", err)
		}
	case hessian.RESPONSE_NULL_VALUE, hessian.RESPONSE_NULL_VALUE_WITH_ATTACHMENTS:
	default:
		return nil, nil, fmt.Errorf("%w: unknown response kind %d", ErrBadResponse, k)
	}
	att, err := decodeAttachments(d, k)
	if err != nil {
		return nil, nil, err
	}
	if k == hessian.RESPONSE_WITH_EXCEPTION || k == hessian.RESPONSE_WITH_EXCEPTION_WITH_ATTACHMENTS {
		return nil, att, exceptionError(v, inv)
	}
	return v, att, nil
}

func decodeAttachments(d *hessian.Decoder, kind int32) (map[string]string, error) {
	switch kind {
	case hessian.RESPONSE_VALUE_WITH_ATTACHMENTS, hessian.RESPONSE_NULL_VALUE_WITH_ATTACHMENTS,
		hessian.RESPONSE_WITH_EXCEPTION_WITH_ATTACHMENTS:
	default:
		return nil, nil
	}
	raw, err := d.Decode()
	if err != nil {
		return nil, badBody("attachments", err)
	}
	switch m := raw.(type) {
	case map[any]any:
		return hessian.ToMapStringString(m), nil
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("%w: attachments are %T", ErrBadResponse, raw)
}

// errorMessage is the body of a non-OK status: a string.
func errorMessage(body []byte) string {
	v, err := newDecoder(body).Decode()
	if err != nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

func badBody(part string, err error) error {
	return fmt.Errorf("%w: decoding the response %s: %v", ErrBadResponse, part, err)
}
