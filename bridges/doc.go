// Package bridges holds the HTTP server that turns requests into Dubbo
// generic calls and NATS publishes, with its route table and error mapping.
package bridges
