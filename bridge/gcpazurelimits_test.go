package bridge_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	gcpprovider "github.com/oidc-bridge/oidc-bridge/providers/gcp"
)

// TestGCPAzureLimits: each family of Google's and Entra's limits refused at
// POST and PUT /v1/admin/mappings with 400 invalid_request naming the
// field, and nothing written; the forms Google accepts are accepted.
func TestGCPAzureLimits(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/admin/issuers", githubIssuer)
	gcp := func(name, target string, maxDuration int) string {
		return `{"name": "` + name + `", "issuer": "github", "conditions": {"repository": "acme/web"}, "provider": "gcp",
			"max_duration_seconds": ` + strconv.Itoa(maxDuration) + `, "target": ` + target + `}`
	}
	const sa = `"service_account": "deploy@acme-prod.iam.gserviceaccount.com"`
	e.must(201, "POST", "/v1/admin/mappings", gcp("gcp-deploy", `{`+sa+`}`, 3600))
	azure := `{"name": "az-deploy", "issuer": "github", "conditions": {"repository": "acme/web"}, "provider": "azure",
		"target": {"tenant_id": "3f1c2a9e-6b7d-4e8f-9a0b-1c2d3e4f5a6b", "client_id": "8e7d6c5b-4a39-4827-9160-5f4e3d2c1b0a", "scope": "SCOPE"}}`
	e.must(201, "POST", "/v1/admin/mappings", strings.Replace(azure, "SCOPE", "https://management.azure.com/.default", 1))
	before := e.snapshot()

	for _, tc := range []struct {
		name, body, field, mention string
	}{
		{"gcp lifetime over an hour", gcp("x", `{`+sa+`}`, 7200), "max_duration_seconds", gcpprovider.LifetimeConstraint},
		{"gcp lifetime over 12 hours", gcp("x", `{`+sa+`, "allow_lifetime_extension": true}`, 43201), "max_duration_seconds", ""},
		{"gcp account id too short", gcp("x", `{"service_account": "ci@acme-prod.iam.gserviceaccount.com"}`, 3600), "target.service_account", "6-30"},
		{"gcp unique id not 21 digits", gcp("x", `{"service_account": "12345"}`, 3600), "target.service_account", "21-digit"},
		{"gcp delegate duplicate", gcp("x", `{`+sa+`, "delegates": ["hop-account@acme-prod.iam.gserviceaccount.com", "hop-account@acme-prod.iam.gserviceaccount.com"]}`, 3600), "target.delegates[1]", "duplicate"},
		{"gcp delegate is the target", gcp("x", `{`+sa+`, "delegates": ["deploy@acme-prod.iam.gserviceaccount.com"]}`, 3600), "target.delegates[0]", "itself"},
		{"gcp workload identity audience", gcp("x", `{`+sa+`, "mode": "workload_identity",
			"workload_identity_provider": "//iam.googleapis.com/projects/12345678901234567890/locations/global/workloadIdentityPools/ci-pool/providers/bridge"}`, 3600), "target.workload_identity_provider", ""},
		{"gcp extension flag not a boolean", gcp("x", `{`+sa+`, "allow_lifetime_extension": "yes"}`, 3600), "target.allow_lifetime_extension", "boolean"},
		{"azure delegated scope", strings.Replace(azure, "SCOPE", "https://graph.microsoft.com/User.Read", 1), "target.scope", ".default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			existing := "gcp-deploy"
			if strings.Contains(tc.body, `"provider": "azure"`) {
				existing = "az-deploy"
			}
			for _, req := range []struct{ method, path string }{
				{"POST", "/v1/admin/mappings"},
				{"PUT", "/v1/admin/mappings/" + existing},
			} {
				body := tc.body
				if req.method == "PUT" {
					body = strings.Replace(body, `"name": "x"`, `"name": "`+existing+`"`, 1)
				}
				got := e.wantError(e.do(req.method, req.path, body), 400, api.CodeInvalidRequest, tc.field)
				if !strings.Contains(got.Message, tc.mention) {
					t.Errorf("%s: message %q does not mention %q", req.method, got.Message, tc.mention)
				}
			}
		})
	}
	if after := e.snapshot(); after != before {
		t.Errorf("a refused mapping changed the state:\n%s\n%s", before, after)
	}

	// What Google accepts is accepted: the extension with its flag, the
	// Compute and App Engine default accounts, a domain-scoped project.
	for name, body := range map[string]string{
		"gcp-extended": gcp("gcp-extended", `{`+sa+`, "allow_lifetime_extension": true}`, 43200),
		"gcp-compute":  gcp("gcp-compute", `{"service_account": "123456789012-compute@developer.gserviceaccount.com", "delegates": ["acme-prod@appspot.gserviceaccount.com"]}`, 3600),
		"gcp-scoped":   gcp("gcp-scoped", `{"service_account": "deploy@my-project.example.com.iam.gserviceaccount.com"}`, 3600),
	} {
		m := decode[mapping.Mapping](t, e.must(201, "POST", "/v1/admin/mappings", body))
		if m.Name != name {
			t.Errorf("created %q, want %q", m.Name, name)
		}
	}
	// PUT with the flag lengthens an existing mapping.
	m := decode[mapping.Mapping](t, e.must(200, "PUT", "/v1/admin/mappings/gcp-deploy", gcp("gcp-deploy", `{`+sa+`, "allow_lifetime_extension": true}`, 7200)))
	if m.MaxDurationSeconds != 7200 || !strings.Contains(strings.ReplaceAll(string(m.Target), " ", ""), `"allow_lifetime_extension":true`) {
		t.Errorf("PUT with the extension: %d %s", m.MaxDurationSeconds, m.Target)
	}
}
