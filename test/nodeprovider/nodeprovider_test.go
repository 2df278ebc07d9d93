package nodeprovider_test

// These tests prove the Node provider serves: dubbo-go's own generic client
// (the consumer the bridge used so far) calls it, and a raw client on
// dubbo-go-hessian2's codec checks the protocol answers byte by byte. They
// run without -race: dubbo-go's getty transport has data races of its own.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"dubbo.apache.org/dubbo-go/v3"
	"dubbo.apache.org/dubbo-go/v3/client"
	"dubbo.apache.org/dubbo-go/v3/common/constant"
	"dubbo.apache.org/dubbo-go/v3/filter/generic"
	"dubbo.apache.org/dubbo-go/v3/graceful_shutdown"
	_ "dubbo.apache.org/dubbo-go/v3/imports"
	"dubbo.apache.org/dubbo-go/v3/logger"
	"dubbo.apache.org/dubbo-go/v3/protocol/dubbo/hessian2"
	hessian "github.com/apache/dubbo-go-hessian2"
	gxbig "github.com/dubbogo/gost/math/big"

	"github.com/protogate/protogate/test/nodeprovider"
)

const typeService = "com.example.TypeService"

// Status is com.example.Status, a Java enum.
type Status hessian.JavaEnum

const (
	Active Status = iota
	Suspended
)

var statusNames = map[Status]string{Active: "ACTIVE", Suspended: "SUSPENDED"}

func (Status) JavaClassName() string { return "com.example.Status" }
func (s Status) String() string      { return statusNames[s] }
func (Status) EnumValue(name string) hessian.JavaEnum {
	for s, n := range statusNames {
		if n == name {
			return hessian.JavaEnum(s)
		}
	}
	return hessian.InvalidJavaEnum
}

// Address is com.example.Address.
type Address struct {
	City   string
	Street string
}

func (Address) JavaClassName() string { return "com.example.Address" }

// User is com.example.User as the Node provider declares it.
type User struct {
	Id      int64
	Name    string
	Age     int32
	Status  Status
	Balance *gxbig.Decimal
	Created time.Time
	Tags    []string
	Address *Address
	Scores  map[string]int64
	Active  bool
	Rating  float64
	Big     *gxbig.Integer
	Avatar  []byte
}

func (User) JavaClassName() string { return "com.example.User" }

var registerOnce sync.Once

func register() {
	registerOnce.Do(func() {
		hessian.RegisterJavaEnum(Active)
		hessian.RegisterPOJO(&Address{})
		hessian.RegisterPOJO(&User{})
	})
}

// One dubbo-go instance per process: a second one rewrites global state
// the first one's connections read.
var (
	instanceOnce sync.Once
	instance     *dubbo.Instance
	instanceErr  error
)

// usedPorts are the provider ports this test process has seen.
var usedPorts sync.Map

// startFresh starts a provider on a port no earlier provider of this
// process had: dubbo-go keeps dead sessions pooled under an address, and a
// new provider on an old port would meet them ("session Already Closed").
func startFresh(t *testing.T, opts ...nodeprovider.Option) *nodeprovider.Provider {
	t.Helper()
	for range 10 {
		p := nodeprovider.Start(t, opts...)
		if _, seen := usedPorts.LoadOrStore(p.Port, true); !seen {
			return p
		}
		p.Kill()
	}
	t.Fatalf("node provider: no unused port in 10 starts")
	return nil
}

// genericService is dubbo-go's generic client for the provider's
// TypeService, built as protocols/dubbo/invoker.go builds its references.
func genericService(t *testing.T, p *nodeprovider.Provider) *generic.GenericService {
	t.Helper()
	register()
	instanceOnce.Do(func() {
		instance, instanceErr = dubbo.NewInstance(
			dubbo.WithName("nodeprovider-test"),
			dubbo.WithLogger(logger.WithLevel("error")),
			dubbo.WithShutdown(graceful_shutdown.WithoutInternalSignal()),
		)
	})
	if instanceErr != nil {
		t.Fatalf("dubbo-go instance: %v", instanceErr)
	}
	cli, err := instance.NewClient(client.WithClientProtocolDubbo(), client.WithClientSerialization(constant.Hessian2Serialization))
	if err != nil {
		t.Fatalf("dubbo-go client: %v", err)
	}
	svc, err := cli.NewGenericService(typeService, client.WithURL(p.URL()), client.WithVersion("1.0.0"),
		client.WithRequestTimeout(5*time.Second), client.WithRetries(0), client.WithClusterFailFast())
	if err != nil {
		t.Fatalf("generic service for %s: %v", p.URL(), err)
	}
	awaitPing(t, svc)
	return svc
}

// awaitPing calls ping until it answers (at most 5 s): after a restart on
// the same port, dubbo-go meets its dead pooled session until getty has
// redialled.
func awaitPing(t *testing.T, svc *generic.GenericService) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		v, err := svc.Invoke(ctx, "ping", []string{}, []hessian.Object{})
		cancel()
		if err == nil {
			wantEqual(t, "ping", v, "pong")
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ping: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sampleUser() *User {
	return &User{
		Id: 7, Name: "alice", Age: 30, Status: Suspended,
		Balance: decimal("12.50"),
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Tags:    []string{"admin", "ops"},
		Address: &Address{City: "Oslo", Street: "Karl Johans gate"},
		Scores:  map[string]int64{"math": 9000000000},
		Active:  true, Rating: 4.25,
		Big:    bigInt("123456789012345678901234567890"),
		Avatar: []byte{0, 1, 2, 0xff},
	}
}

func decimal(s string) *gxbig.Decimal {
	d := &gxbig.Decimal{}
	if err := d.FromString(s); err != nil {
		panic(err)
	}
	return d
}

func bigInt(s string) *gxbig.Integer {
	i := &gxbig.Integer{}
	if err := i.FromString(s); err != nil {
		panic(err)
	}
	return i
}

// TestGenericCalls calls the provider with dubbo-go's generic client and
// checks both the answer and what the provider says it received.
func TestGenericCalls(t *testing.T) {
	p := startFresh(t)
	svc := genericService(t, p)
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name   string
		method string
		types  []string
		args   []hessian.Object
		// check inspects the result or error and the recorded call.
		check func(t *testing.T, v any, err error, call nodeprovider.Call)
	}{
		{"string echo", "echoString", []string{"java.lang.String"}, []hessian.Object{"héllo wörld ✓ 😀 𝄞"},
			func(t *testing.T, v any, err error, call nodeprovider.Call) {
				wantResult(t, v, err, "héllo wörld ✓ 😀 𝄞")
				wantArg(t, call, 0, "java.lang.String", "héllo wörld ✓ 😀 𝄞")
				wantOutcome(t, call, "value")
			}},
		{"enum in a POJO", "echoUser", []string{"com.example.User"}, []hessian.Object{sampleUser()},
			func(t *testing.T, v any, err error, call nodeprovider.Call) {
				if err != nil {
					t.Fatalf("echoUser: %v", err)
				}
				// Generalized as Java's GenericFilter does: a map with "class",
				// the enum by name, nested POJOs as maps too.
				m := asMap(t, v)
				wantEqual(t, "class", m["class"], "com.example.User")
				wantEqual(t, "status", m["status"], "SUSPENDED")
				wantEqual(t, "address.class", asMap(t, m["address"])["class"], "com.example.Address")
				wantEqual(t, "address.city", asMap(t, m["address"])["city"], "Oslo")
				wantEqual(t, "id", m["id"], int64(7))
				wantEqual(t, "age", m["age"], int32(30))
				wantEqual(t, "avatar", m["avatar"], []byte{0, 1, 2, 0xff})
				u := call.Args[0]
				wantEqual(t, "arg class", u.Class, "com.example.User")
				wantEqual(t, "status class", u.Field("status").Class, "com.example.Status")
				wantEqual(t, "status name", u.Field("status").Field("name").Scalar(), "SUSPENDED")
				wantEqual(t, "balance class", u.Field("balance").Class, "java.math.BigDecimal")
				wantEqual(t, "balance value", u.Field("balance").Field("value").Scalar(), "12.50")
				wantEqual(t, "id class", u.Field("id").Class, "long")
				wantEqual(t, "age class", u.Field("age").Class, "int")
				wantEqual(t, "created class", u.Field("created").Class, "java.util.Date")
				wantEqual(t, "big class", u.Field("big").Class, "java.math.BigInteger")
				wantEqual(t, "address class", u.Field("address").Class, "com.example.Address")
				got := call.Values[0].(map[string]any)
				wantEqual(t, "value status", got["status"], "SUSPENDED")
				wantEqual(t, "value balance", got["balance"], "12.50")
				wantEqual(t, "value big", got["big"], "123456789012345678901234567890")
				wantEqual(t, "value created", got["created"], "2026-01-02T03:04:05.000Z")
				wantEqual(t, "value scores", got["scores"], map[string]any{"math": float64(9000000000)})
				wantEqual(t, "value avatar", got["avatar"], "AAEC/w==")
			}},
		{"exception", "fail", []string{"java.lang.String"}, []hessian.Object{"argument"},
			func(t *testing.T, v any, err error, call nodeprovider.Call) {
				var ge *hessian2.GenericException
				if !errors.As(err, &ge) {
					t.Fatalf("fail: got %v, %v (%T); want a GenericException", v, err, err)
				}
				wantEqual(t, "exception class", ge.ExceptionClass, "java.lang.IllegalArgumentException")
				wantEqual(t, "exception message", ge.ExceptionMessage, "bad argument: argument")
				wantOutcome(t, call, "exception")
				if call.Exception == nil || call.Exception.Class != "java.lang.IllegalArgumentException" {
					t.Errorf("recorded exception %+v", call.Exception)
				}
			}},
		{"int", "echoInt", []string{"int"}, []hessian.Object{int32(-7)},
			func(t *testing.T, v any, err error, call nodeprovider.Call) {
				wantResult(t, v, err, int32(-7))
				wantArg(t, call, 0, "int", float64(-7))
			}},
		{"long", "echoLong", []string{"long"}, []hessian.Object{int64(1) << 40},
			func(t *testing.T, v any, err error, call nodeprovider.Call) {
				wantResult(t, v, err, int64(1)<<40)
				wantArg(t, call, 0, "long", float64(int64(1)<<40))
			}},
		{"double", "echoDouble", []string{"double"}, []hessian.Object{2.5},
			func(t *testing.T, v any, err error, call nodeprovider.Call) {
				wantResult(t, v, err, 2.5)
				wantArg(t, call, 0, "double", 2.5)
			}},
		{"boolean", "echoBoolean", []string{"boolean"}, []hessian.Object{true},
			func(t *testing.T, v any, err error, call nodeprovider.Call) {
				wantResult(t, v, err, true)
				wantArg(t, call, 0, "boolean", true)
			}},
		{"byte[]", "echoBytes", []string{"byte[]"}, []hessian.Object{[]byte("\x00hi\xff")},
			func(t *testing.T, v any, err error, call nodeprovider.Call) {
				wantResult(t, v, err, []byte("\x00hi\xff"))
				wantArg(t, call, 0, "[B", "AGhp/w==")
			}},
		{"date", "echoDate", []string{"java.util.Date"}, []hessian.Object{created},
			func(t *testing.T, v any, err error, call nodeprovider.Call) {
				if err != nil {
					t.Fatalf("echoDate: %v", err)
				}
				if got, ok := v.(time.Time); !ok || !got.Equal(created) {
					t.Errorf("echoDate = %v (%T), want %v", v, v, created)
				}
				wantArg(t, call, 0, "java.util.Date", "2026-01-02T03:04:05.000Z")
			}},
		{"BigDecimal", "echoDecimal", []string{"java.math.BigDecimal"}, []hessian.Object{decimal("-0.000123")},
			func(t *testing.T, v any, err error, call nodeprovider.Call) {
				wantText(t, v, err, "-0.000123")
				wantEqual(t, "arg value", call.Args[0].Field("value").Scalar(), "-0.000123")
			}},
		{"BigInteger", "echoBigInteger", []string{"java.math.BigInteger"}, []hessian.Object{bigInt("-98765432109876543210")},
			func(t *testing.T, v any, err error, call nodeprovider.Call) {
				wantText(t, v, err, "-98765432109876543210")
				wantEqual(t, "value", call.Values[0], "-98765432109876543210")
			}},
		{"List<User>", "echoUsers", []string{"java.util.List"}, []hessian.Object{[]any{sampleUser(), sampleUser()}},
			func(t *testing.T, v any, err error, call nodeprovider.Call) {
				if err != nil {
					t.Fatalf("echoUsers: %v", err)
				}
				users, ok := v.([]any)
				if !ok || len(users) != 2 {
					t.Fatalf("echoUsers = %#v", v)
				}
				wantEqual(t, "users[1].status", asMap(t, users[1])["status"], "SUSPENDED")
				wantEqual(t, "wire element class", call.Args[0].Items()[1].Class, "com.example.User")
			}},
		{"Map<String, Long>", "echoMap", []string{"java.util.Map"}, []hessian.Object{map[string]int64{"a": 1, "b": -2}},
			func(t *testing.T, v any, err error, call nodeprovider.Call) {
				if err != nil {
					t.Fatalf("echoMap: %v", err)
				}
				wantEqual(t, "map", v, map[any]any{"a": int64(1), "b": int64(-2)})
				for _, e := range call.Args[0].Entries() {
					wantEqual(t, "key class", e[0].Class, "java.lang.String")
					wantEqual(t, "value class", e[1].Class, "long")
				}
			}},
		{"zero arguments", "ping", []string{}, []hessian.Object{},
			func(t *testing.T, v any, err error, call nodeprovider.Call) {
				wantResult(t, v, err, "pong")
				wantEqual(t, "args", len(call.Args), 0)
			}},
		{"null result", "returnNull", []string{}, []hessian.Object{},
			func(t *testing.T, v any, err error, call nodeprovider.Call) {
				wantResult(t, v, err, nil)
				wantOutcome(t, call, "null")
			}},
		{"void method", "voidCall", []string{"java.lang.String"}, []hessian.Object{"x"},
			func(t *testing.T, v any, err error, call nodeprovider.Call) {
				wantResult(t, v, err, nil)
				wantOutcome(t, call, "null")
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			v, err := svc.Invoke(ctx, tc.method, tc.types, tc.args)
			call := p.LastCall(t)
			if call.Method != tc.method {
				t.Fatalf("provider's last call is %s, want %s (the call ended with %v)", call.Method, tc.method, err)
			}
			wantEqual(t, "arg types", call.ArgTypes, tc.types)
			wantEqual(t, "generic attachment", call.Attachments["generic"], "true")
			wantEqual(t, "interface attachment", call.Attachments["interface"], typeService)
			wantEqual(t, "version", call.Version, "1.0.0")
			if !call.Generic || call.WireMethod != "$invoke" {
				t.Errorf("recorded as generic=%v wire method %q, want a generic $invoke", call.Generic, call.WireMethod)
			}
			tc.check(t, v, err, call)
		})
	}
}

// TestTypedResults: with typed results, dubbo-go decodes the enum back into
// the registered Go enum inside the registered POJO.
func TestTypedResults(t *testing.T) {
	p := startFresh(t, nodeprovider.TypedResults())
	svc := genericService(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := svc.Invoke(ctx, "echoUser", []string{"com.example.User"}, []hessian.Object{sampleUser()})
	if err != nil {
		t.Fatalf("echoUser: %v", err)
	}
	u, ok := v.(*User)
	if !ok {
		t.Fatalf("echoUser = %#v (%T), want a *User", v, v)
	}
	want := sampleUser()
	wantEqual(t, "status", u.Status, Suspended)
	wantEqual(t, "address", *u.Address, *want.Address)
	wantEqual(t, "balance", u.Balance.String(), "12.50")
	wantEqual(t, "big", u.Big.String(), want.Big.String())
	wantEqual(t, "scores", u.Scores, want.Scores)
	if !u.Created.Equal(want.Created) {
		t.Errorf("created = %v, want %v", u.Created, want.Created)
	}
}

// TestProtocolAnswers speaks the dubbo protocol with dubbo-go-hessian2's
// codec and checks each kind of answer, header and body.
func TestProtocolAnswers(t *testing.T) {
	p := nodeprovider.Start(t)
	conn := dial(t, p)
	cases := []struct {
		name   string
		frame  func(id int64) []byte
		status byte
		check  func(t *testing.T, h hessian.DubboHeader, body []byte)
	}{
		{"heartbeat", heartbeatFrame, hessian.Response_OK, func(t *testing.T, h hessian.DubboHeader, body []byte) {
			if h.Type&hessian.PackageHeartbeat == 0 {
				t.Errorf("heartbeat answer of type %#x, want the event flag", h.Type)
			}
			wantEqual(t, "body", body, []byte{'N'})
		}},
		{"value with attachments", invokeFrame(typeService, "1.0.0", "echoString", []string{"java.lang.String"}, "hi"),
			hessian.Response_OK, func(t *testing.T, h hessian.DubboHeader, body []byte) {
				rsp := readResponse(t, h, body)
				wantEqual(t, "result", rsp.RspObj, "hi")
				wantEqual(t, "response attachments", rsp.Attachments["dubbo"], "2.0.2")
			}},
		{"wrong version", invokeFrame(typeService, "2.0.0", "echoString", []string{"java.lang.String"}, "hi"),
			hessian.Response_SERVICE_NOT_FOUND, wantMessage("Not found exported service: com.example.TypeService:2.0.0")},
		{"no such method", invokeFrame(typeService, "1.0.0", "echoString", []string{"long"}, int64(1)),
			hessian.Response_SERVICE_ERROR, wantMessage("No such method echoString(long)")},
		{"argument the generic filter cannot convert", invokeFrame(typeService, "1.0.0", "echoInt", []string{"int"}, "seven"),
			hessian.Response_SERVICE_ERROR, wantMessage("NumberFormatException")},
		{"enum as a plain string inside a POJO", enumAsStringFrame,
			hessian.Response_BAD_REQUEST, wantMessage("com.example.User.status: expected com.example.Status")},
		{"status asked for", invokeFrame(typeService, "1.0.0", "respondStatus", []string{"int"}, int32(100)),
			100, wantMessage("status 100 as asked")},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := int64(1000 + i)
			write(t, conn, tc.frame(id))
			h, body := readFrame(t, conn)
			wantEqual(t, "response id", h.ID, id)
			wantEqual(t, "status", h.ResponseStatus, tc.status)
			tc.check(t, h, body)
		})
	}
	if r := p.Received(t, 0); r.Heartbeats != 1 {
		t.Errorf("provider counted %d heartbeats, want 1", r.Heartbeats)
	}
}

// TestServiceLookup: a call reaches the service only with the interface,
// version and group it is exported with; anything else is "not found", as
// status 60, or 70 as a Java provider answers it.
func TestServiceLookup(t *testing.T) {
	cases := []struct {
		name                  string
		opts                  []nodeprovider.Option
		iface, version, group string
		status                byte
	}{
		{"exported", nil, typeService, "1.0.0", "", hessian.Response_OK},
		{"the Go example provider's service name", nil, "com.example.UserService", "", "", hessian.Response_OK},
		{"no version", nil, typeService, "", "", hessian.Response_SERVICE_NOT_FOUND},
		{"unknown interface", nil, "com.example.Nope", "1.0.0", "", hessian.Response_SERVICE_NOT_FOUND},
		{"unexpected group", nil, typeService, "1.0.0", "blue", hessian.Response_SERVICE_NOT_FOUND},
		{"its group", []nodeprovider.Option{nodeprovider.WithGroup("blue")}, typeService, "1.0.0", "blue", hessian.Response_OK},
		{"group missing", []nodeprovider.Option{nodeprovider.WithGroup("blue")}, typeService, "1.0.0", "", hessian.Response_SERVICE_NOT_FOUND},
		{"as Java answers", []nodeprovider.Option{nodeprovider.JavaNotFound()}, typeService, "9.9.9", "", hessian.Response_SERVICE_ERROR},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := nodeprovider.Start(t, tc.opts...)
			conn := dial(t, p)
			svc := hessian.Service{Path: tc.iface, Interface: tc.iface, Version: tc.version, Group: tc.group, Method: "$invoke"}
			frame, err := hessian.NewHessianCodec(nil).Write(svc, hessian.DubboHeader{SerialID: 2, Type: hessian.PackageRequest_TwoWay, ID: 9},
				hessian.NewRequest([]any{"ping", []string{}, []any{}}, map[string]string{"generic": "true"}))
			if err != nil {
				t.Fatal(err)
			}
			write(t, conn, frame)
			h, body := readFrame(t, conn)
			wantEqual(t, "status", h.ResponseStatus, tc.status)
			if tc.status == hessian.Response_OK {
				wantEqual(t, "result", readResponse(t, h, body).RspObj, "pong")
				return
			}
			wantMessage("Not found exported service")(t, h, body)
			wantOutcome(t, p.LastCall(t), "not_found")
		})
	}
}

// TestTimeoutAttachment: a slow method answers after its sleep and records
// the timeout the consumer gave it.
func TestTimeoutAttachment(t *testing.T) {
	p := nodeprovider.Start(t)
	conn := dial(t, p)
	start := time.Now()
	write(t, conn, invokeFrameTimeout(typeService, "1.0.0", "slow", []string{"long"}, 1500*time.Millisecond, int64(300))(5))
	h, body := readFrame(t, conn)
	elapsed := time.Since(start)
	wantEqual(t, "result", readResponse(t, h, body).RspObj, "done")
	if elapsed < 300*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("slow(300) answered after %v", elapsed)
	}
	call := p.LastCall(t)
	wantEqual(t, "timeout attachment", call.Attachments["timeout"], "1500")
	wantEqual(t, "values", call.Values, []any{float64(300)})
	wantEqual(t, "calls since it", len(p.Received(t, call.Seq).Calls), 0)
	p.Clear(t)
	if r := p.Received(t, 0); len(r.Calls) != 0 || r.Total != call.Seq {
		t.Errorf("after Clear: %d calls kept, total %d; want none kept, total %d", len(r.Calls), r.Total, call.Seq)
	}
}

// TestPayloadLimit: answers up to the payload limit arrive whole; a bigger
// answer is 50 BAD_RESPONSE at once, a bigger request 40 BAD_REQUEST, and
// the connection stays usable after both.
func TestPayloadLimit(t *testing.T) {
	const limit = 1 << 20
	p := nodeprovider.Start(t, nodeprovider.WithPayload(limit))
	conn := dial(t, p)
	cases := []struct {
		name   string
		frame  func(int64) []byte
		status byte
		check  func(*testing.T, hessian.DubboHeader, []byte)
	}{
		{"answer under the limit", invokeFrame(typeService, "1.0.0", "bigString", []string{"int"}, int32(limit-1024)),
			hessian.Response_OK, func(t *testing.T, h hessian.DubboHeader, body []byte) {
				s, _ := readResponse(t, h, body).RspObj.(string)
				wantEqual(t, "answer length", len(s), limit-1024)
			}},
		{"answer over the limit", invokeFrame(typeService, "1.0.0", "bigString", []string{"int"}, int32(limit+1)),
			hessian.Response_BAD_RESPONSE, wantMessage(fmt.Sprintf("max payload: %d", limit))},
		{"request over the limit", invokeFrame(typeService, "1.0.0", "echoString", []string{"java.lang.String"}, strings.Repeat("y", limit+1)),
			hessian.Response_BAD_REQUEST, wantMessage("Data length too large")},
		{"heartbeat after both", heartbeatFrame, hessian.Response_OK, func(*testing.T, hessian.DubboHeader, []byte) {}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := int64(i + 1)
			start := time.Now()
			write(t, conn, tc.frame(id))
			h, body := readFrame(t, conn)
			wantEqual(t, "response id", h.ID, id)
			wantEqual(t, "status", h.ResponseStatus, tc.status)
			tc.check(t, h, body)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("answered after %v", d)
			}
		})
	}
}

// TestMultiplexing: calls on one connection are answered as they finish,
// each with its own request id, so a quick call overtakes a slow one.
func TestMultiplexing(t *testing.T) {
	p := nodeprovider.Start(t)
	conn := dial(t, p)
	write(t, conn, invokeFrame(typeService, "1.0.0", "slow", []string{"long"}, int64(400))(1))
	write(t, conn, invokeFrame(typeService, "1.0.0", "echoString", []string{"java.lang.String"}, "quick")(2))
	for _, want := range []struct {
		id     int64
		result string
	}{{2, "quick"}, {1, "done"}} {
		h, body := readFrame(t, conn)
		wantEqual(t, "answer order", h.ID, want.id)
		wantEqual(t, "result", readResponse(t, h, body).RspObj, want.result)
	}
}

// TestConcurrentCalls: concurrent callers through dubbo-go each get their
// own answer.
func TestConcurrentCalls(t *testing.T) {
	p := startFresh(t)
	svc := genericService(t, p)
	before := p.Received(t, 0).Total
	const callers = 32
	errs := make(chan error, callers)
	for i := range callers {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			want := fmt.Sprintf("caller-%d", i)
			v, err := svc.Invoke(ctx, "echoString", []string{"java.lang.String"}, []hessian.Object{want})
			if err == nil && v != want {
				err = fmt.Errorf("got %v, want %s", v, want)
			}
			errs <- err
		}()
	}
	for range callers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if r := p.Received(t, 0); r.Total-before != callers {
		t.Errorf("provider received %d calls, want %d", r.Total-before, callers)
	}
}

// TestLifecycle: a graceful stop sends the READONLY event and closes; a
// killed provider refuses connections until it is restarted on its port.
func TestLifecycle(t *testing.T) {
	p := startFresh(t)
	conn := dial(t, p)
	write(t, conn, heartbeatFrame(1))
	readFrame(t, conn)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		p.Stop()
	}()
	h, body := readFrame(t, conn)
	if h.Type&hessian.PackageRequest == 0 || h.Type&hessian.PackageHeartbeat == 0 || h.Type&hessian.PackageRequest_TwoWay != 0 {
		t.Errorf("on SIGTERM the provider sent a frame of type %#x, want a one-way event request", h.Type)
	}
	wantEqual(t, "READONLY event body", body, []byte{0x01, 'R'})
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("after the READONLY event: read %v, want EOF", err)
	}
	<-stopped

	p.Restart()
	svc := genericService(t, p)
	p.Kill()
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatalf("a killed provider still accepts connections on %s", p.Addr())
	}
	p.Restart()
	// dubbo-go's pooled connection died with the provider; it redials.
	awaitPing(t, svc)
}

// ---- raw protocol helpers ----

func dial(t *testing.T, p *nodeprovider.Provider) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", p.Addr(), err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func write(t *testing.T, conn net.Conn, frame []byte) {
	t.Helper()
	if _, err := conn.Write(frame); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readFrame reads one whole frame and parses its header with the codec.
func readFrame(t *testing.T, conn net.Conn) (hessian.DubboHeader, []byte) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	head := make([]byte, hessian.HEADER_LENGTH)
	if _, err := io.ReadFull(conn, head); err != nil {
		t.Fatalf("reading a header: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(head[12:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatalf("reading a body of %d bytes: %v", len(body), err)
	}
	var h hessian.DubboHeader
	if err := codecFor(append(head, body...)).ReadHeader(&h); err != nil {
		t.Fatalf("codec rejects the header % x: %v", head, err)
	}
	return h, body
}

func readResponse(t *testing.T, h hessian.DubboHeader, body []byte) *hessian.Response {
	t.Helper()
	frame := make([]byte, hessian.HEADER_LENGTH, hessian.HEADER_LENGTH+len(body))
	frame[0], frame[1], frame[2], frame[3] = hessian.MAGIC_HIGH, hessian.MAGIC_LOW, 2, h.ResponseStatus
	binary.BigEndian.PutUint64(frame[4:], uint64(h.ID))
	binary.BigEndian.PutUint32(frame[12:], uint32(len(body)))
	codec := codecFor(append(frame, body...))
	var again hessian.DubboHeader
	if err := codec.ReadHeader(&again); err != nil {
		t.Fatalf("header: %v", err)
	}
	rsp := hessian.NewResponse(nil, nil, nil)
	if err := codec.ReadBody(rsp); err != nil {
		t.Fatalf("codec rejects the body % x: %v", body, err)
	}
	return rsp
}

// codecFor reads one whole frame: the codec wants its body buffered.
func codecFor(frame []byte) *hessian.HessianCodec {
	return hessian.NewHessianCodec(bufio.NewReaderSize(bytes.NewReader(frame), len(frame)))
}

func wantMessage(part string) func(*testing.T, hessian.DubboHeader, []byte) {
	return func(t *testing.T, _ hessian.DubboHeader, body []byte) {
		t.Helper()
		msg, err := hessian.NewDecoder(body).Decode()
		if err != nil {
			t.Fatalf("error body % x: %v", body, err)
		}
		if s, _ := msg.(string); !strings.Contains(s, part) {
			t.Errorf("error message %q, want it to contain %q", msg, part)
		}
	}
}

func heartbeatFrame(id int64) []byte {
	b, err := hessian.NewHessianCodec(nil).Write(hessian.Service{},
		hessian.DubboHeader{SerialID: 2, Type: hessian.PackageHeartbeat, ID: id}, hessian.NewRequest([]any{}, nil))
	if err != nil {
		panic(err)
	}
	return b
}

func invokeFrame(iface, version, method string, types []string, args ...any) func(int64) []byte {
	return invokeFrameTimeout(iface, version, method, types, 0, args...)
}

// invokeFrameTimeout packs a generic $invoke as dubbo-go does.
func invokeFrameTimeout(iface, version, method string, types []string, timeout time.Duration, args ...any) func(int64) []byte {
	return func(id int64) []byte {
		svc := hessian.Service{Path: iface, Interface: iface, Version: version, Method: "$invoke", Timeout: timeout}
		params := []any{method, types, args}
		b, err := hessian.NewHessianCodec(nil).Write(svc, hessian.DubboHeader{SerialID: 2, Type: hessian.PackageRequest_TwoWay, ID: id},
			hessian.NewRequest(params, map[string]string{"generic": "true"}))
		if err != nil {
			panic(err)
		}
		return b
	}
}

// enumAsStringFrame sends echoUser with a com.example.User whose status is
// the string "ACTIVE", not the enum: what a Java provider's hessian refuses.
// The object is written by hand: a Go POJO cannot register the class twice.
func enumAsStringFrame(id int64) []byte {
	var body bytes.Buffer
	enc := hessian.NewEncoder()
	for _, s := range []string{"2.0.2", typeService, "1.0.0", "$invoke", "Ljava/lang/String;[Ljava/lang/String;[Ljava/lang/Object;", "echoUser"} {
		must(enc.Encode(s))
	}
	must(enc.Encode([]string{"com.example.User"}))
	body.Write(enc.Buffer())
	body.WriteByte(0x79) // an untyped list of one
	body.WriteByte('C')  // class definition: com.example.User with one field
	body.Write(hessianString("com.example.User"))
	body.WriteByte(0x91)
	body.Write(hessianString("status"))
	body.WriteByte(0x60) // an instance of class 0
	body.Write(hessianString("ACTIVE"))
	att := hessian.NewEncoder()
	must(att.Encode(map[string]string{"path": typeService, "interface": typeService, "version": "1.0.0", "generic": "true"}))
	body.Write(att.Buffer())
	head := make([]byte, hessian.HEADER_LENGTH)
	head[0], head[1], head[2] = hessian.MAGIC_HIGH, hessian.MAGIC_LOW, 0x80|0x40|2
	binary.BigEndian.PutUint64(head[4:], uint64(id))
	binary.BigEndian.PutUint32(head[12:], uint32(body.Len()))
	return append(head, body.Bytes()...)
}

func hessianString(s string) []byte {
	enc := hessian.NewEncoder()
	must(enc.Encode(s))
	return enc.Buffer()
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// ---- assertions ----

func wantEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func wantResult(t *testing.T, v any, err error, want any) {
	t.Helper()
	if err != nil {
		t.Fatalf("call failed: %v", err)
	}
	wantEqual(t, "result", v, want)
}

// wantText checks a BigDecimal or BigInteger result by its decimal text.
func wantText(t *testing.T, v any, err error, want string) {
	t.Helper()
	if err != nil {
		t.Fatalf("call failed: %v", err)
	}
	s, ok := v.(fmt.Stringer)
	if !ok {
		t.Fatalf("result %#v (%T) has no text form", v, v)
	}
	got, ok1 := new(big.Float).SetString(s.String())
	w, ok2 := new(big.Float).SetString(want)
	if !ok1 || !ok2 || got.Cmp(w) != 0 || s.String() != want {
		t.Errorf("result %s, want %s", s, want)
	}
}

func wantArg(t *testing.T, call nodeprovider.Call, i int, class string, value any) {
	t.Helper()
	if len(call.Args) <= i {
		t.Fatalf("provider recorded %d arguments, want more than %d", len(call.Args), i)
	}
	wantEqual(t, fmt.Sprintf("arg %d class", i), call.Args[i].Class, class)
	wantEqual(t, fmt.Sprintf("arg %d value", i), call.Args[i].Scalar(), value)
}

func wantOutcome(t *testing.T, call nodeprovider.Call, outcome string) {
	t.Helper()
	wantEqual(t, "outcome", call.Outcome, outcome)
}

func asMap(t *testing.T, v any) map[any]any {
	t.Helper()
	m, ok := v.(map[any]any)
	if !ok {
		t.Fatalf("%#v (%T) is not a map", v, v)
	}
	return m
}
