package wire

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults of Options; a zero field takes its default.
const (
	DefaultConnsPerAddr      = 2
	DefaultMaxResponseBytes  = 8 << 20
	DefaultMaxRequestBytes   = maxCodecBody // the protocol's 8 MiB payload, less the header
	DefaultDialTimeout       = time.Second
	DefaultWriteTimeout      = 5 * time.Second
	DefaultHeartbeatInterval = 15 * time.Second
	DefaultRedialBackoff     = 200 * time.Millisecond
	DefaultTimeout           = 10 * time.Second
)

// Options tune a Client.
type Options struct {
	// ConnsPerAddr is the number of multiplexed connections kept to each
	// provider address.
	ConnsPerAddr int
	// MaxResponseBytes bounds a response body: a bigger one fails its
	// call as soon as its header arrives.
	MaxResponseBytes int
	// MaxRequestBytes bounds an encoded request body; at most the
	// protocol's 8 MiB less the 16-byte header, which the codec enforces.
	MaxRequestBytes int
	// DialTimeout bounds a connection attempt (and the call's deadline
	// bounds it too).
	DialTimeout time.Duration
	// WriteTimeout bounds one socket write; a provider that stops
	// reading for longer loses the connection.
	WriteTimeout time.Duration
	// HeartbeatInterval: a connection that has read nothing for this
	// long sends a heartbeat; one silent for three intervals is closed.
	HeartbeatInterval time.Duration
	// RedialBackoff: after a failed dial, calls to that address fail at
	// once for this long instead of dialling again.
	RedialBackoff time.Duration
	// DefaultTimeout is the deadline of a call whose context has none.
	DefaultTimeout time.Duration
	// Logger gets connection events; nil: slog.Default().
	Logger *slog.Logger
}

// withDefaults fills zero fields and checks the rest.
func (o Options) withDefaults() (Options, error) {
	setInt(&o.ConnsPerAddr, DefaultConnsPerAddr)
	setInt(&o.MaxResponseBytes, DefaultMaxResponseBytes)
	setInt(&o.MaxRequestBytes, DefaultMaxRequestBytes)
	setDur(&o.DialTimeout, DefaultDialTimeout)
	setDur(&o.WriteTimeout, DefaultWriteTimeout)
	setDur(&o.HeartbeatInterval, DefaultHeartbeatInterval)
	setDur(&o.RedialBackoff, DefaultRedialBackoff)
	setDur(&o.DefaultTimeout, DefaultTimeout)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case o.ConnsPerAddr < 0 || o.ConnsPerAddr > 64:
		return o, fmt.Errorf("conns per address %d: must be 1 to 64", o.ConnsPerAddr)
	case o.MaxResponseBytes < 0:
		return o, fmt.Errorf("max response bytes %d: must be positive", o.MaxResponseBytes)
	case o.MaxRequestBytes < 0 || o.MaxRequestBytes > maxCodecBody:
		return o, fmt.Errorf("max request bytes %d: must be 1 to %d (the protocol's payload limit)", o.MaxRequestBytes, maxCodecBody)
	case o.DialTimeout < 0 || o.WriteTimeout < 0 || o.HeartbeatInterval < 0 || o.RedialBackoff < 0 || o.DefaultTimeout < 0:
		return o, fmt.Errorf("durations must be positive")
	}
	return o, nil
}

func setInt(p *int, def int) {
	if *p == 0 {
		*p = def
	}
}

func setDur(p *time.Duration, def time.Duration) {
	if *p == 0 {
		*p = def
	}
}
