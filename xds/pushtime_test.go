package xds_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// TestPushMetrics: a reload whose new routes the group's Envoy takes is one
// push-latency observation for the group, and each ACK is counted by
// group and type.
func TestPushMetrics(t *testing.T) {
	path := mappingFile(t, mapping)
	p := start(t, "127.0.0.1:0", path)
	conn := dial(t, p.srv.XDSAddr())
	c := newClient(t, conn, "envoy-1", "edge", resource.RouteType)
	if _, ok := c.next(5 * time.Second); !ok {
		t.Fatal("no first push")
	}
	c.ack()
	count := func(series string) int {
		v := p.metric(t, series)
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s = %q", series, v)
		}
		return n
	}
	acks := `protogate_xds_acks_total{group="edge",type_url="` + resource.RouteType + `"}`
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("waited in vain for %s", what)
			}
		}
	}
	waitFor("the first ACK to be counted", func() bool { return count(acks) == 1 })
	writeFile(t, path, withPong)
	if _, ok := c.next(5 * time.Second); !ok {
		t.Fatal("no push after the edit")
	}
	c.ack()
	waitFor("the second ACK to be counted", func() bool { return count(acks) == 2 })
	waitFor("the push to be timed", func() bool {
		return count(`protogate_xds_push_duration_seconds_count{group="edge"}`) == 1
	})
	// rpc's version did not change: nothing to time there.
	if n := count(`protogate_xds_push_duration_seconds_count{group="rpc"}`); n != 0 {
		t.Fatalf("rpc push timed %d times", n)
	}
}
