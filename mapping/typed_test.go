package mapping

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCanonicalNumber(t *testing.T) {
	t.Parallel()
	same := [][]string{
		{"7", "7.0", "7e0", "7E+0", "70e-1", "0.7e1", "7.000"},
		{"0", "-0", "0.0", "0e5", "-0.0e-3"},
		{"-1.5", "-15e-1", "-0.15E1"},
		{"1200", "1.2e3", "12e2", "1200.00"},
		{"9007199254740993"},
		{"9007199254740992"},
		{"1e400", "10e399"},
		{"1e-400"},
	}
	canon := map[string]string{}
	for i, group := range same {
		for _, n := range group {
			c, ok := canonicalNumber(n)
			if !ok {
				t.Fatalf("canonicalNumber(%q) not ok", n)
			}
			if prev, seen := canon[c]; seen && prev != group[0] {
				t.Errorf("%q and %q have the same form %q but differ", n, prev, c)
			}
			canon[c] = group[0]
			if first, _ := canonicalNumber(group[0]); c != first {
				t.Errorf("group %d: %q -> %q, %q -> %q; want equal", i, n, c, group[0], first)
			}
		}
	}
	for _, bad := range []string{"", "-", "+1", "01", "1.", ".5", "1e", "1e+", "0x10", "NaN", "Infinity", "1 ", " 1", "1_000", `"7"`, "true"} {
		if c, ok := canonicalNumber(bad); ok {
			t.Errorf("canonicalNumber(%q) = %q, want not ok", bad, c)
		}
	}
	// A huge exponent costs its digits, not its value.
	if c, ok := canonicalNumber("1e" + strings.Repeat("9", 200)); !ok || !strings.HasSuffix(c, strings.Repeat("9", 200)) {
		t.Errorf("huge exponent: %q, %v", c, ok)
	}
}

// TestClaimsConditionsJSON: typed claims conditions decode with their type
// and read back exactly as written.
func TestClaimsConditionsJSON(t *testing.T) {
	t.Parallel()
	in := `{"b":true,"bl":[false,true],"n":7.0,"nl":[1,2e3,-0.5],"s":"true","sl":["7"]}`
	var got map[string]Values
	if err := json.Unmarshal([]byte(in), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]Values{
		"b":  *OneBool(true),
		"bl": *AnyOf(TypeBoolean, "false", "true"),
		"n":  *OneNumber("7.0"),
		"nl": *AnyOf(TypeNumber, "1", "2e3", "-0.5"),
		"s":  *One("true"),
		"sl": *Any("7"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("decode (-want +got):\n%s", diff)
	}
	out, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Errorf("read back %s, want %s", out, in)
	}
	// Values that cannot be a condition decode (so that validation names
	// the field) but never encode and never match.
	for _, bad := range []string{`null`, `{}`, `[[1]]`, `["a",1]`, `[true,null]`} {
		var v Values
		if err := json.Unmarshal([]byte(bad), &v); err != nil {
			t.Fatalf("%s: %v", bad, err)
		}
		if v.Invalid == "" {
			t.Errorf("%s decoded as valid %+v", bad, v)
		}
		if _, err := json.Marshal(v); err == nil {
			t.Errorf("%s encodes", bad)
		}
		if v.matchesClaim(json.Number("1"), true) || v.matchesClaim("a", true) || v.matchesClaim(true, true) {
			t.Errorf("%s matches", bad)
		}
	}
}
