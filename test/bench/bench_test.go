package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// split cuts b into buffers of n bytes, as gRPC may hand a message over.
func split(b []byte, n int) mem.BufferSlice {
	var out mem.BufferSlice
	for len(b) > 0 {
		k := min(n, len(b))
		out = append(out, mem.SliceBuffer(bytes.Clone(b[:k])))
		b = b[k:]
	}
	return out
}

// The shallow codec must read the same version, type and nonce as a full
// decode, wherever the buffers are cut, or every ACK is wrong.
func TestShallowCodecReadsWhatProtoReads(t *testing.T) {
	big := &anypb.Any{TypeUrl: resource.RouteType, Value: bytes.Repeat([]byte{0xff, 0x01}, 40_000)}
	sotw := &discovery.DiscoveryResponse{VersionInfo: "v-" + strings.Repeat("9", 300), TypeUrl: resource.RouteType, Nonce: "n42",
		Resources: []*anypb.Any{big, big}, Canary: true}
	delta := &discovery.DeltaDiscoveryResponse{SystemVersionInfo: "sys-7", TypeUrl: resource.ClusterType, Nonce: "n43",
		Resources: []*discovery.Resource{{Name: "c1", Version: "x", Resource: big}}, RemovedResources: []string{"gone"}}
	for _, cut := range []int{1, 3, 7, 64, 1 << 20} {
		raw, err := proto.Marshal(sotw)
		if err != nil {
			t.Fatal(err)
		}
		var got discovery.DiscoveryResponse
		if err := (shallowCodec{}).Unmarshal(split(raw, cut), &got); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if got.VersionInfo != sotw.VersionInfo || got.TypeUrl != sotw.TypeUrl || got.Nonce != sotw.Nonce || len(got.Resources) != 0 {
			t.Errorf("cut %d: got version %.10q type %q nonce %q (%d resources)", cut, got.VersionInfo, got.TypeUrl, got.Nonce, len(got.Resources))
		}
		raw, err = proto.Marshal(delta)
		if err != nil {
			t.Fatal(err)
		}
		var gotDelta discovery.DeltaDiscoveryResponse
		if err := (shallowCodec{}).Unmarshal(split(raw, cut), &gotDelta); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if gotDelta.SystemVersionInfo != "sys-7" || gotDelta.TypeUrl != resource.ClusterType || gotDelta.Nonce != "n43" {
			t.Errorf("cut %d: got delta version %q type %q nonce %q", cut, gotDelta.SystemVersionInfo, gotDelta.TypeUrl, gotDelta.Nonce)
		}
	}
}

func TestShallowCodecRefusesTruncatedMessages(t *testing.T) {
	raw, err := proto.Marshal(&discovery.DiscoveryResponse{VersionInfo: "v1", TypeUrl: resource.RouteType, Nonce: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	var got discovery.DiscoveryResponse
	if err := (shallowCodec{}).Unmarshal(split(raw[:len(raw)-1], 4), &got); err == nil {
		t.Fatalf("a truncated response decoded: %+v", &got)
	}
}

// The load generator's reader must take every answer of a keep-alive
// connection whole (or the next request reads the last one's leftovers),
// Content-Length or chunked, and report a wrong status.
func TestHTTPWorkerReadsKeepAliveAnswers(t *testing.T) {
	var conns, reqs atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		switch r.URL.Path {
		case "/chunked":
			w.WriteHeader(http.StatusCreated)
			w.(http.Flusher).Flush() // forces chunked encoding
			fmt.Fprint(w, "late")
			w.(http.Flusher).Flush()
			fmt.Fprint(w, strings.Repeat("z", 20_000))
		case "/teapot":
			w.WriteHeader(http.StatusTeapot)
		default:
			// answers of every size, some past the reader's buffer
			w.Header().Set("X-Padding", strings.Repeat("p", int(reqs.Load()%7)*1000))
			w.WriteHeader(http.StatusCreated)
			w.Write(bytes.Repeat([]byte("b"), int(reqs.Load()*997%40_000)))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	op, done, err := newHTTPReq(addr, "POST", "/ok", "application/json", []byte(`"hello"`), 201).worker(0)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	for i := range 200 {
		if err := op(); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if conns.Load() != 1 || reqs.Load() != 200 {
		t.Fatalf("%d requests over %d connections, want 200 over 1", reqs.Load(), conns.Load())
	}

	chunks, done2, err := newHTTPReq(addr, "GET", "/chunked", "text/plain", nil, 201).worker(0)
	if err != nil {
		t.Fatal(err)
	}
	defer done2()
	for i := range 20 {
		if err := chunks(); err != nil {
			t.Fatalf("chunked answer %d: %v", i, err)
		}
	}

	teapot, done3, err := newHTTPReq(addr, "GET", "/teapot", "text/plain", nil, 201).worker(0)
	if err != nil {
		t.Fatal(err)
	}
	defer done3()
	if err := teapot(); err == nil || !strings.Contains(err.Error(), "status 418, want 201") {
		t.Errorf("a 418 answer: got %v, want an error naming the status", err)
	}
	if conns.Load() != 3 || reqs.Load() != 221 {
		t.Errorf("%d requests over %d connections, want 221 over 3", reqs.Load(), conns.Load())
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h hist
	for i := 1; i <= 10_000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5 * time.Millisecond}, {0.99, 9900 * time.Microsecond}} {
		got := h.quantile(c.q)
		if diff := float64(got-c.want) / float64(c.want); diff < -0.02 || diff > 0.02 {
			t.Errorf("p%.0f = %v, want %v within 2%%", c.q*100, got, c.want)
		}
	}
}
