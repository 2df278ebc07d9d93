package bridges

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// TestCredentials connects with each kind of secret the mapping supports,
// read from a file, to a server that requires it; a wrong secret leaves the
// bridge not ready rather than failing open.
func TestCredentials(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name   string
		server func(*server.Options)
		auth   string
		ready  bool
	}{
		{"user and password file", func(o *server.Options) { o.Username, o.Password = "bridge", "s3cret" },
			"user: bridge\n      password_file: " + write("pass", "s3cret"), true},
		{"wrong password", func(o *server.Options) { o.Username, o.Password = "bridge", "s3cret" },
			"user: bridge\n      password_file: " + write("wrong", "guess"), false},
		{"token file", func(o *server.Options) { o.Authorization = "t0ken" },
			"token_file: " + write("token", "t0ken"), true},
		{"nkey seed file", func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} },
			"nkey_seed_file: " + write("seed.nk", string(seed)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := &natsServer{t: t, opts: &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true}}
			tt.server(ns.opts)
			ns.start()
			t.Cleanup(ns.stop)
			mapping := strings.Replace(testMapping(ns.url()), "reconnect_wait: 100ms\n      provision: true",
				"reconnect_wait: 100ms\n      provision: true\n      "+tt.auth, 1)
			mapping = strings.Replace(mapping, `    - name: unlisted
      urls: [ "`+ns.url()+`" ]
      reconnect_wait: 100ms
`, "", 1)
			mapping = strings.Replace(mapping, "upstream: unlisted", "upstream: events", 1)
			mapping = strings.Replace(mapping, "subject: lost.events", "subject: orders.lost.events", 1)
			b := startBridge(t, mapping)
			if tt.ready {
				b.waitReady()
				if code, r, _ := b.do("POST", "/events/orders/eu", "x", nil); code != 201 {
					t.Fatalf("publish = %d %+v", code, r)
				}
				return
			}
			time.Sleep(500 * time.Millisecond)
			if code, _, _ := b.do("GET", "/readyz", "", nil); code != 503 {
				t.Fatalf("/readyz with a wrong secret = %d, want 503", code)
			}
			if code, r, _ := b.do("POST", "/events/orders/eu", "x", nil); code != 503 || r.Error.Code != "upstream_unavailable" {
				t.Fatalf("publish with a wrong secret = %d %+v", code, r)
			}
		})
	}
}

// TestExpectations passes JetStream's optimistic-concurrency headers.
func TestExpectations(t *testing.T) {
	ns := startNATS(t, -1, t.TempDir(), 0)
	b := startBridge(t, testMapping(ns.url()))
	b.waitReady()
	if code, r, _ := b.do("POST", "/events/orders/eu", "first", map[string]string{"Nats-Expected-Last-Sequence": "0"}); code != 201 || r.Seq != 1 {
		t.Fatalf("expected last sequence 0 on an empty stream = %d %+v", code, r)
	}
	code, r, _ := b.do("POST", "/events/orders/eu", "stale", map[string]string{"Nats-Expected-Last-Sequence": "0"})
	if code != 409 || r.Error.Code != "expectation_failed" {
		t.Fatalf("stale last sequence = %d %+v", code, r.Error)
	}
	code, r, _ = b.do("POST", "/events/orders/eu", "x", map[string]string{"Nats-Expected-Stream": "PAYMENTS"})
	if code != 409 || r.Error.Code != "expectation_failed" {
		t.Fatalf("wrong expected stream = %d %+v", code, r.Error)
	}
	if code, r, _ := b.do("POST", "/events/orders/eu", "x", map[string]string{"Nats-Expected-Stream": "ORDERS"}); code != 201 || r.Seq != 2 {
		t.Fatalf("right expected stream = %d %+v", code, r)
	}
	if code, r, _ := b.do("POST", "/events/orders/eu", "x", map[string]string{"Nats-Expected-Last-Sequence": "two"}); code != 400 {
		t.Fatalf("bad sequence = %d %+v", code, r)
	}
}
