package config

import (
	"reflect"
	"testing"
)

func TestParsePathTemplateRejects(t *testing.T) {
	tests := []struct{ in, want string }{
		{"users/{id}", "must start with /"},
		{"/users?x=1", "must not hold a query or fragment"},
		{"/users//x", "segment 2 is empty (double slash)"},
		{"/users/{id", "segment 2 \"{id\": a {variable} must fill a whole segment"},
		{"/users/x{id}", "segment 2 \"x{id}\": a {variable} must fill a whole segment"},
		{"/users/{id}/{id}", "variable \"id\" appears twice"},
		{"/files/{p=**}/x", "segment 2 \"{p=**}\": {p=**} must be the last segment"},
		{"/files/{p=*.txt}", "segment 2 \"{p=*.txt}\": only {p} or {p=**} are supported"},
		{"/users/{1d}", "segment 2 \"{1d}\": variable name \"1d\" must be a letter followed by letters, digits or _"},
		{"/u/{a}/{b}/{c}/{d}/{e}/{f}", "has 6 variables; Envoy allows at most 5"},
		{"/u/{averyveryverylongname}", "segment 2 \"{averyveryverylongname}\": variable name \"averyveryverylongname\" is longer than 16 characters (Envoy's limit)"},
		{"/u/a b", "segment 2 \"a b\": character ' ' is not allowed in a path"},
		{"/u/*", "segment 2 \"*\": a {variable} must fill a whole segment"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParsePathTemplate(tt.in)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestPathTemplateMatch(t *testing.T) {
	tests := []struct {
		tpl, path string
		want      map[string]string
	}{
		{"/users/{id}", "/users/42", map[string]string{"id": "42"}},
		{"/users/{id}", "/users/a%2Fb", map[string]string{"id": "a/b"}},
		{"/users/{id}", "/users/", nil},
		{"/users/{id}", "/users/42/x", nil},
		{"/users", "/users", map[string]string{}},
		{"/users/", "/users/", map[string]string{}},
		{"/users/", "/users", nil},
		{"/", "/", map[string]string{}},
		{"/files/{p=**}", "/files/a/b/c", map[string]string{"p": "a/b/c"}},
		{"/files/{p=**}", "/files", nil},
		{"/events/orders/{region}", "/events/orders/eu", map[string]string{"region": "eu"}},
	}
	for _, tt := range tests {
		tpl, err := ParsePathTemplate(tt.tpl)
		if err != nil {
			t.Fatalf("%s: %v", tt.tpl, err)
		}
		got, ok := tpl.Match(tt.path)
		if (tt.want != nil) != ok || (ok && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("%s on %s = %v %v, want %v", tt.tpl, tt.path, got, ok, tt.want)
		}
	}
}
