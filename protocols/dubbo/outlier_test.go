package dubbo

import (
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"
)

// fakeProber stands for the transport: which providers have a connection
// open, and which were asked to connect.
type fakeProber struct {
	connected map[string]bool
	asked     []string
}

func (f *fakeProber) Connected(addr string) bool { return f.connected[addr] }
func (f *fakeProber) Connect(addr string)        { f.asked = append(f.asked, addr) }

func TestOutlierEjection(t *testing.T) {
	addrs := []string{"a", "b", "c"}
	type step struct {
		after   time.Duration // the clock moves on first
		observe map[string]failureKind
		want    []string // order from start 0
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"fewer failures than the threshold eject nothing", []step{
			{observe: map[string]failureKind{"a": gateway}},
			{observe: map[string]failureKind{"a": gateway}, want: []string{"a", "b", "c"}},
		}},
		{"an answer between failures resets the count", []step{
			{observe: map[string]failureKind{"a": gateway}},
			{observe: map[string]failureKind{"a": gateway}},
			{observe: map[string]failureKind{"a": answered}},
			{observe: map[string]failureKind{"a": gateway}, want: []string{"a", "b", "c"}},
		}},
		{"three in a row eject, and the time passing brings it back", []step{
			{observe: map[string]failureKind{"a": gateway}},
			{observe: map[string]failureKind{"a": gateway}},
			{observe: map[string]failureKind{"a": gateway}, want: []string{"b", "c", "a"}},
			{after: baseEjection - time.Millisecond, want: []string{"b", "c", "a"}},
			{after: time.Millisecond, want: []string{"a", "b", "c"}},
		}},
		{"a failure after the ejection ejects it for twice as long", []step{
			{observe: map[string]failureKind{"a": gateway}},
			{observe: map[string]failureKind{"a": gateway}},
			{observe: map[string]failureKind{"a": gateway}},
			{after: baseEjection, want: []string{"a", "b", "c"}}, // one trial call
			{want: []string{"b", "c", "a"}},                      // the others wait for its outcome
			{observe: map[string]failureKind{"a": gateway}, want: []string{"b", "c", "a"}},
			{after: 2*baseEjection - time.Millisecond, want: []string{"b", "c", "a"}},
			{after: time.Millisecond, want: []string{"a", "b", "c"}},
		}},
		{"an answer after the ejection reinstates it fully", []step{
			{observe: map[string]failureKind{"a": gateway}},
			{observe: map[string]failureKind{"a": gateway}},
			{observe: map[string]failureKind{"a": gateway}},
			{after: baseEjection, want: []string{"a", "b", "c"}},
			{observe: map[string]failureKind{"a": answered}},
			{observe: map[string]failureKind{"a": gateway}, want: []string{"a", "b", "c"}},
		}},
		{"a trial that says nothing lets another call try", []step{
			{observe: map[string]failureKind{"a": gateway}},
			{observe: map[string]failureKind{"a": gateway}},
			{observe: map[string]failureKind{"a": gateway}},
			{after: baseEjection, want: []string{"a", "b", "c"}},
			{want: []string{"b", "c", "a"}},
			{observe: map[string]failureKind{"a": neutral}, want: []string{"a", "b", "c"}},
		}},
		{"neutral outcomes count for nothing", []step{
			{observe: map[string]failureKind{"a": neutral}},
			{observe: map[string]failureKind{"a": neutral}},
			{observe: map[string]failureKind{"a": neutral}, want: []string{"a", "b", "c"}},
		}},
		{"all ejected are all still called", []step{
			{observe: map[string]failureKind{"a": unreachable, "b": unreachable, "c": unreachable}, want: []string{"a", "b", "c"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(0, 0)
			o := newOutliers(slog.New(slog.NewTextHandler(io.Discard, nil)))
			o.now = func() time.Time { return now }
			for i, s := range tc.steps {
				now = now.Add(s.after)
				for _, addr := range addrs {
					if k, ok := s.observe[addr]; ok {
						o.observe(addr, k)
					}
				}
				if s.want != nil {
					if got := o.order(addrs, 0, nil); !slices.Equal(got, s.want) {
						t.Fatalf("step %d: order = %v, want %v", i, got, s.want)
					}
				}
			}
		})
	}
}

// An unreachable provider is out at once and, with a transport that can
// connect in the background, stays out until a connection is open: no
// call waits on a dial to it.
func TestOutlierUnreachableIsProbed(t *testing.T) {
	now := time.Unix(0, 0)
	o := newOutliers(slog.New(slog.NewTextHandler(io.Discard, nil)))
	o.now = func() time.Time { return now }
	pr := &fakeProber{connected: map[string]bool{}}
	addrs := []string{"a", "b"}
	o.observe("a", unreachable)
	if got := o.order(addrs, 0, pr); !slices.Equal(got, []string{"b", "a"}) || len(pr.asked) != 0 {
		t.Fatalf("order = %v, probes %v; want a last and no probe yet", got, pr.asked)
	}
	now = now.Add(baseEjection)
	if got := o.order(addrs, 0, pr); !slices.Equal(got, []string{"b", "a"}) || !slices.Equal(pr.asked, []string{"a"}) {
		t.Fatalf("order = %v, probes %v; want a last and probed once", got, pr.asked)
	}
	// Still down for many rounds: probed at most once a second.
	for range 40 {
		now = now.Add(100 * time.Millisecond)
		o.order(addrs, 0, pr)
	}
	if n := len(pr.asked); n < 4 || n > 17 {
		t.Fatalf("%d probes in 4 s, want one every %v to %v", n, baseEjection, maxProbeInterval)
	}
	pr.connected["a"] = true
	if got := o.order(addrs, 0, pr); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("with a connection open: order = %v, want a back first", got)
	}
}

func TestEjectionDoublesToItsCap(t *testing.T) {
	for n, want := range map[int]time.Duration{1: baseEjection, 2: 2 * baseEjection, 3: 4 * baseEjection, 10: maxEjection, 100: maxEjection} {
		if got := ejection(n); got != want {
			t.Errorf("ejection(%d) = %v, want %v", n, got, want)
		}
	}
}

// The trial call goes to the provider first whatever the turn, so it is
// certainly made and its outcome decides; a second provider out of
// ejection waits for a later call.
func TestOutlierTrialGoesFirst(t *testing.T) {
	now := time.Unix(0, 0)
	o := newOutliers(slog.New(slog.NewTextHandler(io.Discard, nil)))
	o.now = func() time.Time { return now }
	for range ejectAfter {
		o.observe("b", gateway)
		o.observe("c", gateway)
	}
	now = now.Add(baseEjection)
	addrs := []string{"a", "b", "c"}
	if got := o.order(addrs, 2, nil); !slices.Equal(got, []string{"c", "a", "b"}) {
		t.Fatalf("order = %v, want c's trial first, then a, and b (also due) last", got)
	}
	if got := o.order(addrs, 0, nil); !slices.Equal(got, []string{"b", "a", "c"}) {
		t.Fatalf("next order = %v, want b's trial first and c (on trial) last", got)
	}
}
