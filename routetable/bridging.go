package routetable

import (
	"reflect"
	"slices"

	"github.com/protogate/protogate/config"
)

// Bridging is the table bridges serve while a reload moves from old to
// next: every route of next, the routes old has that next drops, and the
// former definitions of the routes next changes, so that Envoys still
// sending what old routed reach a bridge that takes it until the Envoys
// have taken next. Upstreams and Java types are next's, with old's added
// where next has none of that name. Bridging(nil, next) is next.
func Bridging(old, next *Table) *Table {
	if old == nil {
		return next
	}
	out := *next
	out.Routes = slices.Clone(next.Routes)
	out.Former = nil
	byName := routesByName(next)
	for _, r := range old.Routes {
		switch n, ok := byName[r.Name]; {
		case !ok:
			out.Routes = append(out.Routes, r)
		case !reflect.DeepEqual(*n, r):
			out.Former = append(out.Former, r)
		}
	}
	out.Upstreams.Dubbo = mergeByName(next.Upstreams.Dubbo, old.Upstreams.Dubbo, func(u DubboUpstream) string { return u.Name })
	out.Upstreams.NATS = mergeByName(next.Upstreams.NATS, old.Upstreams.NATS, func(u NATSUpstream) string { return u.Name })
	out.Upstreams.HTTP = mergeByName(next.Upstreams.HTTP, old.Upstreams.HTTP, func(u HTTPUpstream) string { return u.Name })
	out.JavaTypes = slices.Clone(next.JavaTypes)
	for _, jt := range old.JavaTypes {
		if !slices.ContainsFunc(out.JavaTypes, func(x config.JavaType) bool { return x.Class == jt.Class }) {
			out.JavaTypes = append(out.JavaTypes, jt)
		}
	}
	return &out
}

// Drops reports whether next leaves out a route old has.
func Drops(old, next *Table) bool {
	if old == nil {
		return false
	}
	byName := routesByName(next)
	return slices.ContainsFunc(old.Routes, func(r Route) bool { _, ok := byName[r.Name]; return !ok })
}

// routesByName indexes t's routes: tables of thousands of routes are
// compared route by route on every reload.
func routesByName(t *Table) map[string]*Route {
	out := make(map[string]*Route, len(t.Routes))
	for i := range t.Routes {
		out[t.Routes[i].Name] = &t.Routes[i]
	}
	return out
}

func mergeByName[T any](next, old []T, name func(T) string) []T {
	out := slices.Clone(next)
	have := make(map[string]bool, len(out))
	for _, x := range out {
		have[name(x)] = true
	}
	for _, o := range old {
		if !have[name(o)] {
			have[name(o)] = true
			out = append(out, o)
		}
	}
	return out
}
