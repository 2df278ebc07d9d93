package wire

import (
	"sync"

	hessian "github.com/apache/dubbo-go-hessian2"
)

// Most answers are a small value and the attachments a dubbo-go or Java
// provider echoes (path, interface, version, timeout, dubbo, its
// addresses): read here without hessian's decoder, which allocates a 4 KiB
// reader, a type table and a string per chunk for each. Anything else, or
// anything this reader is not sure of, goes to hessian's decoder whole.

// fastResult reads an OK body whose kind is a value or null, whose value is
// null, a boolean, a one-byte int or long, or an ASCII string, and whose
// attachments, if any, have ASCII strings for names and such values. ok is
// false for any other body.
func fastResult(body []byte, inv *Invocation) (v any, att map[string]string, ok bool) {
	if len(body) == 0 || body[0] < 0x80 || body[0] > 0xbf {
		return nil, nil, false
	}
	kind := int32(int8(body[0] - hessian.BC_INT_ZERO))
	r := fastReader{b: body[1:]}
	switch kind {
	case hessian.RESPONSE_VALUE, hessian.RESPONSE_VALUE_WITH_ATTACHMENTS:
		if v, ok = r.scalar(); !ok {
			return nil, nil, false
		}
	case hessian.RESPONSE_NULL_VALUE, hessian.RESPONSE_NULL_VALUE_WITH_ATTACHMENTS:
	default:
		return nil, nil, false // exceptions, and kinds decodeResult refuses
	}
	if kind == hessian.RESPONSE_VALUE || kind == hessian.RESPONSE_NULL_VALUE {
		return v, nil, true
	}
	if att, ok = r.attachments(inv); !ok {
		return nil, nil, false
	}
	return v, att, true
}

// fastReader walks a body; every method reports false rather than guess.
type fastReader struct{ b []byte }

func (r *fastReader) scalar() (any, bool) {
	if len(r.b) == 0 {
		return nil, false
	}
	tag := r.b[0]
	switch {
	case tag == hessian.BC_NULL:
		r.b = r.b[1:]
		return nil, true
	case tag == hessian.BC_TRUE || tag == hessian.BC_FALSE:
		r.b = r.b[1:]
		return tag == hessian.BC_TRUE, true
	case tag >= 0x80 && tag <= 0xbf: // an int of one byte
		r.b = r.b[1:]
		return int32(int8(tag - hessian.BC_INT_ZERO)), true
	case tag >= 0xd8 && tag <= 0xef: // a long of one byte
		r.b = r.b[1:]
		return int64(int8(tag - hessian.BC_LONG_ZERO)), true
	}
	s, ok := r.asciiString()
	if !ok {
		return nil, false
	}
	return string(s), true
}

// asciiString reads a string of one chunk made of ASCII characters only,
// where a length in UTF-16 units is also one in bytes.
func (r *fastReader) asciiString() ([]byte, bool) {
	if len(r.b) == 0 {
		return nil, false
	}
	tag, n, head := r.b[0], 0, 1
	switch {
	case tag <= hessian.STRING_DIRECT_MAX:
		n = int(tag)
	case tag >= 0x30 && tag <= 0x33 && len(r.b) >= 2:
		n, head = int(tag-0x30)<<8|int(r.b[1]), 2
	case tag == hessian.BC_STRING && len(r.b) >= 3:
		n, head = int(r.b[1])<<8|int(r.b[2]), 3
	default:
		return nil, false
	}
	if len(r.b) < head+n {
		return nil, false
	}
	s := r.b[head : head+n]
	for _, c := range s {
		if c >= 0x80 {
			return nil, false
		}
	}
	r.b = r.b[head+n:]
	return s, true
}

// attachments reads an untyped map of strings (a null value is "", as
// hessian.ToMapStringString makes it), or a null map.
func (r *fastReader) attachments(inv *Invocation) (map[string]string, bool) {
	if len(r.b) > 0 && r.b[0] == hessian.BC_NULL {
		return nil, true
	}
	if len(r.b) == 0 || r.b[0] != hessian.BC_MAP_UNTYPED {
		return nil, false
	}
	r.b = r.b[1:]
	att := make(map[string]string, 12)
	for {
		if len(r.b) == 0 {
			return nil, false
		}
		if r.b[0] == hessian.BC_END {
			return att, true
		}
		k, ok := r.asciiString()
		if !ok {
			return nil, false
		}
		key := internKey(k)
		if v, ok := r.asciiString(); ok {
			att[key] = internValue(key, v, inv)
			continue
		}
		// Not a string: null is "", and a boolean or a small number (as
		// dubbo-go's graceful-shutdown flag) is left out, as
		// hessian.ToMapStringString does with what is not a string.
		v, ok := r.scalar()
		switch {
		case !ok:
			return nil, false
		case v == nil:
			att[key] = ""
		default:
			delete(att, key)
		}
	}
}

// internKey returns the names providers answer with as constants.
func internKey(b []byte) string {
	switch string(b) {
	case "dubbo":
		return "dubbo"
	case "path":
		return "path"
	case "interface":
		return "interface"
	case "version":
		return "version"
	case "group":
		return "group"
	case "timeout":
		return "timeout"
	case "generic":
		return "generic"
	case "local-addr":
		return "local-addr"
	case "remote-addr":
		return "remote-addr"
	case "traceparent":
		return "traceparent"
	case "tracestate":
		return "tracestate"
	case closingAttachment:
		return closingAttachment
	}
	return string(b)
}

// internValue reuses the request's own strings for what the provider
// echoes of it, and constants for the usual values.
func internValue(key string, b []byte, inv *Invocation) string {
	switch string(b) {
	case "":
		return ""
	case "true":
		return "true"
	case "false":
		return "false"
	case hessian.DEFAULT_DUBBO_PROTOCOL_VERSION:
		return hessian.DEFAULT_DUBBO_PROTOCOL_VERSION
	case inv.Service:
		return inv.Service
	case inv.Version:
		return inv.Version
	case inv.Group:
		return inv.Group
	}
	if v, ok := inv.Attachments[key]; ok && v == string(b) {
		return v
	}
	return string(b)
}

// newDecoder is hessian's decoder of body with a read buffer no larger
// than the body (hessian's own is 4 KiB whatever the size).
func newDecoder(body []byte) *hessian.Decoder {
	return hessian.NewDecoderSize(body, min(max(len(body), 16), 4096))
}

// bodyPool recycles response bodies once decoded: hessian's decoder and
// fastResult copy what they keep.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledBody = 64 << 10

// getBody returns a pooled buffer of n bytes, or nil (and a plain slice)
// when n is too big to keep.
func getBody(n int) (*[]byte, []byte) {
	if n > maxPooledBody {
		return nil, make([]byte, n)
	}
	bp := bodyPool.Get().(*[]byte)
	if cap(*bp) < n {
		*bp = make([]byte, n)
	}
	*bp = (*bp)[:n]
	return bp, *bp
}

func putBody(bp *[]byte) {
	if bp != nil {
		bodyPool.Put(bp)
	}
}
