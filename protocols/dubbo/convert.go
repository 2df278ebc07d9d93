// Package dubbo calls Dubbo services generically for the bridge: it turns
// JSON values into the Java values a method's declared parameter types call
// for, invokes the provider over the dubbo or triple protocol, and turns the
// result back into clean JSON. The type of every argument comes from the
// mapping; nothing in a request names a Java class.
package dubbo

import (
	"encoding/base64"
	"encoding/json"
	"errors"
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

// Types are the classes a mapping declares, by name, with their fields'
// types parsed once.
type Types map[string]*declaredType

type declaredType struct {
	*config.JavaType
	fields map[string]*javatype.Type
	// badField is the first field whose type does not parse (the loader
	// refuses such a mapping first), reported as FromJSON always did.
	badField    string
	badFieldErr error
}

// NewTypes indexes a mapping's java_types.
func NewTypes(decls []config.JavaType) Types {
	t := Types{}
	for i := range decls {
		d := &declaredType{JavaType: &decls[i], fields: make(map[string]*javatype.Type, len(decls[i].Fields))}
		for _, f := range decls[i].Fields {
			ft, err := javatype.Parse(f.Type)
			if err != nil {
				if d.badFieldErr == nil {
					d.badField, d.badFieldErr = f.Name, err
				}
				continue
			}
			d.fields[f.Name] = ft
		}
		t[decls[i].Class] = d
	}
	return t
}

// Converter turns JSON values into Java values.
type Converter struct {
	Types Types
}

// valuePath is where a value sits inside an argument: the root's name and
// the keys and indexes below it, pushed and popped as the conversion
// descends, and turned into text (user.tags[2]) only for an error.
type valuePath struct {
	root string
	segs []pathSeg
}

type pathSeg struct {
	key   string
	index int // the list index; -1 for a key
}

func (p *valuePath) push(key string, index int) { p.segs = append(p.segs, pathSeg{key, index}) }

func (p *valuePath) pop() { p.segs = p.segs[:len(p.segs)-1] }

func (p *valuePath) String() string {
	s := p.root
	for _, sg := range p.segs {
		if sg.index >= 0 {
			s = fmt.Sprintf("%s[%d]", s, sg.index)
		} else {
			s = s + "." + sg.key
		}
	}
	return s
}

func bad(p *valuePath, format string, args ...any) error {
	return &ValueError{p.String(), fmt.Sprintf(format, args...)}
}

// FromText converts a value that arrived as text (a path segment, a query
// parameter, a header) to the declared type: numbers, booleans, dates and
// enum names are parsed from it.
func (c *Converter) FromText(t *javatype.Type, s string, path string) (any, error) {
	return c.fromText(t, s, &valuePath{root: path})
}

func (c *Converter) fromText(t *javatype.Type, s string, p *valuePath) (any, error) {
	switch t.Kind {
	case javatype.Primitive, javatype.Boxed, javatype.BigDecimal, javatype.BigInteger:
		if t.Name == "boolean" || t.Name == "java.lang.Boolean" {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return nil, bad(p, "%q is not true or false", s)
			}
			return b, nil
		}
		if t.Name == "char" || t.Name == "java.lang.Character" {
			return c.fromJSON(t, s, p)
		}
		return c.fromJSON(t, json.Number(s), p)
	case javatype.String, javatype.Date, javatype.Class, javatype.Object:
		return c.fromJSON(t, s, p)
	}
	return nil, bad(p, "a %s cannot come from a path, query or header; send it in the body", t)
}

// FromJSON converts a decoded JSON value (numbers as json.Number) to the
// declared type, strictly: a number where a string belongs is an error, a
// number out of the Java type's range is an error, never a silent wrap.
func (c *Converter) FromJSON(t *javatype.Type, v any, path string) (any, error) {
	return c.fromJSON(t, v, &valuePath{root: path})
}

func (c *Converter) fromJSON(t *javatype.Type, v any, p *valuePath) (any, error) {
	if v == nil {
		if t.Kind == javatype.Primitive {
			return nil, bad(p, "%s cannot be null", t)
		}
		return nil, nil
	}
	switch t.Kind {
	case javatype.Primitive, javatype.Boxed:
		return c.scalar(t, v, p)
	case javatype.String:
		s, ok := v.(string)
		if !ok {
			return nil, bad(p, "must be a string, not %s", kindOf(v))
		}
		return s, nil
	case javatype.BigDecimal:
		s, ok := numberText(v)
		if !ok {
			return nil, bad(p, "must be a decimal number (a JSON number or a string like \"12.50\"), not %s", kindOf(v))
		}
		d := new(gxbig.Decimal)
		if _, err := strconv.ParseFloat(s, 64); err != nil || d.FromString(s) != nil {
			return nil, bad(p, "%q is not a decimal number", s)
		}
		return d, nil
	case javatype.BigInteger:
		s, ok := numberText(v)
		if !ok {
			return nil, bad(p, "must be a whole number, not %s", kindOf(v))
		}
		if _, ok := new(big.Int).SetString(s, 10); !ok {
			return nil, bad(p, "%q is not a whole number", s)
		}
		i := new(gxbig.Integer)
		if err := i.FromString(s); err != nil {
			return nil, bad(p, "%q is not a whole number", s)
		}
		return i, nil
	case javatype.Date:
		s, ok := v.(string)
		if !ok {
			return nil, bad(p, "must be an RFC 3339 date-time string like \"2026-11-21T10:00:00Z\", not %s", kindOf(v))
		}
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, bad(p, "%q is not an RFC 3339 date-time like \"2026-11-21T10:00:00Z\"", s)
		}
		return tm, nil
	case javatype.Object:
		if err := classKeyIn(v, p); err != nil {
			return nil, err
		}
		return plain(v), nil
	case javatype.Array:
		if t.Elem.Kind == javatype.Primitive && t.Elem.Name == "byte" {
			s, ok := v.(string)
			if !ok {
				return nil, bad(p, "byte[] must be a base64 string, not %s", kindOf(v))
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, bad(p, "is not valid base64")
			}
			return b, nil
		}
		return c.list(t, v, p)
	case javatype.List, javatype.Set:
		return c.list(t, v, p)
	case javatype.Map:
		return c.javaMap(t, v, p)
	case javatype.Class:
		return c.class(t, v, p)
	}
	return nil, bad(p, "unsupported type %s", t)
}

// classKeyIn refuses an untyped value with a class key anywhere in it.
func classKeyIn(v any, p *valuePath) error {
	if !hasClassKey(v) {
		return nil
	}
	at, _ := FindClassKey(v, p.String())
	return &ClassKeyError{at}
}

// hasClassKey is FindClassKey's answer without its path.
func hasClassKey(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, it := range x {
			if IsClassKey(k) || hasClassKey(it) {
				return true
			}
		}
	case []any:
		for _, it := range x {
			if hasClassKey(it) {
				return true
			}
		}
	}
	return false
}

// Objects are converted in the map's order; when one field fails they are
// gone through again in sorted order, so the error reported is the first
// by name, whatever the order of the map.

func (c *Converter) javaMap(t *javatype.Type, v any, p *valuePath) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, bad(p, "must be a JSON object, not %s", kindOf(v))
	}
	out := make(map[any]any, len(m))
	for k := range m {
		if err := c.mapEntry(t, m, k, p, out); err != nil {
			for _, k := range sortedKeys(m) {
				if err := c.mapEntry(t, m, k, p, out); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

func (c *Converter) mapEntry(t *javatype.Type, m map[string]any, k string, p *valuePath, out map[any]any) error {
	p.push(k, -1)
	defer p.pop()
	key := any(k)
	if t.Key != nil {
		var err error
		if key, err = c.fromText(t.Key, k, p); err != nil {
			return err
		}
	}
	var val any
	if t.Elem == nil {
		// A raw Map's values are untyped: no class keys inside.
		if err := classKeyIn(m[k], p); err != nil {
			return err
		}
		val = plain(m[k])
	} else {
		var err error
		if val, err = c.fromJSON(t.Elem, m[k], p); err != nil {
			return err
		}
	}
	out[key] = val
	return nil
}

func (c *Converter) class(t *javatype.Type, v any, p *valuePath) (any, error) {
	decl, ok := c.Types[t.Name]
	if !ok {
		return nil, bad(p, "class %s is not declared", t.Name)
	}
	if decl.Enum != nil {
		s, ok := v.(string)
		if !ok || !slices.Contains(decl.Enum, s) {
			return nil, bad(p, "must be one of %s", strings.Join(decl.Enum, ", "))
		}
		return EnumConstant{Class: t.Name, Name: s}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, bad(p, "must be a JSON object (%s), not %s", t.Name, kindOf(v))
	}
	if decl.badFieldErr != nil {
		return nil, bad(p, "field %s: %v", decl.badField, decl.badFieldErr)
	}
	// A POJO travels as a map naming its class, the form generic
	// invocation realizes on the provider. The class is the declared
	// one; "class" from the client was refused before this point.
	out := make(map[string]any, len(m)+1)
	out["class"] = t.Name
	for k := range m {
		if err := c.field(decl, t, m, k, p, out); err != nil {
			for _, k := range sortedKeys(m) {
				if err := c.field(decl, t, m, k, p, out); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

func (c *Converter) field(decl *declaredType, t *javatype.Type, m map[string]any, k string, p *valuePath, out map[string]any) error {
	p.push(k, -1)
	defer p.pop()
	ft, ok := decl.fields[k]
	if !ok && IsClassKey(k) {
		return &ClassKeyError{p.String()}
	}
	if !ok {
		return &ValueError{p.String(), fmt.Sprintf("%s has no field %q", t.Name, k)}
	}
	val, err := c.fromJSON(ft, m[k], p)
	if err != nil {
		return err
	}
	out[k] = val
	return nil
}

func (c *Converter) list(t *javatype.Type, v any, p *valuePath) (any, error) {
	items, ok := v.([]any)
	if !ok {
		return nil, bad(p, "must be a JSON array, not %s", kindOf(v))
	}
	out := make([]any, len(items))
	for i, it := range items {
		val, err := c.element(t, it, i, p)
		if err != nil {
			return nil, err
		}
		out[i] = val
	}
	return out, nil
}

func (c *Converter) element(t *javatype.Type, it any, i int, p *valuePath) (any, error) {
	p.push("", i)
	defer p.pop()
	if t.Elem == nil {
		if err := classKeyIn(it, p); err != nil {
			return nil, err
		}
		return plain(it), nil
	}
	return c.fromJSON(t.Elem, it, p)
}

// scalar converts to a Java primitive or its box with its exact range.
func (c *Converter) scalar(t *javatype.Type, v any, p *valuePath) (any, error) {
	name := t.Name
	if t.Kind == javatype.Boxed {
		if prim, ok := unboxed[name]; ok {
			name = prim
		}
	}
	switch name {
	case "boolean":
		b, ok := v.(bool)
		if !ok {
			return nil, bad(p, "must be true or false, not %s", kindOf(v))
		}
		return b, nil
	case "char":
		s, ok := v.(string)
		if r, _ := utf8.DecodeRuneInString(s); !ok || utf8.RuneCountInString(s) != 1 || r > 0xFFFF {
			return nil, bad(p, "must be a one-character string")
		}
		return s, nil
	case "float", "double":
		n, ok := v.(json.Number)
		if !ok {
			return nil, bad(p, "must be a number, not %s", kindOf(v))
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, bad(p, "%s is not a number a %s can hold", n, name)
		}
		if name == "float" {
			if math.Abs(f) > math.MaxFloat32 {
				return nil, bad(p, "%s is out of range for float", n)
			}
			return float32(f), nil
		}
		return f, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return nil, bad(p, "must be a whole number, not %s", kindOf(v))
	}
	i, err := wholeInt64(string(n))
	r := intRanges[name]
	lo, hi := r[0], r[1]
	switch {
	case errors.Is(err, errNotWhole):
		return nil, bad(p, "%s is not a whole number", n)
	case err != nil || i < lo || i > hi:
		return nil, bad(p, "%s is out of range for %s (%d to %d)", n, name, lo, hi)
	}
	switch name {
	case "byte":
		return int8(i), nil
	case "short":
		return int16(i), nil
	case "int":
		return int32(i), nil
	}
	return i, nil
}

// unboxed are the primitives of the boxed types.
var unboxed = map[string]string{"java.lang.Boolean": "boolean", "java.lang.Byte": "byte", "java.lang.Character": "char",
	"java.lang.Short": "short", "java.lang.Integer": "int", "java.lang.Long": "long", "java.lang.Float": "float", "java.lang.Double": "double"}

var (
	errNotWhole    = errors.New("not whole")
	errBeyondInt64 = errors.New("beyond a long")
)

// wholeInt64 reads an integer exactly as wholeNumber does; one that is
// whole but beyond a long's range is errBeyondInt64.
func wholeInt64(s string) (int64, error) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	b, err := wholeNumber(s)
	if err != nil {
		return 0, errNotWhole
	}
	if !b.IsInt64() {
		return 0, errBeyondInt64
	}
	return b.Int64(), nil
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
