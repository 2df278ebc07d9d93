package nats

import (
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/protogate/protogate/config"
)

// Embedded is an in-process NATS server with JetStream, for development
// and first runs: one node on loopback, no replication, no authentication.
// Production points upstreams at a real NATS cluster.
type Embedded struct {
	srv  *server.Server
	dir  string
	temp bool
}

// StartEmbedded starts the server for an `embedded: true` upstream, storing
// JetStream data in its data_dir (or a temp directory removed at shutdown).
func StartEmbedded(u *config.NATSUpstream) (*Embedded, error) {
	e := &Embedded{dir: u.DataDir}
	if e.dir == "" {
		dir, err := os.MkdirTemp("", "protogate-nats-"+u.Name+"-")
		if err != nil {
			return nil, err
		}
		e.dir, e.temp = dir, true
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "protogate-" + u.Name, Host: "127.0.0.1", Port: -1,
		JetStream: true, StoreDir: e.dir, NoSigs: true, NoLog: true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS %q: %w", u.Name, err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded NATS %q did not start", u.Name)
	}
	e.srv = s
	return e, nil
}

// URL is where clients connect.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Dir is where JetStream keeps its data.
func (e *Embedded) Dir() string { return e.dir }

// Shutdown stops the server, removing its data if it lived in a temp dir.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	if e.temp {
		os.RemoveAll(e.dir)
	}
}
