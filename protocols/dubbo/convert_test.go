package dubbo

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	gxbig "github.com/dubbogo/gost/math/big"

	"github.com/protogate/protogate/config"
	"github.com/protogate/protogate/protocols/dubbo/javatype"
)

var testTypes = NewTypes([]config.JavaType{
	{Class: "com.example.User", Fields: []config.JavaField{
		{Name: "name", Type: "java.lang.String"}, {Name: "age", Type: "int"},
		{Name: "status", Type: "com.example.Status"}, {Name: "address", Type: "com.example.Address"},
		{Name: "tags", Type: "java.util.List<java.lang.String>"},
	}},
	{Class: "com.example.Address", Fields: []config.JavaField{{Name: "city", Type: "java.lang.String"}}},
	{Class: "com.example.Status", Enum: []string{"ACTIVE", "SUSPENDED"}},
})

func decode(t *testing.T, s string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestFromJSON(t *testing.T) {
	c := &Converter{Types: testTypes}
	date := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		typ, json string
		want      any
	}{
		{"int", `42`, int32(42)},
		{"int", `-2147483648`, int32(-2147483648)},
		{"int", `2.0`, int32(2)},
		{"long", `9223372036854775807`, int64(9223372036854775807)},
		{"short", `-32768`, int16(-32768)},
		{"byte", `127`, int8(127)},
		{"java.lang.Integer", `null`, nil},
		{"double", `1.5e300`, 1.5e300},
		{"float", `3.25`, float32(3.25)},
		{"boolean", `true`, true},
		{"char", `"é"`, "é"},
		{"java.lang.String", `"alice"`, "alice"},
		{"java.util.Date", `"2026-11-21T10:00:00Z"`, date},
		{"byte[]", `"aGk="`, []byte("hi")},
		{"int[]", `[1, 2]`, []any{int32(1), int32(2)}},
		{"java.util.List<java.lang.Long>", `[1, 2]`, []any{int64(1), int64(2)}},
		{"java.util.Set<java.lang.String>", `["a"]`, []any{"a"}},
		{"java.util.Map<java.lang.String, java.lang.Integer>", `{"a": 1}`, map[any]any{"a": int32(1)}},
		{"java.util.Map<java.lang.Long, java.lang.String>", `{"7": "x"}`, map[any]any{int64(7): "x"}},
		{"java.lang.Object", `{"n": 1, "f": 1.5, "l": [true]}`, map[string]any{"n": int64(1), "f": 1.5, "l": []any{true}}},
		{"com.example.Status", `"ACTIVE"`, EnumConstant{"com.example.Status", "ACTIVE"}},
		{"com.example.User", `{"name": "alice", "age": 30, "status": "SUSPENDED", "address": {"city": "Oslo"}, "tags": ["a"]}`,
			map[string]any{"class": "com.example.User", "name": "alice", "age": int32(30), "status": EnumConstant{"com.example.Status", "SUSPENDED"},
				"address": map[string]any{"class": "com.example.Address", "city": "Oslo"}, "tags": []any{"a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.json, func(t *testing.T) {
			typ, err := javatype.Parse(tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.FromJSON(typ, decode(t, tt.json), "arg")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
	for _, n := range []string{"12.50", `"12.50"`, "-0.001"} {
		typ, _ := javatype.Parse("java.math.BigDecimal")
		got, err := c.FromJSON(typ, decode(t, n), "p")
		if d, ok := got.(*gxbig.Decimal); err != nil || !ok || d.String() != strings.Trim(n, `"`) {
			t.Errorf("BigDecimal %s = %v %v", n, got, err)
		}
	}
	typ, _ := javatype.Parse("java.math.BigInteger")
	if got, err := c.FromJSON(typ, decode(t, "123456789012345678901234567890"), "p"); err != nil || got.(*gxbig.Integer).String() != "123456789012345678901234567890" {
		t.Errorf("BigInteger = %v %v", got, err)
	}
}

func TestFromJSONRejects(t *testing.T) {
	c := &Converter{Types: testTypes}
	tests := []struct{ typ, json, want string }{
		{"int", `3000000000`, "arg: 3000000000 is out of range for int (-2147483648 to 2147483647)"},
		{"byte", `128`, "arg: 128 is out of range for byte (-128 to 127)"},
		{"long", `9223372036854775808`, "arg: 9223372036854775808 is out of range for long"},
		{"int", `2.5`, "arg: 2.5 is not a whole number"},
		{"int", `"42"`, "arg: must be a whole number, not a string"},
		{"int", `null`, "arg: int cannot be null"},
		{"float", `1e40`, "arg: 1e40 is out of range for float"},
		{"boolean", `1`, "arg: must be true or false, not the number 1"},
		{"char", `"ab"`, "arg: must be a one-character string"},
		{"java.lang.String", `5`, "arg: must be a string, not the number 5"},
		{"java.math.BigDecimal", `"12,50"`, `arg: "12,50" is not a decimal number`},
		{"java.util.Date", `"21/11/2026"`, `arg: "21/11/2026" is not an RFC 3339 date-time`},
		{"byte[]", `"***"`, "arg: is not valid base64"},
		{"java.util.List<java.lang.Integer>", `[1, "x"]`, "arg[1]: must be a whole number, not a string"},
		{"java.util.Map<java.lang.Long, java.lang.String>", `{"x": "y"}`, "arg.x: x is not a whole number"},
		{"com.example.Status", `"DELETED"`, "arg: must be one of ACTIVE, SUSPENDED"},
		{"com.example.User", `{"name": "a", "admin": true}`, `arg.admin: com.example.User has no field "admin"`},
		{"com.example.User", `{"address": {"city": 5}}`, "arg.address.city: must be a string, not the number 5"},
		{"com.example.User", `[1]`, "arg: must be a JSON object (com.example.User), not an array"},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.json, func(t *testing.T) {
			typ, _ := javatype.Parse(tt.typ)
			_, err := c.FromJSON(typ, decode(t, tt.json), "arg")
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestFromText(t *testing.T) {
	c := &Converter{Types: testTypes}
	for _, tt := range []struct {
		typ, text string
		want      any
		bad       bool
	}{
		{"long", "42", int64(42), false},
		{"int", "3000000000", nil, true},
		{"java.lang.Boolean", "true", true, false},
		{"java.lang.String", "a b", "a b", false},
		{"com.example.Status", "ACTIVE", EnumConstant{"com.example.Status", "ACTIVE"}, false},
		{"java.util.List<java.lang.String>", "a,b", nil, true},
	} {
		typ, _ := javatype.Parse(tt.typ)
		got, err := c.FromText(typ, tt.text, "q")
		if (err != nil) != tt.bad || (!tt.bad && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("%s %q = %#v %v", tt.typ, tt.text, got, err)
		}
	}
}

func TestFindClassKey(t *testing.T) {
	for js, want := range map[string]string{
		`{"class": "x"}`:                    "class",
		`{"a": {"b": [1, {"Class": "x"}]}}`: "a.b[1].Class",
		`[{"ok": 1}, {"class": "java.x"}]`:  "[1].class",
		`{"classes": 1, "a": {"klass": 2}}`: "",
	} {
		got, found := FindClassKey(decode(t, js), "")
		if got != want || found != (want != "") {
			t.Errorf("%s: %q %v, want %q", js, got, found, want)
		}
	}
}

func TestResultToJSON(t *testing.T) {
	d, _ := gxbig.NewDecFromString("12.50")
	in := map[any]any{
		"class": "com.example.User", "name": "alice", "ID": int64(7),
		"balance": d,
		"price":   map[any]any{"class": "java.math.BigDecimal", "value": "3.10"},
		"status":  map[any]any{"class": "com.example.Status", "name": "ACTIVE"},
		"at":      time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		"raw":     []byte("hi"),
		"tags":    []any{"a", map[any]any{"class": "com.example.Tag", "label": "x"}},
		"scores":  []int32{1, 2},
	}
	got, _ := json.Marshal(ResultToJSON(in, false))
	want := `{"ID":7,"at":"2026-01-02T03:04:05Z","balance":"12.50","name":"alice","price":"3.10","raw":"aGk=","scores":[1,2],"status":"ACTIVE","tags":["a",{"label":"x"}]}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	withClass, _ := json.Marshal(ResultToJSON(map[any]any{"class": "com.example.Address", "city": "Oslo"}, true))
	if string(withClass) != `{"city":"Oslo","class":"com.example.Address"}` {
		t.Fatalf("include_class: %s", withClass)
	}
}
