package config

import (
	"math"
	"regexp"
	"strconv"
	"strings"
)

// fastYAML reads the plain YAML most mappings are written in (block
// mappings and sequences, one-line flow collections, plain and quoted
// scalars, comments) straight into the tree viper would give for it:
// go-yaml builds a node per token and costs more than translating the
// mapping. It gives up (ok false) on anything outside that subset or on any
// mistake, and the caller then reads the file with viper, whose tree and
// error messages stay the reference; FuzzFastYAML checks the two agree
// wherever this reader answers.
func fastYAML(data []byte) (map[string]any, bool) {
	for _, c := range data {
		// Tabs, carriage returns, control and non-ASCII bytes each have
		// rules of their own in YAML; leave them to go-yaml.
		if c >= 0x7f || c < 0x20 && c != '\n' {
			return nil, false
		}
	}
	r := &yamlReader{data: data}
	r.nextContent()
	if r.ind != 0 || r.seqEntry() {
		return nil, false
	}
	m := r.blockMapping(0)
	if r.bad || r.ind != -1 {
		return nil, false
	}
	return m, true
}

// yamlReader walks the document. After every value it stands on the first
// byte of the next content line, whose indentation is ind (-1 at the end).
type yamlReader struct {
	data      []byte
	pos       int
	lineStart int
	ind       int
	depth     int
	bad       bool
	keys      map[string]string
}

// intern returns one string per distinct key: a mapping repeats a few
// dozen keys thousands of times.
func (r *yamlReader) intern(b []byte) string {
	if k, ok := r.keys[string(b)]; ok {
		return k
	}
	if r.keys == nil {
		r.keys = map[string]string{}
	}
	k := string(b)
	r.keys[k] = k
	return k
}

// maxFastDepth bounds nesting (a mapping is far shallower); deeper
// documents go to go-yaml, which has its own limit.
const maxFastDepth = 64

func (r *yamlReader) fail() { r.bad = true }

func (r *yamlReader) at(i int) byte {
	if i < len(r.data) {
		return r.data[i]
	}
	return '\n'
}

// nextContent moves past blank and comment-only lines to the first byte of
// the next content line and records its indentation.
func (r *yamlReader) nextContent() {
	for r.pos < len(r.data) {
		r.lineStart = r.pos
		i := r.pos
		for i < len(r.data) && r.data[i] == ' ' {
			i++
		}
		if i < len(r.data) && r.data[i] != '\n' && r.data[i] != '#' {
			r.pos, r.ind = i, i-r.lineStart
			return
		}
		for i < len(r.data) && r.data[i] != '\n' {
			i++
		}
		r.pos = i + 1
	}
	r.pos, r.ind = len(r.data), -1
}

// endLine accepts only spaces and a comment up to the end of the line, then
// moves to the next content line.
func (r *yamlReader) endLine() {
	r.skipSpaces()
	if c := r.at(r.pos); c == '#' {
		if r.pos == 0 || r.data[r.pos-1] != ' ' {
			r.fail() // a comment needs a space before it
			return
		}
	} else if c != '\n' {
		r.fail()
		return
	}
	for r.pos < len(r.data) && r.data[r.pos] != '\n' {
		r.pos++
	}
	r.pos++
	r.nextContent()
}

func (r *yamlReader) skipSpaces() {
	for r.pos < len(r.data) && r.data[r.pos] == ' ' {
		r.pos++
	}
}

func (r *yamlReader) seqEntry() bool {
	return r.ind >= 0 && r.at(r.pos) == '-' && (r.at(r.pos+1) == ' ' || r.at(r.pos+1) == '\n')
}

func (r *yamlReader) enter() bool {
	r.depth++
	if r.depth > maxFastDepth {
		r.fail()
	}
	return !r.bad
}

// blockMapping reads the keys of a mapping at indentation indent, the first
// of which starts at the current position.
func (r *yamlReader) blockMapping(indent int) map[string]any {
	if !r.enter() {
		return nil
	}
	defer func() { r.depth-- }()
	m := map[string]any{}
	for !r.bad {
		key := r.key(false)
		if r.bad {
			return nil
		}
		if _, dup := m[key]; dup {
			r.fail()
			return nil
		}
		m[key] = r.mappingValue(indent)
		switch {
		case r.bad:
			return nil
		case r.ind < indent:
			return m
		case r.ind > indent || r.seqEntry():
			r.fail()
		}
	}
	return nil
}

// mappingValue reads what follows a key's colon: a value on the same line,
// a block on the lines below, a sequence at the key's own indentation, or
// nothing (null).
func (r *yamlReader) mappingValue(indent int) any {
	r.skipSpaces()
	if c := r.at(r.pos); c == '\n' || c == '#' {
		r.endLine()
		switch {
		case r.bad:
			return nil
		case r.ind > indent:
			return r.blockNode(r.ind)
		case r.ind == indent && r.seqEntry():
			return r.blockSeq(indent)
		}
		return nil
	}
	v := r.inline(false)
	if r.bad {
		return nil
	}
	r.endLine()
	if r.ind > indent {
		r.fail() // a continued scalar, or indentation go-yaml must judge
	}
	return v
}

func (r *yamlReader) blockNode(indent int) any {
	if r.seqEntry() {
		return r.blockSeq(indent)
	}
	return r.blockMapping(indent)
}

// blockSeq reads the entries of a sequence whose dashes are at indent.
func (r *yamlReader) blockSeq(indent int) []any {
	if !r.enter() {
		return nil
	}
	defer func() { r.depth-- }()
	var list []any
	for !r.bad {
		r.pos++ // the dash
		r.skipSpaces()
		list = append(list, r.seqItem(indent))
		switch {
		case r.bad:
			return nil
		case r.ind == indent && r.seqEntry():
			continue
		case r.ind <= indent:
			return list
		default:
			r.fail()
		}
	}
	return nil
}

func (r *yamlReader) seqItem(indent int) any {
	switch c := r.at(r.pos); {
	case c == '\n' || c == '#':
		r.endLine()
		if !r.bad && r.ind > indent {
			return r.blockNode(r.ind)
		}
		return nil
	case c == '-':
		r.fail() // "- - x" and "- -1" are left to go-yaml
		return nil
	case r.startsKey():
		return r.blockMapping(r.pos - r.lineStart)
	}
	v := r.inline(false)
	if r.bad {
		return nil
	}
	r.endLine()
	if r.ind > indent {
		r.fail()
	}
	return v
}

// startsKey reports a plain key and its colon at the current position.
func (r *yamlReader) startsKey() bool {
	i := r.pos
	if !isKeyStart(r.at(i)) {
		return false
	}
	for isKeyByte(r.at(i)) {
		i++
	}
	return r.at(i) == ':' && (r.at(i+1) == ' ' || r.at(i+1) == '\n')
}

func isKeyStart(c byte) bool { return c >= 'a' && c <= 'z' || c == '_' }

func isKeyByte(c byte) bool {
	return isKeyStart(c) || c >= '0' && c <= '9' || c == '-' || c == '.'
}

// key reads a mapping key and its colon. Only lower-case keys are taken:
// viper folds case, and the model's keys are all lower-case anyway.
func (r *yamlReader) key(flow bool) string {
	var k string
	switch c := r.at(r.pos); {
	case c == '"' || c == '\'':
		k = r.quoted()
		if r.bad || k == "" {
			r.fail()
			return ""
		}
		for i := 0; i < len(k); i++ {
			if !isKeyByte(k[i]) {
				r.fail()
				return ""
			}
		}
	case isKeyStart(c):
		start := r.pos
		for isKeyByte(r.at(r.pos)) {
			r.pos++
		}
		k = r.intern(r.data[start:r.pos])
		if k == "true" || k == "false" || k == "null" {
			r.fail()
			return ""
		}
	default:
		r.fail()
		return ""
	}
	if len(k) > 128 || r.at(r.pos) != ':' {
		r.fail()
		return ""
	}
	r.pos++
	if next := r.at(r.pos); next != ' ' && (flow || next != '\n') {
		r.fail()
	}
	return k
}

// inline reads a value that starts at the current position and ends on the
// same line: a flow collection, a quoted or a plain scalar.
func (r *yamlReader) inline(flow bool) any {
	switch c := r.at(r.pos); c {
	case '[':
		return r.flowSeq()
	case '{':
		return r.flowMap()
	case '"', '\'':
		return r.quoted()
	case '-':
		if next := r.at(r.pos + 1); next == ' ' || next == '\n' {
			r.fail()
			return nil
		}
	case '?', ':', ',', ']', '}', '#', '&', '*', '!', '|', '>', '%', '@', '`', '\n':
		r.fail()
		return nil
	}
	return r.plain(flow)
}

// plain reads a plain scalar and resolves it as go-yaml does.
func (r *yamlReader) plain(flow bool) any {
	start, end := r.pos, r.pos
	for {
		c := r.at(r.pos)
		switch {
		case c == '\n':
		case c == ' ':
			r.skipSpaces()
			if r.at(r.pos) == '#' || r.at(r.pos) == '\n' {
				if flow && r.at(r.pos) == '#' {
					r.fail()
				}
				r.pos = end
				break
			}
			continue
		case c == ':' && (r.at(r.pos+1) == ' ' || r.at(r.pos+1) == '\n'):
			r.fail() // a key where a value belongs
		case flow && strings.IndexByte(",?[]{}", c) >= 0:
			if c != ',' && c != ']' && c != '}' {
				r.fail()
			}
		default:
			r.pos++
			end = r.pos
			continue
		}
		break
	}
	if r.bad {
		return nil
	}
	r.pos = end
	v, ok := resolvePlain(string(r.data[start:end]))
	if !ok {
		r.fail()
	}
	return v
}

// quoted reads a one-line single- or double-quoted scalar.
func (r *yamlReader) quoted() string {
	q := r.data[r.pos]
	r.pos++
	var b []byte
	start := r.pos
	for {
		c := r.at(r.pos)
		switch {
		case c == '\n':
			r.fail() // unterminated, or continued on the next line
			return ""
		case c == q && q == '\'' && r.at(r.pos+1) == '\'':
			b = append(b, r.data[start:r.pos+1]...)
			r.pos += 2
			start = r.pos
		case c == q:
			s := string(append(b, r.data[start:r.pos]...))
			r.pos++
			return s
		case c == '\\' && q == '"':
			e, ok := simpleEscape(r.at(r.pos + 1))
			if !ok {
				r.fail()
				return ""
			}
			b = append(append(b, r.data[start:r.pos]...), e)
			r.pos += 2
			start = r.pos
		default:
			r.pos++
		}
	}
}

func simpleEscape(c byte) (byte, bool) {
	switch c {
	case '\\', '"':
		return c, true
	case 'n':
		return '\n', true
	case 't':
		return '\t', true
	case 'r':
		return '\r', true
	}
	return 0, false
}

func (r *yamlReader) flowSeq() []any {
	if !r.enter() {
		return nil
	}
	defer func() { r.depth-- }()
	r.pos++
	list := []any{}
	r.skipSpaces()
	if r.at(r.pos) == ']' {
		r.pos++
		return list
	}
	for !r.bad {
		v := r.inline(true)
		r.skipSpaces()
		if r.bad {
			return nil
		}
		list = append(list, v)
		switch r.at(r.pos) {
		case ',':
			r.pos++
			r.skipSpaces()
		case ']':
			r.pos++
			return list
		default:
			r.fail() // "a: b" pairs, comments, or a line break inside
		}
	}
	return nil
}

func (r *yamlReader) flowMap() map[string]any {
	if !r.enter() {
		return nil
	}
	defer func() { r.depth-- }()
	r.pos++
	m := map[string]any{}
	r.skipSpaces()
	if r.at(r.pos) == '}' {
		r.pos++
		return m
	}
	for !r.bad {
		k := r.key(true)
		r.skipSpaces()
		if r.bad {
			return nil
		}
		if _, dup := m[k]; dup {
			r.fail()
			return nil
		}
		if c := r.at(r.pos); c == ',' || c == '}' {
			r.fail() // a key without a value
			return nil
		}
		m[k] = r.inline(true)
		r.skipSpaces()
		if r.bad {
			return nil
		}
		switch r.at(r.pos) {
		case ',':
			r.pos++
			r.skipSpaces()
		case '}':
			r.pos++
			return m
		default:
			r.fail()
		}
	}
	return nil
}

// yamlFloat is the form of float go-yaml resolves after its integer forms.
var yamlFloat = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)

// resolvePlain gives a plain scalar the value go-yaml v3 gives it when it
// decodes into an interface. ok is false for forms this reader leaves to
// go-yaml (timestamps, NaN and infinities).
func resolvePlain(s string) (any, bool) {
	switch s {
	case "true", "True", "TRUE":
		return true, true
	case "false", "False", "FALSE":
		return false, true
	case "~", "null", "Null", "NULL":
		return nil, true
	}
	switch c := s[0]; {
	case c == '.':
		if strings.EqualFold(s, ".nan") || strings.EqualFold(s, ".inf") {
			return nil, false
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f, true
		}
		return s, true
	case c == '+' || c == '-' || c >= '0' && c <= '9':
		return resolveNumber(s)
	}
	return s, true
}

func resolveNumber(s string) (any, bool) {
	if looksLikeDate(s) || strings.HasSuffix(strings.ToLower(s), ".inf") || strings.HasSuffix(strings.ToLower(s), ".nan") {
		return nil, false
	}
	plain := strings.ReplaceAll(s, "_", "")
	if n, err := strconv.ParseInt(plain, 0, 64); err == nil {
		return intValue(n), true
	}
	if u, err := strconv.ParseUint(plain, 0, 64); err == nil {
		return u, true
	}
	if yamlFloat.MatchString(plain) {
		if f, err := strconv.ParseFloat(plain, 64); err == nil {
			return f, true
		}
	}
	for _, p := range []struct {
		prefix string
		base   int
	}{{"0b", 2}, {"0o", 8}} {
		switch {
		case strings.HasPrefix(plain, p.prefix):
			if n, err := strconv.ParseInt(plain[2:], p.base, 64); err == nil {
				return intValue(n), true
			}
			if u, err := strconv.ParseUint(plain[2:], p.base, 64); err == nil {
				return u, true
			}
		case strings.HasPrefix(plain, "-"+p.prefix):
			if n, err := strconv.ParseInt("-"+plain[3:], p.base, 64); err == nil {
				return int(n), true
			}
		}
	}
	return s, true
}

// intValue is an int where it fits, as go-yaml gives it.
func intValue(n int64) any {
	if n >= math.MinInt && n <= math.MaxInt {
		return int(n)
	}
	return n
}

// looksLikeDate is go-yaml's quick test before it tries timestamps: four
// digits and a dash.
func looksLikeDate(s string) bool {
	return len(s) > 4 && s[4] == '-' && strings.Trim(s[:4], "0123456789") == ""
}
