package wire

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The route's deadline is the call's: a 5 s method answers within 10 s,
// and a 500 ms deadline ends the call at 500 ms, not at some cap.
func TestCallDeadlines(t *testing.T) {
	p := sharedProvider(t)
	c := newTestClient(t, Options{})
	tests := []struct {
		name       string
		sleep      int64
		deadline   time.Duration
		ok         bool
		minT, maxT time.Duration
	}{
		{"5s call, 10s deadline", 5000, 10 * time.Second, true, 5 * time.Second, 7 * time.Second},
		{"2s call, 500ms deadline", 2000, 500 * time.Millisecond, false, 500 * time.Millisecond, 700 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			v, _, err := c.Call(within(t, tt.deadline), p.addr, userService("slow", []string{"long"}, tt.sleep))
			took := time.Since(start)
			if took < tt.minT || took > tt.maxT {
				t.Errorf("answered after %s, want %s to %s", took, tt.minT, tt.maxT)
			}
			if tt.ok {
				if err != nil || v != "done" {
					t.Fatalf("got %v, %v", v, err)
				}
				return
			}
			var te *TimeoutError
			if !errors.As(err, &te) || !errors.Is(err, ErrTimeout) || !te.Sent || te.Server {
				t.Fatalf("error %T %v, want a client TimeoutError after sending", err, err)
			}
			if te.Timeout > tt.deadline || te.Timeout < tt.deadline-50*time.Millisecond {
				t.Errorf("timeout %s, want %s", te.Timeout, tt.deadline)
			}
		})
	}
}

// A response over the limit fails as soon as its header arrives, and the
// connection goes on serving; one under it arrives whole.
func TestCallResponseSize(t *testing.T) {
	p := sharedProvider(t)
	c := newTestClient(t, Options{MaxResponseBytes: 64 << 10, ConnsPerAddr: 1})
	big := strings.Repeat("x", 200<<10)
	start := time.Now()
	_, _, err := c.Call(within(t, 10*time.Second), p.addr, userService("echoString", []string{"java.lang.String"}, big))
	var tl *TooLargeError
	if !errors.As(err, &tl) || !errors.Is(err, ErrResponseTooLarge) || !tl.Response || tl.Limit != 64<<10 || tl.Size < 200<<10 {
		t.Fatalf("error %T %v, want response too large", err, err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the too-large response took %s to fail", took)
	}
	v, _, err := c.Call(within(t, 10*time.Second), p.addr, userService("echoString", []string{"java.lang.String"}, "after"))
	if err != nil || v != "after" {
		t.Fatalf("the next call on the connection: %v, %v", v, err)
	}

	// Under the default 8 MiB limit, what the provider can write arrives:
	// a dubbo-go provider writes no frame over 1,024,000 bytes.
	d := newTestClient(t, Options{})
	near := strings.Repeat("y", 1000_000)
	v, _, err = d.Call(within(t, 10*time.Second), p.addr, userService("echoString", []string{"java.lang.String"}, near))
	if err != nil || v != near {
		t.Fatalf("a 1,000,000-byte answer: %d bytes, %v", len(asString(v)), err)
	}
}

// A request over the limit is not sent: the provider's last call stays
// the one before.
func TestCallRequestTooLarge(t *testing.T) {
	p := sharedProvider(t)
	c := newTestClient(t, Options{MaxRequestBytes: 32 << 10})
	ctx := within(t, 10*time.Second)
	if _, _, err := c.Call(ctx, p.addr, userService("echoInt", []string{"int"}, int32(99))); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Call(ctx, p.addr, userService("echoString", []string{"java.lang.String"}, strings.Repeat("z", 64<<10)))
	var tl *TooLargeError
	if !errors.As(err, &tl) || !errors.Is(err, ErrRequestTooLarge) || tl.Response || !NotSent(err) {
		t.Fatalf("error %T %v, want request too large, not sent", err, err)
	}
	v, _, err := c.Call(ctx, p.addr, userService("lastCall", nil))
	if err != nil || v != "echoInt(int32(99))" {
		t.Fatalf("lastCall = %v, %v: the refused request reached the provider", v, err)
	}
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}
