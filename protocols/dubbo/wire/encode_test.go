package wire

import (
	"bytes"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	hessian "github.com/apache/dubbo-go-hessian2"
	gxbig "github.com/dubbogo/gost/math/big"
)

// codecFrame is the frame hessian's own codec packs for inv, the way this
// package packed requests before it wrote them itself.
func codecFrame(t *testing.T, inv *Invocation, id int64, timeout time.Duration) []byte {
	t.Helper()
	args := make([]hessian.Object, len(inv.Args))
	for i, a := range inv.Args {
		args[i] = a
	}
	types := inv.Types
	if types == nil {
		types = []string{}
	}
	att := map[string]string{"generic": "true"}
	for k, v := range inv.Attachments {
		if !reservedAttachments[k] {
			att[k] = v
		}
	}
	svc := hessian.Service{Path: inv.Service, Interface: inv.Service, Group: inv.Group, Version: inv.Version, Method: "$invoke", Timeout: timeout}
	hdr := hessian.DubboHeader{SerialID: serialHessian2, Type: hessian.PackageRequest_TwoWay, ID: id}
	frame, err := hessian.NewHessianCodec(nil).Write(svc, hdr, hessian.NewRequest([]any{inv.Method, types, args}, att))
	if err != nil {
		t.Fatal(err)
	}
	return frame
}

// decodeAll reads every value of a body with hessian's decoder.
func decodeAll(t *testing.T, body []byte) []any {
	t.Helper()
	d := hessian.NewDecoder(body)
	var out []any
	for {
		v, err := d.Decode()
		if err != nil {
			if len(out) == 0 {
				t.Fatalf("nothing decodes: %v", err)
			}
			return out
		}
		out = append(out, v)
	}
}

type encPOJO struct {
	Name string
	Tags []string
}

func (encPOJO) JavaClassName() string { return "com.example.EncPOJO" }

func init() { hessian.RegisterPOJO(&encPOJO{}) }

// The frames written here are hessian's codec's, byte for byte up to the
// attachments (a map, whose order is Go's), and decode to the same values.
func TestEncodeRequestMatchesCodec(t *testing.T) {
	long := func(s string, n int) string { return strings.Repeat(s, n) }
	strs := []string{"", "hello", long("a", 31), long("a", 32), long("a", 1023), long("a", 1024), long("a", 4096),
		long("a", 4097), long("b", 10000), "héllo, wörld", "😀", long("a", 4095) + "😀" + "tail", "a\xffb",
		long("é", 5000), long("€😀", 3000), "\u0000"}
	var cases []Invocation
	for _, s := range strs {
		cases = append(cases, Invocation{Service: "com.example.UserService", Method: "echoString", Types: []string{"java.lang.String"}, Args: []any{s}})
	}
	ints := []any{int8(-128), int8(127), int16(-32768), int16(32767), int32(-16), int32(47), int32(48), int32(-17),
		int32(-2048), int32(2047), int32(2048), int32(-262144), int32(262143), int32(262144), int32(-2147483648), int32(2147483647),
		int64(-8), int64(15), int64(16), int64(-2048), int64(2047), int64(-262144), int64(262143), int64(262144),
		int64(-2147483648), int64(2147483647), int64(2147483648), int64(-9223372036854775808), int64(9223372036854775807),
		true, false, nil}
	for _, v := range ints {
		cases = append(cases, Invocation{Service: "s", Method: "m", Types: []string{"x"}, Args: []any{v}})
	}
	pojo := map[string]any{"class": "com.example.User", "name": "alice", "tags": []any{"a", "b"}}
	pojo2 := map[string]any{"class": "com.example.User", "name": "bob", "tags": []any{}}
	cases = append(cases,
		Invocation{Service: "com.example.UserService", Version: "1.0.0", Group: "blue", Method: "many",
			Types: []string{"com.example.User", "int", "com.example.User", "java.util.List", "java.util.Map"},
			Args: []any{pojo, int32(5), pojo2, []any{map[string]any{"class": "com.example.User", "name": "c"}, "x", int64(1)},
				map[any]any{"k": int64(1)}},
			Attachments: map[string]string{"requestId": "req-7", "path": "evil", "timeout": "1", "closing": "true"}},
		Invocation{Service: "s", Method: "values", Types: []string{"a", "b", "c", "d", "e", "f"},
			Args: []any{1.5, float32(3.25), []byte("hi"), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), &encPOJO{Name: "p", Tags: []string{"t"}},
				decimal("12.50")}},
		Invocation{Service: "s", Method: "none"},
	)
	for i, inv := range cases {
		for _, timeout := range []time.Duration{0, 10 * time.Second} {
			mine, err := encodeRequest(&inv, int64(i+1), timeout)
			if err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			got := *mine
			want := codecFrame(t, &inv, int64(i+1), timeout)
			attLen := len(appendAttachments(nil, &inv, timeout))
			// hessian writes a class from a map in the map's order: only
			// the lengths and the values decoded then compare.
			unordered := inv.Method == "many"
			if len(got) != len(want) || !unordered && !bytes.Equal(got[:len(got)-attLen], want[:len(want)-attLen]) {
				t.Errorf("case %d (%.40q): frame differs from the codec's\n got %q\nwant %q", i, inv.Args, got[:min(len(got), 200)], want[:min(len(want), 200)])
				continue
			}
			gotVals := decodeAll(t, got[hessian.HEADER_LENGTH:])
			wantVals := decodeAll(t, want[hessian.HEADER_LENGTH:])
			if !reflect.DeepEqual(gotVals, wantVals) {
				t.Errorf("case %d: decodes to\n%v\nwant\n%v", i, gotVals, wantVals)
			}
			putFrame(mine)
		}
	}
}

// A frame over the protocol's 8 MiB is refused before anything is sent.
func TestEncodeRequestTooLarge(t *testing.T) {
	inv := Invocation{Service: "s", Method: "m", Types: []string{"java.lang.String"}, Args: []any{strings.Repeat("x", 9<<20)}}
	_, err := encodeRequest(&inv, 1, time.Second)
	var tl *TooLargeError
	if !asTooLarge(err, &tl) || tl.Response || tl.Limit != maxCodecBody || tl.Size < 9<<20 {
		t.Fatalf("error %T %v, want a request too large", err, err)
	}
}

func asTooLarge(err error, tl **TooLargeError) bool {
	e, ok := err.(*TooLargeError)
	*tl = e
	return ok
}

func decimal(s string) *gxbig.Decimal {
	d := new(gxbig.Decimal)
	if err := d.FromString(s); err != nil {
		panic(err)
	}
	return d
}

// hessianResult decodes an OK body with hessian's decoder alone, as this
// package did before it read the common answers itself.
func hessianResult(t *testing.T, body []byte) (any, map[string]string) {
	t.Helper()
	d := hessian.NewDecoder(body)
	kind, err := d.Decode()
	if err != nil {
		t.Fatal(err)
	}
	var v any
	switch kind.(int32) {
	case hessian.RESPONSE_VALUE, hessian.RESPONSE_VALUE_WITH_ATTACHMENTS:
		if v, err = d.Decode(); err != nil {
			t.Fatal(err)
		}
	}
	switch kind.(int32) {
	case hessian.RESPONSE_VALUE_WITH_ATTACHMENTS, hessian.RESPONSE_NULL_VALUE_WITH_ATTACHMENTS:
		raw, err := d.Decode()
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := raw.(map[any]any); ok {
			return v, hessian.ToMapStringString(m)
		}
	}
	return v, nil
}

// What the fast reader reads, it reads as hessian's decoder does; what it
// declines, hessian's decoder gets.
func TestFastResultMatchesDecoder(t *testing.T) {
	inv := &Invocation{Service: "com.example.UserService", Version: "1.0.0", Attachments: map[string]string{"traceparent": "00-ab-01"}}
	echoed := map[string]any{"dubbo": "2.0.2", "path": "com.example.UserService", "interface": "com.example.UserService",
		"version": "1.0.0", "timeout": "5000", "traceparent": "00-ab-01", "remote-addr": "127.0.0.1:40000", "x": strings.Repeat("y", 300)}
	values := []any{"hello", "", strings.Repeat("a", 31), strings.Repeat("a", 32), strings.Repeat("a", 1023), strings.Repeat("a", 1024),
		strings.Repeat("a", 5000), "héllo", "😀", nil, true, false, int32(-16), int32(47), int32(48), int32(-17), int32(100000),
		int64(-8), int64(15), int64(16), int64(1 << 40), 1.5, []any{"a"}, map[any]any{"k": "v"}, []byte("b")}
	fast := 0
	for _, v := range values {
		for _, att := range []map[string]any{nil, echoed, {"é": "v"}, {"k": "é"}, {"flag": true, "n": int32(3), "k": "v", "z": nil}, {"f": 1.5}} {
			body := responseBody(t, v, att)
			wantV, wantAtt := hessianResult(t, body)
			gotV, gotAtt, ok := fastResult(body, inv)
			if !ok {
				continue
			}
			fast++
			if !reflect.DeepEqual(gotV, wantV) || !reflect.DeepEqual(gotAtt, wantAtt) {
				t.Errorf("%#v with %v: fast read %#v %v, want %#v %v", v, att, gotV, gotAtt, wantV, wantAtt)
			}
		}
	}
	// The common answers are the fast ones: an ASCII string or a small
	// number with ASCII attachments.
	for _, v := range []any{"hello", int32(5), int64(5), nil, true} {
		withFlag := maps.Clone(echoed)
		withFlag["dubbo-go-graceful-shutdown-provider-counted"] = true
		if _, _, ok := fastResult(responseBody(t, v, withFlag), inv); !ok {
			t.Errorf("%#v with the usual attachments is not read fast", v)
		}
	}
	if fast < 39 { // 13 values, with no attachments or ASCII names
		t.Errorf("only %d bodies read fast", fast)
	}
}

// responseBody is an OK body with attachments of any values, as dubbo-go's
// provider writes them (its graceful-shutdown flag is a boolean).
func responseBody(t *testing.T, v any, att map[string]any) []byte {
	t.Helper()
	kind := hessian.RESPONSE_VALUE
	switch {
	case v == nil && att == nil:
		kind = hessian.RESPONSE_NULL_VALUE
	case v == nil:
		kind = hessian.RESPONSE_NULL_VALUE_WITH_ATTACHMENTS
	case att != nil:
		kind = hessian.RESPONSE_VALUE_WITH_ATTACHMENTS
	}
	e := hessian.NewEncoder()
	parts := []any{kind}
	if v != nil {
		parts = append(parts, v)
	}
	if att != nil {
		parts = append(parts, att)
	}
	for _, p := range parts {
		if err := e.Encode(p); err != nil {
			t.Fatal(err)
		}
	}
	return e.Buffer()
}
