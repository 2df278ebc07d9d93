// Package xds serves translated resources to Envoy nodes over ADS, with
// node groups, content-hash versions and NACK tracking.
package xds
