package condvalue

import (
	"encoding/json"
	"testing"
)

// TestRoundTrip: a value reads back in the form and type it was written in;
// what cannot be a value decodes into Invalid and does not encode.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, typ, invalid string }{
		{`"acme/web"`, "", ""},
		{`["a","b"]`, "", ""},
		{`[true]`, TypeBoolean, ""},
		{`7.0`, TypeNumber, ""},
		{`[1,"a"]`, "", ": a list must hold values of one type, not numbers and strings"},
		{`null`, "", ": null is not a value: give a string, a boolean or a number"},
	} {
		var v Values
		if err := json.Unmarshal([]byte(tc.in), &v); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if v.Type != tc.typ || v.Invalid != tc.invalid {
			t.Errorf("%s: type %q invalid %q, want %q %q", tc.in, v.Type, v.Invalid, tc.typ, tc.invalid)
		}
		out, err := json.Marshal(v)
		if (err != nil) != (tc.invalid != "") || err == nil && string(out) != tc.in {
			t.Errorf("%s: encodes to %s, %v", tc.in, out, err)
		}
	}
	if _, err := json.Marshal(Values{Patterns: []string{`"7"`}, Type: TypeNumber}); err == nil {
		t.Error("a string's text encoded as a number")
	}
}
