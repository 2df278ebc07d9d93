package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/internal/testmapping"
	"github.com/protogate/protogate/translator"
)

// cpMemoryCeiling stops a row whose control plane grows past it: the
// machine is shared, and the figure is plain by then.
const cpMemoryCeiling = 12 << 30

// bigMapping is the large group the benchmarks share (a third of the
// routes through the bridge to Dubbo, a third to NATS, a third to HTTP
// upstreams), with every upstream on a literal loopback address so
// nothing is resolved. edit changes the path of one HTTP route.
func bigMapping(routes, upstreams, edit int) string {
	l := testmapping.Large{Routes: routes, Upstreams: upstreams, Listen: "0.0.0.0:10000",
		Addr: func(u int) string { return fmt.Sprintf("127.0.0.1:%d", 20000+u) }}
	if edit > 0 {
		l.Paths = map[int]string{2: fmt.Sprintf("/s2/items-v%d/{id}", edit)}
	}
	return l.YAML()
}

// subscribe translates the mapping here, as the control plane will, for
// the names every client asks for and the sizes of what it is sent.
func subscribe(mapping string) (*subscription, string, error) {
	cfg, err := config.LoadBytes("big.yaml", []byte(mapping))
	if err != nil {
		return nil, "", fmt.Errorf("loading the big mapping: %w", err)
	}
	res, err := translator.Translate(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("translating the big mapping: %w", err)
	}
	if len(res.Groups) != 1 {
		return nil, "", fmt.Errorf("the big mapping has %d groups, want 1", len(res.Groups))
	}
	g := &res.Groups[0]
	sub := &subscription{group: g.Name, maxMsgSize: 64 << 20}
	sizes := map[string]int{}
	for _, e := range g.Endpoints {
		sub.eds = append(sub.eds, e.GetClusterName())
		sizes["EDS"] += proto.Size(e)
	}
	for _, r := range g.Routes {
		sub.rds = append(sub.rds, r.GetName())
		sizes["RDS"] += proto.Size(r)
	}
	for _, c := range g.Clusters {
		sizes["CDS"] += proto.Size(c)
	}
	for _, l := range g.Listeners {
		sizes["LDS"] += proto.Size(l)
	}
	desc := fmt.Sprintf("group %q: RDS %s in %d, CDS %s in %d, EDS %s in %d, LDS %s in %d",
		g.Name, mb(sizes["RDS"]), len(g.Routes), mb(sizes["CDS"]), len(g.Clusters), mb(sizes["EDS"]), len(g.Endpoints), mb(sizes["LDS"]), len(g.Listeners))
	return sub, desc, nil
}

// runControlPlane runs one control-plane process per client count: the
// clients connect, then one route of the mapping changes.
func runControlPlane(b *binaries, dir string, o options) error {
	sub, desc, err := subscribe(bigMapping(o.cpRoutes, o.cpUpstream, 0))
	if err != nil {
		return err
	}
	fmt.Printf("\n== Control plane: protogate controlplane, %d routes over %d upstreams, %s ==\n", o.cpRoutes, o.cpUpstream, desc)
	fmt.Println("memory per client = (RSS with the clients holding every type - RSS with the mapping loaded, no clients) / N; live = heap and stacks after a collection (/debug/pprof/heap?gc=1, then /metrics), likewise; RSS also moves with the Go runtime returning freed memory to the system (it can shrink below the start), so live is the figure per client")
	fmt.Println("edit = one route's path changed in the file (renamed into place; includes xds.reload_debounce) until the last client ACKed the new RDS version")
	var rows []cpResult
	for _, n := range o.cpClients {
		r, err := cpRow(b, dir, o, n, sub, false)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	if o.cpDelta > 0 {
		d := *sub
		d.delta = true
		r, err := cpRow(b, dir, o, o.cpDelta, &d, true)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	fmt.Printf("\n%-12s %7s %9s %9s %11s %11s %10s %10s %9s %8s %10s\n", "clients", "ACKed", "connect", "CP CPU", "RSS/client", "live/client", "edit→ACK", "edit CPU", "updated", "dropped", "edit MB/cl")
	for _, r := range rows {
		fmt.Println(r.line())
		r.summarize()
	}
	return nil
}

// cpResult is one client count's figures.
type cpResult struct {
	n                      int
	delta                  bool
	complete               int
	connect, connectCPU    time.Duration
	connectTimedOut        bool
	rssPer, heapPer        float64 // bytes per client; heapPer < 0: no figure
	edit, editCPU          time.Duration
	editRan, editTimedOut  bool
	updated, live, dropped int
	editBytesPer           float64
	stopped                string
}

func (r cpResult) line() string {
	kind := "sotw"
	if r.delta {
		kind = "delta"
	}
	connect := fmtDur(r.connect)
	if r.connectTimedOut {
		connect = ">" + connect
	}
	heap := "n/a"
	if r.heapPer >= 0 {
		heap = kib(r.heapPer)
	}
	edit, editCPU, updated, editMB := "-", "-", "-", "-"
	if r.editRan {
		edit, editCPU, updated, editMB = fmtDur(r.edit), fmtDur(r.editCPU), fmt.Sprintf("%d/%d", r.updated, r.live), fmt.Sprintf("%.2f", r.editBytesPer/1e6)
		if r.editTimedOut {
			edit = ">" + edit
		}
	}
	s := fmt.Sprintf("%-12s %7s %9s %9s %11s %11s %10s %10s %9s %8d %10s", fmt.Sprintf("%d %s", r.n, kind), fmt.Sprintf("%d", r.complete),
		connect, fmtDur(r.connectCPU), kib(r.rssPer), heap, edit, editCPU, updated, r.dropped, editMB)
	if r.stopped != "" {
		s += "  (" + r.stopped + ")"
	}
	return s
}

func (r cpResult) summarize() {
	kind := "SotW"
	if r.delta {
		kind = "delta"
	}
	live := "n/a"
	if r.heapPer >= 0 {
		live = kib(r.heapPer)
	}
	addSummary(fmt.Sprintf("CP memory per connected client, %d %s clients", r.n, kind), "%s live (heap and stacks after a collection), %s RSS", live, kib(r.rssPer))
	connect := fmtDur(r.connectCPU)
	if r.connectTimedOut || r.complete < r.n {
		connect += fmt.Sprintf(" (only %d of %d ACKed every type)", r.complete, r.n)
	}
	addSummary(fmt.Sprintf("CP CPU to serve %d connecting %s clients", r.n, kind), "%s", connect)
	if r.editRan {
		edit := fmtDur(r.edit)
		if r.editTimedOut {
			edit = "over " + edit
		}
		addSummary(fmt.Sprintf("one-route edit → all %d %s clients ACKed", r.n, kind), "%s, %d of %d updated, %d streams dropped", edit, r.updated, r.live, r.dropped)
	}
}

// cpRow starts a control plane, connects n clients, then edits one route.
func cpRow(b *binaries, dir string, o options, n int, sub *subscription, delta bool) (cpResult, error) {
	res := cpResult{n: n, delta: delta, heapPer: -1}
	cp, err := startControlPlane(b, dir, o)
	if err != nil {
		return res, err
	}
	defer cp.stop()
	time.Sleep(time.Second) // the start's garbage collected, timers settled
	// The collections first: RSS read after them both times.
	heap0 := cp.heap()
	rss0 := cp.rss()
	cpu0, self0, bytes0 := cp.cpu(), cpuSelf(), received.Load()
	start := time.Now()

	f := connect(cp.xds, n, sub)
	defer f.close()
	res.connectTimedOut, res.stopped = cp.waitFor(o.cpTimeout, func() bool { return int(f.complete.Load())+int(f.dropped.Load()) >= n })
	res.connect = time.Since(start)
	time.Sleep(300 * time.Millisecond) // the ACKs handled
	res.connectCPU = cp.cpu() - cpu0
	res.complete = int(f.complete.Load())
	selfConnect := cpuSelf() - self0
	connectBytes := received.Load() - bytes0
	time.Sleep(time.Second)
	heap1 := cp.heap()
	rss1 := cp.rss()
	res.rssPer = float64(rss1-rss0) / float64(n)
	if heap0 >= 0 && heap1 >= 0 {
		res.heapPer = float64(heap1-heap0) / float64(n)
	}
	kind := "sotw"
	if delta {
		kind = "delta"
	}
	fmt.Printf("%d %s clients: %d ACKed CDS, EDS, LDS and RDS in %s (CP CPU %s, this process %s); CP RSS %s → %s (%s per client), live heap and stacks %s → %s; %.2f MB received per client\n",
		n, kind, res.complete, fmtDur(res.connect), fmtDur(res.connectCPU), fmtDur(selfConnect), mb(int(rss0)), mb(int(rss1)), kib(res.rssPer),
		mbOrNA(heap0), mbOrNA(heap1), float64(connectBytes)/float64(n)/1e6)
	if res.stopped != "" || res.connectTimedOut || res.complete == 0 {
		res.dropped = int(f.dropped.Load())
		if err := f.firstDrop(); err != nil {
			fmt.Printf("  first dropped stream: %v\n", err)
		}
		return res, nil
	}

	base := f.rdsGens()
	cpu1, self1, bytes1 := cp.cpu(), cpuSelf(), received.Load()
	wrote := time.Now()
	if err := writeMapping(cp.file, bigMapping(o.cpRoutes, o.cpUpstream, 1)); err != nil {
		return res, err
	}
	res.editRan = true
	res.editTimedOut, res.stopped = cp.waitFor(o.cpTimeout, func() bool {
		done, live, _ := f.updated(base)
		return done >= live
	})
	time.Sleep(300 * time.Millisecond)
	res.editCPU = cp.cpu() - cpu1
	var last time.Time
	res.updated, res.live, last = f.updated(base)
	if res.editTimedOut {
		res.edit = time.Since(wrote)
	} else if !last.IsZero() {
		res.edit = last.Sub(wrote)
	}
	res.editBytesPer = float64(received.Load()-bytes1) / float64(n)
	res.dropped = int(f.dropped.Load())
	fmt.Printf("%d %s clients: one-route edit → last RDS ACK %s (%d of %d live clients updated), CP CPU %s (this process %s), %.2f MB received per client, %d streams dropped\n",
		n, kind, fmtDur(res.edit), res.updated, res.live, fmtDur(res.editCPU), fmtDur(cpuSelf()-self1), res.editBytesPer/1e6, res.dropped)
	if err := f.firstDrop(); err != nil {
		fmt.Printf("  first dropped stream: %v\n", err)
	}
	return res, nil
}

// controlPlane is a protogate controlplane process and where it serves.
type controlPlane struct {
	*proc
	xds, admin, file string
}

// startControlPlane writes the big mapping into a directory of its own
// and serves it on the core under test until /readyz answers.
func startControlPlane(b *binaries, dir string, o options) (*controlPlane, error) {
	cpDir, err := os.MkdirTemp(dir, "cp-")
	if err != nil {
		return nil, err
	}
	file := filepath.Join(cpDir, "big.yaml")
	if err := writeMapping(file, bigMapping(o.cpRoutes, o.cpUpstream, 0)); err != nil {
		return nil, err
	}
	xdsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	adminAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p, err := startProc("controlplane", cpuUnderTest, true, false, b.protogate, "controlplane", "-c", file,
		"--xds-address", xdsAddr, "--admin-address", adminAddr, "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	if err := p.waitHTTP("http://"+adminAddr+"/readyz", 2*time.Minute); err != nil {
		p.stop()
		return nil, err
	}
	return &controlPlane{proc: p, xds: xdsAddr, admin: adminAddr, file: file}, nil
}

// waitFor polls until done, the timeout, the process's exit or its
// memory ceiling; it says whether it timed out and why it stopped early.
func (cp *controlPlane) waitFor(timeout time.Duration, done func() bool) (timedOut bool, stopped string) {
	deadline := time.Now().Add(timeout)
	for !done() {
		switch {
		case !cp.alive():
			return false, "the control plane exited"
		case cp.rss() > cpMemoryCeiling:
			return false, fmt.Sprintf("stopped: control plane RSS over %s", mb(cpMemoryCeiling))
		case time.Now().After(deadline):
			return true, ""
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false, ""
}

// heap is the control plane's live memory: its heap and goroutine stacks
// right after a collection (asked for through the admin's
// /debug/pprof/heap?gc=1), from the admin /metrics; -1 if unknown.
func (cp *controlPlane) heap() int64 {
	// Twice: pooled buffers outlive the first collection.
	for range 2 {
		if resp, err := http.Get("http://" + cp.admin + "/debug/pprof/heap?gc=1"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	resp, err := http.Get("http://" + cp.admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var total int64
	found := 0
	for sc.Scan() {
		for _, name := range []string{"go_memstats_alloc_bytes ", "go_memstats_stack_inuse_bytes "} {
			if v, ok := strings.CutPrefix(sc.Text(), name); ok {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					total += int64(f)
					found++
				}
			}
		}
	}
	if found != 2 {
		return -1
	}
	return total
}

// writeMapping replaces file as an editor saving it would: a new file
// renamed over the old, so the watcher never reads half a file.
func writeMapping(file, mapping string) error {
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(mapping), 0o600); err != nil {
		return fmt.Errorf("writing the mapping: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("writing the mapping: %w", err)
	}
	return nil
}

func mb(n int) string { return fmt.Sprintf("%.2f MB", float64(n)/1e6) }

func mbOrNA(n int64) string {
	if n < 0 {
		return "n/a"
	}
	return mb(int(n))
}

func kib(b float64) string { return fmt.Sprintf("%.1f KiB", b/1024) }
