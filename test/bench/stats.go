package main

import (
	"fmt"
	"math/bits"
	"sync"
	"time"
)

// hist is a latency histogram with about 1.5% resolution: 64 linear
// buckets below 64 ns, then 64 per power of two. It keeps no samples, so a
// path doing millions of operations a second costs no memory.
type hist struct {
	counts [64 + 64*40]uint64
	n      uint64
}

func (h *hist) add(d time.Duration) {
	v := uint64(max(d, 0))
	h.n++
	if v < 64 {
		h.counts[v]++
		return
	}
	shift := bits.Len64(v) - 7
	i := 64 + shift*64 + int(v>>shift) - 64
	if i >= len(h.counts) {
		i = len(h.counts) - 1
	}
	h.counts[i]++
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile is the upper bound of the bucket holding the q-th sample.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen > rank {
			if i < 64 {
				return time.Duration(i)
			}
			shift := (i - 64) / 64
			return time.Duration(uint64((i-64)%64+64+1)<<shift - 1)
		}
	}
	return 0
}

// result is one measured path at one concurrency.
type result struct {
	n        int
	elapsed  time.Duration
	p50, p99 time.Duration
	errors   int
	firstErr string
}

func (r result) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.n) / r.elapsed.Seconds()
}

// opFactory makes the operation one worker repeats (its own connection,
// its own buffers), so workers share nothing while they run.
type opFactory func(worker int) (op func() error, done func(), err error)

// prepareLoad makes c workers and warms each up with warm operations
// that are not counted; done releases them.
func prepareLoad(c, warm int, mk opFactory) (ops []func() error, done func(), err error) {
	var dones []func()
	done = func() {
		for _, d := range dones {
			d()
		}
	}
	for w := range c {
		op, d, err := mk(w)
		if err != nil {
			done()
			return nil, nil, fmt.Errorf("worker %d: %w", w, err)
		}
		if d != nil {
			dones = append(dones, d)
		}
		ops = append(ops, op)
	}
	if err := warmUp(ops, warm); err != nil {
		done()
		return nil, nil, err
	}
	return ops, done, nil
}

// warmUp runs each worker's operation warm times, concurrently, and fails
// when a worker's every warm-up call failed.
func warmUp(ops []func() error, warm int) error {
	errs := make([]error, len(ops))
	var wg sync.WaitGroup
	for w, op := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := false
			for range warm {
				if err := op(); err != nil {
					errs[w] = err
				} else {
					ok = true
				}
			}
			if ok {
				errs[w] = nil
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	return nil
}

// measureOps runs every operation in its own goroutine for d.
func measureOps(ops []func() error, d time.Duration) result {
	var mu sync.Mutex
	var all hist
	r := result{}
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for _, op := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := new(hist)
			bad, first := 0, ""
			for t := time.Now(); t.Before(deadline); {
				err := op()
				now := time.Now()
				if err != nil {
					if bad == 0 {
						first = err.Error()
					}
					bad++
				} else {
					h.add(now.Sub(t))
				}
				t = now
			}
			mu.Lock()
			all.merge(h)
			r.errors += bad
			if r.firstErr == "" {
				r.firstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	r.n = int(all.n)
	r.p50, r.p99 = all.quantile(0.50), all.quantile(0.99)
	return r
}

// perOp is a CPU time divided over n operations, in µs.
func perOp(cpu time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(cpu) / float64(n) / 1e3
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}
