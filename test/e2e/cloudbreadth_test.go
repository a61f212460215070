package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// TestCloudBreadthTargets: through the real binary, the admin API (and
// so Terraform's plan, which validates with dry_run) refuses the targets a
// cloud would refuse: scopes with a GCP ID token, a bad universe, an AWS
// region of another partition than the role's, an Azure scope of another
// cloud; and a gcp id_token mapping issues a Google ID token at both
// exchange endpoints (RFC 8693 types it id_token).
func TestCloudBreadthTargets(t *testing.T) {
	t.Parallel()
	c := newCloudsEnv(t)
	s := startServer(t, c.env)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", c.gh.URL(), "github"))
	for _, tt := range []struct{ provider, target, field string }{
		{"gcp", fmt.Sprintf(`{"service_account": %q, "token_format": "id_token", "id_token_audience": "https://x.a.run.app", "scopes": ["https://www.googleapis.com/auth/iam"]}`, deploySA), "target.scopes"},
		{"gcp", fmt.Sprintf(`{"service_account": %q, "token_format": "id_token"}`, deploySA), "target.id_token_audience"},
		{"gcp", fmt.Sprintf(`{"service_account": %q, "universe_domain": "https://s3nsapis.fr"}`, deploySA), "target.universe_domain"},
		{"aws", `{"role_arn": "arn:aws-us-gov:iam::123456789012:role/deploy", "region": "us-east-1"}`, "target.region"},
		{"aws", `{"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "cn-north-1"}`, "target.region"},
		{"azure", fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "cloud": "us_government", "scope": "https://management.azure.com/.default"}`, azureTenant, azureClient), "target.scope"},
		{"azure", fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "cloud": "germany"}`, azureTenant, azureClient), "target.cloud"},
	} {
		body := fmt.Sprintf(`{"name": "bad", "issuer": "github", "conditions": {"repository": "acme/web", "ref": "refs/heads/main"},
			"provider": %q, "target": %s, "max_duration_seconds": 3600}`, tt.provider, tt.target)
		r := s.call("POST", "/v1/admin/mappings?dry_run=true", body)
		if r.status != 400 || !strings.Contains(string(r.body), `"field":"`+tt.field+`"`) {
			t.Errorf("%s %s: %d %s, want 400 on %s", tt.provider, tt.target, r.status, r.body, tt.field)
		}
	}

	const aud = "https://hello-abc123-ew.a.run.app"
	c.addMapping(s, "gcp-id", "gcp", fmt.Sprintf(`{"service_account": %q, "token_format": "id_token", "id_token_audience": %q, "include_email": true}`, deploySA, aud))
	tok := c.gh.Mint(t, c.gh.GitHubClaims(nil))
	r := s.must(200, "POST", "/v1/exchange", `{"mapping": "gcp-id"}`, tok)
	var resp struct {
		Credentials struct {
			IDToken     string `json:"id_token"`
			AccessToken string `json:"access_token"`
			Audience    string `json:"audience"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal(r.body, &resp); err != nil || resp.Credentials.IDToken == "" || resp.Credentials.AccessToken != "" ||
		resp.Credentials.Audience != aud {
		t.Fatalf("exchange: %v %s", err, r.body)
	}
	calls := c.gcp.Calls()
	if last := calls[len(calls)-1]; last.IAMMethod != "generateIdToken" || last.IDTokenAudience != aud || !last.IncludeEmail {
		t.Errorf("the fake's last call %+v", last)
	}

	r = s.callForm("/oauth2/token", url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {c.gh.Mint(t, c.gh.GitHubClaims(nil))},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
		"audience":           {"gcp-id"},
	})
	var te struct {
		AccessToken     string `json:"access_token"`
		IssuedTokenType string `json:"issued_token_type"`
	}
	if err := json.Unmarshal(r.body, &te); err != nil || r.status != 200 || te.IssuedTokenType != "urn:ietf:params:oauth:token-type:id_token" ||
		strings.Count(te.AccessToken, ".") != 2 {
		t.Errorf("token exchange: %d %s", r.status, r.body)
	}
}
