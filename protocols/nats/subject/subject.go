// Package subject parses NATS subject templates from the mapping and checks
// the values that fill them, so request data can never produce a wildcard,
// a system subject or a subject outside the template's shape.
package subject

import (
	"fmt"
	"strings"
)

// Source says where a template variable's value comes from.
type Source int

const (
	FromPath   Source = iota + 1 // {name}: a path template variable
	FromQuery                    // {query.name}
	FromHeader                   // {header.Name}
)

// Token is one dot-separated part of a template: a literal or a variable.
type Token struct {
	Literal string
	Source  Source // zero for literals
	Name    string // the variable name for its source
}

// IsVar reports whether the token is filled at request time.
func (t Token) IsVar() bool { return t.Source != 0 }

// Template is a parsed subject template like "orders.{region}.created".
type Template struct {
	Raw    string
	Tokens []Token
}

// systemPrefixes are first tokens reserved by NATS and JetStream.
var systemPrefixes = []string{"$JS", "$SYS", "$KV", "$O", "$SRV", "$MQTT", "_INBOX", "_R_"}

// Parse reads a template. Variables fill whole tokens, the first token is a
// literal, literal tokens are valid publish tokens (no wildcards, no
// whitespace), and the subject never starts with a system prefix.
func Parse(s string) (*Template, error) {
	if s == "" {
		return nil, fmt.Errorf("empty subject")
	}
	t := &Template{Raw: s}
	for i, part := range splitTokens(s) {
		if part == "" {
			return nil, fmt.Errorf("token %d is empty (subjects cannot have leading, trailing or double dots)", i+1)
		}
		if strings.ContainsAny(part, "{}") {
			tok, err := parseVar(part)
			if err != nil {
				return nil, fmt.Errorf("token %d %q: %w", i+1, part, err)
			}
			if i == 0 {
				return nil, fmt.Errorf("the first token must be literal, not a variable, so the subject space stays fixed")
			}
			t.Tokens = append(t.Tokens, tok)
			continue
		}
		if err := checkLiteral(part, false); err != nil {
			return nil, fmt.Errorf("token %d %q: %w", i+1, part, err)
		}
		t.Tokens = append(t.Tokens, Token{Literal: part})
	}
	if p := systemPrefix(t.Tokens[0].Literal); p != "" {
		return nil, fmt.Errorf("%q is a system subject prefix; publishing there is refused", p)
	}
	return t, nil
}

// splitTokens splits on dots outside braces, so {query.name} stays whole.
func splitTokens(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			if depth > 0 {
				depth--
			}
		case '.':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func parseVar(part string) (Token, error) {
	if !strings.HasPrefix(part, "{") || !strings.HasSuffix(part, "}") || strings.Count(part, "{") != 1 || strings.Count(part, "}") != 1 {
		return Token{}, fmt.Errorf("a {variable} must fill a whole token")
	}
	inner := part[1 : len(part)-1]
	tok := Token{Source: FromPath, Name: inner}
	if src, name, ok := strings.Cut(inner, "."); ok {
		switch src {
		case "query":
			tok.Source = FromQuery
		case "header":
			tok.Source = FromHeader
		default:
			return Token{}, fmt.Errorf("unknown variable source %q (use {name}, {query.name} or {header.name})", src)
		}
		tok.Name = name
	}
	if tok.Name == "" {
		return Token{}, fmt.Errorf("empty variable name")
	}
	for _, r := range tok.Name {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return Token{}, fmt.Errorf("variable name %q may hold only letters, digits, - and _", tok.Name)
		}
	}
	return tok, nil
}

func systemPrefix(first string) string {
	for _, p := range systemPrefixes {
		if strings.EqualFold(first, p) {
			return p
		}
	}
	if strings.HasPrefix(first, "$") {
		return first
	}
	return ""
}

func checkLiteral(tok string, wildcards bool) error {
	for _, r := range tok {
		switch {
		case r <= ' ' || r == 0x7f:
			return fmt.Errorf("whitespace and control characters are not allowed")
		case (r == '*' || r == '>') && !wildcards:
			return fmt.Errorf("wildcards are not allowed in a publish subject")
		}
	}
	if wildcards && len(tok) > 1 && strings.ContainsAny(tok, "*>") {
		return fmt.Errorf("a wildcard must be a whole token")
	}
	return nil
}

// CheckPattern checks a stream's subject filter, where * and > are allowed
// as whole tokens and > only last.
func CheckPattern(s string) error {
	if s == "" {
		return fmt.Errorf("empty subject")
	}
	parts := strings.Split(s, ".")
	for i, part := range parts {
		if part == "" {
			return fmt.Errorf("token %d is empty", i+1)
		}
		if err := checkLiteral(part, true); err != nil {
			return fmt.Errorf("token %d %q: %w", i+1, part, err)
		}
		if part == ">" && i != len(parts)-1 {
			return fmt.Errorf("> must be the last token")
		}
	}
	return nil
}

// Covers reports whether a stream subject filter takes every subject the
// template can produce.
func (t *Template) Covers(pattern string) bool {
	parts := strings.Split(pattern, ".")
	for i, tok := range t.Tokens {
		if i >= len(parts) {
			return false
		}
		switch p := parts[i]; {
		case p == ">":
			return true
		case p == "*":
		case tok.IsVar() || p != tok.Literal:
			return false
		}
	}
	return len(parts) == len(t.Tokens)
}

// CheckValue checks a value that fills one token. The caller passes it
// URL-decoded (as path and query parsing leave it), so what is checked is
// exactly what lands in the subject: letters, digits, '-' and '_' only, which
// can never add a token, a wildcard or a system prefix. Decoding happens
// once, so "%2E" arrives here as "." and is refused.
func CheckValue(v string) (string, error) {
	if v == "" {
		return "", fmt.Errorf("empty value")
	}
	for _, r := range v {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return "", fmt.Errorf("%q may hold only letters, digits, - and _", v)
		}
	}
	return v, nil
}

func (t *Template) hasVars() bool {
	for _, tok := range t.Tokens {
		if tok.IsVar() {
			return true
		}
	}
	return false
}

// Fill builds the subject from variable values, checking each one, and
// each against maxValue bytes when it is above zero.
func (t *Template) Fill(maxValue int, value func(Token) (string, bool)) (string, error) {
	if !t.hasVars() {
		return t.Raw, nil // literal tokens joined by dots: the subject itself
	}
	var b strings.Builder
	// Values are usually about as long as their placeholders: one
	// allocation for the whole subject.
	b.Grow(len(t.Raw) + 16)
	for i, tok := range t.Tokens {
		if i > 0 {
			b.WriteByte('.')
		}
		if !tok.IsVar() {
			b.WriteString(tok.Literal)
			continue
		}
		raw, ok := value(tok)
		if !ok {
			return "", fmt.Errorf("subject variable %s is missing", tok.Name)
		}
		if maxValue > 0 && len(raw) > maxValue {
			// Not echoed: the value is the client's, and long.
			return "", fmt.Errorf("subject variable %s is %d bytes; at most %d are taken", tok.Name, len(raw), maxValue)
		}
		v, err := CheckValue(raw)
		if err != nil {
			return "", fmt.Errorf("subject variable %s: %w", tok.Name, err)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}
