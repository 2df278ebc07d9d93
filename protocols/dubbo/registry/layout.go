package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The ZooKeeper layouts Dubbo registers in (dubbo-go 3 and Java Dubbo 3):
//
//	interface level:   /dubbo/<interface>/providers/<URL-encoded provider URL>
//	application level: /dubbo/mapping/<interface>  data: app[,app...]
//	                   /services/<app>/<instance>  data: instance JSON (address, endpoints, revision)
//	                   /dubbo/<app>/<revision>     data: metadata JSON (dubbo-go)
//	                   /dubbo/metadata/<app>/<revision> (Java Dubbo's metadata report)

func providersPath(svc string) string { return "/dubbo/" + svc + "/providers" }

// readInterface reads an interface's providers at interface level.
func (w *Watcher) readInterface(svc string) ([]Provider, error) {
	c, err := w.read(providersPath(svc), kindChildren)
	if err != nil {
		return nil, err
	}
	var out []Provider
	for _, name := range c.children {
		if p, ok := parseProviderNode(name, svc); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// parseProviderNode reads one child of /dubbo/<svc>/providers: a provider
// URL, URL-encoded. Only dubbo and tri providers count; a URL that says it
// is not a provider, is disabled (enabled=false, as Dubbo skips it) or
// names another interface is not one of svc's.
func parseProviderNode(name, svc string) (Provider, bool) {
	raw, err := url.QueryUnescape(name)
	if err != nil {
		return Provider{}, false
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "dubbo" && u.Scheme != "tri") {
		return Provider{}, false
	}
	addr, ok := hostPort(u.Hostname(), u.Port())
	if !ok {
		return Provider{}, false
	}
	q := u.Query()
	if side := q.Get("side"); side != "" && side != "provider" {
		return Provider{}, false
	}
	if cat := q.Get("category"); cat != "" && cat != "providers" {
		return Provider{}, false
	}
	if q.Get("enabled") == "false" {
		return Provider{}, false
	}
	if iface := q.Get("interface"); iface != "" && iface != svc {
		return Provider{}, false
	}
	return Provider{Protocol: u.Scheme, Addr: addr, Version: q.Get("version"), Group: q.Get("group")}, true
}

// hostPort joins a host and a port that is a number in 1..65535.
func hostPort(host, port string) (string, bool) {
	n, err := strconv.Atoi(port)
	if host == "" || err != nil || n < 1 || n > 65535 {
		return "", false
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), true
}

// readApplication reads an interface's providers at application level:
// the applications mapped to it, their instances, and each instance's
// metadata revision, which says what it serves.
func (w *Watcher) readApplication(svc string) ([]Provider, error) {
	apps, err := w.parsed("/dubbo/mapping/"+svc, parseMapping)
	if err != nil || apps == nil {
		return nil, err
	}
	var out []Provider
	for _, app := range apps.([]string) {
		ps, err := w.readApp(svc, app)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// parseMapping reads a mapping node: application names, comma-separated.
func parseMapping(data []byte) (any, error) {
	var apps []string
	for _, a := range strings.Split(string(data), ",") {
		if a = strings.TrimSpace(a); validName(a) && !slices.Contains(apps, a) {
			apps = append(apps, a)
		}
	}
	return apps, nil
}

// readApp reads the providers of svc among one application's instances.
func (w *Watcher) readApp(svc, app string) ([]Provider, error) {
	c, err := w.read("/services/"+app, kindChildren)
	if err != nil {
		return nil, err
	}
	ids := slices.Sorted(slices.Values(c.children))
	if len(ids) > maxProviders {
		w.log.Warn("too many instances; reading the first ones", "application", app, "found", len(ids), "kept", maxProviders)
		ids = ids[:maxProviders]
	}
	var out []Provider
	for _, id := range ids {
		if !validName(id) {
			continue
		}
		v, err := w.parsed("/services/"+app+"/"+id, parseInstance)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		inst := v.(*instance)
		meta, err := w.metadata(app, inst.revision)
		if err != nil {
			return nil, err
		}
		out = append(out, inst.providers(svc, meta)...)
	}
	return out, nil
}

// metadata reads the services an application's revision serves, where
// dubbo-go writes them and else where Java Dubbo does; nil when neither
// holds them yet (the creation is watched).
func (w *Watcher) metadata(app, revision string) ([]serviceInfo, error) {
	if !validName(revision) {
		return nil, nil
	}
	for _, path := range []string{"/dubbo/" + app + "/" + revision, "/dubbo/metadata/" + app + "/" + revision} {
		v, err := w.parsed(path, parseMetadata)
		if err != nil {
			return nil, err
		}
		if v != nil {
			return v.([]serviceInfo), nil
		}
	}
	w.log.Debug("an instance names a metadata revision the registry does not hold (yet)", "application", app, "revision", revision)
	return nil, nil
}

// instance is what one /services/<app>/<id> node says.
type instance struct {
	host      string
	port      int
	revision  string
	endpoints []endpoint // one per exported protocol port
}

type endpoint struct {
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
}

func parseInstance(data []byte) (any, error) {
	var raw struct {
		Address string `json:"address"`
		Port    int    `json:"port"`
		Payload struct {
			Metadata map[string]string `json:"metadata"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("instance: %w", err)
	}
	md := raw.Payload.Metadata
	inst := &instance{host: raw.Address, port: raw.Port, revision: md["dubbo.metadata.revision"]}
	if inst.host == "" || inst.revision == "" {
		return nil, errors.New("instance: no address or no metadata revision")
	}
	if eps := md["dubbo.endpoints"]; eps != "" {
		if err := json.Unmarshal([]byte(eps), &inst.endpoints); err != nil {
			return nil, fmt.Errorf("instance dubbo.endpoints: %w", err)
		}
	}
	return inst, nil
}

// providers lists the endpoints of svc this instance serves. As dubbo-go's
// consumer does: each endpoint of the service's protocol, on the instance's
// address; the instance's own port when it lists no endpoints at all. The
// port in the metadata is not used: instances of one revision share it.
func (inst *instance) providers(svc string, meta []serviceInfo) []Provider {
	var out []Provider
	for _, s := range meta {
		if s.name != svc || (s.protocol != "dubbo" && s.protocol != "tri") {
			continue
		}
		for _, port := range inst.ports(s.protocol) {
			if addr, ok := hostPort(inst.host, strconv.Itoa(port)); ok {
				out = append(out, Provider{Protocol: s.protocol, Addr: addr, Version: s.version, Group: s.group})
			}
		}
	}
	return out
}

func (inst *instance) ports(protocol string) []int {
	if len(inst.endpoints) == 0 {
		return []int{inst.port}
	}
	var ports []int
	for _, e := range inst.endpoints {
		if e.Protocol == protocol {
			ports = append(ports, e.Port)
		}
	}
	return ports
}

// serviceInfo is one service of a metadata revision.
type serviceInfo struct {
	name, version, group, protocol string
}

// parseMetadata reads a revision's metadata: its services, keyed
// "interface:protocol" (dubbo-go) or "group/interface:version:protocol"
// (Java Dubbo, group and version left out when empty). The fields of each
// entry win; the key fills what they leave out.
func parseMetadata(data []byte) (any, error) {
	var raw struct {
		Services map[string]struct {
			Name     string            `json:"name"`
			Group    string            `json:"group"`
			Version  string            `json:"version"`
			Protocol string            `json:"protocol"`
			Params   map[string]string `json:"params"`
		} `json:"services"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	out := []serviceInfo{}
	for key, s := range raw.Services {
		k := parseServiceKey(key)
		out = append(out, serviceInfo{
			name:     first(s.Name, k.name),
			version:  first(s.Version, s.Params["version"], k.version),
			group:    first(s.Group, s.Params["group"], k.group),
			protocol: first(s.Protocol, k.protocol),
		})
	}
	return out, nil
}

// parseServiceKey splits [group/]interface[[:version]:protocol].
func parseServiceKey(key string) serviceInfo {
	var k serviceInfo
	if i := strings.Index(key, "/"); i >= 0 {
		k.group, key = key[:i], key[i+1:]
	}
	parts := strings.Split(key, ":")
	k.name = parts[0]
	switch len(parts) {
	case 2:
		k.protocol = parts[1]
	case 3:
		k.version, k.protocol = parts[1], parts[2]
	}
	return k
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
