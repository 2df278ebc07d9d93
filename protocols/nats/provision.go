package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/protogate/protogate/config"
)

// Provision creates the streams the mapping lists that are missing, and
// with update_streams also updates those whose settings differ.
func (c *Conn) Provision(ctx context.Context, streams []config.Stream) error {
	return c.provision(ctx, c.cur.Load().js, streams, true)
}

// provision runs at every connect. An existing stream that differs from
// the mapping is updated only when the mapping says so; otherwise the
// operator's settings stay and the difference is logged (at WARN the
// first time, DEBUG on reconnects, as it has not changed).
func (c *Conn) provision(ctx context.Context, js jetstream.JetStream, streams []config.Stream, first bool) error {
	news := slog.LevelDebug
	if first {
		news = slog.LevelInfo
	}
	for _, s := range streams {
		want := streamConfig(s)
		st, err := js.Stream(ctx, s.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			if _, err := js.CreateStream(ctx, want); err != nil {
				return fmt.Errorf("stream %s: creating it: %w", s.Name, err)
			}
			c.log.Info("stream created", "stream", s.Name, "subjects", s.Subjects)
			continue
		}
		if err != nil {
			return fmt.Errorf("stream %s: %w", s.Name, err)
		}
		have := st.CachedInfo().Config
		diff := streamDiff(have, want)
		switch {
		case len(diff) == 0:
			c.log.Log(ctx, news, "stream exists as the mapping describes it", "stream", s.Name)
		case !c.u.UpdateStreams:
			lv := slog.LevelDebug
			if first {
				lv = slog.LevelWarn
			}
			c.log.Log(ctx, lv, "stream differs from the mapping; left as it is (update_streams: true would apply the mapping)",
				"stream", s.Name, "differences", strings.Join(diff, "; "))
		default:
			// Only the fields the mapping manages change; everything else
			// the operator set (limits, placement, mirrors) is kept.
			next := have
			next.Subjects, next.Storage, next.Replicas, next.Duplicates = want.Subjects, want.Storage, want.Replicas, want.Duplicates
			if _, err := js.UpdateStream(ctx, next); err != nil {
				return fmt.Errorf("stream %s: updating it (%s): %w", s.Name, strings.Join(diff, "; "), err)
			}
			c.log.Info("stream updated to the mapping", "stream", s.Name, "differences", strings.Join(diff, "; "))
		}
	}
	return nil
}

func streamConfig(s config.Stream) jetstream.StreamConfig {
	storage := jetstream.FileStorage
	if s.Storage == "memory" {
		storage = jetstream.MemoryStorage
	}
	return jetstream.StreamConfig{Name: s.Name, Subjects: s.Subjects, Storage: storage, Replicas: s.Replicas, Duplicates: s.DuplicateWindow.Std()}
}

// streamDiff lists the managed settings where have differs from want, as
// "field: have → want".
func streamDiff(have, want jetstream.StreamConfig) []string {
	var d []string
	if !slices.Equal(sortedCopy(have.Subjects), sortedCopy(want.Subjects)) {
		d = append(d, fmt.Sprintf("subjects: %v → %v", have.Subjects, want.Subjects))
	}
	if have.Storage != want.Storage {
		d = append(d, fmt.Sprintf("storage: %s → %s", have.Storage, want.Storage))
	}
	if max(have.Replicas, 1) != max(want.Replicas, 1) {
		d = append(d, fmt.Sprintf("replicas: %d → %d", have.Replicas, want.Replicas))
	}
	if want.Duplicates > 0 && have.Duplicates != want.Duplicates {
		d = append(d, fmt.Sprintf("duplicate_window: %s → %s", have.Duplicates, want.Duplicates))
	}
	return d
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
