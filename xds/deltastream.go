package xds

import (
	"crypto/sha256"
	"encoding/binary"
	"maps"
	"slices"
	"strconv"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DeltaAggregatedResources runs one delta ADS stream with the protocol of
// go-control-plane's delta server. Its own because that server keeps, for
// every client, a private map of the version of each resource the client
// holds, and the names it subscribed to, written in place: two thousand
// endpoints are some 80 KB a client. Here those are shared by the clients
// that hold or asked for the same (the set's own version map, interned
// name sets), and copied only when a client's differ.
func (a *adsServer) DeltaAggregatedResources(stream discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	id := a.deltaIDs.Add(1)
	node := &core.Node{}
	watches := map[string]*deltaStreamWatch{}
	// Two responses per type at most are queued: one a watch answered,
	// one an on-demand first answer (ondemand.go).
	respCh := make(chan cache.DeltaResponse, 32)
	defer func() {
		for _, w := range watches {
			if w.cancel != nil {
				w.cancel()
			}
		}
		a.callbacks.OnDeltaStreamClosed(id, node)
	}()
	if err := a.callbacks.OnDeltaStreamOpen(stream.Context(), id, resource.AnyType); err != nil {
		return err
	}
	var nonce int64
	send := func(resp cache.DeltaResponse) error {
		out, err := resp.GetDeltaDiscoveryResponse()
		if err != nil {
			return err
		}
		nonce++
		out.Nonce = strconv.FormatInt(nonce, 10)
		a.callbacks.OnStreamDeltaResponse(id, resp.GetDeltaRequest(), out)
		if w := watches[resp.GetDeltaRequest().GetTypeUrl()]; w != nil {
			w.sub = w.sub.sent(resp.GetNextVersionMap())
		}
		return stream.Send(out)
	}
	reqCh := receive(a.ctx, stream.Context(), stream.Recv)
	for {
		select {
		case <-a.ctx.Done():
			return nil
		case resp := <-respCh:
			if err := send(resp); err != nil {
				return err
			}
		case req, ok := <-reqCh:
			if !ok {
				return nil
			}
			if req == nil {
				return status.Error(codes.Unavailable, "empty request")
			}
			// What is queued goes first, so no watch answers a request it
			// did not see.
			for drained := false; !drained; {
				select {
				case resp := <-respCh:
					if err := send(resp); err != nil {
						return err
					}
				default:
					drained = true
				}
			}
			if err := a.callbacks.OnStreamDeltaRequest(id, req); err != nil {
				return err
			}
			if req.GetNode() != nil {
				node = req.GetNode()
			} else {
				req.Node = node
			}
			typeURL := req.GetTypeUrl()
			if typeURL == "" {
				return status.Error(codes.InvalidArgument, "type URL is required for ADS")
			}
			if !servedType(typeURL) && typeURL != resource.VirtualHostType {
				// As on state-of-the-world streams: a type not served keeps
				// no state, so a client's type URLs cannot grow the stream.
				continue
			}
			if err := a.deltaRequest(watches, req, node, respCh); err != nil {
				return err
			}
		}
	}
}

type deltaStreamWatch struct {
	cancel func()
	sub    *deltaSub
}

// deltaRequest replaces the type's watch with one for the request's
// subscription. The cache keeps the watch's request until it answers: it
// gets the fields it reads, not the names, which the subscription holds.
func (a *adsServer) deltaRequest(watches map[string]*deltaStreamWatch, req *discovery.DeltaDiscoveryRequest, node *core.Node,
	respCh chan cache.DeltaResponse) error {
	typeURL := req.GetTypeUrl()
	w := watches[typeURL]
	if w == nil {
		w = &deltaStreamWatch{sub: newDeltaSub(req.GetResourceNamesSubscribe(), req.GetResourceNamesUnsubscribe(),
			req.GetInitialResourceVersions(), &a.deltaNames)}
		watches[typeURL] = w
	} else {
		if w.cancel != nil {
			w.cancel()
		}
		w.sub = w.sub.update(req.GetResourceNamesSubscribe(), req.GetResourceNamesUnsubscribe(), &a.deltaNames)
	}
	slim := &discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: typeURL, ResponseNonce: req.GetResponseNonce()}
	cancel, err := a.watcher.CreateDeltaWatch(slim, w.sub, respCh)
	if err != nil {
		return err
	}
	w.cancel = cancel // nil when the cache answered at once
	return nil
}

// deltaSub is a delta stream's subscription to one type, never changed
// once a watch has it: a request or a response makes a new one, and its
// maps are copied only when they change (the ones it starts from are
// shared). Its rules are go-control-plane's: an empty first request
// subscribes to everything until names are given, "*" subscribes to
// everything explicitly, and unsubscribing by name from a wildcard
// subscription makes the server say whether the resource still exists.
type deltaSub struct {
	legacy     bool
	wildcard   bool
	subscribed map[string]struct{} // read-only
	returned   map[string]string   // read-only
}

var emptySubscribed = map[string]struct{}{}

func newDeltaSub(subscribe, unsubscribe []string, initial map[string]string, names *subscribedSets) *deltaSub {
	s := &deltaSub{legacy: true, wildcard: len(subscribe) == 0, subscribed: emptySubscribed, returned: initial}
	if s.returned == nil {
		s.returned = map[string]string{}
	}
	return s.update(subscribe, unsubscribe, names)
}

func (s *deltaSub) update(subscribe, unsubscribe []string, names *subscribedSets) *deltaSub {
	next := *s
	if next.legacy {
		if len(subscribe) == 0 {
			return &next
		}
		next.legacy = false
	}
	var subscribed map[string]struct{}
	mutable := func() map[string]struct{} {
		if subscribed == nil {
			subscribed = maps.Clone(next.subscribed)
		}
		return subscribed
	}
	var returned map[string]string
	own := func() map[string]string {
		if returned == nil {
			returned = maps.Clone(next.returned)
		}
		return returned
	}
	for _, r := range subscribe {
		if r == "*" {
			next.wildcard = true
			continue
		}
		if _, ok := next.subscribed[r]; !ok || subscribed != nil {
			mutable()[r] = struct{}{}
		}
	}
	for _, r := range unsubscribe {
		if r == "*" {
			next.wildcard = false
			continue
		}
		set := next.subscribed
		if subscribed != nil {
			set = subscribed
		}
		if _, ok := set[r]; ok && next.wildcard {
			own()[r] = "" // answered with the resource, or its removal
		} else if _, held := next.returned[r]; held || returned != nil {
			delete(own(), r)
		}
		if _, ok := set[r]; ok {
			delete(mutable(), r)
		}
	}
	if subscribed != nil {
		next.subscribed = names.intern(subscribed)
	}
	if returned != nil {
		next.returned = returned
	}
	return &next
}

// sent is s once the client holds returned (a map the stream does not
// write into; often the set's own).
func (s *deltaSub) sent(returned map[string]string) *deltaSub {
	next := *s
	next.returned = returned
	return &next
}

func (s *deltaSub) ReturnedResources() map[string]string     { return s.returned }
func (s *deltaSub) SubscribedResources() map[string]struct{} { return s.subscribed }
func (s *deltaSub) IsWildcard() bool                         { return s.wildcard }

// subscribedSets hands out one read-only set per distinct set of names,
// bounded as nameInterner is.
type subscribedSets struct {
	mu   sync.Mutex
	sets map[[32]byte]map[string]struct{}
}

func (in *subscribedSets) intern(set map[string]struct{}) map[string]struct{} {
	names := slices.Sorted(maps.Keys(set))
	h := sha256.New()
	var size [binary.MaxVarintLen64]byte
	for _, n := range names {
		h.Write(size[:binary.PutUvarint(size[:], uint64(len(n)))])
		h.Write([]byte(n))
	}
	var key [32]byte
	h.Sum(key[:0])
	in.mu.Lock()
	defer in.mu.Unlock()
	if s, ok := in.sets[key]; ok {
		return s
	}
	if in.sets == nil || len(in.sets) >= maxInterned {
		in.sets = map[[32]byte]map[string]struct{}{}
	}
	in.sets[key] = set
	return set
}
