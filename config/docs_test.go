package config

import (
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/config.md's generated reference")

const (
	docsFile  = "../docs/config.md"
	beginMark = "<!-- BEGIN GENERATED: protogate schema --markdown -->\n"
	endMark   = "<!-- END GENERATED -->\n"
)

// TestDocsUpToDate keeps docs/config.md's field reference equal to the model.
// Run `go test ./config -run TestDocsUpToDate -update` after changing the model.
func TestDocsUpToDate(t *testing.T) {
	raw, err := os.ReadFile(docsFile)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start, end := strings.Index(doc, beginMark), strings.Index(doc, endMark)
	if start < 0 || end < start {
		t.Fatalf("%s lacks the generated-section markers", docsFile)
	}
	want := doc[:start] + beginMark + Markdown() + doc[end:]
	if *update {
		if err := os.WriteFile(docsFile, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if doc != want {
		t.Fatalf("%s is out of date with the model; run: go test ./config -run TestDocsUpToDate -update", docsFile)
	}
}

// TestEveryFieldDocumented makes sure the reference shows, for every field,
// a description and either an example, a default or its allowed values.
func TestEveryFieldDocumented(t *testing.T) {
	for _, rt := range modelTypes() {
		if typeDocs[rt.Name()] == "" {
			t.Errorf("type %s has no entry in typeDocs", rt.Name())
		}
		for _, f := range fieldsOf(rt) {
			if f.Doc == "" {
				t.Errorf("%s.%s has no doc", rt.Name(), f.Name)
			}
			elem := f.Type
			for elem.Kind() == reflect.Pointer || elem.Kind() == reflect.Slice {
				elem = elem.Elem()
			}
			scalar := elem.Kind() != reflect.Struct
			if scalar && f.Example == "" && f.Default == "" && len(f.Enum) == 0 {
				t.Errorf("%s.%s has no example, default or enum", rt.Name(), f.Name)
			}
		}
	}
}
