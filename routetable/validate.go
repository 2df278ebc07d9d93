package routetable

import (
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/protocols/dubbo/javatype"
	"github.com/protogate/protogate/protocols/nats/subject"
)

// Validate checks that a table is whole and consistent on its own: every
// route has one target whose upstream the table carries, its matcher,
// types and subject parse, its timeouts are positive, and every upstream's
// digest is that of its settings. A bridge refuses a table that does not
// validate (and NACKs it when it came over xDS), keeping the one it has.
// Every problem is reported, each naming its route or upstream.
func (t *Table) Validate() error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if t.RouteHeader == "" {
		fail("route_header is empty")
	}
	if t.MaxJSONDepth < 1 {
		fail("max_json_depth %d: must be at least 1", t.MaxJSONDepth)
	}
	classes := map[string]bool{}
	for _, jt := range t.JavaTypes {
		classes[jt.Class] = true
	}
	upstreams := map[string]bool{}
	for _, u := range t.Upstreams.Dubbo {
		t.checkUpstream(fail, upstreams, "dubbo", u.Name, u.Digest, upstreamDigest(u))
		if len(u.Endpoints) == 0 && u.Registry == "" {
			fail("dubbo upstream %q: no endpoints", u.Name)
		}
	}
	for _, u := range t.Upstreams.NATS {
		t.checkUpstream(fail, upstreams, "nats", u.Name, u.Digest, digest(u.NATSUpstream))
	}
	for _, u := range t.Upstreams.HTTP {
		t.checkUpstream(fail, upstreams, "http", u.Name, u.Digest, digest(u.HTTPUpstream))
		if len(u.Endpoints) == 0 {
			fail("http upstream %q has no endpoints", u.Name)
		}
	}
	names := map[string]bool{}
	for i := range t.Routes {
		r := &t.Routes[i]
		if err := r.validate(upstreams, classes); err != nil {
			errs = append(errs, fmt.Errorf("route %q: %w", r.Name, err))
		}
		if names[r.Name] {
			fail("route %q: the name is used twice", r.Name)
		}
		names[r.Name] = true
	}
	formers := map[string]bool{}
	for i := range t.Former {
		r := &t.Former[i]
		if err := r.validate(upstreams, classes); err != nil {
			errs = append(errs, fmt.Errorf("former route %q: %w", r.Name, err))
		}
		if !names[r.Name] || formers[r.Name] {
			fail("former route %q: must be the earlier definition of one route of the table", r.Name)
		}
		formers[r.Name] = true
	}
	return errors.Join(errs...)
}

func (t *Table) checkUpstream(fail func(string, ...any), seen map[string]bool, protocol, name, got, want string) {
	key := protocol + "/" + name
	switch {
	case name == "":
		fail("a %s upstream has no name", protocol)
	case seen[key]:
		fail("%s upstream %q: listed twice", protocol, name)
	case got != want:
		fail("%s upstream %q: digest %q is not that of its settings", protocol, name, got)
	}
	seen[key] = true
}

func (r *Route) validate(upstreams, classes map[string]bool) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if r.Name == "" {
		fail("a route has no name")
	}
	targets := 0
	for _, set := range []bool{r.Dubbo != nil, r.NATS != nil, r.HTTP != nil} {
		if set {
			targets++
		}
	}
	if targets != 1 {
		fail("%d targets: exactly one of dubbo, nats and http", targets)
		return errors.Join(errs...)
	}
	if !upstreams[r.Protocol()+"/"+r.Upstream()] {
		fail("no %s upstream %q in the table", r.Protocol(), r.Upstream())
	}
	if err := r.Match.validate(); err != nil {
		fail("match.%v", err)
	}
	if r.BodyLimit < 1 {
		fail("body_limit %d: must be positive", r.BodyLimit)
	}
	if r.Timeout <= 0 || r.EnvoyPerTryTimeout <= 0 || r.EnvoyTimeout < r.EnvoyPerTryTimeout {
		fail("timeouts %s, per try %s, in all %s: must be positive, in all at least per try",
			r.Timeout, r.EnvoyPerTryTimeout, r.EnvoyTimeout)
	}
	if r.Retries < 0 || r.EnvoyRetries < 0 {
		fail("retries must not be negative")
	}
	switch {
	case r.Dubbo != nil:
		if err := r.Dubbo.validate(classes); err != nil {
			fail("dubbo: %v", err)
		}
	case r.NATS != nil:
		if _, err := subject.Parse(r.NATS.Subject); err != nil {
			fail("nats.subject: %v", err)
		}
	}
	return errors.Join(errs...)
}

func (m *Match) validate() error {
	kinds := 0
	for _, s := range []string{m.Path, m.Prefix, m.Regex} {
		if s != "" {
			kinds++
		}
	}
	if kinds != 1 {
		return fmt.Errorf("path, prefix, regex: exactly one, not %d", kinds)
	}
	if m.Path != "" {
		if _, err := config.ParsePathTemplate(m.Path); err != nil {
			return fmt.Errorf("path: %w", err)
		}
	}
	if m.Regex != "" {
		if _, err := regexp.Compile(m.Regex); err != nil {
			return fmt.Errorf("regex: %w", err)
		}
	}
	for _, h := range m.Headers {
		if h.Regex != "" {
			if _, err := regexp.Compile(h.Regex); err != nil {
				return fmt.Errorf("headers %s: regex: %w", h.Name, err)
			}
		}
	}
	return nil
}

func (d *DubboCall) validate(classes map[string]bool) error {
	if d.Service == "" || d.Method == "" {
		return fmt.Errorf("service and method are required")
	}
	if len(d.ErasedTypes) != len(d.Params) {
		return fmt.Errorf("%d erased types for %d params", len(d.ErasedTypes), len(d.Params))
	}
	check := func(what, s string) error {
		t, err := javatype.Parse(s)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		for _, c := range t.Classes() {
			if !classes[c] {
				return fmt.Errorf("%s: class %s is not in java_types", what, c)
			}
		}
		return nil
	}
	for i, p := range d.Params {
		if err := check(fmt.Sprintf("param %q", p.From), p.Type); err != nil {
			return err
		}
		if t, _ := javatype.Parse(p.Type); t.Erased() != d.ErasedTypes[i] {
			return fmt.Errorf("param %q: erased type %q is not that of %s", p.From, d.ErasedTypes[i], p.Type)
		}
	}
	if d.Returns != "" {
		if err := check("returns", d.Returns); err != nil {
			return err
		}
	}
	if slices.ContainsFunc(d.Exceptions, func(e config.ExceptionStatus) bool { return e.Status < 400 || e.Status > 599 }) {
		return fmt.Errorf("an exception status is outside 400-599")
	}
	return nil
}
