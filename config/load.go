package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment override: PROTOGATE_BRIDGE_ADDRESS
// sets bridge.address.
const EnvPrefix = "PROTOGATE"

// Extensions are the file types a mapping directory is read for.
var Extensions = []string{".yaml", ".yml", ".json", ".toml"}

// Load reads a mapping file, or every mapping file of a directory merged in
// name order, applies environment overrides, decodes strictly, fills
// defaults and validates. On any problem it returns nil and Problems with
// every problem found.
func Load(path string) (*Config, error) {
	files, err := mappingFiles(path)
	if err != nil {
		return nil, Problems{{File: path, Msg: err.Error()}}
	}
	srcs := make([]source, 0, len(files))
	var probs Problems
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			probs = append(probs, Problem{File: f, Msg: err.Error()})
			continue
		}
		src, p := parse(f, data)
		if p != nil {
			probs = append(probs, *p)
			continue
		}
		srcs = append(srcs, src)
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return build(path, srcs)
}

// LoadBytes loads one mapping held in memory; name's extension picks the
// format and names the source in problems.
func LoadBytes(name string, data []byte) (*Config, error) {
	src, p := parse(name, data)
	if p != nil {
		return nil, Problems{*p}
	}
	return build(name, []source{src})
}

// Files lists the mapping files Load reads for path, in merge order.
func Files(path string) ([]string, error) { return mappingFiles(path) }

func mappingFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read mapping: %w", errors.Unwrap(err))
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !hasMappingExt(name) {
			continue
		}
		files = append(files, filepath.Join(path, name))
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no mapping files (%s) in the directory", strings.Join(Extensions, ", "))
	}
	sort.Strings(files)
	return files, nil
}

func hasMappingExt(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	for _, e := range Extensions {
		if ext == e {
			return true
		}
	}
	return false
}

// source is one parsed file.
type source struct {
	name string
	raw  map[string]any
}

// keyDelimiter cannot occur in a key, so dotted keys stay whole.
const keyDelimiter = "\x00"

var yamlLine = regexp.MustCompile(`line (\d+)`)

// parse reads one file with viper. A key delimiter that cannot appear in a
// key keeps dotted keys intact.
func parse(name string, data []byte) (source, *Problem) {
	ext := strings.TrimPrefix(strings.ToLower(filepath.Ext(name)), ".")
	if ext == "yml" {
		ext = "yaml"
	}
	if !hasMappingExt(name) {
		return source{}, &Problem{File: name, Msg: fmt.Sprintf("unknown file type %q: use %s", filepath.Ext(name), strings.Join(Extensions, ", "))}
	}
	if ext == "yaml" {
		if tree, ok := fastYAML(data); ok {
			return source{name: name, raw: topLevel(tree)}, nil
		}
	}
	return parseViper(name, ext, data)
}

// parseViper reads a file of any supported type with viper.
func parseViper(name, ext string, data []byte) (source, *Problem) {
	v := viper.NewWithOptions(viper.KeyDelimiter(keyDelimiter))
	v.SetConfigType(ext)
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return source{}, syntaxProblem(name, data, err)
	}
	return source{name: name, raw: rawSettings(v)}, nil
}

// rawSettings returns the file's tree as read. viper's AllSettings drops
// empty maps and nulls, which would turn "gzip: {}" (enable with defaults)
// into nothing; Get returns a top-level subtree intact.
func rawSettings(v *viper.Viper) map[string]any {
	raw := map[string]any{}
	for _, k := range v.AllKeys() {
		top, _, _ := strings.Cut(k, keyDelimiter)
		raw[top] = v.Get(top)
	}
	for _, f := range fieldsOf(reflect.TypeOf(Config{})) {
		if v.InConfig(f.Name) {
			raw[f.Name] = v.Get(f.Name)
		}
	}
	return raw
}

// topLevel keeps of a document's tree what rawSettings keeps of viper's:
// every key with a value somewhere beneath it, and the model's own keys
// even when they hold only empty mappings.
func topLevel(tree map[string]any) map[string]any {
	for k, v := range tree {
		if !hasLeaf(v) && !isConfigKey(k) {
			delete(tree, k)
		}
	}
	return tree
}

// hasLeaf reports a value viper's AllKeys lists a key for: anything but a
// mapping, or a mapping holding one.
func hasLeaf(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return true
	}
	for _, x := range m {
		if hasLeaf(x) {
			return true
		}
	}
	return false
}

func isConfigKey(k string) bool {
	for _, f := range fieldsOf(reflect.TypeOf(Config{})) {
		if f.Name == k {
			return true
		}
	}
	return false
}

func syntaxProblem(name string, data []byte, err error) *Problem {
	p := &Problem{File: name}
	cause := err
	if u := errors.Unwrap(err); u != nil {
		cause = u
	}
	msg := cause.Error()
	var jsonSyntax *json.SyntaxError
	var jsonType *json.UnmarshalTypeError
	var tomlErr *toml.DecodeError
	switch {
	case errors.As(err, &jsonSyntax):
		p.Line = lineAt(data, jsonSyntax.Offset)
	case errors.As(err, &jsonType):
		p.Line = lineAt(data, jsonType.Offset)
		msg = "the top level must be a mapping of keys to values"
	case errors.As(err, &tomlErr):
		p.Line, _ = tomlErr.Position()
	default:
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			msg = strings.TrimSpace(strings.TrimPrefix(msg, "yaml:"))
			msg = strings.TrimPrefix(msg, m[0]+": ")
			if l := yamlFailingLine(data, msg); l > 0 {
				p.Line = l
			}
		}
		if strings.Contains(msg, "cannot unmarshal") {
			msg = "the top level must be a mapping of keys to values"
		}
	}
	p.Msg = "syntax error: " + msg
	return p
}

// yamlFailingLine finds the first line at which the document fails with
// msg: the shortest prefix of lines that does. go-yaml's own line points at
// the start of the enclosing block for parser errors ("did not find expected
// key"), not at the line to fix.
func yamlFailingLine(data []byte, msg string) int {
	// Quadratic in the worst case: keep it to files a person edits by hand,
	// and fall back to go-yaml's own line beyond that.
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > 2000 || len(data) > 128<<10 {
		return 0
	}
	for k := 1; k <= len(lines); k++ {
		var n yaml.Node
		err := yaml.Unmarshal(bytes.Join(lines[:k], nil), &n)
		if err == nil {
			continue
		}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil && strings.HasSuffix(err.Error(), m[0]+": "+msg) {
			return k
		}
	}
	return 0
}

func lineAt(data []byte, offset int64) int {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	return bytes.Count(data[:offset], []byte("\n")) + 1
}

// build merges sources, applies the environment, decodes and validates.
func build(name string, srcs []source) (*Config, error) {
	merged := map[string]any{}
	origins := map[string]string{}
	for _, s := range srcs {
		mergeInto(merged, s.raw, "", s.name, origins)
	}
	applyEnv(merged, origins)

	cfg := &Config{}
	var decodeProbs problems
	misspelt := map[string]bool{}
	(&decoder{probs: &decodeProbs, misspelt: misspelt}).decode(merged, reflect.ValueOf(cfg).Elem())
	all := decodeProbs.list
	bad := map[string]bool{}
	for _, p := range all {
		bad[p.Path] = true
	}
	for _, p := range validate(cfg) {
		if !underAny(p.Path, bad) && !sameMistake(p, misspelt) && !citesAny(p.Msg, bad) {
			all = append(all, p)
		}
	}
	all = dedupe(all)
	if len(all) > 0 {
		for i := range all {
			all[i].File = originOf(all[i].Path, origins, name)
		}
		all.Sort()
		return nil, all
	}
	cfg.resolve()
	return cfg, nil
}

// sameMistake reports a problem that a misspelt key already explains: one
// at the field the key was meant for, or one at its parent that names it
// ("needs registry or urls" when urls was written url).
func sameMistake(p Problem, misspelt map[string]bool) bool {
	if underAny(p.Path, misspelt) {
		return true
	}
	for m := range misspelt {
		if parentPath(m) == p.Path && mentions(p.Msg, m[len(parentPath(m)):]) {
			return true
		}
	}
	return false
}

// citesAny reports a problem whose reason rests on a field that could not
// be read ("listeners[0].filters.x is not enabled" when listeners[0].filters
// is not even a mapping).
func citesAny(msg string, bad map[string]bool) bool {
	for b := range bad {
		if b != "" && strings.Contains(msg, b+".") {
			return true
		}
	}
	return false
}

// mentions reports whether msg names the field (given as ".name") as a word.
func mentions(msg, dotName string) bool {
	name := strings.TrimPrefix(dotName, ".")
	for i := 0; ; {
		j := strings.Index(msg[i:], name)
		if j < 0 {
			return false
		}
		j += i
		before := j == 0 || !isWordByte(msg[j-1])
		end := j + len(name)
		after := end == len(msg) || !isWordByte(msg[end])
		if before && after {
			return true
		}
		i = j + 1
	}
}

func isWordByte(b byte) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// dedupe drops a problem already reported at the same path with the same
// reason (two checks can arrive at one mistake), keeping the first.
func dedupe(ps Problems) Problems {
	seen := map[[2]string]bool{}
	out := ps[:0]
	for _, p := range ps {
		k := [2]string{p.Path, p.Msg}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, p)
	}
	return out
}

func underAny(path string, set map[string]bool) bool {
	for p := path; ; p = parentPath(p) {
		if set[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
}

// mergeInto merges src into dst. Lists of mappings (listeners, upstreams,
// java_types, groups) are concatenated; anything else from a later file
// replaces the earlier value. origins records which file each path came from.
func mergeInto(dst, src map[string]any, path, file string, origins map[string]string) {
	keys := make([]string, 0, len(src))
	for k := range src {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := field(path, k)
		sv := src[k]
		dv, exists := dst[k]
		switch s := sv.(type) {
		case map[string]any:
			dm, ok := dv.(map[string]any)
			if !ok || !exists {
				dm = map[string]any{}
				dst[k] = dm
			}
			if _, seen := origins[p]; !seen || !ok {
				origins[p] = file
			}
			mergeInto(dm, s, p, file, origins)
		case []any:
			if dl, ok := dv.([]any); ok && isListOfMaps(s) && isListOfMaps(dl) {
				for i := range s {
					origins[index(p, len(dl)+i)] = file
				}
				dst[k] = append(dl, s...)
				continue
			}
			dst[k] = s
			origins[p] = file
			for i := range s {
				origins[index(p, i)] = file
			}
		default:
			dst[k] = sv
			origins[p] = file
		}
	}
}

func isListOfMaps(l []any) bool {
	for _, it := range l {
		if _, ok := it.(map[string]any); !ok {
			return false
		}
	}
	return true
}

// EnvOverrides lists the environment variables that override server
// settings, with the field each sets, in model order.
func EnvOverrides() [][2]string {
	var out [][2]string
	for _, sec := range []struct {
		name string
		t    reflect.Type
	}{{"bridge", reflect.TypeOf(Bridge{})}, {"xds", reflect.TypeOf(XDS{})}} {
		for _, f := range fieldsOf(sec.t) {
			if f.Env {
				key := sec.name + "." + f.Name
				out = append(out, [2]string{envName(key), key})
			}
		}
	}
	return out
}

func envName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// applyEnv reads PROTOGATE_* overrides of server settings through viper's
// environment binding and writes them into the merged map.
func applyEnv(merged map[string]any, origins map[string]string) {
	v := viper.New()
	for _, o := range EnvOverrides() {
		_ = v.BindEnv(o[1], o[0])
	}
	for _, o := range EnvOverrides() {
		if !v.IsSet(o[1]) {
			continue
		}
		sec, key, _ := strings.Cut(o[1], ".")
		m, ok := merged[sec].(map[string]any)
		if !ok {
			m = map[string]any{}
			merged[sec] = m
		}
		m[key] = v.GetString(o[1])
		origins[o[1]] = "env " + o[0]
	}
}

// originOf finds the file a field path came from: the nearest recorded
// ancestor, or the mapping's own name.
func originOf(path string, origins map[string]string, fallback string) string {
	for p := path; p != ""; p = parentPath(p) {
		if f, ok := origins[p]; ok {
			return f
		}
	}
	return fallback
}

func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

// RestartNeeded lists the server settings that differ between two mappings
// and that a running process read once at start, so a reload cannot apply
// them (bridge.address, xds.keepalive_time, …).
func RestartNeeded(running, next *Config) []string {
	var out []string
	for _, sec := range []struct {
		name      string
		old, next reflect.Value
	}{{"bridge", reflect.ValueOf(running.Bridge), reflect.ValueOf(next.Bridge)}, {"xds", reflect.ValueOf(running.XDS), reflect.ValueOf(next.XDS)}} {
		for _, f := range fieldsOf(sec.old.Type()) {
			if f.Restart && !reflect.DeepEqual(sec.old.Field(f.Index).Interface(), sec.next.Field(f.Index).Interface()) {
				out = append(out, sec.name+"."+f.Name)
			}
		}
	}
	return out
}

// BridgeSettings are the bridge server's settings when no mapping file is
// read (a bridge that takes its routes over xDS): the defaults, with any
// PROTOGATE_BRIDGE_* environment overrides, validated like a mapping's
// bridge section.
func BridgeSettings() (Bridge, error) {
	merged := map[string]any{}
	origins := map[string]string{}
	applyEnv(merged, origins)
	if b, ok := merged["bridge"]; ok {
		merged = map[string]any{"bridge": b}
	} else {
		merged = map[string]any{}
	}
	cfg := &Config{}
	var probs problems
	(&decoder{probs: &probs, misspelt: map[string]bool{}}).decode(merged, reflect.ValueOf(cfg).Elem())
	all := probs.list
	for _, p := range validate(cfg) {
		if p.Path == "bridge" || strings.HasPrefix(p.Path, "bridge.") {
			all = append(all, p)
		}
	}
	if len(all) > 0 {
		for i := range all {
			all[i].File = "environment"
		}
		all.Sort()
		return Bridge{}, all
	}
	cfg.resolve()
	return cfg.Bridge, nil
}
