package registry

import (
	"net/url"
	"slices"
	"testing"
)

// TestParseProviderNode reads provider URL nodes as dubbo-go and Java
// Dubbo name them, and refuses what is no dubbo or tri provider of the
// interface.
func TestParseProviderNode(t *testing.T) {
	const svc = "com.example.UserService"
	for _, c := range []struct {
		url  string
		want Provider
		ok   bool
	}{
		{"dubbo://127.0.0.1:20880/" + svc + "?interface=" + svc + "&side=provider", Provider{Protocol: "dubbo", Addr: "127.0.0.1:20880"}, true},
		{"tri://10.0.0.7:50051/" + svc + "?interface=" + svc + "&version=1.0.0&group=blue", Provider{"tri", "10.0.0.7:50051", "1.0.0", "blue"}, true},
		{"dubbo://[::1]:20880/" + svc + "?side=provider", Provider{Protocol: "dubbo", Addr: "[::1]:20880"}, true},
		{"dubbo://127.0.0.1:20880/" + svc + "?interface=com.example.Other", Provider{}, false},
		{"dubbo://127.0.0.1:20880/" + svc + "?side=consumer", Provider{}, false},
		{"dubbo://127.0.0.1:20880/" + svc + "?category=configurators", Provider{}, false},
		{"dubbo://127.0.0.1:20880/" + svc + "?enabled=false", Provider{}, false},
		{"rest://127.0.0.1:8080/" + svc, Provider{}, false},
		{"dubbo://127.0.0.1/" + svc, Provider{}, false},
		{"dubbo://127.0.0.1:0/" + svc, Provider{}, false},
		{"dubbo://127.0.0.1:70000/" + svc, Provider{}, false},
		{"dubbo://:20880/" + svc, Provider{}, false},
	} {
		got, ok := parseProviderNode(url.QueryEscape(c.url), svc)
		if ok != c.ok || got != c.want {
			t.Errorf("%s = %+v %v, want %+v %v", c.url, got, ok, c.want, c.ok)
		}
	}
	if _, ok := parseProviderNode("%zz", svc); ok {
		t.Error("a node name that is not URL-encoded was taken")
	}
}

// TestParseMetadata reads the service keys of dubbo-go
// (interface:protocol) and Java Dubbo (group/interface:version:protocol),
// the entry's fields first.
func TestParseMetadata(t *testing.T) {
	data := `{"app":"a","revision":"r","services":{
		"com.example.A:dubbo":{"name":"com.example.A","protocol":"dubbo","port":1,"params":{"version":"1.0.0","group":"g"}},
		"blue/com.example.B:2.0.0:tri":{},
		"com.example.C:3.0.0:dubbo":{"name":"com.example.C","version":"3.1.0","protocol":"dubbo"},
		"com.example.D":{"name":"com.example.D","protocol":"tri","group":"red"}}}`
	v, err := parseMetadata([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	got := v.([]serviceInfo)
	slices.SortFunc(got, func(a, b serviceInfo) int {
		if a.name < b.name {
			return -1
		}
		return 1
	})
	want := []serviceInfo{
		{name: "com.example.A", version: "1.0.0", group: "g", protocol: "dubbo"},
		{name: "com.example.B", version: "2.0.0", group: "blue", protocol: "tri"},
		{name: "com.example.C", version: "3.1.0", protocol: "dubbo"},
		{name: "com.example.D", group: "red", protocol: "tri"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := parseMetadata([]byte(`{"services":[`)); err == nil {
		t.Error("broken metadata parsed")
	}
}

// TestInstanceProviders: an instance serves a service on each endpoint of
// the service's protocol, at its own address; without endpoints, on its
// own port.
func TestInstanceProviders(t *testing.T) {
	meta := []serviceInfo{
		{name: "com.example.A", protocol: "dubbo", version: "1.0.0"},
		{name: "com.example.A", protocol: "tri"},
		{name: "com.example.A", protocol: "rest"},
		{name: "com.example.B", protocol: "dubbo"},
	}
	for _, c := range []struct {
		name, data string
		want       []Provider
	}{
		{"endpoints", `{"address":"10.0.0.1","port":7,"payload":{"metadata":{"dubbo.metadata.revision":"r",
			"dubbo.endpoints":"[{\"port\":20880,\"protocol\":\"dubbo\"},{\"port\":50051,\"protocol\":\"tri\"}]"}}}`,
			[]Provider{{"dubbo", "10.0.0.1:20880", "1.0.0", ""}, {"tri", "10.0.0.1:50051", "", ""}}},
		{"no endpoints", `{"address":"10.0.0.1","port":7,"payload":{"metadata":{"dubbo.metadata.revision":"r"}}}`,
			[]Provider{{"dubbo", "10.0.0.1:7", "1.0.0", ""}, {"tri", "10.0.0.1:7", "", ""}}},
		{"other protocols only", `{"address":"10.0.0.1","port":7,"payload":{"metadata":{"dubbo.metadata.revision":"r",
			"dubbo.endpoints":"[{\"port\":8080,\"protocol\":\"rest\"}]"}}}`, nil},
	} {
		v, err := parseInstance([]byte(c.data))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := v.(*instance).providers("com.example.A", meta); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	for _, bad := range []string{`{"port":7,"payload":{"metadata":{"dubbo.metadata.revision":"r"}}}`,
		`{"address":"10.0.0.1","payload":{"metadata":{}}}`, `{"address":"10.0.0.1","payload":{"metadata":{
		"dubbo.metadata.revision":"r","dubbo.endpoints":"not json"}}}`, `[`} {
		if _, err := parseInstance([]byte(bad)); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
}

func TestParseMapping(t *testing.T) {
	v, _ := parseMapping([]byte(" a, b ,,a,c/d,.."))
	if got := v.([]string); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("got %q", got)
	}
}
