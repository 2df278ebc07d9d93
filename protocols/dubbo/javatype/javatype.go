// Package javatype parses the Java type names a mapping declares for Dubbo
// parameters and POJO fields. The bridge converts JSON by these types, so a
// client never names a Java type itself.
package javatype

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is the family a Java type belongs to, which decides its JSON form.
type Kind int

const (
	Primitive  Kind = iota + 1 // boolean, byte, char, short, int, long, float, double
	Boxed                      // java.lang.Integer and friends
	String                     // java.lang.String
	BigDecimal                 // java.math.BigDecimal
	BigInteger                 // java.math.BigInteger
	Date                       // java.util.Date
	Object                     // java.lang.Object: any JSON value, as plain maps and lists
	Array                      // T[]
	List                       // java.util.List / ArrayList / LinkedList / Collection
	Set                        // java.util.Set / HashSet / LinkedHashSet / TreeSet
	Map                        // java.util.Map / HashMap / LinkedHashMap / TreeMap
	Class                      // a POJO or enum the mapping declares
)

// Type is a parsed Java type.
type Type struct {
	Kind Kind
	Name string // the erased Java name: "int", "java.util.List", "com.example.User"; for arrays the element's name
	Elem *Type  // element of Array, List, Set; value of Map
	Key  *Type  // key of Map
}

// String renders the type as the mapping would write it.
func (t *Type) String() string {
	switch t.Kind {
	case Array:
		return t.Elem.String() + "[]"
	case List, Set:
		if t.Elem != nil {
			return t.Name + "<" + t.Elem.String() + ">"
		}
	case Map:
		if t.Key != nil {
			return t.Name + "<" + t.Key.String() + ", " + t.Elem.String() + ">"
		}
	}
	return t.Name
}

// Erased is the name Dubbo's generic invocation takes: generics dropped,
// arrays as "T[]".
func (t *Type) Erased() string {
	if t.Kind == Array {
		return t.Elem.Erased() + "[]"
	}
	return t.Name
}

// Classes lists the declared-class names the type mentions, in order.
func (t *Type) Classes() []string {
	var out []string
	var walk func(*Type)
	walk = func(x *Type) {
		if x == nil {
			return
		}
		if x.Kind == Class {
			out = append(out, x.Name)
		}
		walk(x.Key)
		walk(x.Elem)
	}
	walk(t)
	return out
}

var primitives = map[string]string{
	"boolean": "java.lang.Boolean", "byte": "java.lang.Byte", "char": "java.lang.Character",
	"short": "java.lang.Short", "int": "java.lang.Integer", "long": "java.lang.Long",
	"float": "java.lang.Float", "double": "java.lang.Double",
}

var boxed = map[string]bool{}

func init() {
	for _, b := range primitives {
		boxed[b] = true
	}
}

// BoxOf returns the boxed class of a primitive name, or "".
func BoxOf(primitive string) string { return primitives[primitive] }

var containers = map[string]Kind{
	"java.util.List": List, "java.util.ArrayList": List, "java.util.LinkedList": List,
	"java.util.Collection": List,
	"java.util.Set":        Set, "java.util.HashSet": Set, "java.util.LinkedHashSet": Set,
	"java.util.TreeSet": Set,
	"java.util.Map":     Map, "java.util.HashMap": Map, "java.util.LinkedHashMap": Map,
	"java.util.TreeMap": Map,
}

var known = map[string]Kind{
	"java.lang.String": String, "java.math.BigDecimal": BigDecimal,
	"java.math.BigInteger": BigInteger, "java.util.Date": Date, "java.lang.Object": Object,
}

// Parse reads a Java type name such as "int", "java.lang.Long",
// "java.util.List<com.example.User>", "java.util.Map<java.lang.String, int[]>"
// or "byte[]". Primitives are not allowed as generic arguments, as in Java.
func Parse(s string) (*Type, error) {
	p := &parser{src: s}
	t, err := p.parseType(false)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.src) {
		return nil, fmt.Errorf("unexpected %q at offset %d", p.src[p.pos:], p.pos)
	}
	return t, nil
}

type parser struct {
	src string
	pos int
}

func (p *parser) skipSpace() {
	for p.pos < len(p.src) && p.src[p.pos] == ' ' {
		p.pos++
	}
}

func (p *parser) parseType(argument bool) (*Type, error) {
	p.skipSpace()
	start := p.pos
	for p.pos < len(p.src) && !strings.ContainsRune("<>,[] ", rune(p.src[p.pos])) {
		p.pos++
	}
	name := p.src[start:p.pos]
	if name == "" {
		if p.pos >= len(p.src) {
			return nil, fmt.Errorf("a type name is missing at the end")
		}
		return nil, fmt.Errorf("a type name is missing before %q", p.src[p.pos:])
	}
	var t *Type
	switch {
	case primitives[name] != "":
		// A primitive array (byte[], int[]) is a class and may be a
		// generic argument; a bare primitive may not, as in Java.
		if argument && !p.arrayFollows() {
			return nil, fmt.Errorf("primitive %s cannot be a generic argument; use %s", name, primitives[name])
		}
		t = &Type{Kind: Primitive, Name: name}
	case boxed[name]:
		t = &Type{Kind: Boxed, Name: name}
	case known[name] != 0:
		t = &Type{Kind: known[name], Name: name}
	case containers[name] != 0:
		t = &Type{Kind: containers[name], Name: name}
	default:
		if err := CheckClassName(name); err != nil {
			return nil, err
		}
		t = &Type{Kind: Class, Name: name}
	}
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == '<' {
		if t.Kind != List && t.Kind != Set && t.Kind != Map {
			return nil, fmt.Errorf("%s takes no type arguments (only java.util collections do)", name)
		}
		p.pos++
		args, err := p.parseArgs()
		if err != nil {
			return nil, err
		}
		want := 1
		if t.Kind == Map {
			want = 2
		}
		if len(args) != want {
			return nil, fmt.Errorf("%s takes %d type argument(s), got %d", name, want, len(args))
		}
		if t.Kind == Map {
			t.Key, t.Elem = args[0], args[1]
		} else {
			t.Elem = args[0]
		}
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.src) || p.src[p.pos] != '[' {
			break
		}
		if p.pos+1 >= len(p.src) || p.src[p.pos+1] != ']' {
			return nil, fmt.Errorf("unclosed \"[\" at offset %d: arrays are written T[]", p.pos)
		}
		p.pos += 2
		t = &Type{Kind: Array, Name: t.Name, Elem: t}
	}
	return t, nil
}

// arrayFollows reports whether "[]" comes next.
func (p *parser) arrayFollows() bool {
	rest := strings.TrimLeft(p.src[p.pos:], " ")
	return strings.HasPrefix(rest, "[")
}

func (p *parser) parseArgs() ([]*Type, error) {
	var args []*Type
	for {
		a, err := p.parseType(true)
		if err != nil {
			return nil, err
		}
		args = append(args, a)
		p.skipSpace()
		if p.pos >= len(p.src) {
			return nil, fmt.Errorf("unclosed \"<\"")
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case '>':
			p.pos++
			return args, nil
		default:
			return nil, fmt.Errorf("unexpected %q at offset %d", p.src[p.pos], p.pos)
		}
	}
}

// CheckClassName checks a fully qualified class name: dot-separated Java
// identifiers, with $ allowed for nested classes.
func CheckClassName(name string) error {
	if name == "" {
		return fmt.Errorf("empty class name")
	}
	for _, part := range strings.Split(name, ".") {
		if err := CheckIdentifier(part); err != nil {
			return fmt.Errorf("%q is not a class name: %w", name, err)
		}
	}
	return nil
}

// CheckIdentifier checks one Java identifier (not a keyword).
func CheckIdentifier(s string) error {
	if s == "" {
		return fmt.Errorf("empty name part")
	}
	for i, r := range s {
		ok := r == '_' || r == '$' || unicode.IsLetter(r) || (i > 0 && unicode.IsDigit(r))
		if !ok || r == utf8.RuneError {
			return fmt.Errorf("%q is not a Java identifier", s)
		}
	}
	if keywords[s] {
		return fmt.Errorf("%q is a Java keyword", s)
	}
	return nil
}

var keywords = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`abstract assert boolean break byte case catch char class const
		continue default do double else enum extends final finally float for goto if implements
		import instanceof int interface long native new package private protected public return
		short static strictfp super switch synchronized this throw throws transient try void
		volatile while true false null`) {
		keywords[k] = true
	}
}
