package mapping

import (
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

// TestGitHubRepoPropertyClaims: GitHub's repo_property_<name> claims
// (repository custom properties an organization adds to the token) are
// plain claims conditions: a mapping naming them validates (no refused
// name, no kind rule against them), the claim set as GitHub issues it is
// admitted, and a repository with another value for the property, or
// without it, is not.
func TestGitHubRepoPropertyClaims(t *testing.T) {
	t.Parallel()
	m := ghMapping(func(m *Mapping) {
		m.Conditions = Conditions{
			Repository: One("acme/*"),
			Ref:        One("refs/heads/main"),
			Claims:     claimsOf("repo_property_data_classification", "confidential", "repo_property_team", "pay*"),
		}
	})
	if err := ValidateMapping(m, identity.KindGitHub); err != nil {
		t.Fatalf("mapping on repo_property_ claims refused: %v", err)
	}
	iss := identity.Issuer{Name: "github", URL: "https://token.actions.githubusercontent.com", Kind: identity.KindGitHub}
	read := func(t *testing.T, edit func(string) string) *identity.Claims {
		t.Helper()
		c, err := identity.NormalizeClaims(iss, []byte(edit(string(oidctest.ClaimSet("github-actions.json")))))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	same := func(s string) string { return s }
	if ok, reason := m.Admits(read(t, same)); !ok {
		t.Fatalf("GitHub's claim set with the property: refused (%s)", reason)
	}
	for name, edit := range map[string]func(string) string{
		"another value": func(s string) string {
			return strings.Replace(s, `"repo_property_data_classification": "confidential"`, `"repo_property_data_classification": "public"`, 1)
		},
		"property unset": func(s string) string {
			return strings.Replace(s, `"repo_property_team": "payments",`, ``, 1)
		},
		"as a boolean": func(s string) string {
			return strings.Replace(s, `"repo_property_data_classification": "confidential"`, `"repo_property_data_classification": true`, 1)
		},
	} {
		c := read(t, edit)
		if ok, reason := m.Admits(c); ok || reason != ReasonClaims {
			t.Errorf("%s: admitted %v (%s), want refused on %s", name, ok, reason, ReasonClaims)
		}
	}
}
