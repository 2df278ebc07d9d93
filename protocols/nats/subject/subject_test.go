package subject

import (
	"strings"
	"testing"
)

func TestParseRejects(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "empty subject"},
		{"orders..created", "token 2 is empty (subjects cannot have leading, trailing or double dots)"},
		{"orders.", "token 2 is empty (subjects cannot have leading, trailing or double dots)"},
		{"orders.*", "token 2 \"*\": wildcards are not allowed in a publish subject"},
		{"orders.>", "token 2 \">\": wildcards are not allowed in a publish subject"},
		{"orders.a b", "token 2 \"a b\": whitespace and control characters are not allowed"},
		{"orders.x{region}", "token 2 \"x{region}\": a {variable} must fill a whole token"},
		{"orders.{region", "token 2 \"{region\": a {variable} must fill a whole token"},
		{"{region}.orders", "the first token must be literal, not a variable, so the subject space stays fixed"},
		{"orders.{cookie.x}", "token 2 \"{cookie.x}\": unknown variable source \"cookie\" (use {name}, {query.name} or {header.name})"},
		{"orders.{}", "token 2 \"{}\": empty variable name"},
		{"$JS.API.STREAM.LIST", "\"$JS\" is a system subject prefix; publishing there is refused"},
		{"$SYS.REQ", "\"$SYS\" is a system subject prefix; publishing there is refused"},
		{"$KV.bucket.key", "\"$KV\" is a system subject prefix; publishing there is refused"},
		{"_INBOX.abc", "\"_INBOX\" is a system subject prefix; publishing there is refused"},
		{"$anything.x", "\"$anything\" is a system subject prefix; publishing there is refused"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Parse(%q) = %v, want %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestFill(t *testing.T) {
	tpl, err := Parse("orders.{region}.{header.X-Tenant}.{query.kind}")
	if err != nil {
		t.Fatal(err)
	}
	vals := map[Source]string{FromPath: "eu", FromHeader: "acme", FromQuery: "created"}
	got, err := tpl.Fill(0, func(tok Token) (string, bool) { v, ok := vals[tok.Source]; return v, ok })
	if err != nil || got != "orders.eu.acme.created" {
		t.Fatalf("Fill = %q, %v", got, err)
	}
	if _, err := tpl.Fill(2, func(tok Token) (string, bool) { v, ok := vals[tok.Source]; return v, ok }); err == nil ||
		!strings.Contains(err.Error(), "is 4 bytes; at most 2 are taken") || strings.Contains(err.Error(), "acme") {
		t.Errorf("a value over the bound: %v", err)
	}
	// Values arrive decoded: "%2E" in a URL is "." here; a literal "%" is refused too.
	for _, bad := range []string{"a.b", "*", ">", "$JS.API.X", ".", "", "a b", "%2E", "é", "a\x00"} {
		vals[FromPath] = bad
		if s, err := tpl.Fill(0, func(tok Token) (string, bool) { v, ok := vals[tok.Source]; return v, ok }); err == nil {
			t.Errorf("value %q produced subject %q, want an error", bad, s)
		}
	}
}

func TestCovers(t *testing.T) {
	tpl, _ := Parse("orders.{region}.created")
	for pattern, want := range map[string]bool{
		"orders.>": true, "orders.*.created": true, ">": true, "orders.*.*": true,
		"orders.eu.created": false, "orders.*": false, "orders.*.created.x": false, "events.>": false,
	} {
		if got := tpl.Covers(pattern); got != want {
			t.Errorf("Covers(%q) = %v, want %v", pattern, got, want)
		}
	}
}

func TestCheckPattern(t *testing.T) {
	for in, ok := range map[string]bool{"orders.>": true, "orders.*.x": true, "orders.>.x": false, "orders.a*": false, "a..b": false} {
		if err := CheckPattern(in); (err == nil) != ok {
			t.Errorf("CheckPattern(%q) = %v, want ok=%v", in, err, ok)
		}
	}
}
