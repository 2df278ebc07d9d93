package translator

import (
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	gzip "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/gzip/compressor/v3"
	compressor "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/compressor/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/protogate/protogate/config"
)

// gzipFilter compresses responses; a route may opt out.
type gzipFilter struct{}

var (
	_ HTTPFilter  = gzipFilter{}
	_ RouteConfig = gzipFilter{}
)

func (gzipFilter) Name() string { return "envoy.filters.http.compressor" }
func (gzipFilter) Key() string  { return "gzip" }

var gzipLevels = map[string]gzip.Gzip_CompressionLevel{
	"default":          gzip.Gzip_DEFAULT_COMPRESSION,
	"best_speed":       gzip.Gzip_BEST_SPEED,
	"best_compression": gzip.Gzip_BEST_COMPRESSION,
}

func (gzipFilter) HTTPFilter(_ *build, l *config.Listener) (proto.Message, error) {
	g := l.Filters.Gzip
	if g == nil {
		return nil, nil
	}
	lib, err := packNested(&gzip.Gzip{CompressionLevel: gzipLevels[g.Level]})
	if err != nil {
		return nil, err
	}
	return &compressor.Compressor{
		CompressorLibrary: &core.TypedExtensionConfig{Name: "envoy.compression.gzip.compressor", TypedConfig: lib},
		ResponseDirectionConfig: &compressor.Compressor_ResponseDirectionConfig{
			CommonConfig: &compressor.Compressor_CommonDirectionConfig{
				MinContentLength: wrapperspb.UInt32(uint32(g.MinContentLength)),
				ContentType:      g.ContentTypes,
			},
		},
	}, nil
}

func (gzipFilter) RouteConfig(_ *build, _ *config.Listener, r *config.Route) (proto.Message, error) {
	if r.Filters.Gzip == nil || !r.Filters.Gzip.Disabled {
		return nil, nil
	}
	return &compressor.CompressorPerRoute{Override: &compressor.CompressorPerRoute_Disabled{Disabled: true}}, nil
}
