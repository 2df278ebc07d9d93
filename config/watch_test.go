package config

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestWatchDebouncesAndSurvivesRenames writes a burst of changes, then
// replaces the file by rename as editors do: each burst is one call.
func TestWatchDebouncesAndSurvivesRenames(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "m.yaml")
	if err := os.WriteFile(file, []byte(minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := Watch(ctx, file, 100*time.Millisecond, func() { calls.Add(1) }); err != nil {
		t.Fatal(err)
	}
	waitFor := func(want int32) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for calls.Load() < want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := calls.Load(); got != want {
			t.Fatalf("calls = %d, want %d", got, want)
		}
	}
	for i := 0; i < 5; i++ {
		if err := os.WriteFile(file, []byte(minimal+"\n# edit\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(1)
	tmp := filepath.Join(dir, ".m.yaml.swp")
	if err := os.WriteFile(tmp, []byte(minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	waitFor(2)
	// An unrelated file in the same directory is not a change.
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if got := calls.Load(); got != 2 {
		t.Fatalf("an unrelated file triggered a reload (calls = %d)", got)
	}
}
