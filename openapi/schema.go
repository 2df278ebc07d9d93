package openapi

import (
	"fmt"
	"math"
	"strings"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/protocols/dubbo/javatype"
)

// schema is one JSON Schema (draft 2020-12, OpenAPI 3.1's dialect). A map
// encodes with sorted keys, so the document comes out the same every time.
type schema = map[string]any

// direction says which way a value travels: the bridge reads requests
// strictly by the declared type, and renders results from whatever the
// provider sent, following the declared type where it can.
type direction int

const (
	request direction = iota
	result
)

// Patterns of the exact-number strings the bridge takes and gives.
const (
	decimalPattern = `^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$`
	integerPattern = `^[+-]?[0-9]+$`
)

// schemas turns the mapping's Java types into JSON Schemas, collecting the
// declared classes they use as components.
type schemas struct {
	types map[string]*config.JavaType
	defs  map[string]schema
}

func newSchemas(decls []config.JavaType) *schemas {
	s := &schemas{types: map[string]*config.JavaType{}, defs: map[string]schema{}}
	for i := range decls {
		s.types[decls[i].Class] = &decls[i]
	}
	return s
}

// parse reads a Java type name of the mapping.
func parse(name string) (*javatype.Type, error) {
	t, err := javatype.Parse(name)
	if err != nil {
		return nil, fmt.Errorf("java type %q: %w", name, err)
	}
	return t, nil
}

// nullable is the schema of a value of type t that may also be null: every
// reference type in Java.
func (s *schemas) nullable(t *javatype.Type, d direction) (schema, error) {
	sc, err := s.value(t, d)
	if err != nil || t.Kind == javatype.Primitive {
		return sc, err
	}
	return orNull(sc), nil
}

// orNull widens a schema to take null too.
func orNull(sc schema) schema {
	switch ty := sc["type"].(type) {
	case string:
		out := clone(sc)
		out["type"] = []string{ty, "null"}
		if enum, ok := sc["enum"].([]any); ok {
			out["enum"] = append(append([]any{}, enum...), nil)
		}
		return out
	case []string:
		out := clone(sc)
		out["type"] = append(append([]string{}, ty...), "null")
		return out
	}
	if len(sc) == 0 || (len(sc) == 1 && sc["description"] != nil) {
		return sc // takes any value already
	}
	return schema{"anyOf": []schema{sc, {"type": "null"}}}
}

func clone(sc schema) schema {
	out := make(schema, len(sc))
	for k, v := range sc {
		out[k] = v
	}
	return out
}

// value is the schema of a non-null JSON value of type t, as the bridge
// converts it (request) or renders it (result).
func (s *schemas) value(t *javatype.Type, d direction) (schema, error) {
	switch t.Kind {
	case javatype.Primitive, javatype.Boxed:
		return scalar(t.Name), nil
	case javatype.String:
		return schema{"type": "string"}, nil
	case javatype.BigDecimal:
		if d == request {
			return schema{"type": []string{"string", "number"}, "format": "decimal", "pattern": decimalPattern,
				"description": "an exact decimal: a JSON number or a string like \"12.50\" (answers give it as a string)"}, nil
		}
		return schema{"type": "string", "format": "decimal", "pattern": decimalPattern, "description": "an exact decimal, as a string"}, nil
	case javatype.BigInteger:
		if d == request {
			return schema{"type": []string{"string", "integer"}, "pattern": integerPattern,
				"description": "an exact whole number: a JSON number or a string of digits (answers give it as a string)"}, nil
		}
		return schema{"type": "string", "pattern": integerPattern, "description": "an exact whole number, as a string"}, nil
	case javatype.Date:
		return schema{"type": "string", "format": "date-time", "description": "an RFC 3339 date-time"}, nil
	case javatype.Object:
		if d == request {
			return schema{"description": "any JSON value; no object in it may have a class, @type, _class or $class key"}, nil
		}
		return schema{"description": "any JSON value"}, nil
	case javatype.Array:
		if t.Elem.Kind == javatype.Primitive && t.Elem.Name == "byte" {
			return schema{"type": "string", "contentEncoding": "base64", "description": "bytes, base64 (standard alphabet, padded)"}, nil
		}
		return s.list(t, d)
	case javatype.List, javatype.Set:
		return s.list(t, d)
	case javatype.Map:
		return s.mapOf(t, d)
	case javatype.Class:
		return s.class(t.Name, d)
	}
	return nil, fmt.Errorf("java type %s has no JSON form", t)
}

func (s *schemas) list(t *javatype.Type, d direction) (schema, error) {
	if t.Elem == nil {
		return schema{"type": "array"}, nil
	}
	items, err := s.nullable(t.Elem, d)
	if err != nil {
		return nil, err
	}
	return schema{"type": "array", "items": items}, nil
}

func (s *schemas) mapOf(t *javatype.Type, d direction) (schema, error) {
	sc := schema{"type": "object"}
	if t.Elem == nil {
		return sc, nil
	}
	values, err := s.nullable(t.Elem, d)
	if err != nil {
		return nil, err
	}
	sc["additionalProperties"] = values
	if t.Key != nil && t.Key.Kind != javatype.String {
		// Keys are JSON strings read as the key type, as a path value is.
		keys, err := s.text(t.Key)
		if err != nil {
			return nil, err
		}
		if ty, _ := keys["type"].(string); ty != "string" {
			keys = textOfNonString(keys)
		}
		sc["propertyNames"] = keys
	}
	return sc, nil
}

// textOfNonString is the string form of a number or boolean key.
func textOfNonString(sc schema) schema {
	switch sc["type"] {
	case "boolean":
		return schema{"enum": []any{"true", "false"}}
	case "integer":
		return schema{"pattern": integerPattern}
	case "number":
		return schema{"pattern": decimalPattern}
	}
	return schema{}
}

// class is a reference to a declared class's component, built on first use.
func (s *schemas) class(name string, d direction) (schema, error) {
	decl, ok := s.types[name]
	if !ok {
		return nil, fmt.Errorf("class %s is not declared under java_types", name)
	}
	key := componentName(name, decl, d)
	ref := schema{"$ref": "#/components/schemas/" + key}
	if _, done := s.defs[key]; done {
		return ref, nil
	}
	if decl.Enum != nil {
		s.defs[key] = schema{"type": "string", "title": name, "enum": toAny(decl.Enum),
			"description": "the constants of enum " + name + ", by name"}
		return ref, nil
	}
	s.defs[key] = schema{} // a class whose fields refer back to it ends here
	props := schema{}
	for _, f := range decl.Fields {
		ft, err := parse(f.Type)
		if err != nil {
			return nil, fmt.Errorf("class %s field %s: %w", name, f.Name, err)
		}
		if props[f.Name], err = s.nullable(ft, d); err != nil {
			return nil, fmt.Errorf("class %s field %s: %w", name, f.Name, err)
		}
	}
	def := schema{"type": "object", "title": name, "properties": props}
	if d == request {
		// An unknown field, or a key naming a Java type, is a 400.
		def["additionalProperties"] = false
		def["description"] = "a " + name + ": the fields the mapping declares, each optional; any other key is refused"
	} else {
		def["description"] = "a " + name + " as the provider returned it: the declared fields, and any others it sent, rendered as plain JSON"
	}
	s.defs[key] = def
	return ref, nil
}

// componentName names a class's schema: enums read and render alike, a
// POJO has a request form and a result form. Component names take no '$',
// which nested Java classes have; no Java name holds '-'.
func componentName(class string, decl *config.JavaType, d direction) string {
	key := strings.ReplaceAll(class, "$", "-")
	if decl.Enum == nil && d == result {
		key += "--result"
	}
	return key
}

// text is the schema of a value that arrives as text (a path segment, a
// query parameter, a header), as the bridge reads it for type t.
func (s *schemas) text(t *javatype.Type) (schema, error) {
	switch t.Kind {
	case javatype.Primitive, javatype.Boxed:
		return scalar(t.Name), nil
	case javatype.BigDecimal:
		return schema{"type": "string", "format": "decimal", "pattern": decimalPattern}, nil
	case javatype.BigInteger:
		return schema{"type": "string", "pattern": integerPattern}, nil
	case javatype.String, javatype.Object:
		return schema{"type": "string"}, nil
	case javatype.Date:
		return schema{"type": "string", "format": "date-time"}, nil
	case javatype.Class:
		if decl, ok := s.types[t.Name]; ok && decl.Enum != nil {
			return s.class(t.Name, request)
		}
	}
	// The bridge refuses every value: such a parameter belongs in the body.
	return schema{"not": schema{}, "description": fmt.Sprintf("a %s cannot come from a path, query or header: every value is refused", t)}, nil
}

// scalar is a Java primitive or its box, with the exact range the bridge
// enforces.
func scalar(name string) schema {
	if p := unbox(name); p != "" {
		name = p
	}
	switch name {
	case "boolean":
		return schema{"type": "boolean"}
	case "char":
		return schema{"type": "string", "minLength": 1, "maxLength": 1, "description": "one character (of the Basic Multilingual Plane)"}
	case "byte":
		return schema{"type": "integer", "minimum": math.MinInt8, "maximum": math.MaxInt8}
	case "short":
		return schema{"type": "integer", "minimum": math.MinInt16, "maximum": math.MaxInt16}
	case "int":
		return schema{"type": "integer", "format": "int32", "minimum": math.MinInt32, "maximum": math.MaxInt32}
	case "long":
		return schema{"type": "integer", "format": "int64", "minimum": int64(math.MinInt64), "maximum": int64(math.MaxInt64),
			"description": "64-bit, exact both ways: beyond 2^53, parse it with a big-number JSON reader"}
	case "float":
		return schema{"type": "number", "format": "float", "minimum": -math.MaxFloat32, "maximum": math.MaxFloat32}
	case "double":
		return schema{"type": "number", "format": "double"}
	}
	return schema{}
}

// unbox is the primitive of a boxed class name, or "".
func unbox(name string) string {
	for _, p := range []string{"boolean", "byte", "char", "short", "int", "long", "float", "double"} {
		if javatype.BoxOf(p) == name {
			return p
		}
	}
	return ""
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
