package routetable

import (
	"slices"
	"strings"
	"testing"

	"github.com/protogate/protogate/config"
)

func buildFrom(t *testing.T, m string) *Table {
	t.Helper()
	cfg, err := config.LoadBytes("mapping.yaml", []byte(m))
	if err != nil {
		t.Fatal(err)
	}
	tb, err := Build(cfg, cfg.XDS.Groups[0])
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func names(rs []Route) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	slices.Sort(out)
	return out
}

// TestBridging: the table between two mappings serves the next one's
// routes, the dropped ones, and the former definition of a changed one;
// it validates and survives the wire, and without old it is next itself.
func TestBridging(t *testing.T) {
	old := buildFrom(t, mapping)
	edited := strings.Replace(mapping, `path: "/users/{id}"`, `path: "/people/{id}"`, 1) // get-user changes
	edited = strings.Replace(edited, `      - name: list-users
        match: { path: /users, methods: [GET] }
        dubbo: { upstream: users, service: com.example.UserService, method: findUsers, params: [ { from: query.status, type: com.example.Status } ], timeout: 7s }
`, "", 1) // list-users goes
	next := buildFrom(t, edited)
	b := Bridging(old, next)
	if got := names(b.Routes); !slices.Equal(got, []string{"events", "get-user", "list-users"}) {
		t.Errorf("bridging routes = %v", got)
	}
	if got := names(b.Former); !slices.Equal(got, []string{"get-user"}) || b.Former[0].Match.Path != "/users/{id}" {
		t.Errorf("former routes = %+v, want get-user's old definition", b.Former)
	}
	if b.Route("get-user").Match.Path != "/people/{id}" {
		t.Errorf("get-user in the bridging table = %+v, want its new definition", b.Route("get-user").Match)
	}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if back, err := Unmarshal(raw); err != nil || back.Version() != b.Version() || len(back.Former) != 1 {
		t.Fatalf("the bridging table after the wire: %v", err)
	}
	if !Drops(old, next) || Drops(next, b) {
		t.Error("Drops is wrong")
	}
	if Bridging(nil, next) != next || len(Bridging(next, next).Former) != 0 {
		t.Error("a table bridging to itself has former routes, or Bridging(nil, next) is not next")
	}
	// A former route must be the earlier definition of a route the table has.
	b.Former[0].Name = "nowhere"
	if err := b.Validate(); err == nil || !strings.Contains(err.Error(), `former route "nowhere"`) {
		t.Fatalf("Validate = %v, want the stray former route refused", err)
	}
}
