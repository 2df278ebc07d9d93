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
	for _, r := range old.Routes {
		switch n := next.Route(r.Name); {
		case n == nil:
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
	return slices.ContainsFunc(old.Routes, func(r Route) bool { return next.Route(r.Name) == nil })
}

func mergeByName[T any](next, old []T, name func(T) string) []T {
	out := slices.Clone(next)
	for _, o := range old {
		if !slices.ContainsFunc(out, func(x T) bool { return name(x) == name(o) }) {
			out = append(out, o)
		}
	}
	return out
}
