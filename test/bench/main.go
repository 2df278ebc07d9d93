// Command bench measures the NATS bridge against the ceilings around it, in
// one run on one machine: HTTP → JetStream-with-ack through the bridge,
// direct nats.go JetStream publishes at the same concurrency, and a no-op Go
// HTTP handler (the cost of HTTP alone). It prints requests/s, p50 and p99
// for each, and the ratios.
//
//	go run ./test/bench -duration 5s
//
// With -dubbo it measures the Dubbo bridge instead, against the example
// provider (examples/dubbo-provider, built and started as a child process,
// or the binary -provider names): HTTP → bridge → provider over the dubbo
// protocol, a direct dubbo-go generic client call, and protogate's own wire
// client called directly, at concurrency 1, 16 and 64. Besides requests/s,
// p50 and p99 it prints the CPU µs per call of this process (getrusage) and
// of the provider (/proc/PID/stat), and the ratios bridge/direct. Run it
// from the module, without -race:
//
//	go run ./test/bench -dubbo -duration 3s
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/protogate/protogate/bridges"
	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/routetable"
)

type result struct {
	name        string
	concurrency int
	n           int
	elapsed     time.Duration
	p50, p99    time.Duration
	errors      int
}

func (r result) rps() float64 { return float64(r.n) / r.elapsed.Seconds() }

// run calls op from c goroutines for d and gathers every latency.
func run(name string, c int, d time.Duration, op func(i int) error) result {
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			for i := 0; time.Now().Before(deadline); i++ {
				t := time.Now()
				if err := op(w*1_000_000 + i); err != nil {
					bad++
					continue
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	r := result{name: name, concurrency: c, n: len(lat), elapsed: elapsed, errors: errs}
	if len(lat) > 0 {
		r.p50 = lat[len(lat)/2]
		r.p99 = lat[len(lat)*99/100]
	}
	return r
}

func main() {
	duration := flag.Duration("duration", 3*time.Second, "how long each measurement runs")
	size := flag.Int("size", 256, "payload bytes")
	dubboMode := flag.Bool("dubbo", false, "measure the Dubbo bridge instead of the NATS bridge")
	providerBin := flag.String("provider", "", "with -dubbo: the example provider's binary (empty: build examples/dubbo-provider)")
	flag.Parse()
	log.SetFlags(0)
	if *dubboMode {
		if err := runDubbo(*duration, *providerBin); err != nil {
			log.Fatal(err)
		}
		return
	}

	dir, err := os.MkdirTemp("", "protogate-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
	if err != nil {
		log.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		log.Fatal("nats-server did not start")
	}
	defer ns.Shutdown()
	natsURL := ns.ClientURL()

	mapping := fmt.Sprintf(`
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: bench
        match: { path: "/bench/{k}", methods: [POST] }
        nats: { upstream: events, subject: "bench.{k}.created", timeout: 5s }
upstreams:
  nats:
    - name: events
      urls: [ %q ]
      provision: true
      streams: [ { name: BENCH, subjects: [ "bench.>" ] } ]
bridge:
  address: 127.0.0.1:0
`, natsURL)
	cfg, err := config.LoadBytes("bench.yaml", []byte(mapping))
	if err != nil {
		log.Fatal(err)
	}
	table, err := routetable.FromConfig(cfg, "")
	if err != nil {
		log.Fatal(err)
	}
	br, err := bridges.New(cfg.Bridge, table, bridges.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		log.Fatal(err)
	}
	if err := br.Start(); err != nil {
		log.Fatal(err)
	}
	defer br.Shutdown(context.Background())
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ok, _ := br.Ready(); ok {
			break
		}
		if time.Now().After(deadline) {
			log.Fatal("bridge not ready")
		}
	}

	noop, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(noop, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"stream":"BENCH","seq":1,"duplicate":false}`))
	}))

	nc, err := nats.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	payload := bytes.Repeat([]byte("x"), *size)

	post := func(client *http.Client, url string) func(int) error {
		return func(int) error {
			resp, err := client.Post(url, "application/octet-stream", bytes.NewReader(payload))
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
	}

	fmt.Printf("payload %d bytes, %v per measurement, %d cores\n\n", *size, *duration, runtime.NumCPU())
	fmt.Printf("%-28s %5s %10s %10s %10s %7s\n", "path", "conc", "req/s", "p50", "p99", "errors")
	var all []result
	for _, c := range []int{1, 32} {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}, Timeout: 10 * time.Second}
		rs := []result{
			run("no-op Go HTTP handler", c, *duration, post(client, "http://"+noop.Addr().String()+"/bench/k")),
			run("direct nats.go JetStream", c, *duration, func(int) error {
				_, err := js.Publish(context.Background(), "bench.direct.created", payload)
				return err
			}),
			run("HTTP → bridge → JetStream", c, *duration, post(client, "http://"+br.Addr()+"/bench/k")),
		}
		for _, r := range rs {
			fmt.Printf("%-28s %5d %10.0f %10v %10v %7d\n", r.name, r.concurrency, r.rps(), r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.errors)
		}
		all = append(all, rs...)
	}
	fmt.Println()
	for i := 0; i < len(all); i += 3 {
		noopR, direct, bridge := all[i], all[i+1], all[i+2]
		fmt.Printf("concurrency %d: bridge/direct throughput %.2f, bridge/no-op HTTP %.2f; p50 bridge-direct %v\n",
			bridge.concurrency, bridge.rps()/direct.rps(), bridge.rps()/noopR.rps(), (bridge.p50 - direct.p50).Round(time.Microsecond))
	}
}
