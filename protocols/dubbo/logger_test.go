package dubbo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"dubbo.apache.org/dubbo-go/v3"
	"dubbo.apache.org/dubbo-go/v3/graceful_shutdown"
	dubbologger "dubbo.apache.org/dubbo-go/v3/logger"
	tri "dubbo.apache.org/dubbo-go/v3/protocol/triple/triple_protocol"
	getty "github.com/apache/dubbo-getty"
	"github.com/dubbogo/go-zookeeper/zk"
	gostlogger "github.com/dubbogo/gost/log/logger"

	"github.com/protogate/protogate/config"
)

// logBuffer is a slog text destination the test reads back.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(b.buf.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func newTestLogger(level slog.Level) (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: level})), b
}

// TestLoggerOptionSurvivesNewInstance: creating a dubbo-go instance sets up
// its loggers again; with LoggerOption they stay on the slog logger.
func TestLoggerOptionSurvivesNewInstance(t *testing.T) {
	log, buf := newTestLogger(slog.LevelDebug)
	if _, err := dubbo.NewInstance(dubbo.WithName("logger-test"), LoggerOption(log),
		dubbo.WithShutdown(graceful_shutdown.WithoutInternalSignal())); err != nil {
		t.Fatal(err)
	}
	gostlogger.Warn("from gost")
	dubbologger.GetLogger().Warn("from dubbo-go")
	getty.GetLogger().Warn("from getty")
	zk.DefaultLogger.Printf("from %s", "zookeeper")
	got := strings.Join(buf.lines(), "\n")
	for _, want := range []string{`msg="from gost"`, `msg="from dubbo-go"`, `msg="from getty"`, `msg="from zookeeper"`} {
		if !strings.Contains(got, want) {
			t.Errorf("%s did not reach the slog logger:\n%s", want, got)
		}
	}
}

// TestAdapterLevels sends lines the way dubbo-go's code does (gost's
// package functions) and checks the level and form they arrive in.
func TestAdapterLevels(t *testing.T) {
	for _, tc := range []struct {
		name    string
		log     func()
		handler slog.Level
		want    string // "" when nothing may be written
	}{
		{"per-call failure", func() { gostlogger.Warnf("[Proxy] received rpc err, err=%v", "session Already Closed") },
			slog.LevelDebug, `level=DEBUG msg="[Proxy] received rpc err, err=session Already Closed" component=dubbo-go`},
		{"per-call failure at INFO", func() { gostlogger.Warnf("[Proxy] received rpc err, err=%v", "x") }, slog.LevelInfo, ""},
		{"start-up warning", func() { gostlogger.Warn("[Remoting][Getty] protocolConfig assert failed or is nil") },
			slog.LevelInfo, ""},
		{"info is detail", func() { gostlogger.Infof("[Dubbo] refer service, url=%s", "dubbo://x") }, slog.LevelInfo, ""},
		{"info at debug", func() { gostlogger.Info("[Proxy] set method [$invoke]") }, slog.LevelDebug,
			`level=DEBUG msg="[Proxy] set method [$invoke]"`},
		{"other warning stays", func() { gostlogger.Warnf("[Registry] something %s", "odd") }, slog.LevelInfo,
			`level=WARN msg="[Registry] something odd" component=dubbo-go`},
		{"other error stays", func() { gostlogger.Error("[Metadata] export failed") }, slog.LevelInfo,
			`level=ERROR msg="[Metadata] export failed" component=dubbo-go`},
		{"zookeeper client", func() { zk.DefaultLogger.Printf("Connected to %s", "127.0.0.1:2181") }, slog.LevelInfo, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, buf := newTestLogger(tc.handler)
			SetLogger(log)
			tc.log()
			lines := buf.lines()
			if tc.want == "" {
				if len(lines) != 0 {
					t.Fatalf("want nothing, got %q", lines)
				}
				return
			}
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Fatalf("got %q, want one line with %s", lines, tc.want)
			}
			if strings.Contains(lines[0], "\x1b[") {
				t.Errorf("terminal escape codes: %q", lines[0])
			}
		})
	}
}

// TestSetLoggerSwitches: dubbo-go's loggers are global; the latest
// SetLogger is where they write.
func TestSetLoggerSwitches(t *testing.T) {
	first, a := newTestLogger(slog.LevelDebug)
	second, b := newTestLogger(slog.LevelDebug)
	SetLogger(first)
	gostlogger.Error("one")
	SetLogger(second)
	gostlogger.Error("two")
	if la, lb := a.lines(), b.lines(); len(la) != 1 || len(lb) != 1 || !strings.Contains(la[0], "one") || !strings.Contains(lb[0], "two") {
		t.Fatalf("first got %q, second got %q", la, lb)
	}
}

func TestLevelFor(t *testing.T) {
	for _, tc := range []struct {
		component string
		in        slog.Level
		msg       string
		want      slog.Level
	}{
		{componentDubbo, slog.LevelInfo, "[Dubbo] refer service", slog.LevelDebug},
		{componentDubbo, slog.LevelWarn, "[Proxy] invoke service throw exception, err=x", slog.LevelDebug},
		{componentDubbo, slog.LevelError, "[Cluster][Failover] no provider available, method=m", slog.LevelDebug},
		{componentDubbo, slog.LevelWarn, "[Dubbo] can't dial the server, location=127.0.0.1:1", slog.LevelDebug},
		{componentDubbo, slog.LevelWarn, "[Registry] unexpected", slog.LevelWarn},
		{componentDubbo, slog.LevelError, "[Config] broken", slog.LevelError},
		{componentGetty, slog.LevelError, "{client:TCP_CLIENT:1}, [session.conn.read] = error: connection reset by peer", slog.LevelDebug},
		{componentGetty, slog.LevelWarn, "net.DialTimeout(addr:127.0.0.1:1) = error: connection refused", slog.LevelDebug},
		{componentGetty, slog.LevelError, "[session.handlePackage] panic session s: err=boom", slog.LevelError},
		{componentZooKeeper, slog.LevelInfo, "Failed to connect to 127.0.0.1:2181", slog.LevelDebug},
	} {
		if got := levelFor(tc.component, tc.in, tc.msg); got != tc.want {
			t.Errorf("levelFor(%s, %s, %q) = %s, want %s", tc.component, tc.in, tc.msg, got, tc.want)
		}
	}
}

func TestComponentOf(t *testing.T) {
	for fn, want := range map[string]string{
		"github.com/apache/dubbo-getty.(*session).handleTCPPackage":     componentGetty,
		"github.com/dubbogo/go-zookeeper/zk.(*Conn).connect":            componentZooKeeper,
		"dubbo.apache.org/dubbo-go/v3/proxy.(*Proxy).Implement.func1":   componentDubbo,
		"dubbo.apache.org/dubbo-go/v3/remoting/getty.(*Client).Connect": componentDubbo,
	} {
		if got, ok := componentOf(fn); !ok || got != want {
			t.Errorf("componentOf(%s) = %s, %v; want %s", fn, got, ok, want)
		}
	}
	for _, fn := range []string{"github.com/dubbogo/gost/log/logger.Warnf", "dubbo.apache.org/dubbo-go/v3/logger.Warn",
		"github.com/protogate/protogate/protocols/dubbo.emit"} {
		if _, ok := componentOf(fn); ok {
			t.Errorf("%s is logging plumbing, not a component", fn)
		}
	}
}

// TestHealthTransitions: one line when an upstream's first service stops
// reaching a provider, one when none is left, nothing for the calls in
// between or for a lone failure among successes.
func TestHealthTransitions(t *testing.T) {
	noProvider := fmt.Errorf("%w: none of 127.0.0.1:1 answers", ErrNoProvider)
	type outcome struct {
		after             time.Duration // the clock moves on this much first
		upstream, service string
		err               error
	}
	ok := func(up, svc string) outcome { return outcome{0, up, svc, nil} }
	miss := func(after time.Duration, up, svc string) outcome { return outcome{after, up, svc, noProvider} }
	for _, tc := range []struct {
		name  string
		calls []outcome
		want  []string // INFO and above, in order
	}{
		{"all fine", []outcome{ok("users", "A"), {0, "users", "A", &ProviderError{Class: "X"}}}, nil},
		{"one outage, many calls", []outcome{
			ok("users", "A"), miss(0, "users", "A"), miss(500*time.Millisecond, "users", "A"), {0, "users", "A", ErrTimeout},
			miss(600*time.Millisecond, "users", "A"), miss(0, "users", "A"), miss(time.Second, "users", "A"),
			ok("users", "A"), ok("users", "A"),
		}, []string{`level=WARN msg="upstream unavailable" upstream=users protocol=dubbo service=A reason="no provider available: none of 127.0.0.1:1 answers"`,
			`level=INFO msg="upstream available again" upstream=users protocol=dubbo`}},
		{"a lone failure among successes", []outcome{
			ok("users", "A"), miss(0, "users", "A"), miss(900*time.Millisecond, "users", "A"), ok("users", "A"),
			miss(900*time.Millisecond, "users", "A"), ok("users", "A"),
		}, nil},
		{"no flapping while connections recover", []outcome{
			ok("users", "A"), miss(0, "users", "A"), miss(2*time.Second, "users", "A"), ok("users", "A"),
			miss(100*time.Millisecond, "users", "A"), ok("users", "A"), miss(time.Second, "users", "A"), ok("users", "A"),
		}, []string{`msg="upstream unavailable" upstream=users`, `msg="upstream available again" upstream=users`}},
		{"never reached: down at once", []outcome{miss(0, "users", "A"), miss(0, "users", "A")},
			[]string{`msg="upstream unavailable" upstream=users`}},
		{"a timeout says nothing", []outcome{{0, "users", "A", ErrTimeout}, {0, "users", "A", errors.New("other")}}, nil},
		{"two services, one upstream line each way", []outcome{
			miss(0, "users", "A"), miss(0, "users", "B"), ok("users", "A"), miss(0, "users", "A"),
			ok("users", "B"), ok("users", "A"),
		}, []string{`msg="upstream unavailable" upstream=users protocol=dubbo service=A`, `msg="upstream available again" upstream=users`}},
		{"one service without providers does not flap", []outcome{
			miss(0, "users", "A"), ok("users", "B"), miss(2*time.Second, "users", "A"), ok("users", "B"),
		}, []string{`msg="upstream unavailable" upstream=users protocol=dubbo service=A`}},
		{"upstreams apart", []outcome{miss(0, "users", "A"), miss(0, "orders", "A"), ok("users", "A")},
			[]string{`upstream=users`, `upstream=orders`, `msg="upstream available again" upstream=users`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, buf := newTestLogger(slog.LevelInfo)
			h := newHealth(log)
			clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			h.now = func() time.Time { return clock }
			for _, o := range tc.calls {
				clock = clock.Add(o.after)
				h.observe(&Call{Upstream: &config.DubboUpstream{Name: o.upstream}, Service: o.service}, o.err)
			}
			got := buf.lines()
			if len(got) != len(tc.want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("line %d = %s, want %s", i+1, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestClassifyUnsent: triple errors are classified by what they are, never
// by their text. A connection that could not be dialled never reached the
// provider, and says so (the invoker sends the call elsewhere whatever the
// method); an exception is the provider's whatever its message says.
func TestClassifyUnsent(t *testing.T) {
	c := &Call{Upstream: &config.DubboUpstream{Name: "users", MaxResponse: 1 << 20}, Service: "com.example.UserService"}
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		name       string
		in         error
		noProvider bool
		unsent     bool
		class      string // a ProviderError of this class; "-": none
	}{
		{"dial refused", tri.NewError(tri.CodeUnavailable, &url.Error{Op: "Post", URL: "http://x", Err: dial}), true, true, "-"},
		{"connection lost", tri.NewError(tri.CodeUnavailable, errors.New("stream reset")), true, false, "-"},
		{"triple exception", tri.NewWireError(tri.CodeUnknown, errors.New("java exception: java.lang.IllegalStateException - no provider available")), false, false, "java.lang.IllegalStateException"},
		{"triple plain error", tri.NewWireError(tri.CodeUnknown, errors.New("session Already Closed")), false, false, ""},
	} {
		err := classifyTriple(tc.in, c)
		var pe *ProviderError
		class := "-"
		if errors.As(err, &pe) {
			class = pe.Class
		}
		if errors.Is(err, ErrNoProvider) != tc.noProvider || errors.Is(err, errNotSent) != tc.unsent || class != tc.class {
			t.Errorf("%s: classifyTriple(%v) = %v: no provider %v, unsent %v, class %q; want %v, %v, %q", tc.name, tc.in, err,
				errors.Is(err, ErrNoProvider), errors.Is(err, errNotSent), class, tc.noProvider, tc.unsent, tc.class)
		}
	}
	for _, tc := range []struct {
		in   error
		want error
	}{
		{tri.NewError(tri.CodeDeadlineExceeded, context.DeadlineExceeded), ErrTimeout},
		{tri.NewWireError(tri.CodeUnimplemented, errors.New("no implementation found")), ErrServiceNotFound},
		{tri.NewError(tri.CodeResourceExhausted, errors.New("message size 2097200 is larger than configured max 1048576")), ErrResponseTooLarge},
	} {
		if err := classifyTriple(tc.in, c); !errors.Is(err, tc.want) {
			t.Errorf("classifyTriple(%v) = %v, want %v", tc.in, err, tc.want)
		}
	}
}
