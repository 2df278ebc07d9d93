// Package test holds end-to-end tests of protogate against real files and
// real peers.
package test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/protogate/protogate/config"
)

// TestBrokenMappings loads every file (and directory) under
// testdata/invalid and compares the problems with its .want file: the exact
// lines `protogate validate` prints, file, line, field path and reason.
func TestBrokenMappings(t *testing.T) {
	wants, err := filepath.Glob("testdata/invalid/*.want")
	if err != nil || len(wants) == 0 {
		t.Fatalf("no .want files: %v", err)
	}
	for _, want := range wants {
		input := strings.TrimSuffix(want, ".want")
		t.Run(filepath.Base(input), func(t *testing.T) {
			raw, err := os.ReadFile(want)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(input)
			if cfg != nil {
				t.Fatal("a broken mapping returned a config")
			}
			var probs config.Problems
			if !errors.As(err, &probs) {
				t.Fatalf("want Problems, got %v", err)
			}
			// The .want files are written relative to testdata/invalid.
			var got []string
			for _, p := range probs {
				got = append(got, strings.TrimPrefix(p.String(), "testdata/invalid/"))
			}
			seen := map[string]bool{}
			for _, g := range got {
				if seen[g] {
					t.Errorf("reported twice: %s", g)
				}
				seen[g] = true
			}
			lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
			wantLines := lines[:len(lines)-1] // the last line is validate's summary
			if strings.Join(got, "\n") != strings.Join(wantLines, "\n") {
				t.Errorf("problems differ\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
			}
		})
	}
}

// TestExamplesLoad keeps every shipped example valid.
func TestExamplesLoad(t *testing.T) {
	paths, _ := filepath.Glob("../examples/mappings/*.yaml")
	paths = append(paths, "../examples/mappings/split")
	if len(paths) < 4 {
		t.Fatalf("expected at least 4 examples, found %v", paths)
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			cfg, err := config.Load(p)
			if err != nil {
				t.Fatalf("%v", err)
			}
			if len(cfg.Listeners) == 0 || cfg.Routes() == 0 {
				t.Fatalf("example has no listeners or routes")
			}
		})
	}
}
