// Package promnames lists the metric names Prometheus collectors define,
// for tests that tie dashboards and alerts to the code.
package promnames

import (
	"reflect"
	"regexp"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Of lists, sorted, the names the collectors describe.
func Of(cs ...prometheus.Collector) []string {
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range cs {
			c.Describe(ch)
		}
		close(ch)
	}()
	var out []string
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil && !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	slices.Sort(out)
	return out
}

// Fields lists the collectors among the fields of the struct v points to
// (unexported ones included), so a metrics struct need not list itself.
func Fields(v any) []prometheus.Collector {
	rv := reflect.ValueOf(v).Elem()
	var out []prometheus.Collector
	for i := range rv.NumField() {
		f := rv.Field(i)
		if f.Kind() != reflect.Pointer && f.Kind() != reflect.Interface {
			continue
		}
		if f.IsNil() {
			continue
		}
		// Unexported fields cannot be read through reflection's Interface;
		// their address, though, can be turned into a collector.
		p := reflect.NewAt(f.Type(), f.Addr().UnsafePointer()).Elem().Interface()
		if c, ok := p.(prometheus.Collector); ok {
			if _, isReg := p.(*prometheus.Registry); !isReg {
				out = append(out, c)
			}
		}
	}
	return out
}
