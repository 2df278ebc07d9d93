package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// viperTree is what the loader read a YAML file as before the fast reader:
// viper's tree, or its problem.
func viperTree(t testing.TB, data []byte) (map[string]any, *Problem) {
	t.Helper()
	src, p := parseViper("f.yaml", "yaml", data)
	return src.raw, p
}

// agreeWithViper fails when the fast reader answers and its tree is not
// viper's; it reports whether the fast reader answered.
func agreeWithViper(t testing.TB, data []byte) bool {
	t.Helper()
	tree, ok := fastYAML(data)
	if !ok {
		return false
	}
	want, p := viperTree(t, data)
	if p != nil {
		t.Fatalf("fast reader accepted a document go-yaml refuses (%s):\n%s", p, data)
	}
	if got := topLevel(tree); !reflect.DeepEqual(got, want) {
		t.Fatalf("fast reader disagrees with viper on\n%s\nfast:  %#v\nviper: %#v", data, got, want)
	}
	return true
}

// fastYAMLCases are forms a mapping is written in, and near misses the fast
// reader must leave to go-yaml.
var fastYAMLCases = []struct {
	doc  string
	fast bool
}{
	{minimal, true},
	{"a: 1\nb: -2\nc: 0x1F\nd: 0o17\ne: 017\nf: 1_000\ng: 1.5\nh: .5\ni: 1e3\nj: 18446744073709551615\nk: 99999999999999999999\n", true},
	{"a: true\nb: False\nc: ~\nd: null\ne:\nf: yes\ng: 'it''s'\nh: \"q\\\"\\\\\\n\"\n", true},
	{"a: 0.0.0.0:10000\nb: 2s\nc: 64KiB\nd: 1.0.0\ne: -0b101\nf: 0b11\ng: +5\nh: ---\ni: a#b\nj: a [b] {c}, d\n", true},
	{"a: [x, 'y', \"z\", [1, 2], {b: c}, http://h:1/p, a:b]\nb: {}\nc: []\nd: { e: { f: [] } }\n", true},
	{"l:\n- a: 1\n  b:\n  - x\n  -\n  - y # c\n-   c: 2\n    d: 3\n- plain\n# end\n", true},
	{"x: {}\nlisteners: {}\ny: { z: {} }\nw: []\n", true},
	{"a:\n  b:\n    c: 1\n  d: 2\ne: 3\n", true},
	{"a: # c\n  b: 1\nl: # c\n- # c\n  x: 1\n-    # c\n  - y\n", true},
	{"a: 2001-12-14\n", false},                  // a timestamp
	{"a: .inf\n", false},                        // an infinity
	{"a: |\n  text\n", false},                   // a block scalar
	{"a: b\n  c\n", false},                      // a continued plain scalar
	{"a: &x 1\nb: *x\n", false},                 // an anchor and an alias
	{"a: 1\na: 2\n", false},                     // a duplicate key
	{"A: 1\n", false},                           // viper folds case
	{"a: [1,\n  2]\n", false},                   // a flow collection over lines
	{"a:\tb\n", false},                          // a tab
	{"---\na: 1\n", false},                      // a document marker
	{"a: b: c\n", false},                        // mapping values in a plain scalar
	{"a: {b: 1, b: 2}\n", false},                // a duplicate flow key
	{"  a: 1\n", false},                         // an indented top level
	{"- a\n", false},                            // not a mapping
	{"a: 'x\n  y'\n", false},                    // a quoted scalar over lines
	{"a: \"\\u00e9\"\n", false},                 // an escape left to go-yaml
	{"a: \"\\/\"\n", false},                     // an escape go-yaml refuses
	{"a: [b, c,]\n", false},                     // a trailing comma
	{"a: 1\n b: 2\n", false},                    // bad indentation
	{"a:\n  - x\n y: 1\n", false},               // bad indentation under a list
	{"true: 1\n", false},                        // a key that is not a string
	{"a: !!str 1\n", false},                     // a tag
	{"a: - b\n", false},                         // a sequence entry after a key
	{"a: \"b\" c\n", false},                     // text after a quoted scalar
	{"a: b #c\nd: [e] #f\ng: \"h\"#i\n", false}, // a comment with no space
}

func TestFastYAMLAgreesWithViper(t *testing.T) {
	for _, c := range fastYAMLCases {
		if got := agreeWithViper(t, []byte(c.doc)); got != c.fast {
			t.Errorf("fast reader answered = %v, want %v, for\n%s", got, c.fast, c.doc)
		}
	}
}

// TestFastYAMLReadsTheExamples keeps the fast reader useful: the example
// mappings are read by it, to the tree viper gives.
func TestFastYAMLReadsTheExamples(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.yaml")
	more, _ := filepath.Glob("../examples/mappings/*.yaml")
	files = append(files, more...)
	if len(files) < 3 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !agreeWithViper(t, data) {
			t.Errorf("%s: the fast reader left it to go-yaml", f)
		}
	}
}

// FuzzFastYAML checks the fast reader against viper on any document it
// answers for.
func FuzzFastYAML(f *testing.F) {
	for _, c := range fastYAMLCases {
		f.Add([]byte(c.doc))
	}
	seeds, _ := filepath.Glob("../examples/mappings/*.yaml")
	broken, _ := filepath.Glob("../test/testdata/invalid/*.yaml")
	for _, s := range append(seeds, broken...) {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		agreeWithViper(t, data)
	})
}
