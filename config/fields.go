package config

import (
	"reflect"
	"strings"
	"sync"
)

// fieldInfo is a model field as its tags describe it.
type fieldInfo struct {
	Index    int
	Name     string
	Doc      string
	Default  string
	Required bool
	Enum     []string
	Min, Max string
	Format   string
	Example  string
	Env      bool
	Restart  bool // read once at start: a reload cannot change it
	Type     reflect.Type
}

var fieldCache sync.Map // reflect.Type → []fieldInfo

// fieldsOf lists the tagged fields of a model struct type in declaration order.
func fieldsOf(t reflect.Type) []fieldInfo {
	if v, ok := fieldCache.Load(t); ok {
		return v.([]fieldInfo)
	}
	var out []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		fi := fieldInfo{
			Index: i, Name: name, Type: f.Type,
			Doc:      f.Tag.Get("doc"),
			Default:  f.Tag.Get("default"),
			Required: f.Tag.Get("required") == "true",
			Min:      f.Tag.Get("min"),
			Max:      f.Tag.Get("max"),
			Format:   f.Tag.Get("format"),
			Example:  f.Tag.Get("example"),
			Env:      f.Tag.Get("env") == "true",
			Restart:  f.Tag.Get("restart") == "true",
		}
		if e := f.Tag.Get("enum"); e != "" {
			fi.Enum = strings.Split(e, ",")
		}
		out = append(out, fi)
	}
	fieldCache.Store(t, out)
	return out
}

var (
	durationType = reflect.TypeOf(Duration(0))
	sizeType     = reflect.TypeOf(Size(0))
)
