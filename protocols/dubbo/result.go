package dubbo

import (
	"encoding/base64"
	"fmt"
	"math/big"
	"reflect"
	"time"

	gxbig "github.com/dubbogo/gost/math/big"

	"github.com/protogate/protogate/protocols/dubbo/javatype"
)

// ResultToJSON turns what a generic call returned into plain JSON values:
// objects keep the field names the provider sent, the "class" keys are
// dropped unless includeClass, BigDecimal and BigInteger become exact
// strings, dates RFC 3339, byte arrays base64, and enums their names.
func ResultToJSON(v any, includeClass bool) any {
	switch x := v.(type) {
	case nil:
		return nil
	case *gxbig.Decimal:
		return x.String()
	case gxbig.Decimal:
		return x.String()
	case *gxbig.Integer:
		return x.String()
	case gxbig.Integer:
		return x.String()
	case *big.Int:
		return x.String()
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case *time.Time:
		if x == nil {
			return nil
		}
		return x.Format(time.RFC3339Nano)
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case string, bool, int8, int16, int32, int64, int, float32, float64, uint8, uint16, uint32, uint64:
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[keyText(k)] = val
		}
		return objectToJSON(m, includeClass)
	case map[string]any:
		return objectToJSON(x, includeClass)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = ResultToJSON(rv.Index(i).Interface(), includeClass)
		}
		return out
	case reflect.Map:
		m := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			m[fmt.Sprint(it.Key().Interface())] = it.Value().Interface()
		}
		return objectToJSON(m, includeClass)
	case reflect.Pointer:
		if rv.IsNil() {
			return nil
		}
		return ResultToJSON(rv.Elem().Interface(), includeClass)
	case reflect.Struct:
		m := map[string]any{}
		for i := 0; i < rv.NumField(); i++ {
			if f := rv.Type().Field(i); f.IsExported() {
				m[f.Name] = rv.Field(i).Interface()
			}
		}
		return objectToJSON(m, includeClass)
	}
	return fmt.Sprint(v)
}

func objectToJSON(m map[string]any, includeClass bool) any {
	class := classOf(m)
	switch class {
	case "java.math.BigDecimal", "java.math.BigInteger":
		if v, ok := m["value"]; ok {
			return fmt.Sprint(v)
		}
		if i, ok := bigIntegerFields(m); ok {
			return i.String()
		}
	}
	// An enum arrives as an object of its class holding only its name
	// (hessian's form, or dubbo-go's generalized {"_class", "name"}).
	if name, ok := enumName(m); ok && !includeClass {
		return name
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if isResultClassKey(k) && !includeClass {
			continue
		}
		out[k] = ResultToJSON(v, includeClass)
	}
	return out
}

// classOf is the class a result object names: "class" in Java's generic
// maps, "_class" in dubbo-go's.
func classOf(m map[string]any) string {
	if c, ok := m["class"].(string); ok {
		return c
	}
	c, _ := m["_class"].(string)
	return c
}

func isResultClassKey(k string) bool { return k == "class" || k == "_class" }

// enumName reads a constant sent as an object of its class with a name
// and nothing else.
func enumName(m map[string]any) (string, bool) {
	name, ok := m["name"].(string)
	if !ok || classOf(m) == "" || len(m) != 2 {
		return "", false
	}
	return name, true
}

// bigIntegerFields rebuilds a java.math.BigInteger sent as its fields:
// signum and mag, the magnitude as big-endian 32-bit words.
func bigIntegerFields(m map[string]any) (*big.Int, bool) {
	words, ok := m["mag"].([]any)
	signum, sok := toInt64(m["signum"])
	if !ok || !sok {
		return nil, false
	}
	out := new(big.Int)
	for _, w := range words {
		n, ok := toInt64(w)
		if !ok {
			return nil, false
		}
		out.Lsh(out, 32)
		out.Or(out, big.NewInt(n&0xFFFFFFFF))
	}
	if signum < 0 {
		out.Neg(out)
	}
	return out, true
}

func toInt64(v any) (int64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int64(rv.Uint()), true
	}
	return 0, false
}

// Result renders a result the way requests are written, using the
// method's declared return type where the mapping gives one, down through
// the declared classes' fields: enums as their names, byte[] as base64 even
// where generic invocation delivered a list of numbers, BigDecimal and
// BigInteger as exact strings, no class keys unless includeClass. What a
// route returned can be sent back to a route that takes the same type.
func (c *Converter) Result(v any, t *javatype.Type, includeClass bool) any {
	if v == nil || t == nil {
		return ResultToJSON(v, includeClass)
	}
	switch t.Kind {
	case javatype.Array:
		if t.Elem.Kind == javatype.Primitive && t.Elem.Name == "byte" {
			if b, ok := bytesOf(v); ok {
				return base64.StdEncoding.EncodeToString(b)
			}
			return ResultToJSON(v, includeClass)
		}
		return c.resultList(v, t.Elem, includeClass)
	case javatype.List, javatype.Set:
		return c.resultList(v, t.Elem, includeClass)
	case javatype.Map:
		m, ok := stringKeyed(v)
		if !ok || t.Elem == nil {
			return ResultToJSON(v, includeClass)
		}
		out := make(map[string]any, len(m))
		for k, val := range m {
			if isResultClassKey(k) && !includeClass {
				continue
			}
			out[k] = c.Result(val, t.Elem, includeClass)
		}
		return out
	case javatype.Class:
		decl, ok := c.Types[t.Name]
		if !ok {
			return ResultToJSON(v, includeClass)
		}
		if decl.Enum != nil {
			switch x := v.(type) {
			case string:
				return x
			case EnumConstant:
				return x.Name
			}
			if m, ok := stringKeyed(v); ok {
				if name, ok := m["name"].(string); ok {
					return name
				}
			}
			return ResultToJSON(v, includeClass)
		}
		m, ok := stringKeyed(v)
		if !ok {
			return ResultToJSON(v, includeClass)
		}
		out := make(map[string]any, len(m))
		for k, val := range m {
			if isResultClassKey(k) {
				if includeClass {
					out[k] = val
				}
				continue
			}
			out[k] = c.Result(val, decl.fields[k], includeClass)
		}
		return out
	}
	return ResultToJSON(v, includeClass)
}

func (c *Converter) resultList(v any, elem *javatype.Type, includeClass bool) any {
	rv := reflect.ValueOf(v)
	if elem == nil || (rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array) {
		return ResultToJSON(v, includeClass)
	}
	if _, isBytes := v.([]byte); isBytes {
		return ResultToJSON(v, includeClass)
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = c.Result(rv.Index(i).Interface(), elem, includeClass)
	}
	return out
}

// keyText is a result key as text: fmt.Sprint's, without its cost for
// the usual string.
func keyText(k any) string {
	if s, ok := k.(string); ok {
		return s
	}
	return fmt.Sprint(k)
}

// stringKeyed gives an object result its string keys, whatever map type
// the decoder made of it.
func stringKeyed(v any) (map[string]any, bool) {
	switch x := v.(type) {
	case map[string]any:
		return x, true
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[keyText(k)] = val
		}
		return m, true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map {
		return nil, false
	}
	m := make(map[string]any, rv.Len())
	for it := rv.MapRange(); it.Next(); {
		m[fmt.Sprint(it.Key().Interface())] = it.Value().Interface()
	}
	return m, true
}

// bytesOf reads a byte[] result in the forms decoders give it: bytes, or
// a list of small numbers.
func bytesOf(v any) ([]byte, bool) {
	if b, ok := v.([]byte); ok {
		return b, true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, false
	}
	b := make([]byte, rv.Len())
	for i := range b {
		n, ok := toInt64(rv.Index(i).Interface())
		if !ok || n < -128 || n > 255 {
			return nil, false
		}
		b[i] = byte(n)
	}
	return b, true
}
