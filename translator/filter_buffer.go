package translator

import (
	buffer "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/buffer/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/protogate/protogate/config"
)

// bufferFilter buffers whole request bodies up to a limit and answers 413
// beyond it, so an oversized body never reaches an upstream.
type bufferFilter struct{}

var (
	_ HTTPFilter  = bufferFilter{}
	_ RouteConfig = bufferFilter{}
)

func (bufferFilter) Name() string { return "envoy.filters.http.buffer" }
func (bufferFilter) Key() string  { return "buffer" }

func (bufferFilter) HTTPFilter(_ *build, l *config.Listener) (proto.Message, error) {
	if l.Filters.Buffer == nil {
		return nil, nil
	}
	return &buffer.Buffer{MaxRequestBytes: wrapperspb.UInt32(uint32(l.Filters.Buffer.MaxRequestSize))}, nil
}

func (bufferFilter) RouteConfig(_ *build, _ *config.Listener, r *config.Route) (proto.Message, error) {
	if r.Filters.Buffer == nil {
		return nil, nil
	}
	return &buffer.BufferPerRoute{Override: &buffer.BufferPerRoute_Buffer{Buffer: &buffer.Buffer{
		MaxRequestBytes: wrapperspb.UInt32(uint32(r.Filters.Buffer.MaxRequestSize)),
	}}}, nil
}
