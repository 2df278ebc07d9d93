package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// checkTags walks the decoded model and applies the rules its tags state:
// required, enum, min/max and format.
func checkTags(v reflect.Value, path string, c *problems) {
	w := &tagWalk{c: c}
	if path != "" {
		w.path.push(path)
	}
	w.walk(v)
}

// tagWalk keeps the path of the value being checked as a stack, spelled out
// only for a problem.
type tagWalk struct {
	c    *problems
	path pathStack
}

func (w *tagWalk) add(format string, args ...any) {
	w.c.add(w.path.String(), format, args...)
}

func (w *tagWalk) walk(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			w.walk(v.Elem())
		}
		return
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			w.path.pushIndex(i)
			w.walk(v.Index(i))
			w.path.pop()
		}
		return
	case reflect.String:
		// Envoy refuses these in every string it takes (header values,
		// names, matchers), and no mapping value needs them.
		if i := strings.IndexAny(v.String(), "\x00\r\n"); i >= 0 {
			w.add("holds a %s at byte %d; values must be one line", controlName(v.String()[i]), i)
		}
		return
	case reflect.Struct:
	default:
		return
	}
	for _, f := range fieldsOf(v.Type()) {
		w.path.push(f.Name)
		w.field(v.Field(f.Index), &f)
		w.path.pop()
	}
}

func (w *tagWalk) field(fv reflect.Value, f *fieldInfo) {
	if f.Required && fv.IsZero() {
		w.add("is required")
		return
	}
	if len(f.Enum) > 0 {
		w.checkEnum(fv, f.Enum)
	}
	if f.Min != "" || f.Max != "" {
		if !fv.IsZero() || f.Required || f.Default != "" {
			w.checkRange(fv, f)
		}
	}
	if f.Format != "" {
		w.checkFormat(fv, f.Format)
	}
	w.walk(fv)
}

func controlName(b byte) string {
	switch b {
	case '\n':
		return "newline"
	case '\r':
		return "carriage return"
	}
	return "NUL byte"
}

func (w *tagWalk) checkEnum(v reflect.Value, enum []string) {
	check := func(s string) {
		if s != "" && !slices.Contains(enum, s) {
			w.add("%q is not one of %s", s, strings.Join(enum, ", "))
		}
	}
	if v.Kind() == reflect.String {
		check(v.String())
		return
	}
	for i := 0; i < v.Len(); i++ {
		w.path.pushIndex(i)
		check(v.Index(i).String())
		w.path.pop()
	}
}

func (w *tagWalk) checkRange(v reflect.Value, f *fieldInfo) {
	switch {
	case f.Type == durationType:
		checkBounds(w, Duration(v.Int()), f, ParseDuration)
	case f.Type == sizeType:
		checkBounds(w, Size(v.Int()), f, ParseSize)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		n := v.Int()
		if lo, err := strconv.ParseInt(f.Min, 10, 64); err == nil && n < lo {
			w.add("%d is below the minimum %d", n, lo)
		}
		if hi, err := strconv.ParseInt(f.Max, 10, 64); err == nil && n > hi {
			w.add("%d is above the maximum %d", n, hi)
		}
	case v.Kind() == reflect.Float64:
		x := v.Float()
		if lo, err := strconv.ParseFloat(f.Min, 64); err == nil && x < lo {
			w.add("%g is below the minimum %g", x, lo)
		}
		if hi, err := strconv.ParseFloat(f.Max, 64); err == nil && x > hi {
			w.add("%g is above the maximum %g", x, hi)
		}
	}
}

// checkBounds checks a duration or size against its min and max tags.
func checkBounds[T interface {
	~int64
	String() string
}](w *tagWalk, x T, f *fieldInfo, parse func(string) (T, error)) {
	if lo, err := parse(f.Min); err == nil && f.Min != "" && x < lo {
		w.add("%s is below the minimum %s", x, lo)
	}
	if hi, err := parse(f.Max); err == nil && f.Max != "" && x > hi {
		w.add("%s is above the maximum %s", x, hi)
	}
}

func (w *tagWalk) checkFormat(v reflect.Value, format string) {
	check := func(s string) {
		if s == "" {
			return
		}
		if err := checkFormat(s, format); err != nil {
			w.add("%v", err)
		}
	}
	if v.Kind() == reflect.String {
		check(v.String())
		return
	}
	for i := 0; i < v.Len(); i++ {
		w.path.pushIndex(i)
		check(v.Index(i).String())
		w.path.pop()
	}
}

func checkFormat(s, format string) error {
	var err error
	switch format {
	case "name":
		err = checkName(s)
	case "listen":
		err = checkListen(s)
	case "endpoint":
		_, _, err = SplitEndpoint(s)
	case "header":
		err = checkHeaderName(s)
	case "url":
		_, err = parseURL(s)
	}
	return err
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,62}[A-Za-z0-9])?$`)

func checkName(s string) error {
	if !nameRE.MatchString(s) {
		return fmt.Errorf("%q is not a valid name: use letters, digits, '-', '_' and '.', starting and ending with a letter or digit, at most 64 characters", s)
	}
	return nil
}

// checkListen checks an address a server binds: an IP (or localhost) and a
// port, where 0 means any free port.
func checkListen(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT", s)
	}
	if host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("%q: the host must be an IP address to bind, not %q", s, host)
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", s, port)
	}
	return nil
}

// SplitEndpoint checks and splits HOST:PORT where host is an IP or a DNS
// name and the port is 1-65535.
func SplitEndpoint(s string) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return "", 0, fmt.Errorf("%q is not HOST:PORT", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
	}
	if _, err := netip.ParseAddr(host); err != nil && !dnsName.MatchString(host) {
		return "", 0, fmt.Errorf("%q: %q is neither an IP address nor a host name", s, host)
	}
	return host, n, nil
}

var dnsName = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("%q is not a URL like scheme://host:port", s)
	}
	return u, nil
}

const tokenChars = "!#$%&'*+-.^_`|~"

func checkHeaderName(s string) error {
	if strings.HasPrefix(s, ":") {
		return fmt.Errorf("%s is a pseudo-header; it cannot be used here", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(tokenChars, r)) {
			return fmt.Errorf("%q is not a valid header name", s)
		}
	}
	return nil
}
