package config

import (
	"fmt"
	"os"
	"reflect"
	"strings"
)

// UnknownEnv lists the PROTOGATE_ variables of environ (os.Environ() form)
// that name no setting, each with the closest known name, so a misspelt
// override is noticed instead of silently ignored.
func UnknownEnv(environ []string) []string {
	known := map[string]bool{}
	var names []string
	for _, o := range EnvOverrides() {
		known[o[0]] = true
		names = append(names, o[0])
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix+"_") || known[name] {
			continue
		}
		msg := fmt.Sprintf("environment variable %s names no setting and is ignored", name)
		if s := closest(name, names); s != "" {
			msg += fmt.Sprintf("; did you mean %s?", s)
		}
		out = append(out, msg)
	}
	return out
}

// UnknownEnvNow is UnknownEnv of this process's environment.
func UnknownEnvNow() []string { return UnknownEnv(os.Environ()) }

// ServerDefault is the default value of a bridge or xds setting, like
// "bridge.address", as the mapping resolves it when the file leaves it out.
func ServerDefault(key string) string {
	sec, name, _ := strings.Cut(key, ".")
	var t reflect.Type
	switch sec {
	case "bridge":
		t = reflect.TypeOf(Bridge{})
	case "xds":
		t = reflect.TypeOf(XDS{})
	default:
		return ""
	}
	for _, f := range fieldsOf(t) {
		if f.Name == name {
			return f.Default
		}
	}
	return ""
}

// closest is the candidate nearest to name by edit distance, when it is
// near enough to be a plausible typo.
func closest(name string, candidates []string) string {
	best, bestD := "", len(name)/3+1
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}
