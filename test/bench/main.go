// Command bench prints, in one run, the gateway's performance figures and ratios:
// the Dubbo bridge against direct dubbo-go generic clients and protogate's
// wire client (dubbo and triple), the NATS bridge against direct nats.go
// publishers and a no-op Go HTTP handler (JetStream with ack and core),
// the control plane serving 100 to 1,000 ADS clients a 10,000-route group,
// and the loader against the translator. It says nothing passes or fails;
// it exits non-zero only when a measurement could not run.
//
//	go run ./test/bench                      # everything, 2s per row
//	go run ./test/bench -only nats,loader -duration 5s
//
// Placement: the process under test (a bridge, a direct client, the
// control plane, the no-op HTTP server) runs alone on CPU 0 with
// GOMAXPROCS=1; this process (load generator, ADS clients), the Dubbo
// provider and nats-server run on CPU 1. CPU per request is read for each
// process: /proc/PID/stat (utime+stime) for children, getrusage for this
// one. Run it from the module, without -race.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

type options struct {
	duration   time.Duration
	size       int
	dubboConc  []int
	natsConc   []int
	cpClients  []int
	cpDelta    int
	cpTimeout  time.Duration
	cpRoutes   int
	cpUpstream int
	loaderRuns int
	prebuilt   binaries // binaries given on the command line
}

func main() {
	var o options
	only := flag.String("only", "loader,nats,dubbo,cp", "sections to run, comma-separated: loader, nats, dubbo, cp")
	flag.DurationVar(&o.duration, "duration", 2*time.Second, "how long each throughput row runs")
	flag.IntVar(&o.size, "size", 256, "NATS payload bytes")
	dubboConc := flag.String("dubbo-conc", "1,16,64", "Dubbo concurrencies")
	natsConc := flag.String("nats-conc", "1,32", "NATS concurrencies")
	cpClients := flag.String("cp-clients", "100,500,1000", "state-of-the-world ADS client counts")
	flag.IntVar(&o.cpDelta, "cp-delta", 1000, "delta ADS clients for the delta row (0: none)")
	flag.DurationVar(&o.cpTimeout, "cp-timeout", 60*time.Second, "the longest the control plane may take to serve the clients, or an edit")
	flag.IntVar(&o.cpRoutes, "cp-routes", 10000, "routes of the control plane's group")
	flag.IntVar(&o.cpUpstream, "cp-upstreams", 2000, "upstreams of the control plane's group")
	flag.IntVar(&o.loaderRuns, "loader-runs", 5, "load and translate runs (the median is printed)")
	flag.StringVar(&o.prebuilt.protogate, "protogate", "", "a protogate binary to measure (empty: build ./cmd/protogate)")
	flag.StringVar(&o.prebuilt.provider, "provider", "", "the example provider's binary (empty: build examples/dubbo-provider)")
	flag.StringVar(&o.prebuilt.ns, "nats-server", "", "a nats-server binary (empty: build it from the module)")
	dubboOnly := flag.Bool("dubbo", false, "the Dubbo section only (the same as -only dubbo)")
	child := flag.String("child", "", "internal: run as a direct client or no-op server child")
	target := flag.String("target", "", "internal: the child's peer address")
	flag.Parse()
	log.SetFlags(0)
	if *child != "" {
		if err := childMain(*child, *target, o.size); err != nil {
			log.Fatalf("child %s: %v", *child, err)
		}
		return
	}
	var err error
	for _, l := range []struct {
		dst  *[]int
		flag string
	}{{&o.dubboConc, *dubboConc}, {&o.natsConc, *natsConc}, {&o.cpClients, *cpClients}} {
		if *l.dst, err = ints(l.flag); err != nil {
			log.Fatal(err)
		}
	}
	if *dubboOnly {
		*only = "dubbo"
	}
	if err := run(o, strings.Split(*only, ",")); err != nil {
		log.Fatalf("bench: %v", err)
	}
}

// run builds the binaries and runs each section asked for.
func run(o options, sections []string) error {
	if pinning {
		if err := pinSelf(cpuPeers); err != nil {
			return err
		}
		runtime.GOMAXPROCS(1)
	}
	dir, err := os.MkdirTemp("", "protogate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	b, err := buildBinaries(dir, o.prebuilt)
	if err != nil {
		return err
	}
	place := fmt.Sprintf("under test on CPU %d with GOMAXPROCS=1, load generator and peers on CPU %d", cpuUnderTest, cpuPeers)
	if !pinning {
		place = "NOT pinned (no taskset): every process shares every core"
	}
	fmt.Printf("protogate bench: %d cores, %s; %s per row; built in %v\n", runtime.NumCPU(), place, o.duration, time.Since(start).Round(time.Second))
	fmt.Println("figures from one run on a shared machine; CPU columns are µs per request of each process")
	var failed []string
	for _, s := range sections {
		var err error
		switch strings.TrimSpace(s) {
		case "dubbo":
			err = runDubbo(b, dir, o)
		case "nats":
			err = runNATS(b, dir, o)
		case "cp":
			err = runControlPlane(b, dir, o)
		case "loader":
			err = runLoader(o)
		default:
			err = fmt.Errorf("unknown section %q (dubbo, nats, cp, loader)", s)
		}
		if err != nil {
			fmt.Printf("\n!! %s could not be measured: %v\n", s, err)
			failed = append(failed, s)
		}
	}
	printSummary()
	fmt.Printf("\nbench done in %v\n", time.Since(start).Round(time.Second))
	if len(failed) > 0 {
		return fmt.Errorf("not measured: %s", strings.Join(failed, ", "))
	}
	return nil
}

// summary holds the target figures as the sections find them,
// printed together at the end.
var summary [][2]string

func addSummary(figure, format string, args ...any) {
	summary = append(summary, [2]string{figure, fmt.Sprintf(format, args...)})
}

func printSummary() {
	if len(summary) == 0 {
		return
	}
	fmt.Println("\n== Summary: the target figures, from this run ==")
	for _, s := range summary {
		fmt.Printf("%-62s %s\n", s[0], s[1])
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q: want positive numbers separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// row is one measured path at one concurrency, with the CPU each process
// spent per request in µs (lg < 0: the load generator is the process
// under test).
type row struct {
	label string
	conc  int
	result
	ut, peer, lg float64
	busy         float64 // the share of a core the process under test used
}

// httpRow drives ut over HTTP from this process: c keep-alive connections.
func httpRow(label string, c int, o options, ut, peer *proc, req httpReq) (row, error) {
	ops, done, err := prepareLoad(c, warmFor(c), req.worker)
	if err != nil {
		return row{}, fmt.Errorf("%s c=%d: %w", label, c, err)
	}
	defer done()
	u0, p0, s0 := ut.cpu(), peer.cpu(), cpuSelf()
	r := measureOps(ops, o.duration)
	u1, p1, s1 := ut.cpu(), peer.cpu(), cpuSelf()
	return row{label: label, conc: c, result: r, ut: perOp(u1-u0, r.n), peer: perOp(p1-p0, r.n), lg: perOp(s1-s0, r.n), busy: share(u1-u0, r.elapsed)}, nil
}

// clientRow runs a direct client child, which is its own load generator.
func clientRow(label string, c int, o options, cl *childProc, peer *proc) (row, error) {
	if err := cl.prepare(c, warmFor(c)); err != nil {
		return row{}, fmt.Errorf("%s c=%d: %w", label, c, err)
	}
	u0, p0 := cl.cpu(), peer.cpu()
	r, err := cl.measure(o.duration)
	if err != nil {
		return row{}, fmt.Errorf("%s c=%d: %w", label, c, err)
	}
	u1, p1 := cl.cpu(), peer.cpu()
	return row{label: label, conc: c, result: r, ut: perOp(u1-u0, r.n), peer: perOp(p1-p0, r.n), lg: -1, busy: share(u1-u0, r.elapsed)}, nil
}

// share is cpu over wall time: 1.0 is a whole core. Below it while the
// process under test sets the pace, something else had its core.
func share(cpu, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return float64(cpu) / float64(wall)
}

func printHeader(peer string) {
	fmt.Println("busy: the share of a core the process under test used; below 1 it waited: on its peer, on the load generator, or for CPU 0 while other programs held it")
	fmt.Printf("%-36s %4s %9s %9s %9s %13s %5s %12s %11s %7s\n", "path", "conc", "req/s", "p50", "p99", "under test µs", "busy", peer, "loadgen µs", "errors")
}

func printRows(rows []row) {
	for _, r := range rows {
		lg := "-"
		if r.lg >= 0 {
			lg = fmt.Sprintf("%.1f", r.lg)
		}
		fmt.Printf("%-36s %4d %9.0f %9s %9s %13.1f %5.2f %12.1f %11s %7d\n", r.label, r.conc, r.rps(), fmtDur(r.p50), fmtDur(r.p99), r.ut, r.busy, r.peer, lg, r.errors)
		if r.errors > 0 {
			fmt.Printf("    first error: %s\n", r.firstErr)
		}
	}
}
