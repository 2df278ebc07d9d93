package translator

import (
	commonfault "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	fault "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"

	"github.com/protogate/protogate/config"
)

// faultFilter injects delays and aborts, listener-wide or per route.
type faultFilter struct{}

var (
	_ HTTPFilter  = faultFilter{}
	_ RouteConfig = faultFilter{}
)

func (faultFilter) Name() string { return "envoy.filters.http.fault" }
func (faultFilter) Key() string  { return "fault" }

func (faultFilter) HTTPFilter(_ *build, l *config.Listener) (proto.Message, error) {
	if l.Filters.Fault == nil {
		return nil, nil
	}
	return httpFault(l.Filters.Fault), nil
}

func (faultFilter) RouteConfig(_ *build, _ *config.Listener, r *config.Route) (proto.Message, error) {
	if r.Filters.Fault == nil {
		return nil, nil
	}
	return httpFault(r.Filters.Fault), nil
}

// percent keeps four decimals of a percentage: 12.5% is 125000 per million.
func percent(p float64) *typev3.FractionalPercent {
	return &typev3.FractionalPercent{Numerator: uint32(p*10000 + 0.5), Denominator: typev3.FractionalPercent_MILLION}
}

func httpFault(f *config.Fault) *fault.HTTPFault {
	m := &fault.HTTPFault{}
	if f.Delay != nil {
		m.Delay = &commonfault.FaultDelay{
			FaultDelaySecifier: &commonfault.FaultDelay_FixedDelay{FixedDelay: dur(f.Delay.Duration)},
			Percentage:         percent(f.Delay.Percent),
		}
	}
	if f.Abort != nil {
		m.Abort = &fault.FaultAbort{
			ErrorType:  &fault.FaultAbort_HttpStatus{HttpStatus: uint32(f.Abort.Status)},
			Percentage: percent(f.Abort.Percent),
		}
	}
	return m
}
