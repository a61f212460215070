package e2e

import (
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

// TestGitHubRepoPropertyExchange: through the real binary and real
// discovery, a github mapping that matches on a repository custom property
// (claims.repo_property_data_classification, a claim GitHub adds when an
// organization includes the property in its tokens) admits a really signed
// token of GitHub's claim shape carrying that value, and denies one whose
// repository has another value for it, or none.
func TestGitHubRepoPropertyExchange(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	iss := oidctest.New(t)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github-props", iss.URL(), "github"))
	s.must(201, "POST", "/v1/admin/mappings", `{"name": "confidential-deploy", "issuer": "github-props",
		"conditions": {"repository": "acme/*", "ref": "refs/heads/main",
		               "claims": {"repo_property_data_classification": "confidential", "repository_owner_id": "91234567"}},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/confidential", "region": "eu-west-1"}}`)

	ok := exchange(s, iss.Mint(t, ciClaims(t, iss, "github-actions.json", nil)), "")
	if ok.status != 200 || !strings.Contains(string(ok.body), "confidential-deploy") {
		t.Fatalf("token with repo_property_data_classification confidential: %d %s", ok.status, ok.body)
	}
	for name, edits := range map[string]map[string]any{
		"another value": {"repo_property_data_classification": "public", "repository": "acme/site", "repository_id": "1339936999"},
		"no value":      {"repo_property_data_classification": nil},
	} {
		r := exchange(s, iss.Mint(t, ciClaims(t, iss, "github-actions.json", edits)), "")
		if r.status != 403 || !strings.Contains(string(r.body), "no_matching_mapping") {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	if n := len(x.sts.Calls()); n != 1 {
		t.Errorf("STS saw %d calls, want 1", n)
	}
}
