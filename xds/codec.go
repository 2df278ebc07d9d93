package xds

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"runtime"
	"sync"
	"unicode/utf8"
	"weak"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	protobuf "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
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

// deltaWires finds, by a delta response's message, the set its resources
// are entries of and which ones, in order. It holds the message weakly:
// the entry goes with it.
var deltaWires sync.Map // weak.Pointer[discovery.DeltaDiscoveryResponse] → *deltaWire

type deltaWire struct {
	set     *deltaSet
	changed []int32
}

func registerDelta(msg *discovery.DeltaDiscoveryResponse, set *deltaSet, changed []int32) {
	if len(changed) == 0 {
		return
	}
	key := weak.Make(msg)
	deltaWires.Store(key, &deltaWire{set: set, changed: changed})
	runtime.AddCleanup(msg, func(k weak.Pointer[discovery.DeltaDiscoveryResponse]) { deltaWires.Delete(k) }, key)
}

// deltaWireOf is how msg's resources were encoded, if they are still
// exactly the registered entries.
func deltaWireOf(msg *discovery.DeltaDiscoveryResponse) *deltaWire {
	if len(msg.GetResources()) == 0 {
		return nil
	}
	v, ok := deltaWires.Load(weak.Make(msg))
	if !ok {
		return nil
	}
	w := v.(*deltaWire)
	if len(w.changed) != len(msg.Resources) {
		return nil
	}
	for i, at := range w.changed {
		if msg.Resources[i] != &w.set.entries[at] {
			return nil
		}
	}
	return w
}

// sharedCodec is gRPC's proto codec, except for a DiscoveryResponse of
// frozen resources and a DeltaDiscoveryResponse of a delta set's entries:
// those go out as the bytes marshalled once for every stream, after a few
// bytes of this response's own (version, type, nonce, removals).
// Protobuf fields may come in any order, so the message is the same one
// Envoy would get from a marshal of the whole.
type sharedCodec struct{ encoding.CodecV2 }

func newSharedCodec() sharedCodec { return sharedCodec{encoding.GetCodecV2(proto.Name)} }

func (c sharedCodec) Marshal(v any) (mem.BufferSlice, error) {
	if resp, ok := v.(*discovery.DeltaDiscoveryResponse); ok {
		return c.marshalDelta(resp)
	}
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

// marshalDelta writes resp's own fields, then its resources as runs of
// their set's encoding: consecutive entries are one slice.
func (c sharedCodec) marshalDelta(resp *discovery.DeltaDiscoveryResponse) (mem.BufferSlice, error) {
	w := deltaWireOf(resp)
	if w == nil {
		return c.CodecV2.Marshal(resp)
	}
	head, err := protobuf.Marshal(withoutResources(resp))
	if err != nil {
		return nil, err
	}
	out := mem.BufferSlice{mem.SliceBuffer(head)}
	for i := 0; i < len(w.changed); {
		j := i + 1
		for j < len(w.changed) && w.changed[j] == w.changed[j-1]+1 {
			j++
		}
		from, to := w.set.offsets[w.changed[i]], w.set.offsets[w.changed[j-1]+1]
		out = append(out, mem.SliceBuffer(w.set.encoded[from:to:to]))
		i = j
	}
	return out, nil
}

// withoutResources is resp's other fields, every one of them (a field
// added to the message is not lost), sharing their values.
func withoutResources(resp *discovery.DeltaDiscoveryResponse) *discovery.DeltaDiscoveryResponse {
	out := &discovery.DeltaDiscoveryResponse{}
	dst := out.ProtoReflect()
	src := resp.ProtoReflect()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Number() != deltaResourcesField {
			dst.Set(fd, v)
		}
		return true
	})
	dst.SetUnknown(src.GetUnknown())
	return out
}

// deltaResourcesField is DeltaDiscoveryResponse.resources.
const deltaResourcesField = 2

// Unmarshal decodes requests as gRPC's proto codec does, except the names
// of a state-of-the-world request: Envoy sends every name it subscribes to
// with every request (two thousand endpoint names is some 60 KB of strings
// a request, on each ACK too), and the streams of a group send the same
// list, so a list seen before is the one already held, not a new copy.
func (c sharedCodec) Unmarshal(data mem.BufferSlice, v any) error {
	req, ok := v.(*discovery.DiscoveryRequest)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	h := sha256.New()
	var size [binary.MaxVarintLen64]byte
	var rest []byte
	count := 0
	for in := b; len(in) > 0; {
		num, typ, n := protowire.ConsumeTag(in)
		if n < 0 {
			return protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, in[n:])
		if m < 0 {
			return protowire.ParseError(m)
		}
		if num == 3 && typ == protowire.BytesType { // resource_names
			name, _ := protowire.ConsumeBytes(in[n:])
			// Each name after its length: no list hashes as another.
			h.Write(size[:binary.PutUvarint(size[:], uint64(len(name)))])
			h.Write(name)
			count++
		} else {
			rest = append(rest, in[:n+m]...)
		}
		in = in[n+m:]
	}
	if count == 0 {
		return protobuf.Unmarshal(b, req)
	}
	if err := protobuf.Unmarshal(rest, req); err != nil {
		return err
	}
	var key [32]byte
	h.Sum(key[:0])
	req.ResourceNames = requestNames.get(key, func() ([]string, error) {
		names := make([]string, 0, count)
		for in := b; len(in) > 0; {
			num, typ, n := protowire.ConsumeTag(in)
			m := protowire.ConsumeFieldValue(num, typ, in[n:])
			if num == 3 && typ == protowire.BytesType {
				name, _ := protowire.ConsumeBytes(in[n:])
				if !utf8.Valid(name) {
					return nil, errors.New("resource_names: invalid UTF-8")
				}
				names = append(names, string(name))
			}
			in = in[n+m:]
		}
		return names, nil
	})
	if req.ResourceNames == nil {
		return errors.New("resource_names: invalid UTF-8")
	}
	return nil
}

// requestNames are the name lists requests carried, by their hash; read
// only once handed out. Bounded as nameInterner is.
var requestNames = &nameLists{lists: map[[32]byte][]string{}}

type nameLists struct {
	mu    sync.Mutex
	lists map[[32]byte][]string
}

func (l *nameLists) get(key [32]byte, build func() ([]string, error)) []string {
	l.mu.Lock()
	names, ok := l.lists[key]
	l.mu.Unlock()
	if ok {
		return names
	}
	names, err := build()
	if err != nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lists) >= maxInterned {
		l.lists = map[[32]byte][]string{}
	}
	l.lists[key] = names
	return names
}
