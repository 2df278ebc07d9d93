package wire

import (
	"encoding/binary"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	hessian "github.com/apache/dubbo-go-hessian2"
)

// The request frame is written here rather than by hessian's codec, which
// builds a map of the attachments, walks them by reflection and takes a
// 12 KiB chunk buffer from a pool for every string: most of a call's
// allocations. The bytes are those the codec writes (the tests compare
// them); only the argument values that are not plain scalars go through
// hessian's encoder, one per request, so class definitions stay numbered
// as one encoder numbers them.

// invokeTypes is the descriptor of $invoke(String, String[], Object[]).
const invokeTypes = "Ljava/lang/String;[Ljava/lang/String;[Ljava/lang/Object;"

// Hessian's chunking of strings, as its encoder does it: chunks of 4096
// UTF-16 units, the last one in the shortest form its length allows.
const (
	chunkChars      = hessian.CHUNK_SIZE
	stringDirectMax = int(hessian.STRING_DIRECT_MAX)
	stringShortMax  = hessian.STRING_SHORT_MAX
)

// framePool recycles request frames once they are written; frames bigger
// than maxPooledFrame are left to the collector.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooledFrame = 64 << 10

func getFrame() *[]byte { return framePool.Get().(*[]byte) }

func putFrame(b *[]byte) {
	if cap(*b) > maxPooledFrame {
		return
	}
	*b = (*b)[:0]
	framePool.Put(b)
}

// encoderPool holds hessian encoders for the argument values this file
// does not write itself.
var encoderPool = sync.Pool{New: func() any { return hessian.NewEncoder() }}

// requestWriter appends a request body; enc is taken from the pool on the
// first value that needs it.
type requestWriter struct {
	b   []byte
	enc *hessian.Encoder
}

// value appends one argument: scalars directly, anything else through the
// request's hessian encoder, whose new bytes are copied over. The values
// the bridge converts never share a map or slice, so that encoder writes
// no back references whose numbers would count only its own values.
func (w *requestWriter) value(v any) error {
	switch x := v.(type) {
	case nil:
		w.b = append(w.b, hessian.BC_NULL)
		return nil
	case string:
		w.b = appendString(w.b, x)
		return nil
	case bool:
		w.b = appendBool(w.b, x)
		return nil
	case int8:
		w.b = appendInt32(w.b, int32(x))
		return nil
	case int16:
		w.b = appendInt32(w.b, int32(x))
		return nil
	case int32:
		w.b = appendInt32(w.b, x)
		return nil
	case int64:
		w.b = appendInt64(w.b, x)
		return nil
	}
	if w.enc == nil {
		w.enc = encoderPool.Get().(*hessian.Encoder)
		w.enc.ReuseBufferClean()
	}
	start := len(w.enc.Buffer())
	if err := w.enc.Encode(v); err != nil {
		return err
	}
	w.b = append(w.b, w.enc.Buffer()[start:]...)
	return nil
}

func (w *requestWriter) release() {
	if w.enc != nil {
		w.enc.ReuseBufferClean()
		encoderPool.Put(w.enc)
		w.enc = nil
	}
}

// appendRequest appends the body of a generic call: the dubbo version,
// path, version, $invoke and its descriptor, the method, the types, the
// arguments and the attachments.
func appendRequest(b []byte, inv *Invocation, timeout time.Duration) ([]byte, error) {
	w := requestWriter{b: b}
	defer w.release()
	w.b = appendString(w.b, hessian.DEFAULT_DUBBO_PROTOCOL_VERSION)
	w.b = appendString(w.b, inv.Service)
	w.b = appendString(w.b, inv.Version)
	w.b = appendString(w.b, "$invoke")
	w.b = appendString(w.b, invokeTypes)
	w.b = appendString(w.b, inv.Method)
	// String[] and Object[] as hessian writes a typed Go slice: a
	// fixed-length typed list.
	w.b = appendListHead(w.b, "[string", len(inv.Types))
	for _, t := range inv.Types {
		w.b = appendString(w.b, t)
	}
	w.b = appendListHead(w.b, "[object", len(inv.Args))
	for _, a := range inv.Args {
		if err := w.value(a); err != nil {
			return w.b, err
		}
	}
	w.b = appendAttachments(w.b, inv, timeout)
	return w.b, nil
}

func appendListHead(b []byte, typ string, n int) []byte {
	b = append(b, hessian.BC_LIST_FIXED)
	b = appendString(b, typ)
	return appendInt32(b, int32(n))
}

// appendAttachments writes the attachments as an untyped map: the
// caller's, less the names the protocol sets, then those the codec adds
// (generic, path, version, group and interface when set, timeout).
func appendAttachments(b []byte, inv *Invocation, timeout time.Duration) []byte {
	b = append(b, hessian.BC_MAP_UNTYPED)
	for k, v := range inv.Attachments {
		if !reservedAttachments[k] {
			b = appendString(b, k)
			b = appendString(b, v)
		}
	}
	b = appendPair(b, "generic", "true")
	b = appendPair(b, hessian.PATH_KEY, inv.Service)
	b = appendPair(b, hessian.VERSION_KEY, inv.Version)
	if inv.Group != "" {
		b = appendPair(b, hessian.GROUP_KEY, inv.Group)
	}
	if inv.Service != "" {
		b = appendPair(b, hessian.INTERFACE_KEY, inv.Service)
	}
	if timeout != 0 {
		b = appendString(b, hessian.TIMEOUT_KEY)
		var num [20]byte
		b = appendASCII(b, strconv.AppendInt(num[:0], int64(timeout/time.Millisecond), 10))
	}
	return append(b, hessian.BC_END)
}

func appendPair(b []byte, k, v string) []byte {
	return appendString(appendString(b, k), v)
}

// appendASCII writes bytes known to be ASCII as a short string.
func appendASCII(b, s []byte) []byte {
	b = append(b, byte(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, hessian.BC_TRUE)
	}
	return append(b, hessian.BC_FALSE)
}

// appendInt32 is hessian's int in its shortest form.
func appendInt32(b []byte, v int32) []byte {
	switch {
	case v >= hessian.INT_DIRECT_MIN && v <= int32(hessian.INT_DIRECT_MAX):
		return append(b, byte(v+int32(hessian.BC_INT_ZERO)))
	case v >= hessian.INT_BYTE_MIN && v <= hessian.INT_BYTE_MAX:
		return append(b, byte(int32(hessian.BC_INT_BYTE_ZERO)+v>>8), byte(v))
	case v >= hessian.INT_SHORT_MIN && v <= hessian.INT_SHORT_MAX:
		return append(b, byte(v>>16+int32(hessian.BC_INT_SHORT_ZERO)), byte(v>>8), byte(v))
	}
	return append(b, 'I', byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// appendInt64 is hessian's long in its shortest form.
func appendInt64(b []byte, v int64) []byte {
	switch {
	case v >= hessian.LONG_DIRECT_MIN && v <= int64(hessian.LONG_DIRECT_MAX):
		return append(b, byte(v+int64(hessian.BC_LONG_ZERO)))
	case v >= hessian.LONG_BYTE_MIN && v <= hessian.LONG_BYTE_MAX:
		return append(b, byte(int64(hessian.BC_LONG_BYTE_ZERO)+v>>8), byte(v))
	case v >= hessian.LONG_SHORT_MIN && v <= hessian.LONG_SHORT_MAX:
		return append(b, byte(int64(hessian.BC_LONG_SHORT_ZERO)+v>>16), byte(v>>8), byte(v))
	case v >= -0x80000000 && v <= 0x7fffffff:
		return append(b, hessian.BC_LONG_INT, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return append(b, 'L', byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// appendString writes s as hessian does: lengths count UTF-16 units, a
// character beyond the BMP is two 3-byte surrogates, invalid UTF-8 is
// U+FFFD, and chunks hold 4096 units (4097 when a pair ends one).
func appendString(b []byte, s string) []byte {
	if s == "" {
		return append(b, hessian.BC_STRING_DIRECT)
	}
	if ascii(s) && len(s) <= chunkChars {
		return append(appendStringHead(b, len(s), false), s...)
	}
	for len(s) > 0 {
		units, n := chunkOf(s)
		last := n == len(s)
		b = appendStringHead(b, units, !last)
		b = appendUnits(b, s[:n])
		s = s[n:]
	}
	return b
}

// chunkOf measures the next chunk of s: its UTF-16 units and its bytes in s.
func chunkOf(s string) (units, n int) {
	for n < len(s) && units < chunkChars {
		r, size := utf8.DecodeRuneInString(s[n:])
		n += size
		units++
		if r >= 0x10000 {
			units++
		}
	}
	return units, n
}

func appendStringHead(b []byte, units int, more bool) []byte {
	switch {
	case more:
		return append(b, hessian.BC_STRING_CHUNK, byte(units>>8), byte(units))
	case units <= stringDirectMax:
		return append(b, byte(units))
	case units <= stringShortMax:
		return append(b, byte(units>>8+int(hessian.BC_STRING_SHORT)), byte(units))
	}
	return append(b, hessian.BC_STRING, byte(units>>8), byte(units))
}

// appendUnits writes s's characters, those beyond the BMP as surrogate
// pairs of three bytes each.
func appendUnits(b []byte, s string) []byte {
	for _, r := range s {
		if r < 0x10000 {
			b = utf8.AppendRune(b, r)
			continue
		}
		t := uint32(r) - 0x10000
		b = appendUCS2(b, t>>10+0xD800)
		b = appendUCS2(b, t&0x3FF+0xDC00)
	}
	return b
}

func appendUCS2(b []byte, ch uint32) []byte {
	return append(b, byte(0xe0+(ch>>12)&0x0f), byte(0x80+(ch>>6)&0x3f), byte(0x80+ch&0x3f))
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// putHeader writes a request header for a body of n bytes into b[:16].
func putHeader(b []byte, typ byte, id int64, n int) {
	b[0], b[1] = hessian.MAGIC_HIGH, hessian.MAGIC_LOW
	b[2] = typ | serialHessian2&hessian.SERIAL_MASK
	b[3] = 0
	binary.BigEndian.PutUint64(b[4:], uint64(id))
	binary.BigEndian.PutUint32(b[12:], uint32(n))
}
