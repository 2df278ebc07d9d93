package config

import (
	"errors"
	"strings"
	"testing"
)

// TestNATSHeaderCopiesRefused: client headers never become NATS control
// headers, and credentials travel only where the mapping says so.
func TestNATSHeaderCopiesRefused(t *testing.T) {
	tests := []struct {
		name, target, wantPath, wantMsg string
	}{
		{"msg id copied", `headers: [ Nats-Msg-Id ]`, "nats.headers[0]", "Nats-Msg-Id would be a NATS control header; only the bridge sets those"},
		{"expectation copied", `headers: [ nats-expected-last-sequence ]`, "nats.headers[0]", "would be a NATS control header"},
		{"rollup copied", `headers: [ Nats-Rollup ]`, "nats.headers[0]", "would be a NATS control header"},
		{"ttl copied", `headers: [ Nats-TTL ]`, "nats.headers[0]", "would be a NATS control header"},
		{"authorization copied", `headers: [ Authorization ]`, "nats.headers[0]", "Authorization carries the caller's credentials; every subscriber would see them"},
		{"cookie copied", `headers: [ x-ok, Cookie ]`, "nats.headers[1]", "Cookie carries the caller's credentials"},
		{"proxy credentials copied", `headers: [ Proxy-Authorization ]`, "nats.headers[0]", "is a hop-by-hop header"},
		{"hop-by-hop copied", `headers: [ Connection ]`, "nats.headers[0]", "is a hop-by-hop header"},
		{"credential as idempotency key", `idempotency_header: Authorization`, "nats.idempotency_header", "Authorization carries the caller's credentials"},
		{"control header as idempotency key", `idempotency_header: Nats-Msg-Id`, "nats.idempotency_header", "would be a NATS control header"},
		{"hop-by-hop as idempotency key", `idempotency_header: Upgrade`, "nats.idempotency_header", "is a hop-by-hop header"},
		{"not a credential", `headers: [ x-a ], forward_credentials: [ x-a ]`, "nats.forward_credentials[0]", "x-a is not a credential header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes("m.yaml", []byte(natsRoute(tt.target)))
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("accepted: %v", err)
			}
			want := "listeners[0].routes[0]." + tt.wantPath
			if len(probs) != 1 || probs[0].Path != want || !strings.Contains(probs[0].Msg, tt.wantMsg) {
				t.Fatalf("want one problem at %s containing %q, got:\n%v", want, tt.wantMsg, probs)
			}
		})
	}
	for _, ok := range []string{
		`headers: [ x-tenant, content-language ]`,
		`headers: [ Authorization ], forward_credentials: [ authorization ]`,
		`idempotency_header: Authorization, forward_credentials: [ Authorization ]`,
		`mode: core, idempotency_header: x-key`,
	} {
		if _, err := LoadBytes("m.yaml", []byte(natsRoute(ok))); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
}

func natsRoute(target string) string {
	return `
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: a
        match: { path: /a, methods: [POST] }
        nats: { upstream: events, subject: a.b, ` + target + ` }
upstreams:
  nats: [ { name: events, urls: [ "nats://127.0.0.1:4222" ] } ]
`
}

// TestReservedAttachments: no client header becomes an attachment that
// Dubbo, triple, gRPC or dubbo-go would act on.
func TestReservedAttachments(t *testing.T) {
	for _, name := range []string{"interface", "Timeout", "dubbo.tag", "dubbo.force.tag", "environment", "tri-trace-traceid",
		"grpc-timeout", "Content-Type", "te", ":authority", "retries", "loadbalance"} {
		mapping := `
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: a
        match: { path: /a, methods: [GET] }
        dubbo: { upstream: users, service: com.example.S, method: m, attachments: [ { name: "` + name + `", header: x-a } ] }
upstreams:
  dubbo: [ { name: users, urls: [ "dubbo://127.0.0.1:20880" ] } ]
`
		_, err := LoadBytes("m.yaml", []byte(mapping))
		if err == nil || !strings.Contains(err.Error(), "dubbo.attachments[0].name: \""+name+"\" is reserved") {
			t.Errorf("attachment %q: %v", name, err)
		}
	}
}
