package translator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/protogate/protogate/routetable"
)

// Resource kinds for Render's filter.
const (
	KindListener = "listener"
	KindRoute    = "route"
	KindCluster  = "cluster"
	KindEndpoint = "endpoint"
)

// Kinds lists every kind in xDS order.
var Kinds = []string{KindListener, KindRoute, KindCluster, KindEndpoint}

// Render prints the groups' resources as Envoy's own JSON (protojson, each
// resource with its @type), as YAML or JSON. groups and kinds filter; empty
// means all. The output is byte-identical for identical input.
func Render(res *Result, groups, kinds []string, format string) ([]byte, error) {
	var out []orderedGroup
	for _, g := range res.Groups {
		if len(groups) > 0 && !slices.Contains(groups, g.Name) {
			continue
		}
		og := orderedGroup{Name: g.Name}
		var err error
		add := func(kind string, msgs []proto.Message) []json.RawMessage {
			if err != nil || (len(kinds) > 0 && !slices.Contains(kinds, kind)) {
				return nil
			}
			list := []json.RawMessage{}
			for _, m := range msgs {
				var js json.RawMessage
				if js, err = ResourceJSON(m); err != nil {
					return nil
				}
				list = append(list, js)
			}
			return list
		}
		og.Listeners = add(KindListener, protos(g.Listeners))
		og.Routes = add(KindRoute, protos(g.Routes))
		og.Clusters = add(KindCluster, protos(g.Clusters))
		og.Endpoints = add(KindEndpoint, protos(g.Endpoints))
		if err != nil {
			return nil, err
		}
		out = append(out, og)
	}
	if len(groups) > 0 && len(out) == 0 {
		return nil, fmt.Errorf("the mapping has no node group %q (groups: %s)", strings.Join(groups, ", "), strings.Join(GroupNames(res), ", "))
	}
	js, err := json.Marshal(map[string]any{"groups": out})
	if err != nil {
		return nil, err
	}
	return Format(js, format)
}

// RenderTables prints each group's bridge route table, in json or yaml.
func RenderTables(res *Result, format string) ([]byte, error) {
	type groupTable struct {
		Name    string            `json:"name"`
		Version string            `json:"version"`
		Table   *routetable.Table `json:"table"`
	}
	out := make([]groupTable, 0, len(res.Groups))
	for _, g := range res.Groups {
		out = append(out, groupTable{Name: g.Name, Version: g.Table.Version(), Table: g.Table})
	}
	js, err := json.Marshal(map[string]any{"groups": out})
	if err != nil {
		return nil, err
	}
	return Format(js, format)
}

type orderedGroup struct {
	Name      string            `json:"name"`
	Listeners []json.RawMessage `json:"listeners,omitempty"`
	Routes    []json.RawMessage `json:"routes,omitempty"`
	Clusters  []json.RawMessage `json:"clusters,omitempty"`
	Endpoints []json.RawMessage `json:"endpoints,omitempty"`
}

func protos[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

// GroupNames lists the result's node groups in order.
func GroupNames(res *Result) []string {
	names := make([]string, len(res.Groups))
	for i, g := range res.Groups {
		names[i] = g.Name
	}
	return names
}

// envoyJSON prints field names as Envoy's documentation and config_dump
// do (route_config_name, not routeConfigName). Envoy reads both forms.
var envoyJSON = protojson.MarshalOptions{UseProtoNames: true}

// ResourceJSON marshals one resource as Envoy's JSON with its type URL.
func ResourceJSON(m proto.Message) (json.RawMessage, error) {
	a, err := anypb.New(m)
	if err != nil {
		return nil, err
	}
	return MessageJSON(a)
}

// MessageJSON marshals a message as compact Envoy JSON. protojson varies
// its whitespace on purpose; compacting makes it stable.
func MessageJSON(m proto.Message) (json.RawMessage, error) {
	raw, err := envoyJSON.Marshal(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Format renders compact JSON as indented JSON or as block-style YAML,
// keeping key order.
func Format(js []byte, format string) ([]byte, error) {
	switch format {
	case "json":
		var buf bytes.Buffer
		if err := json.Indent(&buf, js, "", "  "); err != nil {
			return nil, err
		}
		buf.WriteByte('\n')
		return buf.Bytes(), nil
	case "yaml", "":
		var n yaml.Node
		if err := yaml.Unmarshal(js, &n); err != nil {
			return nil, err
		}
		blockStyle(&n)
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(&n); err != nil {
			return nil, err
		}
		return buf.Bytes(), enc.Close()
	}
	return nil, fmt.Errorf("unknown output format %q (use yaml or json)", format)
}

// blockStyle undoes the flow style JSON input gives every node, and the
// double quotes on plain strings.
func blockStyle(n *yaml.Node) {
	n.Style &^= yaml.FlowStyle
	if n.Kind == yaml.ScalarNode && n.Style == yaml.DoubleQuotedStyle {
		n.Style = 0
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}
