package config

import (
	"encoding/json"
	"reflect"
	"strconv"
)

// Patterns the schema uses for durations and sizes; they accept what
// ParseDuration and ParseSize accept.
const (
	durationPattern = `^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`
	sizePattern     = `^ *[0-9]+ *(B|KB|MB|GB|KiB|MiB|GiB)? *$`
)

// Schema returns a JSON Schema (draft 2020-12) of the mapping file,
// generated from the model so editors can complete and check mappings.
func Schema() ([]byte, error) {
	defs := map[string]any{}
	root := map[string]any{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"title":       "protogate protocol mapping",
		"description": "Listeners, routes and upstreams that protogate turns into Envoy configuration and bridge routes.",
		"$ref":        "#/$defs/Config",
		"$defs":       defs,
	}
	schemaOf(reflect.TypeOf(Config{}), defs)
	return json.MarshalIndent(root, "", "  ")
}

func schemaOf(t reflect.Type, defs map[string]any) map[string]any {
	switch {
	case t == durationType:
		return map[string]any{"type": "string", "pattern": durationPattern}
	case t == sizeType:
		return map[string]any{"anyOf": []any{
			map[string]any{"type": "integer", "minimum": 0},
			map[string]any{"type": "string", "pattern": sizePattern},
		}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem(), defs)
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), defs)}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Struct:
		ref := map[string]any{"$ref": "#/$defs/" + t.Name()}
		if _, done := defs[t.Name()]; done {
			return ref
		}
		obj := map[string]any{"type": "object", "additionalProperties": false}
		defs[t.Name()] = obj // before recursing, so cycles end
		props := map[string]any{}
		var required []string
		for _, f := range fieldsOf(t) {
			fs := schemaOf(f.Type, defs)
			if _, isRef := fs["$ref"]; isRef {
				fs = map[string]any{"allOf": []any{fs}}
			}
			if f.Doc != "" {
				fs["description"] = f.Doc
			}
			if f.Default != "" {
				fs["default"] = defaultValue(f)
			}
			if len(f.Enum) > 0 {
				enum := make([]any, len(f.Enum))
				for i, e := range f.Enum {
					enum[i] = e
				}
				if f.Type.Kind() == reflect.Slice {
					fs["items"].(map[string]any)["enum"] = enum
				} else {
					fs["enum"] = enum
				}
			}
			if k := f.Type.Kind(); (k == reflect.Int || k == reflect.Float64) && f.Type != durationType && f.Type != sizeType {
				if n, err := strconv.ParseFloat(f.Min, 64); err == nil {
					fs["minimum"] = n
				}
				if n, err := strconv.ParseFloat(f.Max, 64); err == nil {
					fs["maximum"] = n
				}
			}
			if f.Required {
				required = append(required, f.Name)
			}
			props[f.Name] = fs
		}
		obj["properties"] = props
		if len(required) > 0 {
			obj["required"] = required
		}
		if doc := typeDocs[t.Name()]; doc != "" {
			obj["description"] = doc
		}
		return ref
	}
	panic("config: no schema for " + t.String())
}
