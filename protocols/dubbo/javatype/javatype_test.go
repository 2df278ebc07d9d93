package javatype

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		in, str, erased string
		kind            Kind
		classes         []string
	}{
		{"int", "int", "int", Primitive, nil},
		{"java.lang.Long", "java.lang.Long", "java.lang.Long", Boxed, nil},
		{"java.lang.String", "java.lang.String", "java.lang.String", String, nil},
		{"java.math.BigDecimal", "java.math.BigDecimal", "java.math.BigDecimal", BigDecimal, nil},
		{"java.util.Date", "java.util.Date", "java.util.Date", Date, nil},
		{"byte[]", "byte[]", "byte[]", Array, nil},
		{"int[][]", "int[][]", "int[][]", Array, nil},
		{"java.util.List<com.example.User>", "java.util.List<com.example.User>", "java.util.List", List, []string{"com.example.User"}},
		{"java.util.Map<java.lang.String, java.util.List<com.example.Item>>", "java.util.Map<java.lang.String, java.util.List<com.example.Item>>", "java.util.Map", Map, []string{"com.example.Item"}},
		{"java.util.Set", "java.util.Set", "java.util.Set", Set, nil},
		// Primitive arrays are classes: they may be generic arguments.
		{"java.util.List<byte[]>", "java.util.List<byte[]>", "java.util.List", List, nil},
		{"java.util.Map<java.lang.String, int[]>", "java.util.Map<java.lang.String, int[]>", "java.util.Map", Map, nil},
		{"com.example.User[]", "com.example.User[]", "com.example.User[]", Array, []string{"com.example.User"}},
		{"com.example.Outer$Inner", "com.example.Outer$Inner", "com.example.Outer$Inner", Class, []string{"com.example.Outer$Inner"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got.String() != tt.str || got.Erased() != tt.erased || got.Kind != tt.kind {
				t.Errorf("got %s / %s / kind %d, want %s / %s / %d", got, got.Erased(), got.Kind, tt.str, tt.erased, tt.kind)
			}
			if cl := got.Classes(); len(cl) != len(tt.classes) || (len(cl) > 0 && cl[0] != tt.classes[0]) {
				t.Errorf("classes %v, want %v", cl, tt.classes)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "a type name is missing at the end"},
		{"java.util.List<", "a type name is missing at the end"},
		{"java.util.List<java.lang.String", "unclosed \"<\""},
		{"java.util.List<int>", "primitive int cannot be a generic argument; use java.lang.Integer"},
		{"java.util.Map<java.lang.String>", "java.util.Map takes 2 type argument(s), got 1"},
		{"com.example.Page<com.example.User>", "com.example.Page takes no type arguments (only java.util collections do)"},
		{"int[", "unclosed \"[\" at offset 3: arrays are written T[]"},
		{"com..User", "\"com..User\" is not a class name: empty name part"},
		{"com.example.1User", "\"com.example.1User\" is not a class name: \"1User\" is not a Java identifier"},
		{"com.example.class", "\"com.example.class\" is not a class name: \"class\" is a Java keyword"},
		{"java.util.List<java.lang.String>>", "unexpected \">\" at offset 32"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Parse(%q) error = %v, want %q", tt.in, err, tt.want)
			}
		})
	}
}
