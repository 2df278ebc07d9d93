package config

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch calls changed after the mapping at path has changed and then stayed
// quiet for debounce, until ctx ends. It watches the directory rather than
// the file, because editors and Kubernetes ConfigMaps replace files by
// renaming, which would end a watch on the file itself.
func Watch(ctx context.Context, path string, debounce time.Duration, changed func()) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	dir, only := path, ""
	if !st.IsDir() {
		dir, only = filepath.Dir(path), filepath.Clean(path)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	go func() {
		defer w.Close()
		var timer *time.Timer
		fire := make(chan struct{}, 1)
		for {
			select {
			case <-ctx.Done():
				if timer != nil {
					timer.Stop()
				}
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if !relevant(ev.Name, only) {
					continue
				}
				if timer != nil {
					timer.Stop()
				}
				timer = time.AfterFunc(debounce, func() {
					select {
					case fire <- struct{}{}:
					default:
					}
				})
			case <-fire:
				changed()
			case <-w.Errors:
			}
		}
	}()
	return nil
}

// relevant keeps events about the watched file, or about mapping files and
// ConfigMap's "..data" symlink swaps in a watched directory.
func relevant(name, only string) bool {
	base := filepath.Base(name)
	if only != "" {
		return filepath.Clean(name) == only || base == "..data"
	}
	return base == "..data" || (hasMappingExt(base) && base[0] != '.')
}
