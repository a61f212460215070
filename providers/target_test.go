package providers

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeTarget(t *testing.T) {
	t.Parallel()
	type dst struct {
		Name string
		List []string
		Tags map[string]string
	}
	tests := []struct {
		name, raw string
		want      dst
		wantErr   string // a text the error must contain; "" for none
	}{
		{"all fields", `{"name": "a", "list": ["x", "y"]}`, dst{Name: "a", List: []string{"x", "y"}}, ""},
		{"some fields", `{"name": "a"}`, dst{Name: "a"}, ""},
		{"empty object", `{}`, dst{}, ""},
		{"unknown field", `{"name": "a", "admin": true}`, dst{}, `unknown field "admin"`},
		{"key in another case", `{"NAME": "a"}`, dst{}, `unknown field "NAME"`},
		{"duplicate key", `{"name": "a", "name": "b"}`, dst{}, "name twice"},
		{"number for a string", `{"name": 1}`, dst{}, "name is not a string"},
		{"null for a string", `{"name": null}`, dst{}, "name is not a string"},
		{"null in a list", `{"list": ["x", null]}`, dst{}, "list is not an array of strings"},
		{"string for a list", `{"list": "x"}`, dst{}, "list is not an array of strings"},
		{"not an object", `["name"]`, dst{}, "not a JSON object"},
		{"trailing data", `{"name": "a"} {}`, dst{}, "trailing data"},
		{"truncated", `{"name": "a"`, dst{}, "not valid JSON"},
		{"object of strings", `{"tags": {"a": "1", "b": ""}}`, dst{Tags: map[string]string{"a": "1", "b": ""}}, ""},
		{"key twice in an object", `{"tags": {"a": "1", "a": "2"}}`, dst{}, "tags has a key twice"},
		{"number in an object", `{"tags": {"a": 1}}`, dst{}, "tags is not an object of strings"},
		{"null in an object", `{"tags": {"a": null}}`, dst{}, "tags is not an object of strings"},
		{"list for an object", `{"tags": ["a"]}`, dst{}, "tags is not an object of strings"},
		{"long unknown key", `{"` + strings.Repeat("k", 100) + `": 1}`, dst{}, "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got dst
			err := DecodeTarget("test", []byte(tt.raw), map[string]any{"name": &got.Name, "list": &got.List, "tags": &got.Tags})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "test: ") {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}
