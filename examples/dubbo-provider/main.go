// Command dubbo-provider is a real dubbo-go provider for trying protogate
// and for its end-to-end tests. It serves com.example.UserService over the
// dubbo and triple protocols (hessian2), registers in ZooKeeper when asked,
// and keeps the arguments of its last call so tests can see exactly what
// arrived.
//
//	go run ./examples/dubbo-provider -dubbo-port 20880 -triple-port 20881
//	go run ./examples/dubbo-provider -zk 127.0.0.1:2181 -registration interface
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"dubbo.apache.org/dubbo-go/v3"
	"dubbo.apache.org/dubbo-go/v3/common/constant"
	"dubbo.apache.org/dubbo-go/v3/graceful_shutdown"
	// dubbo-go wires its protocols, filters and registries through these
	// side effects; a trimmed set leaves a nil invoker at call time.
	_ "dubbo.apache.org/dubbo-go/v3/imports"
	"dubbo.apache.org/dubbo-go/v3/protocol"
	"dubbo.apache.org/dubbo-go/v3/protocol/dubbo/hessian2"
	"dubbo.apache.org/dubbo-go/v3/registry"
	"dubbo.apache.org/dubbo-go/v3/server"
	hessian "github.com/apache/dubbo-go-hessian2"
	gxbig "github.com/dubbogo/gost/math/big"

	dubboproto "github.com/protogate/protogate/protocols/dubbo"
)

// Address is com.example.Address.
type Address struct {
	City   string
	Street string
}

func (Address) JavaClassName() string { return "com.example.Address" }

// Status is com.example.Status, a Java enum: on the wire an object of its
// class holding its name, which hessian turns into a constant here.
type Status hessian.JavaEnum

const (
	StatusActive Status = iota
	StatusSuspended
)

var statusNames = map[Status]string{StatusActive: "ACTIVE", StatusSuspended: "SUSPENDED"}

func (Status) JavaClassName() string { return "com.example.Status" }
func (s Status) String() string      { return statusNames[s] }

// EnumValue is how hessian decodes a constant by name.
func (Status) EnumValue(name string) hessian.JavaEnum {
	for s, n := range statusNames {
		if n == name {
			return hessian.JavaEnum(s)
		}
	}
	return hessian.InvalidJavaEnum
}

// User is com.example.User; its fields cover the types a POJO can hold.
type User struct {
	Id      int64 // "Id", not "ID": dubbo-go lower-cases only the first letter, and Java says "id"
	Name    string
	Age     int32
	Status  Status
	Balance *gxbig.Decimal
	Created time.Time
	Tags    []string
	Address *Address
	Scores  map[string]int64
}

func (User) JavaClassName() string { return "com.example.User" }

// illegalArgument throws java.lang.IllegalArgumentException.
func illegalArgument(msg string) error {
	return &hessian2.GenericException{ExceptionClass: "java.lang.IllegalArgumentException", ExceptionMessage: msg}
}

// UserService is com.example.UserService. Each echo method returns what it
// got, so a test sees a value travel HTTP → Java value → provider → JSON.
type UserService struct {
	mu          sync.Mutex
	last        string
	lastTimeout string
	seq         int64
	hits        int64 // calls to echoInt, getUser and createUser, for failover tests
}

func (s *UserService) record(method string, args ...any) {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = fmt.Sprintf("%T(%+v)", a, a)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = method + "(" + strings.Join(parts, ", ") + ")"
	if method == "echoInt" || method == "getUser" || method == "createUser" {
		s.hits++
	}
}

// LastCall returns the method and Go-typed arguments of the previous call.
func (s *UserService) LastCall(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, nil
}

// Hits returns how many calls echoInt, getUser and createUser have had,
// so a test can see which provider of an upstream its calls reached.
func (s *UserService) Hits(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits, nil
}

func (s *UserService) EchoInt(_ context.Context, v int32) (int32, error) {
	s.record("echoInt", v)
	return v, nil
}
func (s *UserService) EchoLong(_ context.Context, v int64) (int64, error) {
	s.record("echoLong", v)
	return v, nil
}
func (s *UserService) EchoShort(_ context.Context, v int16) (int16, error) {
	s.record("echoShort", v)
	return v, nil
}
func (s *UserService) EchoByte(_ context.Context, v int8) (int8, error) {
	s.record("echoByte", v)
	return v, nil
}
func (s *UserService) EchoDouble(_ context.Context, v float64) (float64, error) {
	s.record("echoDouble", v)
	return v, nil
}
func (s *UserService) EchoFloat(_ context.Context, v float32) (float32, error) {
	s.record("echoFloat", v)
	return v, nil
}
func (s *UserService) EchoBoolean(_ context.Context, v bool) (bool, error) {
	s.record("echoBoolean", v)
	return v, nil
}
func (s *UserService) EchoString(_ context.Context, v string) (string, error) {
	s.record("echoString", v)
	return v, nil
}
func (s *UserService) EchoBoxedLong(_ context.Context, v *int64) (*int64, error) {
	s.record("echoBoxedLong", v)
	return v, nil
}
func (s *UserService) EchoDecimal(_ context.Context, v *gxbig.Decimal) (*gxbig.Decimal, error) {
	s.record("echoDecimal", v.String())
	return v, nil
}
func (s *UserService) EchoBigInteger(_ context.Context, v *gxbig.Integer) (*gxbig.Integer, error) {
	s.record("echoBigInteger", v.String())
	return v, nil
}
func (s *UserService) EchoDate(_ context.Context, v time.Time) (time.Time, error) {
	s.record("echoDate", v.UTC().Format(time.RFC3339))
	return v, nil
}
func (s *UserService) EchoBytes(_ context.Context, v []byte) ([]byte, error) {
	s.record("echoBytes", v)
	return v, nil
}
func (s *UserService) EchoInts(_ context.Context, v []int32) ([]int32, error) {
	s.record("echoInts", v)
	return v, nil
}
func (s *UserService) EchoList(_ context.Context, v []string) ([]string, error) {
	s.record("echoList", v)
	return v, nil
}
func (s *UserService) EchoMap(_ context.Context, v map[string]int64) (map[string]int64, error) {
	s.record("echoMap", v)
	return v, nil
}
func (s *UserService) EchoStatus(_ context.Context, v Status) (Status, error) {
	s.record("echoStatus", v)
	return v, nil
}

// CreateUser stores nothing; it gives the user an id and returns it.
func (s *UserService) CreateUser(_ context.Context, u *User) (*User, error) {
	s.record("createUser", u, u.Address)
	if u.Name == "" {
		return nil, illegalArgument("name is required")
	}
	s.mu.Lock()
	s.seq++
	u.Id = s.seq
	s.mu.Unlock()
	return u, nil
}

// GetUser returns a user by id, as a path parameter would ask.
func (s *UserService) GetUser(_ context.Context, id int64) (*User, error) {
	s.record("getUser", id)
	return &User{Id: id, Name: fmt.Sprintf("user-%d", id), Age: 30, Status: StatusActive,
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Tags: []string{"a"}, Address: &Address{City: "Oslo"}}, nil
}

// FindUsers takes two parameters from the query.
func (s *UserService) FindUsers(_ context.Context, status Status, limit *int32) ([]*User, error) {
	s.record("findUsers", status, limit)
	n := int32(2)
	if limit != nil {
		n = *limit
	}
	var out []*User
	for i := int32(1); i <= n; i++ {
		out = append(out, &User{Id: int64(i), Name: fmt.Sprintf("user-%d", i), Status: status})
	}
	return out, nil
}

// Fail throws: "argument" as an IllegalArgumentException, "unavailable"
// as an IllegalStateException whose message says "unavailable" (an
// exception, not an outage), anything else as a plain error.
func (s *UserService) Fail(_ context.Context, kind string) (string, error) {
	s.record("fail", kind)
	switch kind {
	case "argument":
		return "", illegalArgument("bad argument: " + kind)
	case "unavailable":
		return "", &hessian2.GenericException{ExceptionClass: "java.lang.IllegalStateException",
			ExceptionMessage: "the service is unavailable"}
	}
	return "", errors.New("provider failure: " + kind)
}

// Ping takes no argument.
func (s *UserService) Ping(context.Context) (string, error) {
	s.record("ping")
	return "pong", nil
}

// Touch returns nothing (a void method).
func (s *UserService) Touch(_ context.Context, tag string) error {
	s.record("touch", tag)
	return nil
}

// NoUser finds nobody: a null result.
func (s *UserService) NoUser(_ context.Context, id int64) (*User, error) {
	s.record("noUser", id)
	return nil, nil
}

// BigString answers n bytes of text, for response size limits.
func (s *UserService) BigString(_ context.Context, n int32) (string, error) {
	s.record("bigString", n)
	return strings.Repeat("x", int(n)), nil
}

// LastTimeout returns the time the previous call to Slow was given: the
// "timeout" attachment over dubbo, what was left of its deadline over
// triple.
func (s *UserService) LastTimeout(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastTimeout, nil
}

// throttledCalls counts the calls to Throttled.
var throttledCalls atomic.Int64

// Throttled throws, like Fail("unavailable"), an IllegalStateException
// whose message says "unavailable" (an exception, not an outage), and
// numbers its calls in the message, so a test sees how many times one
// request ran it.
func (s *UserService) Throttled(_ context.Context, tag string) (string, error) {
	s.record("throttled", tag)
	return "", &hessian2.GenericException{ExceptionClass: "java.lang.IllegalStateException",
		ExceptionMessage: fmt.Sprintf("the service is unavailable (call %d)", throttledCalls.Add(1))}
}

// Attachments returns the attachments the call carried, so tests can see
// which request headers reached the provider.
func (s *UserService) Attachments(ctx context.Context, tag string) (map[string]string, error) {
	s.record("attachments", tag)
	out := map[string]string{}
	if att, ok := ctx.Value(constant.AttachmentKey).(map[string]any); ok {
		for k, v := range att {
			switch x := v.(type) {
			case string:
				out[k] = x
			case []string:
				if len(x) > 0 {
					out[k] = x[0]
				}
			}
		}
	}
	return out, nil
}

// Slow answers after ms milliseconds.
func (s *UserService) Slow(ctx context.Context, ms int64) (string, error) {
	s.record("slow", ms)
	given := ""
	if att, ok := ctx.Value(constant.AttachmentKey).(map[string]any); ok {
		switch x := att["timeout"].(type) {
		case string:
			given = x + "ms"
		case []string:
			if len(x) > 0 {
				given = x[0] + "ms"
			}
		}
	}
	if dl, ok := ctx.Deadline(); ok && given == "" {
		given = time.Until(dl).Round(100 * time.Millisecond).String()
	}
	s.mu.Lock()
	s.lastTimeout = given
	s.mu.Unlock()
	time.Sleep(time.Duration(ms) * time.Millisecond)
	return "done", nil
}

// ---- the type matrix (bridges/dubbomatrix_test.go) ----
//
// Echo methods for every type a mapping can declare that the methods
// above lack, and AllTypes, a POJO with a field of every kind. They record
// with recordDeep: Go types and values at every depth (pointers followed,
// map keys sorted), so a test sees exactly what dubbo-go realized.

// AllTypes is com.example.AllTypes.
type AllTypes struct {
	Flag         bool
	Small        int8
	Short16      int16
	Count        int32
	Total        int64
	Ratio        float32
	Score        float64
	Initial      string // a Java char: dubbo-go has no char type of its own
	BoxedFlag    *bool
	BoxedSmall   *int8
	BoxedShort   *int16
	BoxedCount   *int32
	BoxedTotal   *int64
	BoxedRatio   *float32
	BoxedScore   *float64
	BoxedInitial *string
	Text         string
	Amount       *gxbig.Decimal
	Huge         *gxbig.Integer
	When         time.Time
	Data         []byte
	Status       Status
	Ints         []int32
	Names        []string
	Addresses    []*Address
	Tags         []string
	Labels       []string // a java.util.Set
	Scores       map[string]int64
	Statuses     []Status
	StatusByName map[string]Status
	Users        []*User
	UserByName   map[string]*User
	Address      *Address
	User         *User
	Any          any
}

func (AllTypes) JavaClassName() string { return "com.example.AllTypes" }

func registerMatrixTypes() { hessian.RegisterPOJO(&AllTypes{}) }

// recordDeep records a call as dumpValue renders its arguments.
func (s *UserService) recordDeep(method string, args ...any) {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = dumpValue(reflect.ValueOf(a))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = method + "(" + strings.Join(parts, ", ") + ")"
}

var (
	timeType    = reflect.TypeOf(time.Time{})
	decimalType = reflect.TypeOf(gxbig.Decimal{})
	integerType = reflect.TypeOf(gxbig.Integer{})
)

// dumpValue writes a value with its Go type at every level: int32(5),
// *int32(5), *int32(nil), []string[a b], map[string]int64{x:1},
// *main.Address{City:string(Oslo) Street:string()}, time.Time(RFC 3339),
// *gxbig.Decimal(12.50), main.Status(ACTIVE); []byte as base64.
func dumpValue(v reflect.Value) string {
	if !v.IsValid() {
		return "nil"
	}
	t := v.Type()
	switch {
	case t == timeType:
		return "time.Time(" + v.Interface().(time.Time).UTC().Format(time.RFC3339Nano) + ")"
	case t == decimalType:
		d := v.Interface().(gxbig.Decimal)
		return t.String() + "(" + d.String() + ")"
	case t == integerType:
		i := v.Interface().(gxbig.Integer)
		return t.String() + "(" + i.String() + ")"
	case t == reflect.TypeOf(Status(0)):
		return "main.Status(" + v.Interface().(Status).String() + ")"
	}
	switch t.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return t.String() + "(nil)"
		}
		return dumpValue(v.Elem())
	case reflect.Pointer:
		if v.IsNil() {
			return t.String() + "(nil)"
		}
		return "*" + dumpValue(v.Elem())
	case reflect.Struct:
		parts := make([]string, 0, t.NumField())
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() {
				parts = append(parts, f.Name+":"+dumpValue(v.Field(i)))
			}
		}
		return t.String() + "{" + strings.Join(parts, " ") + "}"
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return t.String() + "(nil)"
		}
		if t.Elem().Kind() == reflect.Uint8 {
			return t.String() + "(" + base64.StdEncoding.EncodeToString(v.Bytes()) + ")"
		}
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = dumpValue(v.Index(i))
		}
		return t.String() + "[" + strings.Join(parts, " ") + "]"
	case reflect.Map:
		if v.IsNil() {
			return t.String() + "(nil)"
		}
		parts := make([]string, 0, v.Len())
		for it := v.MapRange(); it.Next(); {
			parts = append(parts, fmt.Sprint(it.Key().Interface())+":"+dumpValue(it.Value()))
		}
		sort.Strings(parts)
		return t.String() + "{" + strings.Join(parts, " ") + "}"
	}
	return fmt.Sprintf("%s(%v)", t, v.Interface())
}

func (s *UserService) BoxBoolean(_ context.Context, v *bool) (*bool, error) {
	s.recordDeep("boxBoolean", v)
	return v, nil
}
func (s *UserService) BoxByte(_ context.Context, v *int8) (*int8, error) {
	s.recordDeep("boxByte", v)
	return v, nil
}
func (s *UserService) BoxShort(_ context.Context, v *int16) (*int16, error) {
	s.recordDeep("boxShort", v)
	return v, nil
}
func (s *UserService) BoxInteger(_ context.Context, v *int32) (*int32, error) {
	s.recordDeep("boxInteger", v)
	return v, nil
}
func (s *UserService) BoxLong(_ context.Context, v *int64) (*int64, error) {
	s.recordDeep("boxLong", v)
	return v, nil
}
func (s *UserService) BoxFloat(_ context.Context, v *float32) (*float32, error) {
	s.recordDeep("boxFloat", v)
	return v, nil
}
func (s *UserService) BoxDouble(_ context.Context, v *float64) (*float64, error) {
	s.recordDeep("boxDouble", v)
	return v, nil
}
func (s *UserService) BoxCharacter(_ context.Context, v *string) (*string, error) {
	s.recordDeep("boxCharacter", v)
	return v, nil
}
func (s *UserService) EchoChar(_ context.Context, v string) (string, error) {
	s.recordDeep("echoChar", v)
	return v, nil
}
func (s *UserService) EchoStrings(_ context.Context, v []string) ([]string, error) {
	s.recordDeep("echoStrings", v)
	return v, nil
}
func (s *UserService) EchoSet(_ context.Context, v []string) ([]string, error) {
	s.recordDeep("echoSet", v)
	return v, nil
}
func (s *UserService) EchoStatuses(_ context.Context, v []Status) ([]Status, error) {
	s.recordDeep("echoStatuses", v)
	return v, nil
}
func (s *UserService) EchoStatusMap(_ context.Context, v map[string]Status) (map[string]Status, error) {
	s.recordDeep("echoStatusMap", v)
	return v, nil
}
func (s *UserService) EchoAddress(_ context.Context, v *Address) (*Address, error) {
	s.recordDeep("echoAddress", v)
	return v, nil
}
func (s *UserService) EchoAddresses(_ context.Context, v []*Address) ([]*Address, error) {
	s.recordDeep("echoAddresses", v)
	return v, nil
}
func (s *UserService) EchoUser(_ context.Context, v *User) (*User, error) {
	s.recordDeep("echoUser", v)
	return v, nil
}
func (s *UserService) EchoUsers(_ context.Context, v []*User) ([]*User, error) {
	s.recordDeep("echoUsers", v)
	return v, nil
}
func (s *UserService) EchoUserMap(_ context.Context, v map[string]*User) (map[string]*User, error) {
	s.recordDeep("echoUserMap", v)
	return v, nil
}
func (s *UserService) EchoAllTypes(_ context.Context, v *AllTypes) (*AllTypes, error) {
	s.recordDeep("echoAllTypes", v)
	return v, nil
}
func (s *UserService) EchoLongKeys(_ context.Context, v map[int64]string) (map[int64]string, error) {
	s.recordDeep("echoLongKeys", v)
	return v, nil
}
func (s *UserService) EchoNested(_ context.Context, v map[string][]int64) (map[string][]int64, error) {
	s.recordDeep("echoNested", v)
	return v, nil
}

// EchoObject returns what it got with string map keys: dubbo-go's generic
// filter renders a key of a map[any]any result as "<interface {} Value>"
// (it names the key's reflect.Value, not the key), losing them all.
func (s *UserService) EchoObject(_ context.Context, v any) (any, error) {
	s.recordDeep("echoObject", v)
	return stringKeys(v), nil
}

func stringKeys(v any) any {
	switch x := v.(type) {
	case *any:
		if x == nil {
			return nil
		}
		return stringKeys(*x)
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, it := range x {
			out[fmt.Sprint(k)] = stringKeys(it)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, it := range x {
			out[i] = stringKeys(it)
		}
		return out
	}
	return v
}

func main() {
	dubboPort := flag.Int("dubbo-port", 20880, "dubbo protocol port on 127.0.0.1 (0: off)")
	triplePort := flag.Int("triple-port", 20881, "triple protocol port on 127.0.0.1 (0: off)")
	flag.Int("metadata-port", 20882, "ignored: no metadata service is exported (dubbo-go would bind it on every interface); "+
		"metadata goes to the registry")
	zk := flag.String("zk", "", "ZooKeeper address to register in (empty: no registry)")
	registration := flag.String("registration", "interface", "interface or application registration")
	logLevel := flag.String("log-level", "info", "debug, info, warn or error")
	flag.Parse()

	logger, err := newLogger(*logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := serve(logger, *dubboPort, *triplePort, *zk, *registration); err != nil {
		logger.Error("the example provider stopped", "err", err)
		os.Exit(1)
	}
}

// newLogger logs as protogate does: slog text lines on stderr, no colours.
// The standard library's logger (net/http's HTTP/2 server under triple
// prints two lines per call through it) goes there too, at DEBUG.
func newLogger(level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("-log-level %q: use debug, info, warn or error", level)
	}
	h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv})
	log.SetFlags(0)
	log.SetOutput(slog.NewLogLogger(h, slog.LevelDebug).Writer())
	return slog.New(h), nil
}

// serve runs the provider until SIGINT or SIGTERM. Every port it opens is on
// 127.0.0.1: the protocols bind it explicitly, and the metadata service,
// which dubbo-go binds on every interface, is not exported (remote
// metadata: with a registry, metadata goes there).
func serve(logger *slog.Logger, dubboPort, triplePort int, zk, registration string) error {
	registerMatrixTypes()
	hessian.RegisterJavaEnum(StatusActive)
	hessian.RegisterPOJO(&User{})
	hessian.RegisterPOJO(&Address{})
	ins, err := dubbo.NewInstance(instanceOptions(logger, dubboPort, triplePort, zk, registration)...)
	if err != nil {
		return fmt.Errorf("dubbo-go instance: %w", err)
	}
	srv, err := ins.NewServer()
	if err != nil {
		return fmt.Errorf("dubbo-go server: %w", err)
	}
	svcOpts := []server.ServiceOption{server.WithInterface("com.example.UserService"), server.WithSerialization("hessian2")}
	if zk == "" {
		svcOpts = append(svcOpts, server.WithNotRegister())
	}
	if err := srv.RegisterService(&UserService{}, svcOpts...); err != nil {
		return fmt.Errorf("registering com.example.UserService: %w", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve() }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-time.After(time.Second):
		// Tests and make run wait for this line on stdout.
		fmt.Printf("provider ready (dubbo port %d, triple port %d, on 127.0.0.1)\n", dubboPort, triplePort)
	}
	<-sig
	return nil
}

// instanceOptions are the dubbo-go settings: protocols on 127.0.0.1, no
// metadata service, the registry when asked, logs through logger.
func instanceOptions(logger *slog.Logger, dubboPort, triplePort int, zk, registration string) []dubbo.InstanceOption {
	opts := []dubbo.InstanceOption{
		dubbo.WithName("protogate-example-provider"),
		dubboproto.LoggerOption(logger),
		// Shut down when this program says so, not from dubbo-go's own
		// signal handler (which exits the process).
		dubbo.WithShutdown(graceful_shutdown.WithoutInternalSignal()),
		dubbo.WithRemoteMetadata(),
	}
	if dubboPort > 0 {
		opts = append(opts, dubbo.WithProtocol(protocol.WithID("dubbo"), protocol.WithDubbo(), protocol.WithIp("127.0.0.1"), protocol.WithPort(dubboPort),
			// getty's default refuses frames over about 1 MB; hessian's
			// codec packs up to 8 MiB.
			protocol.WithParams(map[string]any{"getty-session-param": map[string]any{"max-msg-len": 8 << 20}})))
	}
	if triplePort > 0 {
		opts = append(opts, dubbo.WithProtocol(protocol.WithID("tri"), protocol.WithTriple(), protocol.WithIp("127.0.0.1"), protocol.WithPort(triplePort)))
	}
	if zk != "" {
		reg := []registry.Option{registry.WithZookeeper(), registry.WithAddress(zk), registry.WithTimeout(5 * time.Second)}
		if registration == "application" {
			reg = append(reg, registry.WithRegisterService())
		} else {
			reg = append(reg, registry.WithRegisterInterface())
		}
		opts = append(opts, dubbo.WithRegistry(reg...))
	}
	return opts
}
