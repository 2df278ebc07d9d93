// Package translator turns a validated mapping into Envoy v3 resources
// (listeners, routes, clusters, endpoints) through filter plugins. It does
// not talk to the network.
package translator
