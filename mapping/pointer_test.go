package mapping

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

func TestParsePointer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"/a", []string{"a"}, ""},
		{"/kubernetes.io/namespace", []string{"kubernetes.io", "namespace"}, ""},
		{"/https:~1~1sts.amazonaws.com~1/aws_account", []string{"https://sts.amazonaws.com/", "aws_account"}, ""},
		{"/a~0b/~01", []string{"a~b", "~1"}, ""}, // ~01 is '~' then '1', not '/'
		{"/a~1~0", []string{"a/~"}, ""},
		{"/groups/0", []string{"groups", "0"}, ""},
		{"a/b", nil, "starts with '/'"},
		{"", nil, "starts with '/'"},
		{"/", nil, "must not be empty"},
		{"/a//b", nil, "must not be empty (segment 2)"},
		{"/a/", nil, "must not be empty (segment 2)"},
		{"/a~", nil, "'~' must be followed by 0"},
		{"/a~2", nil, "'~' must be followed by 0"},
		{"/~/b", nil, "(segment 1)"},
		{"/" + strings.Repeat("a/", 8) + "a", nil, "at most 8 segments"},
		{"/" + strings.Repeat("a", 256), nil, "at most 256 bytes"},
	}
	for _, tt := range tests {
		got, err := parsePointer(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parsePointer(%q) error %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parsePointer(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("parsePointer(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

// nestedPayload is a token payload with the nested claims of a Kubernetes
// service account token and of an AWS outbound identity token, as their
// documentation shows them.
const nestedPayload = `{
  "iss": "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE",
  "sub": "system:serviceaccount:payments:deployer",
  "aud": ["https://bridge.example.com"],
  "kubernetes.io": {
    "namespace": "payments",
    "serviceaccount": {"name": "deployer", "uid": "c2f5e9a0-1b2c-4d3e-8f90-123456789abc"},
    "pod": {"name": "deployer-7d9f", "uid": "0b1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"},
    "warnafter": 1764000000
  },
  "https://sts.amazonaws.com/": {
    "aws_account": "123456789012",
    "org_id": "o-abcdef1234",
    "ou_path": ["o-abcdef1234/r-ab12/ou-ab12-cdef3456/"],
    "principal_tags": {"team": "payments", "cost/centre": "42"},
    "source_region": "eu-west-1",
    "mfa": false
  },
  "a/b": "slash",
  "m~n": {"x": "tilde"},
  "null_claim": null
}`

func nestedClaims(t *testing.T) *identity.Claims {
	t.Helper()
	c, err := identity.NormalizeClaims(identity.Issuer{Name: "eks", URL: "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE", Kind: identity.KindGeneric}, []byte(nestedPayload))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pointerMapping(claims map[string]Values) *Mapping {
	return ghMapping(func(m *Mapping) {
		m.Issuer = "eks"
		m.Conditions = Conditions{Claims: claims}
	})
}

// TestPointerAdmits: a pointer key matches the nested value it names, typed
// as a plain claims condition is; a missing path or a non-scalar value
// matches nothing.
func TestPointerAdmits(t *testing.T) {
	t.Parallel()
	c := nestedClaims(t)
	tests := []struct {
		name string
		key  string
		v    *Values
		want bool
	}{
		{"kubernetes namespace", "/kubernetes.io/namespace", One("payments"), true},
		{"kubernetes namespace other", "/kubernetes.io/namespace", One("billing"), false},
		{"kubernetes deeper", "/kubernetes.io/serviceaccount/name", Any("deployer", "builder"), true},
		{"pattern", "/kubernetes.io/pod/name", One("deployer-*"), true},
		{"aws account", "/https:~1~1sts.amazonaws.com~1/aws_account", One("123456789012"), true},
		{"aws account other", "/https:~1~1sts.amazonaws.com~1/aws_account", One("210987654321"), false},
		{"aws escaped tag key", "/https:~1~1sts.amazonaws.com~1/principal_tags/cost~1centre", One("42"), true},
		{"unescaped slash is two segments", "/https://sts.amazonaws.com//aws_account", One("123456789012"), false},
		{"array index", "/https:~1~1sts.amazonaws.com~1/ou_path/0", One("o-abcdef1234/**"), true},
		{"array index out of range", "/https:~1~1sts.amazonaws.com~1/ou_path/1", One("**"), false},
		{"array index leading zero", "/https:~1~1sts.amazonaws.com~1/ou_path/00", One("**"), false},
		{"array dash", "/https:~1~1sts.amazonaws.com~1/ou_path/-", One("**"), false},
		{"array not a string", "/https:~1~1sts.amazonaws.com~1/ou_path", One("**"), false},
		{"object not a string", "/kubernetes.io/serviceaccount", One("**"), false},
		{"boolean", "/https:~1~1sts.amazonaws.com~1/mfa", OneBool(false), true},
		{"boolean is not its string", "/https:~1~1sts.amazonaws.com~1/mfa", One("false"), false},
		{"number", "/kubernetes.io/warnafter", OneNumber("1.764e9"), true},
		{"number is not its string", "/kubernetes.io/warnafter", One("1764000000"), false},
		{"missing member", "/kubernetes.io/cluster", One("**"), false},
		{"through a string", "/kubernetes.io/namespace/x", One("**"), false},
		{"null", "/null_claim", One("**"), false},
		{"escaped top-level slash", "/a~1b", One("slash"), true},
		{"escaped top-level tilde", "/m~0n/x", One("tilde"), true},
		{"malformed never matches", "/m~n/x", One("**"), false},
	}
	for _, tt := range tests {
		m := pointerMapping(map[string]Values{tt.key: *tt.v})
		ok, reason := m.Admits(c)
		if ok != tt.want {
			t.Errorf("%s: Admits = %v (%s), want %v", tt.name, ok, reason, tt.want)
		}
		if !ok && reason != ReasonClaims {
			t.Errorf("%s: reason %q, want %q", tt.name, reason, ReasonClaims)
		}
		checkAgrees(t, m, c)
	}
	// A plain key with the name a pointer would decode to is a top-level
	// claim: "kubernetes.io" holds an object, which matches nothing.
	if ok, _ := pointerMapping(map[string]Values{"kubernetes.io": *One("**")}).Admits(c); ok {
		t.Error("plain key kubernetes.io admitted an object claim")
	}
}

// TestPointerExplain: the explainer names the pointer, the value it read and
// whether it matched.
func TestPointerExplain(t *testing.T) {
	t.Parallel()
	c := nestedClaims(t)
	m := pointerMapping(map[string]Values{
		"/kubernetes.io/namespace":                      *One("billing"),
		"/https:~1~1sts.amazonaws.com~1/aws_account":    *One("123456789012"),
		"/https:~1~1sts.amazonaws.com~1/principal_tags": *One("**"),
		"/kubernetes.io/missing":                        *One("x"),
	})
	e := Explain(m, c)
	want := []ConditionResult{
		{Condition: "claims./https:~1~1sts.amazonaws.com~1/aws_account", Patterns: []string{"123456789012"}, Type: TypeString, Value: "123456789012", ValueType: TypeString, Present: true, Matched: true},
		{Condition: "claims./https:~1~1sts.amazonaws.com~1/principal_tags", Patterns: []string{"**"}, Type: TypeString, Value: `{"cost/centre":"42","team":"payments"}`, ValueType: "object", Present: true},
		{Condition: "claims./kubernetes.io/missing", Patterns: []string{"x"}, Type: TypeString},
		{Condition: "claims./kubernetes.io/namespace", Patterns: []string{"billing"}, Type: TypeString, Value: "payments", ValueType: TypeString, Present: true},
	}
	if diff := cmp.Diff(want, e.Conditions); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	if e.Admitted || e.Reason != ReasonClaims || !strings.Contains(e.Detail, "/https:~1~1sts.amazonaws.com~1/principal_tags") {
		t.Errorf("decision %v %q %q", e.Admitted, e.Reason, e.Detail)
	}
}

// TestValidatePointerKeys: malformed pointers, pointers into claims a
// first-class condition or the verifier reads, and one-segment pointers
// that have a plain spelling are refused with the field at fault.
func TestValidatePointerKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key     string
		want    string // "" when valid
		message string
	}{
		{"/kubernetes.io/namespace", "", ""},
		{"/https:~1~1sts.amazonaws.com~1/aws_account", "", ""},
		{"/https:~1~1sts.amazonaws.com~1/ou_path/0", "", ""},
		{"/~1odd", "", ""}, // a top-level claim named "/odd" has no plain spelling
		{"/kubernetes.io/bad~2", "conditions.claims./kubernetes.io/bad~2", "'~' must be followed by 0"},
		{"/kubernetes.io//namespace", "conditions.claims./kubernetes.io//namespace", "must not be empty"},
		{"/", "conditions.claims./", "must not be empty"},
		{"/a/b/c/d/e/f/g/h/i", "conditions.claims./a/b/c/d/e/f/g/h/i", "at most 8 segments"},
		{"/" + strings.Repeat("x", 300), "conditions.claims./" + strings.Repeat("x", 300), "at most 256 bytes"},
		{"/kubernetes.io/näme", "conditions.claims./kubernetes.io/näme", "printable ASCII"},
		{"/sub", "conditions.claims./sub", `reads the claim "sub"`},
		{"/iss", "conditions.claims./iss", "verified"},
		{"/repository", "conditions.claims./repository", "conditions.repository"},
		{"/ref/x", "conditions.claims./ref/x", "conditions.ref"},
		{"/environment", "conditions.claims./environment", "conditions.environment"},
		{"/runner_environment", "conditions.claims./runner_environment", `plain key "runner_environment"`},
	}
	for _, tt := range tests {
		m := pointerMapping(map[string]Values{tt.key: *One("x")})
		err := ValidateMapping(m, identity.KindGeneric)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tt.key, err)
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: error %v, want a *ValidationError", tt.key, err)
			continue
		}
		if ve.Field != tt.want || !strings.Contains(ve.Message, tt.message) {
			t.Errorf("%q: %s: %s; want field %s, a message containing %q", tt.key, ve.Field, ve.Message, tt.want, tt.message)
		}
	}
	// Pointer keys round-trip through JSON as written.
	in := `{"/kubernetes.io/namespace":"payments","/https:~1~1sts.amazonaws.com~1/mfa":false}`
	var got Conditions
	if err := json.Unmarshal([]byte(`{"claims":`+in+`}`), &got); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(got.Claims)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	_ = json.Unmarshal([]byte(in), &a)
	_ = json.Unmarshal(out, &b)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}
