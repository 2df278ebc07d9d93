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
			m[fmt.Sprint(k)] = val
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
	class, _ := m["class"].(string)
	switch class {
	case "java.math.BigDecimal", "java.math.BigInteger":
		if v, ok := m["value"]; ok {
			return fmt.Sprint(v)
		}
		if i, ok := bigIntegerFields(m); ok {
			return i.String()
		}
	}
	// An enum arrives as an object of its class holding only its name.
	if name, ok := m["name"].(string); ok && class != "" && len(m) == 2 && !includeClass {
		return name
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k == "class" && !includeClass {
			continue
		}
		out[k] = ResultToJSON(v, includeClass)
	}
	return out
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

// TypedResultToJSON renders a result whose Java type the mapping declares,
// for forms generic invocation loses: a byte[] that arrives as a list of
// numbers is still base64.
func TypedResultToJSON(v any, t *javatype.Type, includeClass bool) any {
	if t != nil && t.Kind == javatype.Array && t.Elem.Name == "byte" {
		if list, ok := v.([]any); ok {
			b := make([]byte, len(list))
			for i, x := range list {
				n, ok := toInt64(x)
				if !ok {
					return ResultToJSON(v, includeClass)
				}
				b[i] = byte(n)
			}
			return base64.StdEncoding.EncodeToString(b)
		}
	}
	return ResultToJSON(v, includeClass)
}
