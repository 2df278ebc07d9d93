// Package dubbo calls Dubbo services generically for the bridge: it turns
// JSON values into the Java values a method's declared parameter types call
// for, invokes the provider over the dubbo or triple protocol, and turns the
// result back into clean JSON. The type of every argument comes from the
// mapping; nothing in a request names a Java class.
package dubbo

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	gxbig "github.com/dubbogo/gost/math/big"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/protocols/dubbo/javatype"
)

// ValueError is a value that does not fit its declared type; the path says
// where inside the argument it is (user.tags[2]).
type ValueError struct {
	Path   string
	Reason string
}

func (e *ValueError) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

// Types are the classes a mapping declares, by name.
type Types map[string]*config.JavaType

// NewTypes indexes a mapping's java_types.
func NewTypes(decls []config.JavaType) Types {
	t := Types{}
	for i := range decls {
		t[decls[i].Class] = &decls[i]
	}
	return t
}

// Converter turns JSON values into Java values.
type Converter struct {
	Types Types
}

// FromText converts a value that arrived as text (a path segment, a query
// parameter, a header) to the declared type: numbers, booleans, dates and
// enum names are parsed from it.
func (c *Converter) FromText(t *javatype.Type, s string, path string) (any, error) {
	switch t.Kind {
	case javatype.Primitive, javatype.Boxed, javatype.BigDecimal, javatype.BigInteger:
		if t.Name == "boolean" || t.Name == "java.lang.Boolean" {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return nil, &ValueError{path, fmt.Sprintf("%q is not true or false", s)}
			}
			return b, nil
		}
		if t.Name == "char" || t.Name == "java.lang.Character" {
			return c.FromJSON(t, s, path)
		}
		return c.FromJSON(t, json.Number(s), path)
	case javatype.String, javatype.Date, javatype.Class, javatype.Object:
		return c.FromJSON(t, s, path)
	}
	return nil, &ValueError{path, fmt.Sprintf("a %s cannot come from a path, query or header; send it in the body", t)}
}

// FromJSON converts a decoded JSON value (numbers as json.Number) to the
// declared type, strictly: a number where a string belongs is an error, a
// number out of the Java type's range is an error, never a silent wrap.
func (c *Converter) FromJSON(t *javatype.Type, v any, path string) (any, error) {
	if v == nil {
		if t.Kind == javatype.Primitive {
			return nil, &ValueError{path, fmt.Sprintf("%s cannot be null", t)}
		}
		return nil, nil
	}
	fail := func(format string, args ...any) error { return &ValueError{path, fmt.Sprintf(format, args...)} }
	switch t.Kind {
	case javatype.Primitive, javatype.Boxed:
		return c.scalar(t, v, fail)
	case javatype.String:
		s, ok := v.(string)
		if !ok {
			return nil, fail("must be a string, not %s", kindOf(v))
		}
		return s, nil
	case javatype.BigDecimal:
		s, ok := numberText(v)
		if !ok {
			return nil, fail("must be a decimal number (a JSON number or a string like \"12.50\"), not %s", kindOf(v))
		}
		d := new(gxbig.Decimal)
		if _, err := strconv.ParseFloat(s, 64); err != nil || d.FromString(s) != nil {
			return nil, fail("%q is not a decimal number", s)
		}
		return d, nil
	case javatype.BigInteger:
		s, ok := numberText(v)
		if !ok {
			return nil, fail("must be a whole number, not %s", kindOf(v))
		}
		if _, ok := new(big.Int).SetString(s, 10); !ok {
			return nil, fail("%q is not a whole number", s)
		}
		i := new(gxbig.Integer)
		if err := i.FromString(s); err != nil {
			return nil, fail("%q is not a whole number", s)
		}
		return i, nil
	case javatype.Date:
		s, ok := v.(string)
		if !ok {
			return nil, fail("must be an RFC 3339 date-time string like \"2026-11-21T10:00:00Z\", not %s", kindOf(v))
		}
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, fail("%q is not an RFC 3339 date-time like \"2026-11-21T10:00:00Z\"", s)
		}
		return tm, nil
	case javatype.Object:
		if at, found := FindClassKey(v, path); found {
			return nil, &ClassKeyError{at}
		}
		return plain(v), nil
	case javatype.Array:
		if t.Elem.Kind == javatype.Primitive && t.Elem.Name == "byte" {
			s, ok := v.(string)
			if !ok {
				return nil, fail("byte[] must be a base64 string, not %s", kindOf(v))
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fail("is not valid base64")
			}
			return b, nil
		}
		return c.list(t, v, path, fail)
	case javatype.List, javatype.Set:
		return c.list(t, v, path, fail)
	case javatype.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fail("must be a JSON object, not %s", kindOf(v))
		}
		out := make(map[any]any, len(m))
		for _, k := range sortedKeys(m) {
			key := any(k)
			if t.Key != nil {
				var err error
				if key, err = c.FromText(t.Key, k, path+"."+k); err != nil {
					return nil, err
				}
			}
			var val any = plain(m[k])
			if t.Elem == nil {
				// A raw Map's values are untyped: no class keys inside.
				if at, found := FindClassKey(m[k], path+"."+k); found {
					return nil, &ClassKeyError{at}
				}
			} else {
				var err error
				if val, err = c.FromJSON(t.Elem, m[k], path+"."+k); err != nil {
					return nil, err
				}
			}
			out[key] = val
		}
		return out, nil
	case javatype.Class:
		decl, ok := c.Types[t.Name]
		if !ok {
			return nil, fail("class %s is not declared", t.Name)
		}
		if decl.Enum != nil {
			s, ok := v.(string)
			if !ok || !slices.Contains(decl.Enum, s) {
				return nil, fail("must be one of %s", strings.Join(decl.Enum, ", "))
			}
			return EnumConstant{Class: t.Name, Name: s}, nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fail("must be a JSON object (%s), not %s", t.Name, kindOf(v))
		}
		// A POJO travels as a map naming its class, the form generic
		// invocation realizes on the provider. The class is the declared
		// one; "class" from the client was refused before this point.
		out := map[string]any{"class": t.Name}
		fields := map[string]*javatype.Type{}
		for _, f := range decl.Fields {
			ft, err := javatype.Parse(f.Type)
			if err != nil {
				return nil, fail("field %s: %v", f.Name, err)
			}
			fields[f.Name] = ft
		}
		for _, k := range sortedKeys(m) {
			ft, ok := fields[k]
			if !ok && IsClassKey(k) {
				return nil, &ClassKeyError{path + "." + k}
			}
			if !ok {
				return nil, &ValueError{path + "." + k, fmt.Sprintf("%s has no field %q", t.Name, k)}
			}
			val, err := c.FromJSON(ft, m[k], path+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = val
		}
		return out, nil
	}
	return nil, fail("unsupported type %s", t)
}

func (c *Converter) list(t *javatype.Type, v any, path string, fail func(string, ...any) error) (any, error) {
	items, ok := v.([]any)
	if !ok {
		return nil, fail("must be a JSON array, not %s", kindOf(v))
	}
	out := make([]any, len(items))
	for i, it := range items {
		if t.Elem == nil {
			if at, found := FindClassKey(it, fmt.Sprintf("%s[%d]", path, i)); found {
				return nil, &ClassKeyError{at}
			}
			out[i] = plain(it)
			continue
		}
		val, err := c.FromJSON(t.Elem, it, fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return nil, err
		}
		out[i] = val
	}
	return out, nil
}

// scalar converts to a Java primitive or its box with its exact range.
func (c *Converter) scalar(t *javatype.Type, v any, fail func(string, ...any) error) (any, error) {
	name := t.Name
	if t.Kind == javatype.Boxed {
		for p, b := range map[string]string{"boolean": "java.lang.Boolean", "byte": "java.lang.Byte", "char": "java.lang.Character",
			"short": "java.lang.Short", "int": "java.lang.Integer", "long": "java.lang.Long", "float": "java.lang.Float", "double": "java.lang.Double"} {
			if b == name {
				name = p
			}
		}
	}
	switch name {
	case "boolean":
		b, ok := v.(bool)
		if !ok {
			return nil, fail("must be true or false, not %s", kindOf(v))
		}
		return b, nil
	case "char":
		s, ok := v.(string)
		if !ok || utf8.RuneCountInString(s) != 1 || []rune(s)[0] > 0xFFFF {
			return nil, fail("must be a one-character string")
		}
		return s, nil
	case "float", "double":
		n, ok := v.(json.Number)
		if !ok {
			return nil, fail("must be a number, not %s", kindOf(v))
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, fail("%s is not a number a %s can hold", n, name)
		}
		if name == "float" {
			if math.Abs(f) > math.MaxFloat32 {
				return nil, fail("%s is out of range for float", n)
			}
			return float32(f), nil
		}
		return f, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return nil, fail("must be a whole number, not %s", kindOf(v))
	}
	i, err := wholeNumber(string(n))
	if err != nil {
		return nil, fail("%s is not a whole number", n)
	}
	r := intRanges[name]
	lo, hi := r[0], r[1]
	if !i.IsInt64() || i.Int64() < lo || i.Int64() > hi {
		return nil, fail("%s is out of range for %s (%d to %d)", n, name, lo, hi)
	}
	switch name {
	case "byte":
		return int8(i.Int64()), nil
	case "short":
		return int16(i.Int64()), nil
	case "int":
		return int32(i.Int64()), nil
	}
	return i.Int64(), nil
}

// intRanges are the Java integral types' bounds.
var intRanges = map[string][2]int64{
	"byte": {math.MinInt8, math.MaxInt8}, "short": {math.MinInt16, math.MaxInt16},
	"int": {math.MinInt32, math.MaxInt32}, "long": {math.MinInt64, math.MaxInt64},
}

// wholeNumber reads an integer exactly, allowing forms like 1e3 and 2.0
// that are whole, and refusing 2.5.
func wholeNumber(s string) (*big.Int, error) {
	if i, ok := new(big.Int).SetString(s, 10); ok {
		return i, nil
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok || !r.IsInt() {
		return nil, fmt.Errorf("not whole")
	}
	return r.Num(), nil
}

func numberText(v any) (string, bool) {
	switch x := v.(type) {
	case json.Number:
		return string(x), true
	case string:
		return strings.TrimSpace(x), true
	}
	return "", false
}

// plain turns JSON into plain Go values for java.lang.Object and untyped
// collections: whole numbers as Long, whole numbers beyond Long's range as
// BigInteger (never a double that would lose digits), others as Double.
func plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if _, ok := new(big.Int).SetString(string(x), 10); ok {
			i := new(gxbig.Integer)
			if i.FromString(string(x)) == nil {
				return i
			}
		}
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case []any:
		out := make([]any, len(x))
		for i, it := range x {
			out[i] = plain(it)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, it := range x {
			out[k] = plain(it)
		}
		return out
	}
	return v
}

func kindOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "the number " + string(x)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// IsClassKey reports a key that names a Java type in one serialization or
// another (hessian maps, Fastjson, Jackson, dubbo-go's generic maps).
func IsClassKey(k string) bool {
	switch strings.ToLower(k) {
	case "class", "@type", "_class", "$class":
		return true
	}
	return false
}

// ClassKeyError is a request value that tries to name a Java type.
type ClassKeyError struct{ Path string }

func (e *ClassKeyError) Error() string {
	return fmt.Sprintf("the body sets %q: Java types come from the mapping, never from a request", e.Path)
}

// FindClassKey reports the path of a class key (IsClassKey) anywhere in an
// untyped JSON value: a client never chooses a Java type, not even inside
// a nested object.
func FindClassKey(v any, path string) (string, bool) {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if IsClassKey(k) {
				return p, true
			}
			if at, ok := FindClassKey(x[k], p); ok {
				return at, true
			}
		}
	case []any:
		for i, it := range x {
			if at, ok := FindClassKey(it, fmt.Sprintf("%s[%d]", path, i)); ok {
				return at, true
			}
		}
	}
	return "", false
}
