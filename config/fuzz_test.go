package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader as YAML, JSON and TOML. It
// must never panic; a failure must be Problems, each with a reason; and a
// mapping it accepts must validate again unchanged.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("../examples/mappings/*.yaml")
	more, _ := filepath.Glob("../examples/mappings/split/*")
	broken, _ := filepath.Glob("../test/testdata/invalid/*.yaml")
	for _, s := range append(append(seeds, more...), broken...) {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(filepath.Ext(s), data)
	}
	f.Add(".yaml", []byte(minimal))
	f.Fuzz(func(t *testing.T, ext string, data []byte) {
		switch ext {
		case ".yaml", ".json", ".toml":
		default:
			ext = ".yaml"
		}
		cfg, err := LoadBytes("fuzz"+ext, data)
		if err != nil {
			var probs Problems
			if !errors.As(err, &probs) || len(probs) == 0 {
				t.Fatalf("error is not a problem list: %v", err)
			}
			for _, p := range probs {
				if p.Msg == "" {
					t.Fatalf("problem without a reason: %+v", p)
				}
			}
			if cfg != nil {
				t.Fatal("config returned with problems")
			}
			return
		}
		if probs := Validate(cfg); len(probs) > 0 {
			t.Fatalf("accepted mapping fails validation after resolve: %v", probs)
		}
	})
}
