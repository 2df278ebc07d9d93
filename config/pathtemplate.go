package config

import (
	"fmt"
	"net/url"
	"strings"
)

// PathTemplate is a parsed route path like /users/{id} or /files/{rest=**}.
// Its syntax is the subset Envoy's URI-template matcher and the bridge's own
// matcher both understand, so a route means the same behind Envoy and alone.
type PathTemplate struct {
	Raw      string
	Segments []PathSegment
}

// PathSegment is a literal segment or a variable.
type PathSegment struct {
	Literal string
	Var     string // variable name, when the segment is a variable
	Rest    bool   // {var=**}: the rest of the path, one or more segments
}

// Shape is the template with its variable names erased: /users/{id} and
// /users/{uid} have one shape, because they match the same requests.
func (t *PathTemplate) Shape() string {
	var b strings.Builder
	for _, seg := range t.Segments {
		b.WriteByte('/')
		switch {
		case seg.Rest:
			b.WriteString("{**}")
		case seg.Var != "":
			b.WriteString("{*}")
		default:
			b.WriteString(seg.Literal)
		}
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// Limits of Envoy's URI-template matcher.
const (
	maxPathVars       = 5
	maxPathVarNameLen = 16
)

// ParsePathTemplate checks and parses a path template.
func ParsePathTemplate(s string) (*PathTemplate, error) {
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("must start with /")
	}
	if strings.ContainsAny(s, "?#") {
		return nil, fmt.Errorf("must not hold a query or fragment")
	}
	t := &PathTemplate{Raw: s}
	parts := strings.Split(s[1:], "/")
	seen := map[string]bool{}
	for i, part := range parts {
		if t.Segments == nil && part != "" {
			t.Segments = make([]PathSegment, 0, len(parts)-i) // one allocation, not one per growth
		}
		last := i == len(parts)-1
		if part == "" {
			if last && i > 0 {
				t.Segments = append(t.Segments, PathSegment{}) // a trailing slash is literal
				continue
			}
			if !(last && i == 0) { // "/" alone is fine
				return nil, fmt.Errorf("segment %d is empty (double slash)", i+1)
			}
			continue
		}
		if !strings.ContainsAny(part, "{}*") {
			if err := checkPathLiteral(part); err != nil {
				return nil, fmt.Errorf("segment %d %q: %w", i+1, part, err)
			}
			t.Segments = append(t.Segments, PathSegment{Literal: part})
			continue
		}
		if !strings.HasPrefix(part, "{") || !strings.HasSuffix(part, "}") || strings.Count(part, "{") != 1 || strings.Count(part, "}") != 1 {
			return nil, fmt.Errorf("segment %d %q: a {variable} must fill a whole segment", i+1, part)
		}
		name, op, hasOp := strings.Cut(part[1:len(part)-1], "=")
		seg := PathSegment{Var: name}
		if hasOp {
			if op != "**" {
				return nil, fmt.Errorf("segment %d %q: only {%s} or {%s=**} are supported", i+1, part, name, name)
			}
			if !last {
				return nil, fmt.Errorf("segment %d %q: {%s=**} must be the last segment", i+1, part, name)
			}
			seg.Rest = true
		}
		if err := checkVarName(name); err != nil {
			return nil, fmt.Errorf("segment %d %q: %w", i+1, part, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("variable %q appears twice", name)
		}
		seen[name] = true
		t.Segments = append(t.Segments, seg)
	}
	if len(seen) > maxPathVars {
		return nil, fmt.Errorf("has %d variables; Envoy allows at most %d", len(seen), maxPathVars)
	}
	return t, nil
}

func checkVarName(name string) error {
	if name == "" {
		return fmt.Errorf("empty variable name")
	}
	if len(name) > maxPathVarNameLen {
		return fmt.Errorf("variable name %q is longer than %d characters (Envoy's limit)", name, maxPathVarNameLen)
	}
	for i, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || i > 0 && r >= '0' && r <= '9') {
			return fmt.Errorf("variable name %q must be a letter followed by letters, digits or _", name)
		}
	}
	return nil
}

// checkPathLiteral allows the characters RFC 3986 allows in a path segment.
func checkPathLiteral(s string) error {
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~!$&'()+,;:@=%", r) {
			continue
		}
		return fmt.Errorf("character %q is not allowed in a path", r)
	}
	if _, err := url.PathUnescape(s); err != nil {
		return fmt.Errorf("bad percent-encoding")
	}
	return nil
}

// Vars lists the variable names in order.
func (t *PathTemplate) Vars() []string {
	var out []string
	for _, s := range t.Segments {
		if s.Var != "" {
			out = append(out, s.Var)
		}
	}
	return out
}

// HasVar reports whether the template binds name.
func (t *PathTemplate) HasVar(name string) bool {
	for _, s := range t.Segments {
		if s.Var == name {
			return true
		}
	}
	return false
}

// Match matches a request path (still percent-encoded) and returns the
// decoded variable values. A one-segment variable never matches an empty
// segment, and values decode after splitting, so %2F stays inside a value.
func (t *PathTemplate) Match(path string) (map[string]string, bool) {
	if !strings.HasPrefix(path, "/") {
		return nil, false
	}
	parts := strings.Split(path[1:], "/")
	if path == "/" {
		parts = nil
	}
	vars := map[string]string{}
	for i, seg := range t.Segments {
		if seg.Rest {
			if i >= len(parts) {
				return nil, false
			}
			rest := strings.Join(parts[i:], "/")
			v, err := url.PathUnescape(rest)
			if err != nil || rest == "" {
				return nil, false
			}
			vars[seg.Var] = v
			return vars, true
		}
		if i >= len(parts) {
			return nil, false
		}
		if seg.Var == "" {
			if parts[i] != seg.Literal {
				return nil, false
			}
			continue
		}
		v, err := url.PathUnescape(parts[i])
		if err != nil || v == "" {
			return nil, false
		}
		vars[seg.Var] = v
	}
	if len(parts) != len(t.Segments) {
		return nil, false
	}
	return vars, true
}
