package translator

import (
	"slices"
	"testing"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/protogate/protogate/config"
)

// registryProviders is what a registry holds, by protocol and service.
type registryProviders map[string]map[string][]string

func (r registryProviders) Providers(_ *config.DubboUpstream, service, version, group, protocol string) []string {
	return r[protocol][group+"/"+service+":"+version]
}

// TestDiscoveredEndpoints: providers found in a registry are the Dubbo
// cluster's endpoints (dubbo protocol only: Envoy's dubbo_proxy speaks no
// other) and the bridges' table entries of each route's service.
func TestDiscoveredEndpoints(t *testing.T) {
	cfg, err := config.LoadBytes("mapping.yaml", []byte(`
listeners:
  - name: public
    address: 127.0.0.1:10000
    routes:
      - name: get-user
        match: { path: "/users/{id}", methods: [GET] }
        dubbo: { upstream: users, service: com.example.UserService, version: 1.0.0, method: getUser, params: [ { from: path.id, type: long } ] }
  - name: dubbo-in
    address: 127.0.0.1:20000
    protocol: dubbo
    routes: [ { match: { service: com.example.OrderService }, upstream: users } ]
upstreams:
  dubbo: [ { name: users, registry: "zookeeper://127.0.0.1:2181" } ]
`))
	if err != nil {
		t.Fatal(err)
	}
	reg := registryProviders{
		"dubbo": {"/com.example.UserService:1.0.0": {"10.0.0.1:20880"}, "/com.example.OrderService:": {"10.0.0.2:20880"}},
		"tri":   {"/com.example.UserService:1.0.0": {"10.0.0.1:20881"}},
	}
	res, err := TranslateWith(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	g := res.Group(config.DefaultGroup)
	var cla *endpoint.ClusterLoadAssignment
	for _, e := range g.Endpoints {
		if e.GetClusterName() == UpstreamCluster("dubbo", "users") {
			cla = e
		}
	}
	var got []string
	for _, l := range cla.GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			got = append(got, e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress())
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"10.0.0.1", "10.0.0.2"}) {
		t.Fatalf("the dubbo cluster's endpoints = %v, want both services' dubbo providers", got)
	}
	u := g.Table.Upstreams.Dubbo[0]
	if eps := u.Services["com.example.UserService:1.0.0"]; !slices.Equal(eps, []string{"10.0.0.1:20880"}) {
		t.Fatalf("the table's providers of the route's service = %v (services %v)", eps, u.Services)
	}
	// Nothing discovered: no entries, so a bridge knows to look itself.
	plain, err := Translate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s := plain.Group(config.DefaultGroup).Table.Upstreams.Dubbo[0].Services; s != nil {
		t.Fatalf("services without discovery = %v", s)
	}
}
