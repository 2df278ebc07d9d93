package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// decoder turns the generic maps viper reads into the typed model, strictly:
// an unknown key, a wrong type or a value out of its type's range is a
// problem with its field path. Absent keys take their default tag.
type decoder struct {
	probs *problems
	// misspelt holds the field paths an unknown key was probably meant
	// for: problems there are the same mistake, reported once already.
	misspelt map[string]bool
	path     pathStack
}

func (d *decoder) decode(raw any, v reflect.Value) {
	t := v.Type()
	switch {
	case t == durationType:
		d.decodeDuration(raw, v)
		return
	case t == sizeType:
		d.decodeSize(raw, v)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.decodeStruct(raw, v)
	case reflect.Pointer:
		if raw == nil {
			// "gzip:" with nothing after it reads as null; saying so beats
			// silently leaving the filter off.
			d.problem("is empty: write {} to use it with its defaults, or remove the key")
			return
		}
		p := reflect.New(t.Elem())
		d.decode(raw, p.Elem())
		v.Set(p)
	case reflect.Slice:
		d.decodeSlice(raw, v)
	case reflect.String:
		switch x := raw.(type) {
		case string:
			v.SetString(x)
		case nil:
			v.SetString("")
		default:
			d.problem("must be a string, not %s (quote it: \"%v\")", describe(raw), raw)
		}
	case reflect.Bool:
		switch x := raw.(type) {
		case bool:
			v.SetBool(x)
		case string: // environment overrides arrive as strings
			b, err := strconv.ParseBool(x)
			if err != nil {
				d.problem("must be true or false, not %q", x)
				return
			}
			v.SetBool(b)
		default:
			d.problem("must be true or false, not %s", describe(raw))
		}
	case reflect.Int, reflect.Int64:
		n, ok := toInt(raw)
		if !ok {
			d.problem("must be a whole number, not %s", describe(raw))
			return
		}
		v.SetInt(n)
	case reflect.Float64:
		f, ok := toFloat(raw)
		if !ok {
			d.problem("must be a number, not %s", describe(raw))
			return
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("config: model field %s has unsupported type %s", d.path.String(), t))
	}
}

func (d *decoder) decodeStruct(raw any, v reflect.Value) {
	m, ok := raw.(map[string]any)
	if raw != nil && !ok {
		d.problem("must be a mapping of keys to values, not %s", describe(raw))
		return
	}
	info := structOf(v.Type())
	mark, matched := len(d.probs.list), 0
	for i := range info.fields {
		f := &info.fields[i]
		fv := v.Field(f.Index)
		val, present := m[f.Name]
		switch {
		case present:
			matched++
			d.decodeField(val, fv, f.Name)
		case info.defaults[i].IsValid():
			fv.Set(info.defaults[i])
		case f.Default != "":
			d.decodeField(defaultValue(*f), fv, f.Name)
		case f.Type.Kind() == reflect.Struct && f.Type != durationType && f.Type != sizeType:
			// Nested settings blocks get their own defaults even when absent.
			d.decodeField(nil, fv, f.Name)
		}
	}
	if matched < len(m) {
		// Unknown keys come before the fields' own problems, as when they
		// were looked for first; looking only when a key is left over
		// spares the common case a walk over the map.
		fieldProbs := slices.Clone(d.probs.list[mark:])
		d.probs.list = d.probs.list[:mark]
		d.unknownKeys(m, info)
		d.probs.list = append(d.probs.list, fieldProbs...)
	}
}

// unknownKeys reports the keys of m the struct has no field for, in key
// order, each with the field it was probably meant to be.
func (d *decoder) decodeField(raw any, v reflect.Value, name string) {
	d.path.push(name)
	d.decode(raw, v)
	d.path.pop()
}

// problem adds a problem at the current path.
func (d *decoder) problem(format string, args ...any) {
	d.probs.add(d.path.String(), format, args...)
}

func (d *decoder) unknownKeys(m map[string]any, info *structInfo) {
	var unknown []string
	for k := range m {
		if !info.known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		hint, meant := suggest(k, info.fields)
		p := d.path.String()
		d.probs.add(field(p, k), "unknown field%s", hint)
		if meant != "" && d.misspelt != nil {
			d.misspelt[field(p, meant)] = true
		}
	}
}

// structInfo is what decoding needs of a model struct type, worked out once.
type structInfo struct {
	fields []fieldInfo
	known  map[string]bool
	// defaults holds each field's decoded default tag, where it has one
	// that decodes cleanly; the value is a scalar, so sharing it is safe.
	defaults []reflect.Value
}

var structCache sync.Map // reflect.Type → *structInfo

func structOf(t reflect.Type) *structInfo {
	if v, ok := structCache.Load(t); ok {
		return v.(*structInfo)
	}
	fields := fieldsOf(t)
	info := &structInfo{fields: fields, known: make(map[string]bool, len(fields)), defaults: make([]reflect.Value, len(fields))}
	for i, f := range fields {
		info.known[f.Name] = true
		if f.Default == "" {
			continue
		}
		var probs problems
		dv := reflect.New(f.Type).Elem()
		(&decoder{probs: &probs}).decode(defaultValue(f), dv)
		if len(probs.list) == 0 && dv.Kind() != reflect.Slice && dv.Kind() != reflect.Pointer {
			info.defaults[i] = dv
		}
	}
	structCache.Store(t, info)
	return info
}

// defaultValue gives a default tag in the form a file would hold it.
func defaultValue(f fieldInfo) any {
	switch f.Type.Kind() {
	case reflect.Bool:
		return f.Default == "true"
	case reflect.Int, reflect.Int64:
		if f.Type == durationType || f.Type == sizeType {
			return f.Default
		}
		n, _ := strconv.ParseInt(f.Default, 10, 64)
		return n
	}
	return f.Default
}

func (d *decoder) decodeSlice(raw any, v reflect.Value) {
	var items []any
	switch x := raw.(type) {
	case nil:
		v.SetZero()
		return
	case []any:
		items = x
	case string:
		// A comma-separated string is accepted for lists of scalars, which
		// is how environment overrides spell them.
		if v.Type().Elem().Kind() == reflect.Struct {
			d.problem("must be a list, not a string")
			return
		}
		for _, s := range strings.Split(x, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
	default:
		d.problem("must be a list, not %s", describe(raw))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(items), len(items))
	for i, it := range items {
		d.path.pushIndex(i)
		d.decode(it, out.Index(i))
		d.path.pop()
	}
	v.Set(out)
}

func (d *decoder) decodeDuration(raw any, v reflect.Value) {
	switch x := raw.(type) {
	case string:
		dur, err := ParseDuration(x)
		if err != nil {
			d.problem("%v", err)
			return
		}
		v.SetInt(int64(dur))
	case nil:
		v.SetInt(0)
	default:
		if n, ok := toInt(raw); ok && n == 0 {
			v.SetInt(0)
			return
		}
		d.problem("must be a duration with a unit, like \"2s\" or \"250ms\", not %s", describe(raw))
	}
}

func (d *decoder) decodeSize(raw any, v reflect.Value) {
	if s, ok := raw.(string); ok {
		n, err := ParseSize(s)
		if err != nil {
			d.problem("%v", err)
			return
		}
		v.SetInt(int64(n))
		return
	}
	if raw == nil {
		v.SetInt(0)
		return
	}
	n, ok := toInt(raw)
	if !ok || n < 0 {
		d.problem("must be a size like 1024, \"64KiB\" or \"1MiB\", not %s", describe(raw))
		return
	}
	v.SetInt(n)
}

func toInt(raw any) (int64, bool) {
	switch x := raw.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case float64:
		if x != math.Trunc(x) || x > math.MaxInt64 || x < math.MinInt64 {
			return 0, false
		}
		return int64(x), true
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}

func toFloat(raw any) (float64, bool) {
	switch x := raw.(type) {
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	n, ok := toInt(raw)
	return float64(n), ok
}

// describe names a raw value's kind for an error message.
func describe(raw any) string {
	switch x := raw.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("the string %q", x)
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case int, int64, int32, uint64, float64:
		return fmt.Sprintf("the number %v", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("a %T", raw)
}

// suggest offers the closest known key for a misspelt one, and names it.
func suggest(key string, fields []fieldInfo) (string, string) {
	best, bestDist := "", 3
	for _, f := range fields {
		if dist := editDistance(key, f.Name); dist < bestDist {
			best, bestDist = f.Name, dist
		}
	}
	if best == "" {
		names := make([]string, len(fields))
		for i, f := range fields {
			names[i] = f.Name
		}
		return " (known: " + strings.Join(names, ", ") + ")", ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best), best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
