package routetable

import (
	"fmt"

	"github.com/protogate/protogate/routetable/routetablepb"
)

// TypeURL is the xDS type of route tables, served on the control plane's
// ADS server beside Envoy's types.
const TypeURL = "type.googleapis.com/protogate.bridge.v1.RouteTable"

// Resource wraps the table as the xDS resource a bridge subscribes to,
// named by its group.
func (t *Table) Resource() (*routetablepb.RouteTable, error) {
	raw, err := t.Marshal()
	if err != nil {
		return nil, fmt.Errorf("route table of group %q: %w", t.Group, err)
	}
	// The version is the hash of these very bytes: one encoding, not two.
	return &routetablepb.RouteTable{Name: t.Group, Version: versionOf(raw), Table: raw}, nil
}

// FromResource decodes and validates a table received over xDS; its
// version must be the one the resource claims.
func FromResource(r *routetablepb.RouteTable) (*Table, error) {
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
