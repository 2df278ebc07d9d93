//go:build !race

// dubbo-go's getty client has data races of its own, so the side-by-side
// benchmark stays out of -race builds.

package wire

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"dubbo.apache.org/dubbo-go/v3"
	"dubbo.apache.org/dubbo-go/v3/client"
	"dubbo.apache.org/dubbo-go/v3/common/constant"
	"dubbo.apache.org/dubbo-go/v3/filter/generic"
	"dubbo.apache.org/dubbo-go/v3/graceful_shutdown"
	// dubbo-go wires its protocols and filters through side effects.
	_ "dubbo.apache.org/dubbo-go/v3/imports"
	dubbologger "dubbo.apache.org/dubbo-go/v3/logger"
	hessian "github.com/apache/dubbo-go-hessian2"
)

// BenchmarkCall calls echoString on the example provider through this
// package's client and through dubbo-go's generic client, at concurrency
// 1, 16 and 64. Besides ns/op and allocs/op it reports the CPU time per
// call of this process (client-cpu-us/op) and of the provider
// (provider-cpu-us/op).
//
//	go test -run '^$' -bench BenchmarkCall -benchtime 20000x ./protocols/dubbo/wire
func BenchmarkCall(b *testing.B) {
	p := sharedProvider(b)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := NewClient(Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	inv := userService("echoString", []string{"java.lang.String"}, "hello")
	wireCall := func(ctx context.Context) error {
		_, _, err := w.Call(ctx, p.addr, inv)
		return err
	}
	gs := dubboGoGeneric(b, p.addr)
	dubboGoCall := func(ctx context.Context) error {
		_, err := gs.Invoke(ctx, "echoString", []string{"java.lang.String"}, []hessian.Object{"hello"})
		return err
	}
	for _, conc := range []int{1, 16, 64} {
		for _, impl := range []struct {
			name string
			call func(context.Context) error
		}{{"wire", wireCall}, {"dubbo-go", dubboGoCall}} {
			b.Run("c"+strconv.Itoa(conc)+"/"+impl.name, func(b *testing.B) {
				benchCalls(b, p, conc, impl.call)
			})
		}
	}
}

// benchCalls runs b.N calls from conc goroutines and reports CPU per call.
func benchCalls(b *testing.B, p *provider, conc int, call func(context.Context) error) {
	ctx := context.Background()
	for range 100 { // connections made, code paths warm
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := call(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	b.ReportAllocs()
	selfStart, provStart := cpuSelf(), cpuOf(p.cmd.Process.Pid)
	b.ResetTimer()
	var (
		wg   sync.WaitGroup
		next = make(chan struct{}, b.N)
		errs = make(chan error, conc)
	)
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	for range conc {
		wg.Go(func() {
			for range next {
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := call(ctx)
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	n := float64(b.N)
	b.ReportMetric(float64(cpuSelf()-selfStart)/n/1e3, "client-cpu-us/op")
	b.ReportMetric(float64(cpuOf(p.cmd.Process.Pid)-provStart)/n/1e3, "provider-cpu-us/op")
}

// dubboGoGeneric is a dubbo-go generic reference to the provider, made as
// protocols/dubbo/invoker.go makes one for a direct URL.
func dubboGoGeneric(b *testing.B, addr string) *generic.GenericService {
	ins, err := dubbo.NewInstance(
		dubbo.WithName("wire-bench"),
		dubbo.WithShutdown(graceful_shutdown.WithoutInternalSignal()),
		dubbo.WithLogger(dubbologger.WithLevel("error")),
	)
	if err != nil {
		b.Fatal(err)
	}
	cli, err := ins.NewClient(client.WithClientProtocolDubbo(), client.WithClientSerialization(constant.Hessian2Serialization))
	if err != nil {
		b.Fatal(err)
	}
	gs, err := cli.NewGenericService("com.example.UserService", client.WithURL("dubbo://"+addr),
		client.WithRequestTimeout(10*time.Second), client.WithRetries(0), client.WithClusterFailFast())
	if err != nil {
		b.Fatal(err)
	}
	return gs
}

// cpuSelf is this process's user+system CPU time in nanoseconds.
func cpuSelf() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// cpuOf is a process's user+system CPU time in nanoseconds, from
// /proc/PID/stat (in clock ticks of 10 ms: coarse, so run enough calls).
func cpuOf(pid int) int64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return (ut + st) * int64(tick)
}
