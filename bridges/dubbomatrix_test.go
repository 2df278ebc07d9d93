package bridges

// The Dubbo type matrix: every type a mapping can declare, alone, inside a
// POJO, inside lists and maps, and null where the type allows it, sent over
// HTTP through the bridge to three providers: the Go example provider over
// the dubbo protocol and over triple, and the Node provider (hessian.js,
// modelling a Java provider's GenericFilter) over dubbo. Each case checks
// the HTTP answer and what the provider received: the Go types dubbo-go
// realized (lastCall), or the hessian classes the Node provider decoded.
// Run without -race: the client of triple is dubbo-go.

import (
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/protogate/protogate/test/nodeprovider"
)

// matrixMethods are the echo methods the matrix calls and the Java type of
// their one parameter (and result); both providers have each of them.
var matrixMethods = []struct{ method, typ string }{
	{"echoBoolean", "boolean"}, {"echoByte", "byte"}, {"echoShort", "short"}, {"echoInt", "int"},
	{"echoLong", "long"}, {"echoFloat", "float"}, {"echoDouble", "double"}, {"echoChar", "char"},
	{"boxBoolean", "java.lang.Boolean"}, {"boxByte", "java.lang.Byte"}, {"boxShort", "java.lang.Short"},
	{"boxInteger", "java.lang.Integer"}, {"boxLong", "java.lang.Long"}, {"boxFloat", "java.lang.Float"},
	{"boxDouble", "java.lang.Double"}, {"boxCharacter", "java.lang.Character"},
	{"echoString", "java.lang.String"}, {"echoDecimal", "java.math.BigDecimal"},
	{"echoBigInteger", "java.math.BigInteger"}, {"echoDate", "java.util.Date"}, {"echoBytes", "byte[]"},
	{"echoStatus", "com.example.Status"}, {"echoInts", "int[]"}, {"echoStrings", "java.lang.String[]"},
	{"echoAddresses", "com.example.Address[]"}, {"echoList", "java.util.List<java.lang.String>"},
	{"echoSet", "java.util.Set<java.lang.String>"}, {"echoMap", "java.util.Map<java.lang.String, java.lang.Long>"},
	{"echoStatuses", "java.util.List<com.example.Status>"},
	{"echoStatusMap", "java.util.Map<java.lang.String, com.example.Status>"},
	{"echoAddress", "com.example.Address"}, {"echoUser", "com.example.User"},
	{"echoUsers", "java.util.List<com.example.User>"},
	{"echoUserMap", "java.util.Map<java.lang.String, com.example.User>"},
	{"echoAllTypes", "com.example.AllTypes"}, {"echoObject", "java.lang.Object"},
	{"echoLongKeys", "java.util.Map<java.lang.Long, java.lang.String>"},
	{"echoNested", "java.util.Map<java.lang.String, java.util.List<java.lang.Long>>"},
}

// matrixJavaTypes declares the classes as both providers have them; User
// has the fields of either (the Node provider's has four more).
const matrixJavaTypes = `java_types:
  - class: com.example.Status
    enum: [ ACTIVE, SUSPENDED ]
  - class: com.example.Address
    fields: [ { name: city, type: java.lang.String }, { name: street, type: java.lang.String } ]
  - class: com.example.User
    fields:
      - { name: id, type: long }
      - { name: name, type: java.lang.String }
      - { name: age, type: int }
      - { name: status, type: com.example.Status }
      - { name: balance, type: java.math.BigDecimal }
      - { name: created, type: java.util.Date }
      - { name: tags, type: "java.util.List<java.lang.String>" }
      - { name: address, type: com.example.Address }
      - { name: scores, type: "java.util.Map<java.lang.String, java.lang.Long>" }
      - { name: active, type: boolean }
      - { name: rating, type: double }
      - { name: big, type: java.math.BigInteger }
      - { name: avatar, type: "byte[]" }
  - class: com.example.AllTypes
    fields:
      - { name: flag, type: boolean }
      - { name: small, type: byte }
      - { name: short16, type: short }
      - { name: count, type: int }
      - { name: total, type: long }
      - { name: ratio, type: float }
      - { name: score, type: double }
      - { name: initial, type: char }
      - { name: boxedFlag, type: java.lang.Boolean }
      - { name: boxedSmall, type: java.lang.Byte }
      - { name: boxedShort, type: java.lang.Short }
      - { name: boxedCount, type: java.lang.Integer }
      - { name: boxedTotal, type: java.lang.Long }
      - { name: boxedRatio, type: java.lang.Float }
      - { name: boxedScore, type: java.lang.Double }
      - { name: boxedInitial, type: java.lang.Character }
      - { name: text, type: java.lang.String }
      - { name: amount, type: java.math.BigDecimal }
      - { name: huge, type: java.math.BigInteger }
      - { name: when, type: java.util.Date }
      - { name: data, type: "byte[]" }
      - { name: status, type: com.example.Status }
      - { name: ints, type: "int[]" }
      - { name: names, type: "java.lang.String[]" }
      - { name: addresses, type: "com.example.Address[]" }
      - { name: tags, type: "java.util.List<java.lang.String>" }
      - { name: labels, type: "java.util.Set<java.lang.String>" }
      - { name: scores, type: "java.util.Map<java.lang.String, java.lang.Long>" }
      - { name: statuses, type: "java.util.List<com.example.Status>" }
      - { name: statusByName, type: "java.util.Map<java.lang.String, com.example.Status>" }
      - { name: users, type: "java.util.List<com.example.User>" }
      - { name: userByName, type: "java.util.Map<java.lang.String, com.example.User>" }
      - { name: address, type: com.example.Address }
      - { name: user, type: com.example.User }
      - { name: any, type: java.lang.Object }
`

// matrixMapping routes POST /{upstream}/{method} to each matrix method,
// the body being the argument (optional, so null reaches the provider
// where the type allows it), plus getUser and the Go provider's lastCall.
func matrixMapping(upstreams string, names ...string) string {
	var b strings.Builder
	b.WriteString("listeners:\n  - name: public\n    address: 127.0.0.1:10000\n    routes:\n")
	for _, up := range names {
		for _, m := range matrixMethods {
			fmt.Fprintf(&b, `      - name: %[1]s-%[2]s
        match: { path: /%[1]s/%[2]s, methods: [POST] }
        dubbo:
          upstream: %[1]s
          service: com.example.UserService
          method: %[2]s
          params: [ { from: body, type: "%[3]s", optional: %[4]v } ]
          returns: "%[3]s"
          timeout: 5s
`, up, m.method, m.typ, !javaPrimitive(m.typ))
		}
		fmt.Fprintf(&b, `      - name: %[1]s-getUser
        match: { path: "/%[1]s/users/{id}", methods: [GET] }
        dubbo: { upstream: %[1]s, service: com.example.UserService, method: getUser, params: [ { from: path.id, type: long } ], returns: com.example.User }
`, up)
	}
	b.WriteString(`      - name: viadubbo-lastCall
        match: { path: /viadubbo/lastCall, methods: [GET] }
        dubbo: { upstream: viadubbo, service: com.example.UserService, method: lastCall }
`)
	b.WriteString(upstreams)
	b.WriteString(matrixJavaTypes)
	b.WriteString("bridge:\n  address: 127.0.0.1:0\n")
	return b.String()
}

func javaPrimitive(typ string) bool {
	return slices.Contains([]string{"boolean", "byte", "short", "int", "long", "float", "double", "char"}, typ)
}

// matrixCase is one value sent to one method. out is the HTTP answer
// (the input when empty); goRecv is what the Go provider's lastCall says;
// nodeRecv is the Node provider's argument as nodeprovider.Value.Shape
// renders it. The per-provider fields replace out where a provider answers
// otherwise, each with its reason beside the case.
type matrixCase struct {
	name     string
	method   string
	in       string
	out      string
	goRecv   string
	nodeRecv string
	// goOut replaces out for the Go provider on both protocols, dubboOut
	// and tripleOut for one of them, nodeOut for the Node provider.
	goOut, dubboOut, tripleOut, nodeOut string
	// nodeOnly, when set, says why the Go provider cannot take the case:
	// it runs against the Node provider alone.
	nodeOnly string
}

func (c *matrixCase) want(up string) string {
	pick := c.out
	if pick == "" {
		pick = c.in
	}
	if up != "vianode" && c.goOut != "" {
		pick = c.goOut
	}
	for _, o := range []struct{ up, out string }{{"viadubbo", c.dubboOut}, {"viatriple", c.tripleOut}, {"vianode", c.nodeOut}} {
		if up == o.up && o.out != "" {
			pick = o.out
		}
	}
	return pick
}

// Values shared by the cases.
const (
	addrJSON = `{"city": "Oslo", "street": "Karl Johans gate"}`
	userJSON = `{"id": 7, "name": "alice", "age": 30, "status": "SUSPENDED", "balance": "12.50",
		"created": "2026-01-02T03:04:05Z", "tags": ["admin", "ops"], "address": ` + addrJSON + `, "scores": {"math": 9000000000}}`
	// nodeUserExtra are the Node provider's four more User fields, at
	// Java's defaults when the request leaves them out.
	nodeUserExtra = `"active": false, "rating": 0, "big": null, "avatar": null`
)

var (
	nodeUserJSON = `{` + nodeUserExtra + `, ` + userJSON[1:]
	// A BigInteger inside an Object comes back as its exact string, as
	// every BigInteger result does.
	allTypesOutJSON = strings.Replace(allTypesJSON, `[1, 123456789012345678901234567890, "v"]`, `[1, "123456789012345678901234567890", "v"]`, 1)
)

// What the providers receive of addrJSON, userJSON and a BigInteger of 30
// digits: Go values as dubbo-go realized them; hessian classes as the Node
// provider decoded them (a POJO is the untyped map with a "class" key a
// Java consumer's generic call sends).
const (
	goAddr        = `*main.Address{City:string(Oslo) Street:string(Karl Johans gate)}`
	goUser        = `*main.User{Id:int64(7) Name:string(alice) Age:int32(30) Status:main.Status(SUSPENDED) Balance:*gxbig.Decimal(12.50) Created:time.Time(2026-01-02T03:04:05Z) Tags:[]string[string(admin) string(ops)] Address:` + goAddr + ` Scores:map[string]int64{math:int64(9000000000)}}`
	nodeAddr      = `map{java.lang.String(city):java.lang.String(Oslo) java.lang.String(class):java.lang.String(com.example.Address) java.lang.String(street):java.lang.String(Karl Johans gate)}`
	nodeUser      = `map{java.lang.String(address):` + nodeAddr + ` java.lang.String(age):int(30) java.lang.String(balance):java.math.BigDecimal{value:java.lang.String(12.50)} java.lang.String(class):java.lang.String(com.example.User) java.lang.String(created):java.util.Date(2026-01-02T03:04:05.000Z) java.lang.String(id):long(7) java.lang.String(name):java.lang.String(alice) java.lang.String(scores):map{java.lang.String(math):long(9000000000)} java.lang.String(status):com.example.Status{name:java.lang.String(SUSPENDED)} java.lang.String(tags):list[java.lang.String(admin) java.lang.String(ops)]}`
	nodeBigInt    = `java.math.BigInteger{bitCount:long(0) bitLength:long(0) firstNonzeroIntNum:long(0) lowestSetBit:long(0) mag:[long[long(1) long(2397638646) long(3279151342) long(1312754386)] signum:int(1)}`
	nodeBigIntNeg = `java.math.BigInteger{bitCount:long(0) bitLength:long(0) firstNonzeroIntNum:long(0) lowestSetBit:long(0) mag:[long[long(1) long(2397638646) long(3279151342) long(1312754386)] signum:int(-1)}`
)

var matrixCases = []matrixCase{
	// Primitives.
	{name: "boolean", method: "echoBoolean", in: `true`,
		goRecv:   `echoBoolean(bool(true))`,
		nodeRecv: `boolean(true)`},
	{name: "byte", method: "echoByte", in: `-128`,
		goRecv:   `echoByte(int8(-128))`,
		nodeRecv: `int(-128)`},
	{name: "short", method: "echoShort", in: `32767`,
		goRecv:   `echoShort(int16(32767))`,
		nodeRecv: `int(32767)`},
	{name: "int", method: "echoInt", in: `-2147483648`,
		goRecv:   `echoInt(int32(-2147483648))`,
		nodeRecv: `int(-2147483648)`},
	{name: "long beyond 2^53", method: "echoLong", in: `9007199254740993`,
		goRecv:   `echoLong(int64(9007199254740993))`,
		nodeRecv: `long(9007199254740993)`},
	{name: "float", method: "echoFloat", in: `3.25`,
		goRecv:   `echoFloat(float32(3.25))`,
		nodeRecv: `double(3.25)`},
	{name: "double", method: "echoDouble", in: `1.5e300`,
		goRecv:   `echoDouble(float64(1.5e+300))`,
		nodeRecv: `double(1.5e+300)`},
	{name: "char", method: "echoChar", in: `"é"`,
		goRecv:   `echoChar(string(é))`,
		nodeRecv: `java.lang.String(é)`},
	// Boxes, with a value and null.
	{name: "Boolean", method: "boxBoolean", in: `false`,
		goRecv:   `boxBoolean(*bool(false))`,
		nodeRecv: `boolean(false)`},
	{name: "Boolean null", method: "boxBoolean", in: `null`,
		goRecv:   `boxBoolean(*bool(nil))`,
		nodeRecv: `null`},
	{name: "Byte", method: "boxByte", in: `127`,
		goRecv:   `boxByte(*int8(127))`,
		nodeRecv: `int(127)`},
	{name: "Byte null", method: "boxByte", in: `null`,
		goRecv:   `boxByte(*int8(nil))`,
		nodeRecv: `null`},
	{name: "Short", method: "boxShort", in: `-5`,
		goRecv:   `boxShort(*int16(-5))`,
		nodeRecv: `int(-5)`},
	{name: "Short null", method: "boxShort", in: `null`,
		goRecv:   `boxShort(*int16(nil))`,
		nodeRecv: `null`},
	{name: "Integer", method: "boxInteger", in: `2147483647`,
		goRecv:   `boxInteger(*int32(2147483647))`,
		nodeRecv: `int(2147483647)`},
	{name: "Integer null", method: "boxInteger", in: `null`,
		goRecv:   `boxInteger(*int32(nil))`,
		nodeRecv: `null`},
	{name: "Long", method: "boxLong", in: `-9007199254740993`,
		goRecv:   `boxLong(*int64(-9007199254740993))`,
		nodeRecv: `long(-9007199254740993)`},
	{name: "Long null", method: "boxLong", in: `null`,
		goRecv:   `boxLong(*int64(nil))`,
		nodeRecv: `null`},
	{name: "Float", method: "boxFloat", in: `-0.5`,
		goRecv:   `boxFloat(*float32(-0.5))`,
		nodeRecv: `double(-0.5)`},
	{name: "Float null", method: "boxFloat", in: `null`,
		goRecv:   `boxFloat(*float32(nil))`,
		nodeRecv: `null`},
	{name: "Double", method: "boxDouble", in: `2.5`,
		goRecv:   `boxDouble(*float64(2.5))`,
		nodeRecv: `double(2.5)`},
	{name: "Double null", method: "boxDouble", in: `null`,
		goRecv:   `boxDouble(*float64(nil))`,
		nodeRecv: `null`},
	{name: "Character", method: "boxCharacter", in: `"Z"`,
		goRecv:   `boxCharacter(*string(Z))`,
		nodeRecv: `java.lang.String(Z)`},
	{name: "Character null", method: "boxCharacter", in: `null`,
		goRecv:   `boxCharacter(*string(nil))`,
		nodeRecv: `null`},
	// Strings, numbers of any size, dates, bytes, enums.
	{name: "String", method: "echoString", in: `"héllo, 😀"`,
		goRecv:   `echoString(string(héllo, 😀))`,
		nodeRecv: `java.lang.String(héllo, 😀)`},
	{name: "String empty", method: "echoString", in: `""`,
		goRecv:   `echoString(string())`,
		nodeRecv: `java.lang.String()`},
	{name: "String null", method: "echoString", in: `null`,
		goOut:    `""`, // The Go parameter is a value type that cannot hold null: dubbo-go realizes null as its zero value.
		goRecv:   `echoString(string())`,
		nodeRecv: `null`},
	{name: "BigDecimal", method: "echoDecimal", in: `"12.50"`,
		goRecv:   `echoDecimal(string(12.50))`,
		nodeRecv: `java.math.BigDecimal{value:java.lang.String(12.50)}`},
	{name: "BigDecimal tiny", method: "echoDecimal", in: `"-0.000000000000000000001"`,
		goRecv:   `echoDecimal(string(-0.000000000000000000001))`,
		nodeRecv: `java.math.BigDecimal{value:java.lang.String(-0.000000000000000000001)}`},
	{name: "BigDecimal from a number", method: "echoDecimal", in: `0.1`, out: `"0.1"`,
		goRecv:   `echoDecimal(string(0.1))`,
		nodeRecv: `java.math.BigDecimal{value:java.lang.String(0.1)}`},
	{name: "BigInteger", method: "echoBigInteger", in: `"123456789012345678901234567890"`,
		goRecv:   `echoBigInteger(string(123456789012345678901234567890))`,
		nodeRecv: nodeBigInt},
	{name: "BigInteger negative", method: "echoBigInteger", in: `"-98765432109876543210"`,
		goRecv:   `echoBigInteger(string(-98765432109876543210))`,
		nodeRecv: `java.math.BigInteger{bitCount:long(0) bitLength:long(0) firstNonzeroIntNum:long(0) lowestSetBit:long(0) mag:[long[long(5) long(1520782648) long(3844505322)] signum:int(-1)}`},
	{name: "Date", method: "echoDate", in: `"2026-11-21T10:00:00.123+01:00"`, out: `"2026-11-21T09:00:00.123Z"`,
		goOut:    `{}`, // dubbo-go's generic filter generalizes a top-level time.Time result as a struct without exported fields; inside a POJO a date travels (see below).
		goRecv:   `echoDate(string(2026-11-21T09:00:00Z))`,
		nodeRecv: `java.util.Date(2026-11-21T09:00:00.123Z)`},
	{name: "byte[]", method: "echoBytes", in: `"AAEC/w=="`,
		goRecv:   `echoBytes([]uint8([0 1 2 255]))`,
		nodeRecv: `[B(AAEC/w==)`},
	{name: "byte[] empty", method: "echoBytes", in: `""`,
		goRecv:   `echoBytes([]uint8([]))`,
		nodeRecv: `[B()`},
	{name: "byte[] null", method: "echoBytes", in: `null`,
		goOut:    `""`, // dubbo-go's generic filter generalizes a nil slice result as an empty list and a nil map as an empty map.
		goRecv:   `echoBytes([]uint8([]))`,
		nodeRecv: `null`},
	{name: "enum", method: "echoStatus", in: `"SUSPENDED"`,
		goRecv:   `echoStatus(main.Status(SUSPENDED))`,
		nodeRecv: `com.example.Status{name:java.lang.String(SUSPENDED)}`},
	{name: "enum null", method: "echoStatus", in: `null`,
		goOut:    `"ACTIVE"`, // Status is an int32 in Go: null is realized as 0, the first constant.
		goRecv:   `echoStatus(main.Status(ACTIVE))`,
		nodeRecv: `null`},
	// Arrays.
	{name: "int[]", method: "echoInts", in: `[1, -2, 2147483647]`,
		goRecv:   `echoInts([]int32([1 -2 2147483647]))`,
		nodeRecv: `list[int(1) int(-2) int(2147483647)]`},
	{name: "int[] empty", method: "echoInts", in: `[]`,
		goRecv:   `echoInts([]int32([]))`,
		nodeRecv: `list[]`},
	{name: "int[] null", method: "echoInts", in: `null`,
		goOut:    `[]`, // dubbo-go's generic filter generalizes a nil slice result as an empty list and a nil map as an empty map.
		goRecv:   `echoInts([]int32([]))`,
		nodeRecv: `null`},
	{name: "String[]", method: "echoStrings", in: `["a", "", "c"]`,
		goRecv:   `echoStrings([]string[string(a) string() string(c)])`,
		nodeRecv: `list[java.lang.String(a) java.lang.String() java.lang.String(c)]`},
	{name: "POJO[]", method: "echoAddresses", in: `[` + addrJSON + `, {"city": "Bergen", "street": null}]`,
		goOut:    `[` + addrJSON + `, {"city": "Bergen", "street": ""}]`, // a Go string field cannot hold null: ""
		goRecv:   `echoAddresses([]*main.Address[` + goAddr + ` *main.Address{City:string(Bergen) Street:string()}])`,
		nodeRecv: `list[` + nodeAddr + ` map{java.lang.String(city):java.lang.String(Bergen) java.lang.String(class):java.lang.String(com.example.Address) java.lang.String(street):null}]`},
	// Collections with element types.
	{name: "List<String>", method: "echoList", in: `["a", "b"]`,
		goRecv:   `echoList([]string([a b]))`,
		nodeRecv: `list[java.lang.String(a) java.lang.String(b)]`},
	{name: "List<String> null", method: "echoList", in: `null`,
		goOut:    `[]`, // dubbo-go's generic filter generalizes a nil slice result as an empty list and a nil map as an empty map.
		goRecv:   `echoList([]string([]))`,
		nodeRecv: `null`},
	{name: "Set<String>", method: "echoSet", in: `["x"]`,
		goRecv:   `echoSet([]string[string(x)])`,
		nodeRecv: `list[java.lang.String(x)]`},
	{name: "Map<String, Long>", method: "echoMap", in: `{"x": 1, "y": 9007199254740993}`,
		goRecv:   `echoMap(map[string]int64(map[x:1 y:9007199254740993]))`,
		nodeRecv: `map{java.lang.String(x):long(1) java.lang.String(y):long(9007199254740993)}`},
	{name: "Map<String, Long> empty", method: "echoMap", in: `{}`,
		goRecv:   `echoMap(map[string]int64(map[]))`,
		nodeRecv: `map{}`},
	{name: "Map<String, Long> null", method: "echoMap", in: `null`,
		goOut:    `{}`, // dubbo-go's generic filter generalizes a nil slice result as an empty list and a nil map as an empty map.
		goRecv:   `echoMap(map[string]int64(map[]))`,
		nodeRecv: `null`},
	{name: "Map<String, Long> null value", method: "echoMap", in: `{"x": null}`,
		goOut:    `{"x": 0}`, // a Go map[string]int64 cannot hold null: 0
		goRecv:   `echoMap(map[string]int64(map[x:0]))`,
		nodeRecv: `map{java.lang.String(x):null}`},
	{name: "Map<Long, String>", method: "echoLongKeys", in: `{"-1": "a", "9007199254740993": "b"}`,
		goRecv:   `echoLongKeys(map[int64]string{-1:string(a) 9007199254740993:string(b)})`,
		nodeRecv: `map{long(-1):java.lang.String(a) long(9007199254740993):java.lang.String(b)}`},
	{name: "Map<String, List<Long>>", method: "echoNested", in: `{"a": [1, 9007199254740993], "b": []}`,
		goRecv:   `echoNested(map[string][]int64{a:[]int64[int64(1) int64(9007199254740993)] b:[]int64[]})`,
		nodeRecv: `map{java.lang.String(a):list[long(1) long(9007199254740993)] java.lang.String(b):list[]}`},
	{name: "List<enum>", method: "echoStatuses", in: `["ACTIVE", "SUSPENDED"]`,
		goRecv:   `echoStatuses([]main.Status[main.Status(ACTIVE) main.Status(SUSPENDED)])`,
		nodeRecv: `list[com.example.Status{name:java.lang.String(ACTIVE)} com.example.Status{name:java.lang.String(SUSPENDED)}]`},
	{name: "Map<String, enum>", method: "echoStatusMap", in: `{"a": "ACTIVE", "b": "SUSPENDED"}`,
		goRecv:   `echoStatusMap(map[string]main.Status{a:main.Status(ACTIVE) b:main.Status(SUSPENDED)})`,
		nodeRecv: `map{java.lang.String(a):com.example.Status{name:java.lang.String(ACTIVE)} java.lang.String(b):com.example.Status{name:java.lang.String(SUSPENDED)}}`},
	// POJOs: flat, nested, in lists and maps.
	{name: "POJO", method: "echoAddress", in: addrJSON,
		goRecv:   `echoAddress(` + goAddr + `)`,
		nodeRecv: nodeAddr},
	{name: "POJO with a null field", method: "echoAddress", in: `{"city": null, "street": "x"}`,
		goOut:    `{"city": "", "street": "x"}`, // a Go string field cannot hold null: ""
		goRecv:   `echoAddress(*main.Address{City:string() Street:string(x)})`,
		nodeRecv: `map{java.lang.String(city):null java.lang.String(class):java.lang.String(com.example.Address) java.lang.String(street):java.lang.String(x)}`},
	{name: "POJO null", method: "echoAddress", in: `null`,
		goRecv:   `echoAddress(*main.Address(nil))`,
		nodeRecv: `null`},
	{name: "nested POJO", method: "echoUser", in: userJSON,
		nodeOut:  nodeUserJSON,
		goRecv:   `echoUser(` + goUser + `)`,
		nodeRecv: nodeUser},
	{name: "List<POJO>", method: "echoUsers", in: `[` + userJSON + `]`,
		nodeOut:  `[` + nodeUserJSON + `]`,
		goRecv:   `echoUsers([]*main.User[` + goUser + `])`,
		nodeRecv: `list[` + nodeUser + `]`},
	{name: "List<POJO> with a null element", method: "echoUsers", in: `[` + userJSON + `, null]`,
		nodeOut:  `[` + nodeUserJSON + `, null]`,
		nodeOnly: "dubbo-go's generic filter panics generalizing a nil pointer in a slice result (objToMap calls Elem().Interface() on it): the provider received the list, but never answers over dubbo (504) and answers INTERNAL_ERROR over triple",
		nodeRecv: `list[` + nodeUser + ` null]`},
	{name: "List<POJO> with byte[] at depth", method: "echoUsers",
		in:       `[{"name": "b", "active": true, "rating": 4.25, "big": "-123456789012345678901234567890", "avatar": "AAEC/w=="}]`,
		nodeOut:  `[{"id": 0, "name": "b", "age": 0, "status": null, "balance": null, "created": null, "tags": null, "address": null, "scores": null, "active": true, "rating": 4.25, "big": "-123456789012345678901234567890", "avatar": "AAEC/w=="}]`,
		nodeOnly: "the Go example provider's User has no byte[] or BigInteger field (AllTypes.data and AllTypes.huge cover them inside a POJO there)",
		nodeRecv: `list[map{java.lang.String(active):boolean(true) java.lang.String(avatar):[B(AAEC/w==) java.lang.String(big):` + nodeBigIntNeg +
			` java.lang.String(class):java.lang.String(com.example.User) java.lang.String(name):java.lang.String(b) java.lang.String(rating):double(4.25)}]`},
	{name: "Map<String, POJO>", method: "echoUserMap", in: `{"alice": ` + userJSON + `}`,
		nodeOut:  `{"alice": ` + nodeUserJSON + `}`,
		goRecv:   `echoUserMap(map[string]*main.User{alice:` + goUser + `})`,
		nodeRecv: `map{java.lang.String(alice):` + nodeUser + `}`},
	{name: "POJO of every kind", method: "echoAllTypes", in: allTypesJSON,
		out:      allTypesOutJSON,
		nodeOut:  strings.ReplaceAll(allTypesOutJSON, userJSON, nodeUserJSON),
		goRecv:   `echoAllTypes(*main.AllTypes{Flag:bool(true) Small:int8(-1) Short16:int16(300) Count:int32(70000) Total:int64(9007199254740993) Ratio:float32(0.25) Score:float64(-1e-300) Initial:string(ß) BoxedFlag:*bool(false) BoxedSmall:*int8(2) BoxedShort:*int16(-300) BoxedCount:*int32(5) BoxedTotal:*int64(-7) BoxedRatio:*float32(1.5) BoxedScore:*float64(2.75) BoxedInitial:*string(Ω) Text:string(ok) Amount:*gxbig.Decimal(-3.14159265358979323846) Huge:*gxbig.Integer(-123456789012345678901234567890) When:time.Time(2026-01-02T03:04:05Z) Data:[]uint8(aGVsbG8=) Status:main.Status(SUSPENDED) Ints:[]int32[int32(3) int32(4)] Names:[]string[string(n1) string(n2)] Addresses:[]*main.Address[` + goAddr + `] Tags:[]string[string(t)] Labels:[]string[string(l)] Scores:map[string]int64{s:int64(1)} Statuses:[]main.Status[main.Status(SUSPENDED) main.Status(ACTIVE)] StatusByName:map[string]main.Status{x:main.Status(SUSPENDED)} Users:[]*main.User[` + goUser + `] UserByName:map[string]*main.User{u:` + goUser + `} Address:` + goAddr + ` User:` + goUser + ` Any:map[interface {}]interface {}{k:[]interface {}[int64(1) *gxbig.Integer(123456789012345678901234567890) string(v)]}})`,
		nodeRecv: `map{java.lang.String(address):` + nodeAddr + ` java.lang.String(addresses):list[` + nodeAddr + `] java.lang.String(amount):java.math.BigDecimal{value:java.lang.String(-3.14159265358979323846)} java.lang.String(any):map{java.lang.String(k):list[long(1) ` + nodeBigInt + ` java.lang.String(v)]} java.lang.String(boxedCount):int(5) java.lang.String(boxedFlag):boolean(false) java.lang.String(boxedInitial):java.lang.String(Ω) java.lang.String(boxedRatio):double(1.5) java.lang.String(boxedScore):double(2.75) java.lang.String(boxedShort):int(-300) java.lang.String(boxedSmall):int(2) java.lang.String(boxedTotal):long(-7) java.lang.String(class):java.lang.String(com.example.AllTypes) java.lang.String(count):int(70000) java.lang.String(data):[B(aGVsbG8=) java.lang.String(flag):boolean(true) java.lang.String(huge):` + nodeBigIntNeg + ` java.lang.String(initial):java.lang.String(ß) java.lang.String(ints):list[int(3) int(4)] java.lang.String(labels):list[java.lang.String(l)] java.lang.String(names):list[java.lang.String(n1) java.lang.String(n2)] java.lang.String(ratio):double(0.25) java.lang.String(score):double(-1e-300) java.lang.String(scores):map{java.lang.String(s):long(1)} java.lang.String(short16):int(300) java.lang.String(small):int(-1) java.lang.String(status):com.example.Status{name:java.lang.String(SUSPENDED)} java.lang.String(statusByName):map{java.lang.String(x):com.example.Status{name:java.lang.String(SUSPENDED)}} java.lang.String(statuses):list[com.example.Status{name:java.lang.String(SUSPENDED)} com.example.Status{name:java.lang.String(ACTIVE)}] java.lang.String(tags):list[java.lang.String(t)] java.lang.String(text):java.lang.String(ok) java.lang.String(total):long(9007199254740993) java.lang.String(user):` + nodeUser + ` java.lang.String(userByName):map{java.lang.String(u):` + nodeUser + `} java.lang.String(users):list[` + nodeUser + `] java.lang.String(when):java.util.Date(2026-01-02T03:04:05.000Z)}`},
	{name: "POJO of every kind, nulls", method: "echoAllTypes", in: allTypesNullJSON,
		goOut:    allTypesGoZeroJSON, // Go value fields hold their zero values; nil slices and maps come back empty
		goRecv:   `echoAllTypes(*main.AllTypes{Flag:bool(false) Small:int8(0) Short16:int16(0) Count:int32(0) Total:int64(0) Ratio:float32(0) Score:float64(0) Initial:string(a) BoxedFlag:*bool(nil) BoxedSmall:*int8(nil) BoxedShort:*int16(nil) BoxedCount:*int32(nil) BoxedTotal:*int64(nil) BoxedRatio:*float32(nil) BoxedScore:*float64(nil) BoxedInitial:*string(nil) Text:string() Amount:*gxbig.Decimal(nil) Huge:*gxbig.Integer(nil) When:time.Time(0001-01-01T00:00:00Z) Data:[]uint8(nil) Status:main.Status(ACTIVE) Ints:[]int32(nil) Names:[]string(nil) Addresses:[]*main.Address(nil) Tags:[]string(nil) Labels:[]string(nil) Scores:map[string]int64(nil) Statuses:[]main.Status(nil) StatusByName:map[string]main.Status(nil) Users:[]*main.User(nil) UserByName:map[string]*main.User(nil) Address:*main.Address(nil) User:*main.User(nil) Any:interface {}(nil)})`,
		nodeRecv: `map{java.lang.String(address):null java.lang.String(addresses):null java.lang.String(amount):null java.lang.String(any):null java.lang.String(boxedCount):null java.lang.String(boxedFlag):null java.lang.String(boxedInitial):null java.lang.String(boxedRatio):null java.lang.String(boxedScore):null java.lang.String(boxedShort):null java.lang.String(boxedSmall):null java.lang.String(boxedTotal):null java.lang.String(class):java.lang.String(com.example.AllTypes) java.lang.String(count):int(0) java.lang.String(data):null java.lang.String(flag):boolean(false) java.lang.String(huge):null java.lang.String(initial):java.lang.String(a) java.lang.String(ints):null java.lang.String(labels):null java.lang.String(names):null java.lang.String(ratio):double(0) java.lang.String(score):double(0) java.lang.String(scores):null java.lang.String(short16):int(0) java.lang.String(small):int(0) java.lang.String(status):null java.lang.String(statusByName):null java.lang.String(statuses):null java.lang.String(tags):null java.lang.String(text):null java.lang.String(total):long(0) java.lang.String(user):null java.lang.String(userByName):null java.lang.String(users):null java.lang.String(when):null}`},
	// java.lang.Object.
	{name: "Object map", method: "echoObject", in: `{"a": 1, "b": [1, "x", {"c": true}], "f": 1.5, "n": null}`,
		goRecv:   `echoObject(map[interface {}]interface {}{a:int64(1) b:[]interface {}[int64(1) string(x) map[interface {}]interface {}{c:bool(true)}] f:float64(1.5) n:interface {}(nil)})`,
		nodeRecv: `map{java.lang.String(a):long(1) java.lang.String(b):list[long(1) java.lang.String(x) map{java.lang.String(c):boolean(true)}] java.lang.String(f):double(1.5) java.lang.String(n):null}`},
	{name: "Object beyond Long", method: "echoObject", in: `123456789012345678901234567890`, out: `"123456789012345678901234567890"`,
		goRecv:   `echoObject(*gxbig.Integer(123456789012345678901234567890))`,
		nodeRecv: nodeBigInt},
	{name: "Object list", method: "echoObject", in: `[1, "two", [3]]`,
		goRecv:   `echoObject([]interface {}[int64(1) string(two) []interface {}[int64(3)]])`,
		nodeRecv: `list[long(1) java.lang.String(two) list[long(3)]]`},
	{name: "Object string", method: "echoObject", in: `"s"`,
		goRecv:   `echoObject(string(s))`,
		nodeRecv: `java.lang.String(s)`},
	{name: "Object null", method: "echoObject", in: `null`,
		goRecv:   `echoObject(*interface {}(nil))`,
		nodeRecv: `null`},
}

const (
	allTypesJSON = `{"flag": true, "small": -1, "short16": 300, "count": 70000, "total": 9007199254740993,
		"ratio": 0.25, "score": -1e-300, "initial": "ß",
		"boxedFlag": false, "boxedSmall": 2, "boxedShort": -300, "boxedCount": 5, "boxedTotal": -7,
		"boxedRatio": 1.5, "boxedScore": 2.75, "boxedInitial": "Ω",
		"text": "ok", "amount": "-3.14159265358979323846", "huge": "-123456789012345678901234567890",
		"when": "2026-01-02T03:04:05Z", "data": "aGVsbG8=", "status": "SUSPENDED",
		"ints": [3, 4], "names": ["n1", "n2"], "addresses": [` + addrJSON + `],
		"tags": ["t"], "labels": ["l"], "scores": {"s": 1}, "statuses": ["SUSPENDED", "ACTIVE"],
		"statusByName": {"x": "SUSPENDED"}, "users": [` + userJSON + `], "userByName": {"u": ` + userJSON + `},
		"address": ` + addrJSON + `, "user": ` + userJSON + `,
		"any": {"k": [1, 123456789012345678901234567890, "v"]}}`
	allTypesNullJSON = `{"flag": false, "small": 0, "short16": 0, "count": 0, "total": 0, "ratio": 0, "score": 0, "initial": "a",
		"boxedFlag": null, "boxedSmall": null, "boxedShort": null, "boxedCount": null, "boxedTotal": null,
		"boxedRatio": null, "boxedScore": null, "boxedInitial": null,
		"text": null, "amount": null, "huge": null, "when": null, "data": null, "status": null,
		"ints": null, "names": null, "addresses": null, "tags": null, "labels": null, "scores": null,
		"statuses": null, "statusByName": null, "users": null, "userByName": null,
		"address": null, "user": null, "any": null}`
	allTypesGoZeroJSON = `{"flag": false, "small": 0, "short16": 0, "count": 0, "total": 0, "ratio": 0, "score": 0, "initial": "a",
		"boxedFlag": null, "boxedSmall": null, "boxedShort": null, "boxedCount": null, "boxedTotal": null,
		"boxedRatio": null, "boxedScore": null, "boxedInitial": null,
		"text": "", "amount": null, "huge": null, "when": null, "data": "", "status": "ACTIVE",
		"ints": [], "names": [], "addresses": [], "tags": [], "labels": [], "scores": {},
		"statuses": [], "statusByName": {}, "users": [], "userByName": {},
		"address": null, "user": null, "any": null}`
)

func TestDubboTypeMatrix(t *testing.T) {
	p := startProvider(t)
	np := nodeprovider.Start(t)
	ups := directUpstreams(p) + fmt.Sprintf("    - { name: vianode, urls: [ %q ], protocol: dubbo }\n", np.URL())
	b := startBridge(t, matrixMapping(ups, "viadubbo", "viatriple", "vianode"))
	for _, up := range []string{"viadubbo", "viatriple", "vianode"} {
		t.Run(up, func(t *testing.T) {
			for _, c := range matrixCases {
				if c.nodeOnly != "" && up != "vianode" {
					continue // the reason is in the case
				}
				t.Run(c.name, func(t *testing.T) {
					code, _, h := b.do("POST", "/"+up+"/"+c.method, c.in, nil)
					body := h.Get("X-Test-Body")
					if want := c.want(up); code != 200 || canonJSON(t, body) != canonJSON(t, want) {
						t.Errorf("POST %s = %d %s\nwant 200 %s", c.method, code, body, canonJSON(t, want))
					}
					if hasClassKey(t, body) {
						t.Errorf("a class key reached the answer: %s", body)
					}
					if up == "vianode" {
						checkNodeReceived(t, np, c)
						return
					}
					if got := lastCall(t, b, up); got != c.goRecv {
						t.Errorf("the Go provider received\n%s\nwant\n%s", got, c.goRecv)
					}
				})
			}
		})
	}
}

// TestDubboTypeMatrixRoundTrip: what a route returned, POSTed back
// unchanged to a route taking that type, is accepted, answered the same,
// and reaches the provider equal to what the first call delivered.
func TestDubboTypeMatrixRoundTrip(t *testing.T) {
	p := startProvider(t)
	np := nodeprovider.Start(t)
	ups := directUpstreams(p) + fmt.Sprintf("    - { name: vianode, urls: [ %q ], protocol: dubbo }\n", np.URL())
	b := startBridge(t, matrixMapping(ups, "viadubbo", "viatriple", "vianode"))
	for _, up := range []string{"viadubbo", "viatriple", "vianode"} {
		received := func(t *testing.T) string {
			if up == "vianode" {
				return np.LastCall(t).Args[0].Shape()
			}
			return lastCall(t, b, up)
		}
		for _, rt := range []struct {
			name, method, path, body, seen string
		}{
			// A user as getUser returns it, taken by echoUser.
			{"user", "echoUser", "/" + up + "/users/42", "", "user-42"},
			// Every field kind, as echoAllTypes answered it.
			{"every kind", "echoAllTypes", "/" + up + "/echoAllTypes", allTypesJSON, "Karl Johans gate"},
		} {
			t.Run(up+"/"+rt.name, func(t *testing.T) {
				method := "POST"
				if rt.body == "" {
					method = "GET"
				}
				code, _, h := b.do(method, rt.path, rt.body, nil)
				first := h.Get("X-Test-Body")
				if code != 200 {
					t.Fatalf("%s %s = %d %s", method, rt.path, code, first)
				}
				var seen []string
				for i := range 2 {
					code, _, h := b.do("POST", "/"+up+"/"+rt.method, first, nil)
					if again := h.Get("X-Test-Body"); code != 200 || canonJSON(t, again) != canonJSON(t, first) {
						t.Fatalf("POST %s with what the bridge returned (round %d) = %d %s\nwant 200 %s", rt.method, i+1, code, again, first)
					}
					seen = append(seen, received(t))
				}
				if !strings.Contains(seen[0], rt.seen) || seen[1] != seen[0] {
					t.Errorf("the provider received\n%s\nthen\n%s\nwant the same twice, with %q", seen[0], seen[1], rt.seen)
				}
			})
		}
	}
}

func checkNodeReceived(t *testing.T, np *nodeprovider.Provider, c matrixCase) {
	t.Helper()
	call := np.LastCall(t)
	if call.Method != c.method || len(call.Args) != 1 {
		t.Fatalf("the Node provider's last call is %s with %d arguments, want %s", call.Method, len(call.Args), c.method)
	}
	if call.Outcome != "value" && call.Outcome != "null" {
		t.Errorf("the Node provider answered %s: %s", call.Outcome, call.Message)
	}
	if got := call.Args[0].Shape(); got != c.nodeRecv {
		t.Errorf("the Node provider received\n%s\nwant\n%s", got, c.nodeRecv)
	}
}

// canonJSON re-encodes JSON so that equal values compare equal: numbers
// by value (1.5e300 and 1.5e+300 alike, integers exactly), RFC 3339
// strings as UTC instants, object keys sorted.
func canonJSON(t *testing.T, s string) string {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return "not JSON: " + s
	}
	out, err := json.Marshal(canonValue(v))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func canonValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, ok := new(big.Int).SetString(string(x), 10); ok {
			return json.Number(i.String())
		}
		f, _, err := big.ParseFloat(string(x), 10, 200, big.ToNearestEven)
		if err != nil {
			return x
		}
		return json.Number(f.Text('g', 17))
	case string:
		if tm, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return tm.UTC().Format(time.RFC3339Nano)
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i, it := range x {
			out[i] = canonValue(it)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, it := range x {
			out[k] = canonValue(it)
		}
		return out
	}
	return v
}

// hasClassKey reports a key naming a Java class anywhere in a JSON answer.
func hasClassKey(t *testing.T, s string) bool {
	t.Helper()
	var v any
	if json.Unmarshal([]byte(s), &v) != nil {
		return false
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case map[string]any:
			for k, it := range x {
				if k == "class" || k == "_class" || walk(it) {
					return true
				}
			}
		case []any:
			return slices.ContainsFunc(x, walk)
		}
		return false
	}
	return walk(v)
}
