// Package xds serves translated Envoy resources over ADS (state of the world
// and delta on one port) to node groups, with content-hash versions, NACK
// tracking, and an admin endpoint that shows what each node is served.
package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/routetable"
)

// FallbackGroup is the key under which nodes of no known group are served a
// valid, empty configuration. The "/" keeps it apart from mapping names.
const FallbackGroup = "protogate/fallback"

// Types are the resource types served, in the order Envoy wants them.
var Types = []resource.Type{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType}

// Resources are one group's resources by type URL.
type Resources = map[resource.Type][]types.Resource

// Options configure a Server.
type Options struct {
	Address           string // ADS gRPC listen address
	AdminAddress      string // admin HTTP listen address
	MaxMessageSize    int
	MaxStreamsPerPeer uint32
	KeepaliveTime     time.Duration
	KeepaliveTimeout  time.Duration
	// GroupMetadataKey names the node metadata field holding the group;
	// empty means node.cluster.
	GroupMetadataKey string
	// Security and Limits are the mapping's xds.security and xds.limits
	// (xds/tls.go, xds/limits.go).
	Security config.XDSSecurity
	Limits   config.XDSLimits
	// Rollout, when set, rolls each new version out to canaries first.
	Rollout *config.Rollout
	// BridgeErrors, when set, counts the answers of the bridges in this
	// process on routes, all and 5xx; without it a rollout reads the
	// announced bridges' /metrics.
	BridgeErrors func(routes []string) (total, failed float64)
	Logger       *slog.Logger
	// BridgeAckTimeout bounds the wait for a group's connected bridges to
	// take a new route table before Envoy gets the routes that need it (0:
	// DefaultBridgeAckTimeout). A bridge that does not is a failed reload.
	BridgeAckTimeout time.Duration
	// EnvoyAckTimeout bounds the wait for a group's Envoys to take routes
	// that drop some before the bridges forget those (0:
	// DefaultEnvoyAckTimeout); after it the bridges forget them anyway.
	EnvoyAckTimeout time.Duration
	// Upstreams, when set, reports the upstreams of bridges running in
	// the same process (protogate run): /readyz and /status then tell
	// whether they can take calls, not only whether config is published.
	Upstreams func() []UpstreamHealth
}

// UpstreamHealth is whether an upstream can take calls, and why not.
type UpstreamHealth struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Usable   bool   `json:"usable"`
	Reason   string `json:"reason,omitempty"`
	// Optional: the mapping lets the gateway be ready without it.
	Optional bool `json:"optional,omitempty"`
	Known    int  `json:"known,omitempty"`
	Healthy  int  `json:"healthy,omitempty"`
}

// Server is the control plane: the snapshot cache, the gRPC ADS server and
// the admin HTTP server.
type Server struct {
	opts  Options
	log   *slog.Logger
	cache cache.SnapshotCache
	// tables holds each group's bridge route table, by group name.
	tables  *cache.LinearCache
	tracker *tracker
	metrics *metrics

	reloadMu sync.Mutex
	// membersMu orders the updates of bridge endpoints.
	membersMu sync.Mutex
	// waiting are the unknown groups nodes asked for, served the
	// fallback under their own name (xds/waiting.go), with when last used.
	waiting     map[string]time.Time
	waitingFull bool
	guard       *guardMetrics
	// inRollout are the groups whose candidate bakes on their canaries;
	// rejected the versions canaries rejected, by group (xds/rollout.go).
	inRollout map[string]*rollout
	rejected  map[string][]string
	rollouts  *rolloutMetrics
	// stateLoaded: the rollout state file was read (at the first reload).
	stateLoaded bool
	// stopped is closed by Shutdown: rollouts stop baking.
	stopped  chan struct{}
	stopOnce sync.Once
	bakes    sync.WaitGroup // rollouts' bake goroutines, waited for by Shutdown
	// onDemand are the groups whose Envoys load clusters on demand
	// (xds/ondemand.go).
	onDemand *onDemandSets
	// vhds are the open virtual-host watches (xds/vhds.go).
	vhds     vhdsWatches
	mu       sync.RWMutex
	groups   map[string]*published        // group → what it is served
	served   map[string]*routetable.Table // group → the route table its bridges finally hold
	reload   reloadStatus
	ready    atomic.Bool
	grpc     *grpc.Server
	admin    *http.Server
	xdsLis   net.Listener
	adminLis net.Listener
	started  time.Time
}

// published is a group's current snapshot and its versions.
type published struct {
	Version  string            `json:"version"`
	Types    map[string]string `json:"type_versions"`
	snapshot *servedSnapshot
	At       time.Time `json:"published_at"`
	// res are the resources as translated, served what the snapshot
	// holds (with the bridge endpoints), members the announced bridges
	// those endpoints are.
	res     Resources
	served  Resources
	members []string
}

// New builds a server; Start binds and serves it.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BridgeAckTimeout <= 0 {
		opts.BridgeAckTimeout = DefaultBridgeAckTimeout
	}
	if opts.EnvoyAckTimeout <= 0 {
		opts.EnvoyAckTimeout = DefaultEnvoyAckTimeout
	}
	s := &Server{opts: opts, log: opts.Logger, groups: map[string]*published{}, served: map[string]*routetable.Table{},
		waiting: map[string]time.Time{}}
	s.tables = cache.NewLinearCache(TableType, cache.WithLogger(cacheLogger{s.log}))
	s.metrics = newMetrics()
	s.guard = newGuardMetrics(s.metrics.registry)
	s.rollouts = newRolloutMetrics(s.metrics.registry)
	s.inRollout, s.rejected = map[string]*rollout{}, map[string][]string{}
	s.stopped = make(chan struct{})
	s.onDemand = &onDemandSets{groups: map[string]*onDemandGroup{}}
	s.tracker = newTracker(s)
	s.cache = vhdsNotify{newSharedCache(nodeHash{s}, cache.NewSnapshotCache(true, nodeHash{s}, cacheLogger{s.log})), s}
	if err := s.cache.SetSnapshot(context.Background(), FallbackGroup, fallbackSnapshot(nil)); err != nil {
		panic(err) // an empty snapshot is always valid
	}
	return s
}

// Registry exposes the server's Prometheus metrics.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.registry.Registry }

// Start binds the ADS and admin addresses and serves them until Shutdown.
func (s *Server) Start() error {
	var err error
	if s.xdsLis, err = net.Listen("tcp", s.opts.Address); err != nil {
		return fmt.Errorf("xds address %s: %w", s.opts.Address, err)
	}
	if s.adminLis, err = net.Listen("tcp", s.opts.AdminAddress); err != nil {
		s.xdsLis.Close()
		return fmt.Errorf("admin address %s: %w", s.opts.AdminAddress, err)
	}
	s.xdsLis = s.limitListener(s.xdsLis)
	sec, err := s.securityOptions()
	if err != nil {
		s.xdsLis.Close()
		s.adminLis.Close()
		return err
	}
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.opts.MaxMessageSize),
		grpc.MaxSendMsgSize(s.opts.MaxMessageSize),
		grpc.MaxConcurrentStreams(s.opts.MaxStreamsPerPeer),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: s.opts.KeepaliveTime, Timeout: s.opts.KeepaliveTimeout}),
		// Envoy pings idle ADS connections; allow it rather than close them.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		// Responses of a group's version go out as bytes marshalled once
		// (codec.go), and an idle connection holds no write buffer.
		grpc.ForceServerCodecV2(newSharedCodec()),
		grpc.SharedWriteBuffer(true),
	}
	opts = append(opts, sec...)
	opts = append(opts, s.limitOptions()...)
	s.grpc = grpc.NewServer(opts...)
	s.started = time.Now()
	xds := newADSServer(context.Background(), s.muxCache(), s.tracker)
	discovery.RegisterAggregatedDiscoveryServiceServer(s.grpc, xds)
	s.admin = &http.Server{Handler: s.adminAuth(s.adminHandler()), ReadHeaderTimeout: 5 * time.Second,
		// TLS handshake failures and the like, at DEBUG: a port scan must
		// not fill the log.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	if s.adminLis, err = s.adminTLS(s.adminLis); err != nil {
		s.xdsLis.Close()
		return err
	}
	go func() {
		if err := s.grpc.Serve(s.xdsLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("xds server stopped", "err", err)
		}
	}()
	go func() {
		if err := s.admin.Serve(s.adminLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server stopped", "err", err)
		}
	}()
	s.log.Info("control plane listening", "xds", s.XDSAddr(), "admin", s.AdminAddr())
	return nil
}

// XDSAddr is the bound ADS address.
func (s *Server) XDSAddr() string { return s.xdsLis.Addr().String() }

// AdminAddr is the bound admin address.
func (s *Server) AdminAddr() string { return s.adminLis.Addr().String() }

// Shutdown stops both servers, letting streams end within ctx.
func (s *Server) Shutdown(ctx context.Context) {
	s.stopOnce.Do(func() { close(s.stopped) })
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
	}
	_ = s.admin.Shutdown(ctx)
	s.bakes.Wait() // a promotion under way finishes (its waits end with the streams)
}

// Publish serves each group its resources: the bridges' route table first,
// Envoy's resources after. A group whose content did not change keeps its
// snapshot, so nothing is pushed; a group that is gone is served the empty
// configuration. Every snapshot is checked for consistency and every table
// validated first; on any such failure nothing at all changes.
//
// Make before break: a group's connected bridges are sent a table holding
// the new routes and the ones being dropped, and Envoy gets the new routes
// only once every one of them has ACKed it; a bridge that rejects it, or
// does not answer within BridgeAckTimeout, fails the reload and the bridges
// go back to the table they had. Dropped routes leave the bridges only once
// the group's Envoys hold routes without them (or EnvoyAckTimeout passed).
func (s *Server) Publish(groups map[string]Resources) error { return s.publish(groups, nil) }

// publish is Publish with what the source prepared: in-process bridges
// switch to their bridging table with the fleet's.
func (s *Server) publish(groups map[string]Resources, out Outcome) error {
	start := time.Now()
	tables, err := tablesOf(groups)
	if err != nil {
		return err
	}
	if err := s.checkRemovals(groups, out); err != nil {
		return err
	}
	next := map[string]*published{}
	for name, res := range groups {
		// Announced bridges are the endpoints of the group's bridge
		// clusters.
		var members []string
		served := res
		if gt := tables[name]; gt != nil && len(gt.table.BridgeClusters) > 0 {
			members = s.Members(name)
			served = withBridgeEndpoints(res, gt.table.BridgeClusters, members)
		}
		p, err := snapshotOf(served)
		if err != nil {
			return fmt.Errorf("group %q: %w", name, err)
		}
		p.res, p.members = res, members
		next[name] = p
	}
	rollouts, err := s.beginRollouts(next, tables)
	if err != nil {
		return err
	}
	drops, revert, err := s.sendBridgesFirst(tables)
	if err != nil {
		return err
	}
	if b, ok := out.(Bridger); ok {
		if err := b.Bridge(); err != nil {
			revert()
			return fmt.Errorf("the bridges in this process: %w; Envoy was sent nothing", err)
		}
	}
	s.applyOnDemand(groups, out)
	before := map[string]string{}
	for name := range next {
		before[name] = s.publishedVersion(name)
	}
	s.membersMu.Lock() // no endpoint update between the interim snapshots and the final one
	s.stageClusters(next)
	err = s.publishEnvoy(next, tables)
	s.membersMu.Unlock()
	if err != nil {
		return err
	}
	for name, p := range next {
		if before[name] != p.Version {
			go s.followPush(name, p, start)
		}
	}
	if len(rollouts) > 0 {
		// Until the rollout ends the bridges keep the table of both
		// versions, and the stable one is what the next reload starts from.
		s.mu.Lock()
		for name, r := range rollouts {
			if r.stableTable != nil {
				s.served[name] = r.stableTable
			}
		}
		s.mu.Unlock()
		drops = slices.DeleteFunc(drops, func(g string) bool { return rollouts[g] != nil })
		s.startRollouts(rollouts)
	}
	// The bridge endpoints were read before the bridges were waited for;
	// a bridge that joined or left meanwhile must not be overwritten.
	for name, gt := range tables {
		if len(gt.table.BridgeClusters) > 0 {
			s.membersChanged(name)
		}
	}
	s.withdrawDropped(drops, tables)
	return nil
}

// sendBridgesFirst serves each group whose table changed the bridging
// table (new routes and dropped ones) and waits for its bridges to take it.
// It returns the groups that drop routes, and how to go back to the
// tables served before.
func (s *Server) sendBridgesFirst(tables map[string]*groupTable) ([]string, func(), error) {
	s.mu.RLock()
	current := maps.Clone(s.served)
	s.mu.RUnlock()
	var changed, drops []string
	revert := func() {
		for _, g := range changed {
			_ = s.setTable(g, current[g])
		}
	}
	for _, name := range sortedKeys(tables) {
		next, old := tables[name].table, current[name]
		if old != nil && old.Version() == tables[name].res.GetVersion() {
			continue
		}
		bridging := routetable.Bridging(old, next)
		version := bridging.Version()
		if err := s.setTable(name, bridging); err != nil {
			revert()
			return nil, nil, fmt.Errorf("group %q: route table: %w", name, err)
		}
		changed = append(changed, name)
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.BridgeAckTimeout)
		err := s.waitBridges(ctx, name, version)
		cancel()
		if err != nil {
			revert()
			return nil, nil, fmt.Errorf("group %q: %w; Envoy was sent nothing", name, err)
		}
		s.log.Info("bridges took the route table", "group", name, "version", version, "bridges", s.bridgeCount(name))
		if routetable.Drops(old, next) {
			drops = append(drops, name)
		}
	}
	return drops, revert, nil
}

// withdrawDropped serves the groups that dropped routes their final table,
// once their Envoys hold routes without those.
func (s *Server) withdrawDropped(drops []string, tables map[string]*groupTable) {
	for _, name := range drops {
		s.mu.RLock()
		p := s.groups[name]
		s.mu.RUnlock()
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.EnvoyAckTimeout)
		if err := s.waitEnvoys(ctx, name, envoyRouteVersion(p)); err != nil {
			s.log.Warn("withdrawing dropped routes from the bridges anyway", "group", name, "reason", err.Error())
		}
		cancel()
		if err := s.setTable(name, tables[name].table); err != nil {
			s.log.Error("route table", "group", name, "err", err)
		}
	}
}

// publishEnvoy sets the groups' snapshots and records their tables.
func (s *Server) publishEnvoy(next map[string]*published, tables map[string]*groupTable) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx := context.Background()
	for name, p := range next {
		if old, ok := s.groups[name]; ok && old.Version == p.Version {
			next[name] = old
			continue
		}
		if err := s.cache.SetSnapshot(ctx, name, p.snapshot); err != nil {
			return fmt.Errorf("group %q: %w", name, err)
		}
		if s.opts.Rollout != nil && s.inRollout[name] == nil {
			_ = s.cache.SetSnapshot(ctx, canaryKey(name), p.snapshot) // the canaries hold the same
		}
		s.log.Info("published", "group", name, "version", p.Version)
	}
	fallback := fallbackSnapshot(sortedKeys(next))
	for name := range s.groups {
		if _, ok := next[name]; !ok {
			// Its nodes now belong to no group: they get the fallback,
			// and wait for the group to come back.
			_ = s.cache.SetSnapshot(ctx, name, fallback)
			s.waiting[name] = time.Now()
			s.log.Warn("group removed from the mapping; its nodes now get an empty configuration", "group", name)
		}
	}
	for name := range s.served {
		if _, ok := tables[name]; !ok {
			_ = s.setTable(name, nil) // Envoy no longer routes to this group's bridges
			delete(s.served, name)
		}
	}
	for name, gt := range tables {
		s.served[name] = gt.table
	}
	// The fallback's version names the groups; nodes holding it are
	// pushed again only when that list changes.
	_ = s.cache.SetSnapshot(ctx, FallbackGroup, fallback) // an empty snapshot is always valid
	s.groups = next
	s.settleWaiting(sortedKeys(next))
	s.metrics.groups.Set(float64(len(next)))
	s.ready.Store(true)
	return nil
}

// groupNames lists the groups served, sorted.
func (s *Server) groupNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sortedKeys(s.groups)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// groupOf finds the group a node asks for, and whether it is known.
func (s *Server) groupOf(node *core.Node) (string, bool) {
	name := s.requestedGroup(node)
	s.mu.RLock()
	_, ok := s.groups[name]
	s.mu.RUnlock()
	return name, ok
}

// nodeHash keys the snapshot cache by group, so all nodes of a group share
// one snapshot and unknown nodes share the fallback.
type nodeHash struct{ s *Server }

func (h nodeHash) ID(node *core.Node) string {
	name := h.s.requestedGroup(node)
	h.s.mu.RLock()
	defer h.s.mu.RUnlock()
	if _, ok := h.s.groups[name]; ok {
		if h.s.opts.Rollout != nil && h.s.isCanary(node) {
			return canaryKey(name) // the canaries' own key, at all times (rollout.go)
		}
		return name
	}
	if _, ok := h.s.waiting[name]; ok {
		return name // the fallback, under the group's name (waiting.go)
	}
	return FallbackGroup
}

// cacheLogger routes go-control-plane's logs into slog at debug level.
type cacheLogger struct{ l *slog.Logger }

func (c cacheLogger) Debugf(f string, a ...any) { c.l.Debug(fmt.Sprintf(f, a...)) }
func (c cacheLogger) Infof(f string, a ...any)  { c.l.Debug(fmt.Sprintf(f, a...)) }
func (c cacheLogger) Warnf(f string, a ...any)  { c.l.Warn(fmt.Sprintf(f, a...)) }
func (c cacheLogger) Errorf(f string, a ...any) { c.l.Error(fmt.Sprintf(f, a...)) }
