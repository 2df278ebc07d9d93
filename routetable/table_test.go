package routetable

import (
	"strings"
	"testing"

	"github.com/protogate/protogate/config"
)

const mapping = `
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: get-user
        match: { path: "/users/{id}", methods: [GET] }
        dubbo: { upstream: users, service: com.example.UserService, method: getUser, params: [ { from: path.id, type: long } ], idempotent: true, retries: 2, timeout: 2s }
      - name: list-users
        match: { path: /users, methods: [GET] }
        dubbo: { upstream: users, service: com.example.UserService, method: findUsers, params: [ { from: query.status, type: com.example.Status } ], timeout: 7s }
      - name: events
        match: { path: "/events/{region}", methods: [POST] }
        nats: { upstream: events, subject: "orders.{region}.created" }
upstreams:
  dubbo: [ { name: users, urls: [ "dubbo://127.0.0.1:20880", "dubbo://127.0.0.1:20890" ] }, { name: unused, urls: [ "dubbo://127.0.0.1:1" ] } ]
  nats: [ { name: events, urls: [ "nats://127.0.0.1:4222" ] } ]
java_types:
  - { class: com.example.Status, enum: [ ACTIVE ] }
`

func build(t *testing.T) *Table {
	t.Helper()
	cfg, err := config.LoadBytes("mapping.yaml", []byte(mapping))
	if err != nil {
		t.Fatal(err)
	}
	tb, err := Build(cfg, cfg.XDS.Groups[0])
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// TestBuild: the figures a bridge and Envoy act on are settled in the table.
func TestBuild(t *testing.T) {
	tb := build(t)
	get := tb.Route("get-user")
	if get == nil || get.Retries != 2 || get.EnvoyPerTryTimeout.Std().String() != "3s" || get.EnvoyTimeout.Std().String() != "9s" {
		t.Fatalf("get-user = %+v", get)
	}
	if get.Dubbo.ErasedTypes[0] != "long" {
		t.Errorf("get-user dubbo = %+v", get.Dubbo)
	}
	if ev := tb.Route("events"); ev.Retries != 0 || ev.EnvoyRetries != 0 || ev.BodyLimit != 1<<20 {
		t.Errorf("events = %+v", ev)
	}
	if len(tb.Upstreams.Dubbo) != 1 || strings.Join(tb.Upstreams.Dubbo[0].Endpoints, ",") != "127.0.0.1:20880,127.0.0.1:20890" {
		t.Errorf("dubbo upstreams = %+v (the unused one must be left out)", tb.Upstreams.Dubbo)
	}
}

// TestRoundTrip: a table survives the wire unchanged, version included.
func TestRoundTrip(t *testing.T) {
	tb := build(t)
	raw, err := tb.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	if back.Version() != tb.Version() {
		t.Fatalf("version %s after the round trip, %s before", back.Version(), tb.Version())
	}
	if again := build(t); again.Version() != tb.Version() {
		t.Fatalf("two builds of one mapping: %s and %s", again.Version(), tb.Version())
	}
}

// TestValidateRefuses: a table broken in any of these ways is refused, the
// error naming what is wrong.
func TestValidateRefuses(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mutate func(*Table)
		want   string
	}{
		{"unknown upstream", func(tb *Table) { tb.Routes[0].Dubbo.Upstream = "nowhere" }, `route "get-user": no dubbo upstream "nowhere"`},
		{"changed settings", func(tb *Table) { tb.Upstreams.Dubbo[0].Endpoints = []string{"10.0.0.1:1"} }, `dubbo upstream "users": digest`},
		{"bad template", func(tb *Table) { tb.Routes[0].Match.Path = "/users/{id" }, `route "get-user": match.path`},
		{"two matchers", func(tb *Table) { tb.Routes[0].Match.Prefix = "/u" }, "prefix, regex: exactly one"},
		{"bad subject", func(tb *Table) { tb.Routes[2].NATS.Subject = "$SYS.{region}" }, `route "events": nats.subject`},
		{"undeclared class", func(tb *Table) { tb.JavaTypes = nil }, "class com.example.Status is not in java_types"},
		{"erased types", func(tb *Table) { tb.Routes[0].Dubbo.ErasedTypes = []string{"int"} }, `erased type "int"`},
		{"no target", func(tb *Table) { tb.Routes[2].NATS = nil }, "0 targets"},
		{"duplicate name", func(tb *Table) { tb.Routes[1].Name = "get-user" }, `route "get-user": the name is used twice`},
		{"zero timeout", func(tb *Table) { tb.Routes[2].Timeout = 0 }, "must be positive"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tb := build(t)
			tt.mutate(tb)
			err := tb.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
			raw, _ := tb.Marshal()
			if _, err := Unmarshal(raw); err == nil {
				t.Fatal("Unmarshal took a table that does not validate")
			}
		})
	}
}
