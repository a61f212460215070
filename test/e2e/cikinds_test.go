package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

// ciKind is one CI kind's end-to-end case: its issuer's path on the
// platform, its claim set (test/oidctest/claimsets), a mapping that pins the
// tenant, one that does not, and the claims of another tenant on the same
// issuer.
type ciKind struct {
	kind, fixture, path string
	pinned, unpinned    string // conditions
	tenantField         string // unpinned_tenant's field
	// refusedField, when set: the unpinned mapping is refused whatever
	// the lint (400, this field), as forgejo's without a literal owner.
	refusedField string
	otherTenant  map[string]any
}

var ciKinds = []ciKind{
	{kind: "buildkite", fixture: "buildkite-agent.json",
		pinned:      `{"ref": "refs/heads/main", "event_name": "webhook", "claims": {"organization_id": "0184990a-2a6f-4c1e-9c3d-3d7a3c4b5e6f", "pipeline_slug": "deploy-web"}}`,
		unpinned:    `{"ref": "refs/heads/main", "claims": {"pipeline_slug": "deploy-web"}}`,
		tenantField: "conditions.claims.organization_id",
		// Another organization's pipeline of the same slug, on the one
		// shared issuer.
		otherTenant: map[string]any{"organization_slug": "mallory-inc", "organization_id": "0184990a-ffff-4c1e-9c3d-3d7a3c4b5e6f"}},
	{kind: "circleci", fixture: "circleci-job.json", path: "/org/2c1d0f6e-8b1a-4b8e-9a6e-3f2d1c0b9a87",
		pinned:      `{"repository": "github.com/acme/web", "ref": "refs/heads/main", "claims": {"oidc.circleci.com/project-id": "5b7e4f1a-6c2d-4e3f-9a8b-7c6d5e4f3a21"}}`,
		unpinned:    `{"repository": "github.com/acme/web", "ref": "refs/heads/main"}`,
		tenantField: "conditions.claims.oidc.circleci.com/project-id",
		// Another project of the organization building the same repository.
		otherTenant: map[string]any{"oidc.circleci.com/project-id": "5b7e4f1a-0000-4e3f-9a8b-7c6d5e4f3a21"}},
	{kind: "bitbucket", fixture: "bitbucket-step.json", path: "/2.0/workspaces/acme/pipelines-config/identity/oidc",
		pinned:      `{"ref": "refs/heads/main", "environment": "{8e9f0a1b-2c3d-4e5f-9a0b-1c2d3e4f5a6b}", "claims": {"repositoryUuid": "{6c3f1a2b-4d5e-4f60-8a1b-2c3d4e5f6a7b}"}}`,
		unpinned:    `{"ref": "refs/heads/main"}`,
		tenantField: "conditions.claims.repositoryUuid",
		// Another repository of the workspace, deploying from its main.
		otherTenant: map[string]any{"repositoryUuid": "{6c3f1a2b-0000-4f60-8a1b-2c3d4e5f6a7b}", "deploymentEnvironmentUuid": nil}},
	{kind: "terraform_cloud", fixture: "terraform_cloud-run.json",
		pinned:      `{"claims": {"terraform_organization_id": "org-GRNbCjYNpBB6NEH9", "terraform_workspace_name": "network-prod", "terraform_run_phase": "apply"}}`,
		unpinned:    `{"claims": {"terraform_workspace_name": "network-prod", "terraform_run_phase": "apply"}}`,
		tenantField: "conditions.claims.terraform_organization_id",
		// Another organization's workspace of the same name.
		otherTenant: map[string]any{"terraform_organization_id": "org-MALLORYxxxxxxxxx", "terraform_organization_name": "mallory"}},
	{kind: "aws", fixture: "aws-outbound.json",
		pinned:      `{"claims": {"/https:~1~1sts.amazonaws.com~1/aws_account": "123456789012", "/https:~1~1sts.amazonaws.com~1/principal_tags/team": "payments"}}`,
		unpinned:    `{"claims": {"/https:~1~1sts.amazonaws.com~1/org_id": "o-*", "/https:~1~1sts.amazonaws.com~1/principal_tags/team": "payments"}}`,
		tenantField: "conditions.claims./https:~1~1sts.amazonaws.com~1/aws_account",
		// Another account's role with the same principal tag, its token
		// signed by the same issuer (one registered for the wrong account,
		// or re-pointed).
		otherTenant: map[string]any{"sub": "arn:aws:iam::210987654321:role/payments/DeployFunctionRole", "https://sts.amazonaws.com/": map[string]any{
			"aws_account": "210987654321", "source_region": "eu-west-1", "principal_tags": map[string]any{"team": "payments"}}}},
	{kind: "forgejo", fixture: "forgejo-actions.json", path: "/api/actions",
		pinned:       `{"repository": "acme/web", "repository_id": "265358", "ref": "refs/heads/main", "event_name": "push"}`,
		unpinned:     `{"repository": "*/web", "ref": "refs/heads/main", "event_name": "push"}`,
		refusedField: "conditions.repository",
		// Another owner's repository of the same name on the instance.
		otherTenant: map[string]any{"repository": "mallory/web", "repository_owner": "mallory", "repository_id": "999001", "repository_owner_id": "999000",
			"sub": "repo:mallory-999000/web-999001:ref:refs/heads/main"}},
	{kind: "azure_devops", fixture: "azure_devops-pipeline.json",
		pinned:      `{"workflow_ref": "p://acme/payments/deploy-web", "ref": "refs/heads/main", "claims": {"org_id": "3f1e2d4c-5b6a-4789-9abc-def012345678", "prj_id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"}}`,
		unpinned:    `{"workflow_ref": "p://acme/payments/deploy-web", "ref": "refs/heads/main"}`,
		tenantField: "conditions.claims.org_id",
		// Another organization of the Entra tenant that took the name acme
		// (and the project and pipeline names) after the first was renamed.
		otherTenant: map[string]any{"org_id": "7d8e9f0a-1b2c-4d3e-8f4a-5b6c7d8e9f0a", "prj_id": "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"}},
	{kind: "jenkins", fixture: "jenkins-build.json",
		pinned:      `{"workflow_ref": "https://jenkins.example.com/job/payments/job/deploy-web/"}`,
		unpinned:    `{"workflow_ref": "https://jenkins.example.com/job/payments/job/*/"}`,
		tenantField: "conditions.workflow_ref",
		// Another job of the folder, which anyone who may create jobs
		// there could make.
		otherTenant: map[string]any{"sub": "https://jenkins.example.com/job/payments/job/deploy-web-copy/"}},
}

// ciClaims is the kind's claim set (oidctest.ClaimSet) as the issuer iss
// would sign it now, with edits (nil deletes a claim).
func ciClaims(t *testing.T, iss *oidctest.Issuer, fixture string, edits map[string]any) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(oidctest.ClaimSet(fixture)))
	dec.UseNumber()
	var c map[string]any
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	delete(c, "_about")
	now := time.Now().Unix()
	lifetime := 300
	c["iss"], c["iat"], c["exp"] = iss.URL(), now, now+int64(lifetime)
	if _, list := c["aud"].([]any); list {
		c["aud"] = []any{oidctest.DefaultAudience}
	} else {
		c["aud"] = oidctest.DefaultAudience
	}
	if _, ok := c["nbf"]; ok {
		c["nbf"] = now
	}
	if _, ok := c["jti"]; ok {
		c["jti"] = fmt.Sprintf("%s-%d", fixture, time.Now().UnixNano())
	}
	for k, v := range edits {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// TestCIKindsExchange: for each of the buildkite, circleci, bitbucket,
// terraform_cloud, aws, forgejo, azure_devops and jenkins kinds, through the real binary and real discovery: the
// issuer registers at its platform's path form (another form is refused),
// an unpinned mapping draws unpinned_tenant and ?lint=strict refuses it
// (forgejo's, without its owner, is refused outright), a
// really signed token of the kind's claim shape is exchanged by
// `oidc-bridge exchange --token-file`, and another tenant's token on the
// same issuer is denied.
func TestCIKindsExchange(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	dir := t.TempDir()
	cliEnv := []string{"OIDC_BRIDGE_URL=" + s.url, "HOME=" + dir, "XDG_CACHE_HOME=", "RUNNER_TEMP="}
	for i, k := range ciKinds {
		iss := oidctest.New(t, oidctest.WithPathPrefix(k.path))
		// A path that is not the platform's is refused.
		if k.path != "" {
			r := s.call("POST", "/v1/admin/issuers", issuerBody(k.kind+"-bad", strings.TrimSuffix(iss.URL(), k.path)+"/elsewhere", k.kind))
			if r.status != 400 || !strings.Contains(string(r.body), `"url"`) {
				t.Errorf("%s: issuer at another path: %d %s", k.kind, r.status, r.body)
			}
		}
		s.must(201, "POST", "/v1/admin/issuers", issuerBody(k.kind, iss.URL(), k.kind))

		mapping := func(name, cond string) string {
			return fmt.Sprintf(`{"name": %q, "issuer": %q, "conditions": %s, "provider": "aws",
				"target": {"role_arn": "arn:aws:iam::123456789012:role/ci-%d", "region": "eu-west-1"}}`, name, k.kind, cond, i)
		}
		if k.refusedField != "" {
			// The unpinned mapping: refused, whatever the lint.
			r := s.call("POST", "/v1/admin/mappings", mapping(k.kind+"-loose", k.unpinned))
			if r.status != 400 || !strings.Contains(string(r.body), `"field":"`+k.refusedField+`"`) {
				t.Errorf("%s: unpinned mapping: %d %s", k.kind, r.status, r.body)
			}
		} else {
			// The unpinned mapping: a warning, and refused under lint=strict.
			r := s.call("POST", "/v1/admin/mappings?lint=strict", mapping(k.kind+"-loose", k.unpinned))
			if r.status != 400 || !strings.Contains(string(r.body), "lint unpinned_tenant") || !strings.Contains(string(r.body), `"field":"`+k.tenantField+`"`) {
				t.Errorf("%s: unpinned mapping under lint=strict: %d %s", k.kind, r.status, r.body)
			}
			r = s.must(200, "POST", "/v1/admin/mappings?dry_run=true", mapping(k.kind+"-loose", k.unpinned))
			if !strings.Contains(string(r.body), `"code":"unpinned_tenant"`) {
				t.Errorf("%s: unpinned mapping's warnings: %s", k.kind, r.body)
			}
		}
		r := s.must(201, "POST", "/v1/admin/mappings", mapping(k.kind+"-deploy", k.pinned))
		if strings.Contains(string(r.body), "unpinned_tenant") {
			t.Errorf("%s: pinned mapping warns: %s", k.kind, r.body)
		}

		// The kind's own token, through the CLI.
		tf := filepath.Join(dir, k.kind+".jwt")
		if err := os.WriteFile(tf, []byte(iss.Mint(t, ciClaims(t, iss, k.fixture, nil))), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := cli(t, cliEnv, "exchange", "--mapping", k.kind+"-deploy", "--token-file", tf, "--no-cache", "--format", "json")
		if code != 0 || !strings.Contains(out, `"AccessKeyId"`) && !strings.Contains(out, `"access_key_id"`) {
			t.Errorf("%s: exchange: exit %d\nstdout %.300s\nstderr %s", k.kind, code, out, errOut)
		}

		// Another tenant on the same issuer.
		other := iss.Mint(t, ciClaims(t, iss, k.fixture, k.otherTenant))
		r = exchange(s, other, "")
		if r.status != 403 || !strings.Contains(string(r.body), "no_matching_mapping") {
			t.Errorf("%s: another tenant's token: %d %s", k.kind, r.status, r.body)
		}
	}
	if n := len(x.sts.Calls()); n != len(ciKinds) {
		t.Errorf("STS saw %d calls, want %d (one per kind)", n, len(ciKinds))
	}
}

// TestKubernetesKindExchange: a kubernetes issuer as a private cluster's
// is registered, with no discovery at all (its URL answers nothing) and
// its API server's keys as a static jwks; an unpinned mapping draws
// unpinned_tenant (refused under lint=strict); a really signed service
// account token of the real claim shape is exchanged by the CLI; a token
// of another namespace, or of another service account of the namespace,
// is denied, and so is one whose sub disagrees with kubernetes.io.
func TestKubernetesKindExchange(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	dir := t.TempDir()
	cliEnv := []string{"OIDC_BRIDGE_URL=" + s.url, "HOME=" + dir, "XDG_CACHE_HOME=", "RUNNER_TEMP="}
	keys := oidctest.New(t) // the API server's signing keys; its own URL is never registered
	issuerURL := "http://" + freeAddr(t) + "/cluster"
	set, err := json.Marshal(keys.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	s.must(201, "POST", "/v1/admin/issuers", fmt.Sprintf(
		`{"name": "cluster", "url": %q, "audiences": [%q], "kind": "kubernetes", "jwks": %s}`, issuerURL, oidctest.DefaultAudience, set))

	mapping := func(name, cond string) string {
		return fmt.Sprintf(`{"name": %q, "issuer": "cluster", "conditions": {"claims": %s}, "provider": "aws",
			"target": {"role_arn": "arn:aws:iam::123456789012:role/payments-deployer", "region": "eu-west-1"}}`, name, cond)
	}
	loose := `{"/kubernetes.io/namespace": "payments"}`
	r := s.call("POST", "/v1/admin/mappings?lint=strict", mapping("payments-loose", loose))
	if r.status != 400 || !strings.Contains(string(r.body), "lint unpinned_tenant") || !strings.Contains(string(r.body), `"field":"conditions.claims./kubernetes.io/namespace"`) {
		t.Errorf("unpinned mapping under lint=strict: %d %s", r.status, r.body)
	}
	r = s.must(200, "POST", "/v1/admin/mappings?dry_run=true", mapping("payments-loose", loose))
	if !strings.Contains(string(r.body), `"code":"unpinned_tenant"`) {
		t.Errorf("unpinned mapping's warnings: %s", r.body)
	}
	r = s.must(201, "POST", "/v1/admin/mappings?lint=strict", mapping("payments-deploy",
		`{"/kubernetes.io/namespace": "payments", "/kubernetes.io/serviceaccount/name": "deployer"}`))
	if strings.Contains(string(r.body), "unpinned_tenant") {
		t.Errorf("pinned mapping warns: %s", r.body)
	}

	mint := func(edits map[string]any) string {
		c := ciClaims(t, keys, "kubernetes-pod.json", edits)
		c["iss"] = issuerURL
		return keys.Mint(t, c)
	}
	tf := filepath.Join(dir, "token")
	if err := os.WriteFile(tf, []byte(mint(nil)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := cli(t, cliEnv, "exchange", "--mapping", "payments-deploy", "--token-file", tf, "--no-cache", "--format", "json")
	if code != 0 || !strings.Contains(out, `"AccessKeyId"`) && !strings.Contains(out, `"access_key_id"`) {
		t.Errorf("exchange: exit %d\nstdout %.300s\nstderr %s", code, out, errOut)
	}

	k8s := func(ns, sa string) map[string]any {
		return map[string]any{"sub": "system:serviceaccount:" + ns + ":" + sa, "kubernetes.io": map[string]any{
			"namespace": ns, "serviceaccount": map[string]any{"name": sa, "uid": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"}}}
	}
	for _, tt := range []struct {
		name  string
		edits map[string]any
		code  string
	}{
		{"another namespace's deployer", k8s("billing", "deployer"), "no_matching_mapping"},
		{"another service account of the namespace", k8s("payments", "default"), "no_matching_mapping"},
		{"sub naming another service account", map[string]any{"sub": "system:serviceaccount:payments:default"}, "invalid_token"},
	} {
		if r := exchange(s, mint(tt.edits), ""); r.status/100 != 4 || !strings.Contains(string(r.body), tt.code) {
			t.Errorf("%s: %d %s, want %s", tt.name, r.status, r.body, tt.code)
		}
	}
	if n := len(x.sts.Calls()); n != 1 {
		t.Errorf("STS saw %d calls, want 1", n)
	}
	if d, j := keys.DiscoveryRequests(), keys.JWKSRequests(); d != 0 || j != 0 {
		t.Errorf("discovery %d and JWKS %d requests, want none", d, j)
	}
}
