package xds

import (
	"runtime"
	"sync"
	"weak"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	protobuf "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// frozenByFirst finds a frozen set by the first of its Any messages. It
// holds neither: a set that no snapshot or response uses any more is
// collected, and its entry goes with it.
var frozenByFirst sync.Map // weak.Pointer[anypb.Any] → weak.Pointer[frozenSet]

func registerFrozen(fs *frozenSet) {
	if len(fs.anys) == 0 {
		return
	}
	key := weak.Make(fs.anys[0])
	frozenByFirst.Store(key, weak.Make(fs))
	runtime.AddCleanup(fs, func(k weak.Pointer[anypb.Any]) { frozenByFirst.Delete(k) }, key)
}

// frozenOf is the frozen set whose resources are exactly resources (the
// same backing array, as sharedResponse hands it out), or nil.
func frozenOf(resources []*anypb.Any) *frozenSet {
	if len(resources) == 0 {
		return nil
	}
	v, ok := frozenByFirst.Load(weak.Make(resources[0]))
	if !ok {
		return nil
	}
	fs := v.(weak.Pointer[frozenSet]).Value()
	if fs == nil || len(fs.anys) != len(resources) || &fs.anys[0] != &resources[0] {
		return nil
	}
	return fs
}

// sharedCodec is gRPC's proto codec, except for a DiscoveryResponse of
// frozen resources: those go out as the bytes marshalled once for every
// stream, after a few bytes of this response's own (version, type and
// nonce). Protobuf fields may come in any order, so the message is the
// same one Envoy would get from a marshal of the whole.
type sharedCodec struct{ encoding.CodecV2 }

func newSharedCodec() sharedCodec { return sharedCodec{encoding.GetCodecV2(proto.Name)} }

func (c sharedCodec) Marshal(v any) (mem.BufferSlice, error) {
	resp, ok := v.(*discovery.DiscoveryResponse)
	if !ok {
		return c.CodecV2.Marshal(v)
	}
	fs := frozenOf(resp.GetResources())
	if fs == nil {
		return c.CodecV2.Marshal(v)
	}
	head, err := protobuf.Marshal(&discovery.DiscoveryResponse{VersionInfo: resp.GetVersionInfo(), Canary: resp.GetCanary(),
		TypeUrl: resp.GetTypeUrl(), Nonce: resp.GetNonce(), ControlPlane: resp.GetControlPlane()})
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(head), mem.SliceBuffer(fs.encoded)}, nil
}
