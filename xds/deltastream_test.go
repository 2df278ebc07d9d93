package xds

import (
	"maps"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
)

// TestDeltaSubAsGoControlPlane: a delta stream's subscription follows
// go-control-plane's rules request by request, and never writes into the
// maps it started from, which other streams share.
func TestDeltaSubAsGoControlPlane(t *testing.T) {
	type step struct{ sub, unsub []string }
	for _, tt := range []struct {
		name     string
		initial  map[string]string
		held     map[string]string // what the client was sent after the first request
		requests []step
	}{
		{name: "legacy wildcard stays", requests: []step{{nil, nil}, {nil, nil}}},
		{name: "legacy wildcard, then names", requests: []step{{nil, nil}, {[]string{"a", "b"}, nil}}},
		{name: "names, then more, then fewer", held: map[string]string{"a": "1", "b": "1"},
			requests: []step{{[]string{"a", "b"}, nil}, {[]string{"c"}, nil}, {nil, []string{"a"}}}},
		{name: "wildcard, unsubscribing a name", held: map[string]string{"a": "1", "b": "1"},
			requests: []step{{[]string{"*", "a"}, nil}, {nil, []string{"a"}}, {nil, []string{"b"}}}},
		{name: "explicit wildcard off", held: map[string]string{"a": "1"},
			requests: []step{{[]string{"*"}, nil}, {[]string{"a"}, []string{"*"}}}},
		{name: "resumed with versions", initial: map[string]string{"a": "1", "x": "9"},
			requests: []step{{[]string{"a"}, nil}, {nil, []string{"x"}}, {nil, []string{"a"}}}},
		{name: "unsubscribing what was never subscribed", held: map[string]string{"a": "1"},
			requests: []step{{[]string{"a"}, nil}, {nil, []string{"zz"}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var names subscribedSets
			initialCopy := maps.Clone(tt.initial)
			first := tt.requests[0]
			want := stream.NewDeltaSubscription(first.sub, first.unsub, maps.Clone(tt.initial), true)
			got := newDeltaSub(first.sub, first.unsub, tt.initial, &names)
			var heldCopy map[string]string
			for i, r := range tt.requests {
				if i > 0 {
					want.UpdateResourceSubscriptions(r.sub, r.unsub)
					got = got.update(r.sub, r.unsub, &names)
				}
				if got.IsWildcard() != want.IsWildcard() || !maps.Equal(got.SubscribedResources(), want.SubscribedResources()) ||
					!maps.Equal(got.ReturnedResources(), want.ReturnedResources()) {
					t.Fatalf("after request %d: wildcard %v subscribed %v returned %v; go-control-plane: %v %v %v", i,
						got.IsWildcard(), got.SubscribedResources(), got.ReturnedResources(),
						want.IsWildcard(), want.SubscribedResources(), want.ReturnedResources())
				}
				if i == 0 && tt.held != nil {
					// Sent a map shared with other streams.
					heldCopy = maps.Clone(tt.held)
					want.SetReturnedResources(maps.Clone(tt.held))
					got = got.sent(tt.held)
				}
			}
			if tt.held != nil && !maps.Equal(tt.held, heldCopy) {
				t.Fatalf("the shared map it was sent was written into: %v, was %v", tt.held, heldCopy)
			}
			if tt.initial != nil && !maps.Equal(tt.initial, initialCopy) {
				t.Fatalf("the request's initial versions were written into: %v, was %v", tt.initial, initialCopy)
			}
		})
	}
}
