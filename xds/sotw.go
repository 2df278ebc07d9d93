package xds

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// adsServer serves ADS: state-of-the-world streams here, delta streams in
// deltastream.go, with go-control-plane's callbacks. go-control-plane's own
// state-of-the-world stream keeps, for every client, the names it asked
// for as a map of its own and the request naming them (two thousand
// endpoint names is some 200 KB a client); here a stream holds names the
// clients of a group share, and only what the cache needs of a request.
type adsServer struct {
	discovery.UnimplementedAggregatedDiscoveryServiceServer
	ctx       context.Context
	watcher   cache.ConfigWatcher
	callbacks serverv3.Callbacks
	ids       atomic.Int64
	names     nameInterner
	// deltaIDs number delta streams (xds/deltastream.go); deltaNames are
	// their subscribed name sets.
	deltaIDs   atomic.Int64
	deltaNames subscribedSets
}

func newADSServer(ctx context.Context, watcher cache.Cache, callbacks serverv3.Callbacks) *adsServer {
	return &adsServer{ctx: ctx, watcher: watcher, callbacks: callbacks,
		names: nameInterner{sets: map[[32]byte]*nameSet{}}}
}

// receive reads requests off a stream into a channel, closed when the
// stream ends, so that a stream's loop can wait on requests and responses
// at once.
func receive[T any](server, stream context.Context, recv func() (T, error)) <-chan T {
	ch := make(chan T)
	go func() {
		defer close(ch)
		for {
			req, err := recv()
			if err != nil {
				return
			}
			select {
			case ch <- req:
			case <-stream.Done():
				return
			case <-server.Done():
				return
			}
		}
	}()
	return ch
}

// sotwStream is one state-of-the-world stream.
type sotwStream struct {
	a      *adsServer
	id     int64
	stream discovery.AggregatedDiscoveryService_StreamAggregatedResourcesServer
	node   *core.Node
	nonce  int64
	types  map[string]*sotwType
	respCh chan cache.Response
}

// sotwType is a stream's state for one type URL: its watch, the nonce of
// the last response and its subscription.
type sotwType struct {
	cancel func()
	nonce  string
	sub    *sotwSub
}

// StreamAggregatedResources runs one state-of-the-world ADS stream, with
// the protocol go-control-plane's ordered ADS server follows: a request
// answering an older nonce is ignored; a new request replaces the type's
// watch, and responses of other types already queued go out first.
func (a *adsServer) StreamAggregatedResources(stream discovery.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	st := &sotwStream{a: a, id: a.ids.Add(1), stream: stream, node: &core.Node{}, types: map[string]*sotwType{},
		// One response per watched type at most is ever queued.
		respCh: make(chan cache.Response, 16)}
	defer st.shutdown()
	if err := a.callbacks.OnStreamOpen(stream.Context(), st.id, resource.AnyType); err != nil {
		return err
	}
	reqCh := receive(a.ctx, stream.Context(), stream.Recv)
	for {
		select {
		case <-a.ctx.Done():
			return nil
		case resp := <-st.respCh:
			if err := st.send(resp); err != nil {
				return status.Error(codes.Unavailable, err.Error())
			}
		case req, ok := <-reqCh:
			if !ok {
				return nil
			}
			if err := st.request(req); err != nil {
				return err
			}
		}
	}
}

func (st *sotwStream) shutdown() {
	for _, t := range st.types {
		if t.cancel != nil {
			t.cancel()
		}
	}
	st.a.callbacks.OnStreamClosed(st.id, st.node)
}

func (st *sotwStream) request(req *discovery.DiscoveryRequest) error {
	if req == nil {
		return status.Error(codes.Unavailable, "empty request")
	}
	if req.GetNode() != nil {
		st.node = req.GetNode()
	} else {
		req.Node = st.node
	}
	typeURL := req.GetTypeUrl()
	if typeURL == "" {
		return status.Error(codes.InvalidArgument, "type URL is required for ADS")
	}
	if err := st.a.callbacks.OnStreamRequest(st.id, req); err != nil {
		return err
	}
	if !servedType(typeURL) {
		// Nothing of a type not served is ever sent; keeping no state for
		// it bounds what a client's type URLs can make the stream hold.
		return nil
	}
	t := st.types[typeURL]
	var sub *sotwSub
	if t != nil {
		if t.nonce != "" && req.GetResponseNonce() != t.nonce {
			return nil // an answer to an older response: the next one follows
		}
		if t.cancel != nil {
			t.cancel()
		}
		if err := st.sendAllExcept(typeURL); err != nil {
			return err
		}
		sub = t.sub.subscribe(st.a.names.intern(typeURL, req.GetResourceNames()))
	} else {
		t = &sotwType{}
		st.types[typeURL] = t
		sub = newSotwSub(st.a.names.intern(typeURL, req.GetResourceNames()))
	}
	t.sub = sub
	// The cache keeps the watch's request until it answers: it gets the
	// fields it reads, with the shared names.
	slim := &discovery.DiscoveryRequest{VersionInfo: req.GetVersionInfo(), Node: st.node, ResourceNames: sub.names.names,
		TypeUrl: typeURL, ResponseNonce: req.GetResponseNonce()}
	cancel, err := st.a.watcher.CreateWatch(slim, sub, st.respCh)
	if err != nil {
		return err
	}
	t.cancel = cancel
	return nil
}

// sendAllExcept sends the queued responses of other types and drops those
// of typeURL, whose watch a newer request replaces.
func (st *sotwStream) sendAllExcept(typeURL string) error {
	for {
		select {
		case resp := <-st.respCh:
			if resp.GetRequest().GetTypeUrl() != typeURL {
				if err := st.send(resp); err != nil {
					return err
				}
			}
		default:
			return nil
		}
	}
}

func (st *sotwStream) send(resp cache.Response) error {
	if resp == nil {
		return errors.New("missing response")
	}
	out, err := resp.GetDiscoveryResponse()
	if err != nil {
		return err
	}
	typeURL := resp.GetRequest().GetTypeUrl()
	t, ok := st.types[typeURL]
	if !ok {
		return fmt.Errorf("no current watch for %s", typeURL)
	}
	st.nonce++
	out.Nonce = strconv.FormatInt(st.nonce, 10)
	t.nonce = out.Nonce
	t.sub = t.sub.sent(resp.GetReturnedResources())
	st.a.callbacks.OnStreamResponse(resp.GetContext(), st.id, resp.GetRequest(), out)
	return st.stream.Send(out)
}

// sotwSub is a stream's subscription to one type, never changed once a
// watch has it (a change makes a new one). Wildcard rules are Envoy's:
// an empty first request subscribes to everything until names are given,
// and "*" names everything explicitly.
type sotwSub struct {
	legacy   bool // still subscribed by an empty request
	wildcard bool
	names    *nameSet
	returned map[string]string // read-only: often the map every stream of the group was sent
}

func newSotwSub(names *nameSet) *sotwSub {
	s := &sotwSub{legacy: true, wildcard: len(names.names) == 0, returned: map[string]string{}}
	return s.subscribe(names)
}

// subscribe is s with the names of a new request.
func (s *sotwSub) subscribe(names *nameSet) *sotwSub {
	next := *s
	next.names = names
	if next.legacy && len(names.names) == 0 {
		return &next
	}
	next.legacy = false
	next.wildcard = names.star
	if !next.wildcard {
		// What is no longer subscribed counts as not sent, so that
		// subscribing to it again gets it.
		for name := range s.returned {
			if _, ok := names.set[name]; !ok {
				next.returned = names.keep(s.returned)
				break
			}
		}
	}
	return &next
}

func (s *sotwSub) sent(returned map[string]string) *sotwSub {
	next := *s
	next.returned = returned
	return &next
}

func (s *sotwSub) ReturnedResources() map[string]string     { return s.returned }
func (s *sotwSub) SubscribedResources() map[string]struct{} { return s.names.set }
func (s *sotwSub) IsWildcard() bool                         { return s.wildcard }

// nameSet is a list of requested resource names, shared by the streams
// that asked for the same list.
type nameSet struct {
	names []string
	set   map[string]struct{} // without "*"
	star  bool
}

// keep is returned without the names not in n.
func (n *nameSet) keep(returned map[string]string) map[string]string {
	out := make(map[string]string, len(n.set))
	for name, v := range returned {
		if _, ok := n.set[name]; ok {
			out[name] = v
		}
	}
	return out
}

// nameInterner hands out one nameSet per distinct list of names. It is
// bounded: past maxInterned lists it starts afresh (streams keep what
// they hold), so clients naming ever new lists cannot grow it.
type nameInterner struct {
	mu   sync.Mutex
	sets map[[32]byte]*nameSet
}

const maxInterned = 1024

func (in *nameInterner) intern(typeURL string, names []string) *nameSet {
	h := sha256.New()
	h.Write([]byte(typeURL))
	var size [binary.MaxVarintLen64]byte
	for _, n := range names {
		// Each name after its length: no list of names hashes as another.
		h.Write(size[:binary.PutUvarint(size[:], uint64(len(n)))])
		h.Write([]byte(n))
	}
	var key [32]byte
	h.Sum(key[:0])
	in.mu.Lock()
	defer in.mu.Unlock()
	if ns, ok := in.sets[key]; ok {
		return ns
	}
	ns := &nameSet{names: names, set: make(map[string]struct{}, len(names))}
	for _, n := range names {
		if n == "*" {
			ns.star = true
			continue
		}
		ns.set[n] = struct{}{}
	}
	if len(in.sets) >= maxInterned {
		in.sets = map[[32]byte]*nameSet{}
	}
	in.sets[key] = ns
	return ns
}
