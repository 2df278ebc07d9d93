package wire

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCallResults(t *testing.T) {
	p := sharedProvider(t)
	c := newTestClient(t, Options{})
	tests := []struct {
		name string
		inv  Invocation
		want any
	}{
		{"String", userService("echoString", []string{"java.lang.String"}, "héllo"), "héllo"},
		{"long", userService("echoLong", []string{"long"}, int64(-1<<40)), int64(-1 << 40)},
		{"int", userService("echoInt", []string{"int"}, int32(7)), int32(7)},
		{"null result", userService("echoBoxedLong", []string{"java.lang.Long"}, nil), nil},
		{"list", userService("echoList", []string{"java.util.List"}, []string{"a", "b"}), []any{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _, err := c.Call(within(t, 10*time.Second), p.addr, tt.inv)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if !reflect.DeepEqual(v, tt.want) {
				t.Fatalf("result %T %#v, want %T %#v", v, v, tt.want, tt.want)
			}
		})
	}
}

func TestCallPOJOResult(t *testing.T) {
	p := sharedProvider(t)
	c := newTestClient(t, Options{})
	v, _, err := c.Call(within(t, 10*time.Second), p.addr, userService("getUser", []string{"long"}, int64(7)))
	if err != nil {
		t.Fatal(err)
	}
	u, ok := v.(map[any]any)
	if !ok {
		t.Fatalf("result %T, want a map", v)
	}
	addr, _ := u["address"].(map[any]any)
	if u["class"] != "com.example.User" || u["id"] != int64(7) || u["name"] != "user-7" || u["age"] != int32(30) ||
		addr["city"] != "Oslo" || !reflect.DeepEqual(u["tags"], []any{"a"}) {
		t.Fatalf("user %#v", u)
	}
}

// A POJO argument goes as a map with its class, as a generic consumer
// sends it; the provider receives its typed struct.
func TestCallPOJOArgument(t *testing.T) {
	p := sharedProvider(t)
	c := newTestClient(t, Options{})
	ctx := within(t, 10*time.Second)
	user := map[string]any{"class": "com.example.User", "name": "alice", "age": int32(30), "tags": []any{"admin"}}
	v, _, err := c.Call(ctx, p.addr, userService("createUser", []string{"com.example.User"}, user))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := v.(map[any]any)
	if got["name"] != "alice" || got["age"] != int32(30) || got["id"] == nil {
		t.Fatalf("created %#v", v)
	}
	last, _, err := c.Call(ctx, p.addr, userService("lastCall", nil))
	if err != nil || !strings.HasPrefix(asString(last), "createUser(*main.User(&{Id:0 Name:alice Age:30") {
		t.Fatalf("the provider received %v (%v)", last, err)
	}
}

// A zero-argument method, after a call whose arguments it reports.
func TestCallZeroArgs(t *testing.T) {
	p := sharedProvider(t)
	c := newTestClient(t, Options{})
	ctx := within(t, 10*time.Second)
	if _, _, err := c.Call(ctx, p.addr, userService("echoInt", []string{"int"}, int32(31))); err != nil {
		t.Fatal(err)
	}
	v, _, err := c.Call(ctx, p.addr, userService("lastCall", nil))
	if err != nil {
		t.Fatal(err)
	}
	if v != "echoInt(int32(31))" {
		t.Fatalf("lastCall = %#v", v)
	}
}

// A thrown exception keeps its Java class and message, whatever words the
// message holds: nothing is classified by text.
func TestCallException(t *testing.T) {
	p := sharedProvider(t)
	c := newTestClient(t, Options{})
	tests := []struct {
		kind, class, msg string
	}{
		{"argument", "java.lang.IllegalArgumentException", "bad argument: argument"},
		{"other", "java.lang.Throwable", "provider failure: other"},
		{"service unavailable timeout", "java.lang.Throwable", "provider failure: service unavailable timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			_, _, err := c.Call(within(t, 10*time.Second), p.addr, userService("fail", []string{"java.lang.String"}, tt.kind))
			var pe *ProviderException
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v, want a ProviderException", err, err)
			}
			if pe.Class != tt.class || pe.Message != tt.msg {
				t.Fatalf("exception %q %q, want %q %q", pe.Class, pe.Message, tt.class, tt.msg)
			}
			for _, kind := range []error{ErrTimeout, ErrUnreachable, ErrServiceNotFound, ErrServerError, ErrProviderClosing, ErrConnectionLost} {
				if errors.Is(err, kind) {
					t.Fatalf("a provider exception matches %v", kind)
				}
			}
		})
	}
}

func TestCallServiceNotFound(t *testing.T) {
	p := sharedProvider(t)
	c := newTestClient(t, Options{})
	tests := []struct {
		name, service, version, group string
	}{
		{"wrong version", "com.example.UserService", "9.9.9", ""},
		{"wrong group", "com.example.UserService", "", "blue"},
		{"both", "com.example.UserService", "2.0.0", "blue"},
		{"unknown interface", "com.example.NoSuchService", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := Invocation{Service: tt.service, Version: tt.version, Group: tt.group, Method: "lastCall"}
			_, _, err := c.Call(within(t, 10*time.Second), p.addr, inv)
			var nf *ServiceNotFoundError
			if !errors.As(err, &nf) || !errors.Is(err, ErrServiceNotFound) {
				t.Fatalf("error %T %v, want ServiceNotFoundError", err, err)
			}
			if nf.Service != tt.service || nf.Version != tt.version || nf.Group != tt.group {
				t.Fatalf("not found %+v", nf)
			}
		})
	}
}

// The provider is told the call's deadline; the caller's attachments
// arrive, and it cannot set the names the protocol owns.
func TestCallAttachmentsAndTimeout(t *testing.T) {
	p := sharedProvider(t)
	c := newTestClient(t, Options{})
	inv := userService("attachments", []string{"java.lang.String"}, "x")
	inv.Attachments = map[string]string{"x-trace": "abc", "timeout": "1", "generic": "false", "closing": "true"}
	v, att, err := c.Call(within(t, 10*time.Second), p.addr, inv)
	if err != nil {
		t.Fatal(err)
	}
	seen, ok := v.(map[any]any)
	if !ok {
		t.Fatalf("result %T", v)
	}
	ms, err := strconv.Atoi(seen["timeout"].(string))
	// Rounded up to the millisecond: 10000 unless the test stalled for
	// over a millisecond between making the context and the call.
	if err != nil || ms > 10000 || ms < 9900 {
		t.Fatalf("the provider saw timeout %q, want 10000", seen["timeout"])
	}
	t.Logf("the provider saw timeout=%d", ms)
	if seen["x-trace"] != "abc" || seen["generic"] != "true" || seen["path"] != "com.example.UserService" {
		t.Fatalf("the provider saw %v", seen)
	}
	if _, ok := seen["closing"]; ok {
		t.Fatalf("a caller's closing attachment reached the provider: %v", seen)
	}
	if att["x-trace"] != "abc" {
		t.Fatalf("response attachments %v", att)
	}
	if c.Closing(p.addr) {
		t.Fatal("the address is marked closing")
	}
}
