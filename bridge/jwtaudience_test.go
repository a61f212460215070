package bridge_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestAdminRefusesCloudAudienceForJWT: the admin API refuses a jwt mapping
// whose audience is a cloud's federation audience, in any spelling, with
// 400 invalid_request naming target.audience, and stores nothing.
func TestAdminRefusesCloudAudienceForJWT(t *testing.T) {
	x := newExchangeEnv(t)
	x.must(201, "POST", "/v1/admin/mappings", `{"name": "internal-x", "issuer": "github",
		"conditions": {"repository": "acme/web"}, "provider": "jwt", "target": {"audience": "https://vault.example.com"}}`)
	for _, aud := range []string{
		"sts.amazonaws.com", "STS.AMAZONAWS.COM", "sts.cn-north-1.amazonaws.com.cn",
		"api://AzureADTokenExchange", "api://AzureADTokenExchangeUSGov", "api://AzureADTokenExchangeChina",
		"//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/b",
		"https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/b",
		"sts.googleapis.com",
	} {
		body := `{"name": %q, "issuer": "github", "conditions": {"repository": "acme/web"},
			"provider": "jwt", "target": {"audience": %q}}`
		x.wantError(x.do("POST", "/v1/admin/mappings", fmt.Sprintf(body, "confusable", aud)), 400, "invalid_request", "target.audience")
		x.wantError(x.do("PUT", "/v1/admin/mappings/internal-x", fmt.Sprintf(body, "internal-x", aud)), 400, "invalid_request", "target.audience")
	}
	x.wantError(x.do("POST", "/v1/admin/mappings", `{"name": "confusable", "issuer": "github",
		"conditions": {"repository": "acme/web"}, "provider": "jwt",
		"target": {"audience": "https://vault.example.com", "claims": {"https://aws.amazon.com/tags": {}}}}`),
		400, "invalid_request", "target.claims.https://aws.amazon.com/tags")
	x.wantError(x.do("GET", "/v1/admin/mappings/confusable", ""), 404, "not_found", "")
	if r := x.do("GET", "/v1/admin/mappings/internal-x", ""); r.status != 200 || !strings.Contains(string(r.body), `"https://vault.example.com"`) {
		t.Fatalf("the refused updates changed the mapping: %d %s", r.status, r.body)
	}
}
