// Package promreg is a Prometheus registry that remembers the names of the
// metrics registered with it, for the tests that tie dashboards to the
// code, and the sums the control plane reads off the bridges' request
// counter.
package promreg

import (
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Registry is a prometheus.Registry that keeps the names it registers.
type Registry struct {
	*prometheus.Registry
	mu    sync.Mutex
	names []string
}

// New returns an empty registry.
func New() *Registry { return &Registry{Registry: prometheus.NewRegistry()} }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Register registers c and records the names it describes.
func (r *Registry) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	r.mu.Lock()
	defer r.mu.Unlock()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil && !slices.Contains(r.names, m[1]) {
			r.names = append(r.names, m[1])
		}
	}
	return nil
}

// MustRegister registers the collectors, panicking on an error as
// prometheus.Registry does.
func (r *Registry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Names lists, sorted, the metric names registered.
func (r *Registry) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.names)
	slices.Sort(out)
	return out
}

// RequestsTotal is the bridges' request counter, labelled by route and
// status code (among others).
const RequestsTotal = "protogate_bridge_requests_total"

// Answers sums a request counter's series over routes: all answers, and
// those with a 5xx code.
func Answers(series []*dto.Metric, routes []string) (total, failed float64) {
	for _, m := range series {
		route, code := "", ""
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "route":
				route = l.GetValue()
			case "code":
				code = l.GetValue()
			}
		}
		if !slices.Contains(routes, route) {
			continue
		}
		v := m.GetCounter().GetValue()
		total += v
		if strings.HasPrefix(code, "5") {
			failed += v
		}
	}
	return total, failed
}
