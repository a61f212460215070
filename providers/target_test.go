package providers

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeTarget(t *testing.T) {
	t.Parallel()
	type dst struct {
		Name   string
		List   []string
		Tags   map[string]string
		Claims map[string]any
	}
	tests := []struct {
		name, raw string
		want      dst
		wantErr   string // the whole error; "" for none
	}{
		{"all fields", `{"name": "a", "list": ["x", "y"]}`, dst{Name: "a", List: []string{"x", "y"}}, ""},
		{"some fields", `{"name": "a"}`, dst{Name: "a"}, ""},
		{"empty object", `{}`, dst{}, ""},
		{"unknown field", `{"name": "a", "admin": true}`, dst{}, `test: target: unknown field "admin"; target takes name, list, tags, claims`},
		{"key in another case", `{"NAME": "a"}`, dst{}, `test: target: unknown field "NAME"; target takes name, list, tags, claims`},
		{"unknown field after a bad value", `{"name": 1, "admin": true}`, dst{}, `test: target: unknown field "admin"; target takes name, list, tags, claims`},
		{"duplicate key", `{"name": "a", "name": "b"}`, dst{}, "test: target.name: appears more than once"},
		{"number for a string", `{"name": 1}`, dst{}, "test: target.name: must be a JSON string"},
		{"null for a string", `{"name": null}`, dst{}, "test: target.name: must be a JSON string"},
		{"null in a list", `{"list": ["x", null]}`, dst{}, "test: target.list: must be a JSON list of strings"},
		{"null list", `{"list": null}`, dst{}, "test: target.list: must be a JSON list of strings"},
		{"string for a list", `{"list": "x"}`, dst{}, "test: target.list: must be a JSON list of strings"},
		{"first bad value in document order", `{"list": "x", "name": 1}`, dst{}, "test: target.list: must be a JSON list of strings"},
		{"not an object", `["name"]`, dst{}, "test: target: must be a JSON object"},
		{"string", `"name"`, dst{}, "test: target: must be a JSON object"},
		{"trailing data", `{"name": "a"} {}`, dst{}, "test: target: must be a JSON object"},
		{"trailing junk", `{"name": "a"}x`, dst{}, "test: target: must be a JSON object"},
		{"truncated", `{"name": "a"`, dst{}, "test: target: must be a JSON object"},
		{"empty", ``, dst{}, "test: target: is required"},
		{"null", ` null `, dst{}, "test: target: is required"},
		{"too long", `{"name": "` + strings.Repeat("x", MaxTargetLen) + `"}`, dst{}, "test: target: must be at most 16384 bytes"},
		{"object of strings", `{"tags": {"a": "1", "b": ""}}`, dst{Tags: map[string]string{"a": "1", "b": ""}}, ""},
		{"number in an object", `{"tags": {"a": 1}}`, dst{}, "test: target.tags: must be a JSON object"},
		{"null in an object", `{"tags": {"a": null}}`, dst{}, "test: target.tags: must be a JSON object"},
		{"list for an object", `{"tags": ["a"]}`, dst{}, "test: target.tags: must be a JSON object"},
		{"object of values", `{"claims": {"n": 1.50, "s": "x", "o": {"a": [true]}}}`,
			dst{Claims: map[string]any{"n": json.Number("1.50"), "s": "x", "o": map[string]any{"a": []any{true}}}}, ""},
		{"object of values null", `{"claims": null}`, dst{}, ""},
		{"object of values key twice", `{"claims": {"a": 1, "a": 2}}`, dst{}, "test: target.claims.a: appears more than once"},
		{"list for an object of values", `{"claims": [1]}`, dst{}, "test: target.claims: must be a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got dst
			err := DecodeTarget("test", []byte(tt.raw), []Field{
				{"name", &got.Name}, {"list", &got.List}, {"tags", &got.Tags}, {"claims", &got.Claims},
			})
			if tt.wantErr != "" {
				var fe *FieldError
				if err == nil || err.Error() != tt.wantErr || !errors.As(err, &fe) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
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

// TestDecodeTargetQuotesUnknownKey: an unknown key is quoted as
// written, whatever its length, so that the admin sees what was refused.
func TestDecodeTargetQuotesUnknownKey(t *testing.T) {
	t.Parallel()
	key := strings.Repeat("k", 100)
	err := DecodeTarget("test", []byte(`{"`+key+`": 1}`), []Field{{"name", new(string)}})
	if err == nil || !strings.Contains(err.Error(), `"`+key+`"`) {
		t.Fatalf("error %v", err)
	}
}
