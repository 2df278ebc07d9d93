package dubbo

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"dubbo.apache.org/dubbo-go/v3"
	"dubbo.apache.org/dubbo-go/v3/common"
	"dubbo.apache.org/dubbo-go/v3/common/extension"
	dubbologger "dubbo.apache.org/dubbo-go/v3/logger"
	getty "github.com/apache/dubbo-getty"
	"github.com/dubbogo/go-zookeeper/zk"
	gostlogger "github.com/dubbogo/gost/log/logger"
)

// dubbo-go, its getty transport and its ZooKeeper client each keep a
// process-wide logger that prints coloured console lines straight to stdout
// or stderr. All three are pointed at one adapter over a *slog.Logger, so
// their lines share protogate's level, format and destination.

// loggerDriver is the name the adapter is registered under in dubbo-go's
// logger extensions, so an instance's own logger set-up installs it too.
const loggerDriver = "protogate-slog"

var (
	// logTarget is where the adapter writes; nil drops everything. The
	// loggers it feeds are global, so the latest SetLogger wins.
	logTarget   atomic.Pointer[slog.Logger]
	installOnce sync.Once
)

// SetLogger sends every line dubbo-go, getty and the ZooKeeper client print
// to log, from now on and for the whole process.
func SetLogger(log *slog.Logger) {
	logTarget.Store(log)
	installOnce.Do(installAdapter)
}

// LoggerOption is the dubbo-go instance option that keeps the instance's
// lines in log: without it, creating an instance installs dubbo-go's own
// console logger again.
func LoggerOption(log *slog.Logger) dubbo.InstanceOption {
	SetLogger(log)
	return dubbo.WithLogger(func(o *dubbologger.Options) { o.Logger.Driver = loggerDriver })
}

// installAdapter replaces the console loggers the packages set up in their
// init functions. It runs once, before the first dubbo-go instance exists,
// so no connection is reading these globals yet.
func installAdapter() {
	a := adapter{}
	extension.SetLogger(loggerDriver, func(*common.URL) (dubbologger.Logger, error) { return a, nil })
	gostlogger.SetLogger(a)
	dubbologger.SetLogger(a)
	getty.SetLogger(a)
	zk.DefaultLogger = zkAdapter{}
}

// Where a line comes from, named in its "component" attribute.
const (
	componentDubbo     = "dubbo-go"
	componentGetty     = "getty"
	componentZooKeeper = "zookeeper"
)

// routine are dubbo-go lines about one call, or about a connection coming
// and going, or a normal start, that dubbo-go prints as WARN or ERROR. The
// invoker reports a provider going away and coming back itself, once per
// change, so these are detail for DEBUG.
var routine = []string{
	"[Proxy] received rpc err",                        // every failed call
	"[Proxy] invoke service throw exception",          // every exception a provider throws
	"[Cluster][Failover] no provider available",       // every call while no provider is up
	"[Cluster][Failover] invoke failed after retries", // idem
	"[Cluster] invoker unavailable",                   // idem
	"can't dial the server",                           // a provider down when a reference is made
	"invoker is destroyed",                            // calls racing a reference being replaced
	"[Remoting][Getty] protocolConfig",                // every start: a consumer has no server protocol settings
	"[RegistryDir] registry directory",                // every registry reference: the default directory is used
	"has already been listened",                       // ZooKeeper: a watch set twice, on every provider change
	"goroutine exit now",                              // ZooKeeper: a watch ending, on every start and stop
	"is primitive. Cross-language transfer",           // every call whose value holds a time.Time
}

// levelFor decides where a line of a given component and dubbo-go level
// belongs in protogate's log.
func levelFor(component string, lv slog.Level, msg string) slog.Level {
	switch {
	case lv < slog.LevelWarn:
		// dubbo-go's INFO describes its internals; protogate says at INFO
		// what an operator needs (references made, upstreams up or down).
		return slog.LevelDebug
	case component == componentGetty || component == componentZooKeeper:
		// Transport lines are about single connections (reset, refused,
		// closed); only a panic inside them is news.
		if strings.Contains(msg, "panic") {
			return slog.LevelError
		}
		return slog.LevelDebug
	}
	for _, r := range routine {
		if strings.Contains(msg, r) {
			return slog.LevelDebug
		}
	}
	return lv
}

// adapter is dubbo-go's and getty's Logger interface over logTarget.
type adapter struct{}

func (adapter) Debug(args ...any)            { emit(slog.LevelDebug, "", args, false) }
func (adapter) Debugf(f string, args ...any) { emit(slog.LevelDebug, f, args, true) }
func (adapter) Info(args ...any)             { emit(slog.LevelInfo, "", args, false) }
func (adapter) Infof(f string, args ...any)  { emit(slog.LevelInfo, f, args, true) }
func (adapter) Warn(args ...any)             { emit(slog.LevelWarn, "", args, false) }
func (adapter) Warnf(f string, args ...any)  { emit(slog.LevelWarn, f, args, true) }
func (adapter) Error(args ...any)            { emit(slog.LevelError, "", args, false) }
func (adapter) Errorf(f string, args ...any) { emit(slog.LevelError, f, args, true) }

// Fatal keeps dubbo-go's meaning: the line, then the process exits, as its
// default logger does; the code after a Fatal call does not expect to run.
func (adapter) Fatal(args ...any) {
	emit(slog.LevelError, "", args, false)
	os.Exit(1)
}

func (adapter) Fatalf(f string, args ...any) {
	emit(slog.LevelError, f, args, true)
	os.Exit(1)
}

// zkAdapter is the ZooKeeper client's Logger: connection attempts, sessions
// and reconnects, all detail.
type zkAdapter struct{}

func (zkAdapter) Printf(f string, args ...any) { emit(slog.LevelInfo, f, args, true) }

// emit writes one line with the caller it came from: formatting is skipped
// when DEBUG is off and the line could only be DEBUG.
func emit(lv slog.Level, format string, args []any, formatted bool) {
	log := logTarget.Load()
	if log == nil {
		return
	}
	ctx := context.Background()
	if lv < slog.LevelWarn && !log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	msg := fmt.Sprint(args...)
	if formatted {
		msg = fmt.Sprintf(format, args...)
	}
	msg = strings.TrimSpace(msg)
	pc, component := caller()
	level := levelFor(component, lv, msg)
	if !log.Enabled(ctx, level) {
		return
	}
	r := slog.NewRecord(time.Now(), level, msg, pc)
	r.AddAttrs(slog.String("component", component))
	_ = log.Handler().Handle(ctx, r)
}

// caller finds the code that logged, past this package and the
// package-level wrappers of gost's and dubbo-go's logger packages (often
// inlined, hence the walk over every frame of each pc), and names its
// component.
func caller() (uintptr, string) {
	var pcs [16]uintptr
	n := runtime.Callers(2, pcs[:])
	for _, pc := range pcs[:n] {
		frames := runtime.CallersFrames([]uintptr{pc})
		for {
			f, more := frames.Next()
			if c, ok := componentOf(f.Function); ok {
				return pc, c
			}
			if !more {
				break
			}
		}
	}
	return 0, componentDubbo
}

// componentOf names the component a function belongs to, or says it is
// logging plumbing to look past.
func componentOf(fn string) (string, bool) {
	switch {
	case strings.HasPrefix(fn, "github.com/protogate/protogate/protocols/dubbo."),
		strings.HasPrefix(fn, "github.com/dubbogo/gost/log/logger."),
		strings.HasPrefix(fn, "dubbo.apache.org/dubbo-go/v3/logger."):
		return "", false
	case strings.HasPrefix(fn, "github.com/apache/dubbo-getty"):
		return componentGetty, true
	case strings.HasPrefix(fn, "github.com/dubbogo/go-zookeeper"):
		return componentZooKeeper, true
	}
	return componentDubbo, true
}
