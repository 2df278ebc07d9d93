package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/translator"
)

// runLoader times config.Load (read, decode, validate) of the big mapping
// file against translator.Translate of its result, in this process, and
// prints the medians.
func runLoader(o options) error {
	dir, err := os.MkdirTemp("", "protogate-bench-loader-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(file, []byte(bigMapping(o.cpRoutes, o.cpUpstream, 0)), 0o600); err != nil {
		return fmt.Errorf("writing the mapping: %w", err)
	}
	var loads, translates []time.Duration
	for range max(o.loaderRuns, 1) {
		t := time.Now()
		cfg, err := config.Load(file)
		if err != nil {
			return fmt.Errorf("loading %s: %w", file, err)
		}
		loads = append(loads, time.Since(t))
		t = time.Now()
		if _, err := translator.Translate(cfg); err != nil {
			return fmt.Errorf("translating %s: %w", file, err)
		}
		translates = append(translates, time.Since(t))
	}
	l, tr := median(loads), median(translates)
	fmt.Printf("\n== Loader: %d routes over %d upstreams, median of %d runs in this process (GOMAXPROCS=1) ==\n", o.cpRoutes, o.cpUpstream, len(loads))
	fmt.Printf("load + validate (config.Load)   %8.1f ms\n", float64(l)/1e6)
	fmt.Printf("translate (translator.Translate) %7.1f ms\n", float64(tr)/1e6)
	fmt.Printf("  -> load+validate / translate %s\n", ratio(float64(l), float64(tr)))
	addSummary("load + validate of the 10k-route file (translate)", "%.0f ms (translate %.0f ms, ratio %s)", float64(l)/1e6, float64(tr)/1e6, ratio(float64(l), float64(tr)))
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
