package nats

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// reason is err's text for a log line, or otherwise when nats.go has none.
func reason(err error, otherwise string) string {
	if err == nil {
		return otherwise
	}
	return err.Error()
}

// linkState logs the connection's changes of state, once each: the upstream
// unavailable, then available again, whatever the number of publishes or
// reconnect attempts in between.
type linkState struct {
	log       *slog.Logger
	mu        sync.Mutex
	isDown    bool
	connected bool // it has been up at least once
	lastError string
	lastAt    time.Time
	why       string // the last reason it went down
	closedWhy string // the reason of the last close told in this outage
}

// repeated says whether msg is the asynchronous error last seen, less than
// repeatQuiet ago, and remembers it.
func (s *linkState) repeated(msg string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if msg == s.lastError && now.Sub(s.lastAt) < repeatQuiet {
		return true
	}
	s.lastError, s.lastAt = msg, now
	return false
}

func (s *linkState) down(why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isDown {
		return
	}
	s.isDown = true
	s.why = why
	s.log.Warn("upstream unavailable", "reason", why)
}

func (s *linkState) up(server string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.isDown:
		s.log.Info("upstream available again", "server", server)
	case !s.connected:
		s.log.Info("upstream connected", "server", server)
	}
	s.isDown, s.connected, s.closedWhy = false, true, ""
}

// downAtStart marks the upstream down when it is not connected right after
// Connect. The check runs under the lock the handlers take, so a connect
// handler racing it either sees the mark and clears it, or ran first.
func (s *linkState) downAtStart(isConnected func() bool, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connected || s.isDown || isConnected() {
		return
	}
	s.isDown = true
	s.why = why
	s.log.Warn("upstream unavailable", "reason", why)
}

// closed reports a connection nats.go gave up on; the bridge replaces it,
// and up() reports when the new one serves. A replacement given up on for
// the same reason in the same outage is no news: DEBUG, not one ERROR line
// per attempt for as long as the cause lasts.
func (s *linkState) closed(why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lv := slog.LevelError
	if s.isDown && s.closedWhy == why {
		lv = slog.LevelDebug
	}
	s.isDown, s.why, s.closedWhy = true, why, why
	s.log.Log(context.Background(), lv, "upstream connection closed by the NATS client; replacing it", "reason", why)
}

// reason says why the upstream is unusable, for readiness.
func (s *linkState) reason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.why
}
