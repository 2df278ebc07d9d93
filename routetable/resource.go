package routetable

import (
	"fmt"
	"runtime"
	"sync"
	"weak"

	"github.com/protogate/protogate/routetable/routetablepb"
)

// TypeURL is the xDS type of route tables, served on the control plane's
// ADS server beside Envoy's types.
const TypeURL = "type.googleapis.com/protogate.bridge.v1.RouteTable"

// Resource wraps the table as the xDS resource a bridge subscribes to,
// named by its group.
func (t *Table) Resource() (*routetablepb.RouteTable, error) {
	if v, ok := encodings.Load(weak.Make(t)); ok {
		r := v.(*routetablepb.RouteTable)
		return &routetablepb.RouteTable{Name: t.Group, Version: r.GetVersion(), Table: r.GetTable()}, nil
	}
	raw, err := t.Marshal()
	if err != nil {
		return nil, fmt.Errorf("route table of group %q: %w", t.Group, err)
	}
	// The version is the hash of these very bytes: one encoding, not two.
	r := &routetablepb.RouteTable{Name: t.Group, Version: versionOf(raw), Table: raw}
	key := weak.Make(t)
	encodings.Store(key, r)
	runtime.AddCleanup(t, func(k weak.Pointer[Table]) { encodings.Delete(k) }, key)
	encodedFrom(r, t)
	return r, nil
}

// encodings remembers a table's encoding for as long as the table lives:
// a reload asks a table of ten thousand routes for its version and its
// resource several times, and tables do not change once built.
var encodings sync.Map // weak.Pointer[Table] → *routetablepb.RouteTable

// encoded remembers which table a resource made in this process was
// encoded from, so that the control plane, handed the translator's
// resources, does not decode ten thousand routes it holds already. It
// holds neither: an entry goes when its resource does.
var encoded sync.Map // weak.Pointer[routetablepb.RouteTable] → weak.Pointer[Table]

func encodedFrom(r *routetablepb.RouteTable, t *Table) {
	key := weak.Make(r)
	// The table is held weakly too: encodings holds the resource while the
	// table lives, and a strong table here would keep both for ever.
	encoded.Store(key, weak.Make(t))
	runtime.AddCleanup(r, func(k weak.Pointer[routetablepb.RouteTable]) { encoded.Delete(k) }, key)
}

// FromResource decodes and validates a table received over xDS; its
// version must be the one the resource claims.
func FromResource(r *routetablepb.RouteTable) (*Table, error) {
	if v, ok := encoded.Load(weak.Make(r)); ok {
		// Encoded here from this table (tables are not changed once
		// built), with its bytes as they were; it is validated as a
		// received one would be.
		if t := v.(weak.Pointer[Table]).Value(); t != nil && versionOf(r.GetTable()) == r.GetVersion() {
			if err := t.Validate(); err != nil {
				return nil, err
			}
			return t, nil
		}
	}
	t, err := Unmarshal(r.GetTable())
	if err != nil {
		return nil, err
	}
	// Bytes encoded as Marshal does hash to the version at once; anything
	// else (another encoder's spacing or order) is encoded again to tell.
	if versionOf(r.GetTable()) == r.GetVersion() {
		return t, nil
	}
	if v := t.Version(); v != r.GetVersion() {
		return nil, fmt.Errorf("route table %q: version %s, but its content hashes to %s", r.GetName(), r.GetVersion(), v)
	}
	return t, nil
}
