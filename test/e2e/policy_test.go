package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/test/gcptest"
	"github.com/oidc-bridge/oidc-bridge/test/moto"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// A session policy a client narrows its credentials to.
const clientPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::acme-artifacts/*"}]}`

// auditRow is what the audit view says of one issuance.
func auditRow(t *testing.T, dbURL, id string) (outcome, code, target, downscope string) {
	t.Helper()
	err := openDB(t, dbURL).QueryRow(context.Background(), `SELECT outcome, coalesce(error_code, ''), coalesce(target::text, ''),
		coalesce(downscope::text, '') FROM audit.issuances WHERE id::text = $1`, id).Scan(&outcome, &code, &target, &downscope)
	if err != nil {
		t.Fatalf("audit row %s: %v", id, err)
	}
	return outcome, code, target, downscope
}

// TestKeylessSessionTagsMatchAssumeRole: one mapping's tags, transitive
// keys and source identity reach STS the same in mode assume_role (request
// parameters) and web_identity (the bridge's token's
// https://aws.amazon.com/tags and https://aws.amazon.com/source_identity
// claims, verified by the STS fake), so aws:PrincipalTag/... conditions and
// role chaining see one session either way.
func TestKeylessSessionTagsMatchAssumeRole(t *testing.T) {
	t.Parallel()
	c := newCloudsEnv(t)
	s := startServer(t, c.env)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", c.gh.URL(), "github"))
	for _, mode := range []string{"assume_role", "web_identity"} {
		c.addMapping(s, "tags-"+strings.ReplaceAll(mode, "_", "-"), "aws", fmt.Sprintf(`{"role_arn": "arn:aws:iam::123456789012:role/tags",
			"region": "eu-west-1", "mode": %q, "session_tags": {"cost-center": "ci-4711"},
			"transitive_tag_keys": ["repository", "cost-center", "environment"]}`, mode))
	}
	seen := map[string]struct {
		tags       map[string]string
		transitive []string
		source     string
	}{}
	for _, mode := range []string{"assume-role", "web-identity"} {
		r := exchange(s, c.gh.Mint(t, c.gh.GitHubClaims(nil)), fmt.Sprintf(`{"mapping": "tags-%s", "duration_seconds": 900}`, mode))
		if r.status != 200 {
			t.Fatalf("%s: %d %s", mode, r.status, r.body)
		}
		var resp api.ExchangeResponse
		r.json(t, &resp)
		call := lastSTSCall(t, c.sts)
		if call.Tags["issuance_id"] != resp.IssuanceID {
			t.Errorf("%s: issuance_id tag %q, want %s", mode, call.Tags["issuance_id"], resp.IssuanceID)
		}
		delete(call.Tags, "issuance_id") // the one tag that differs per exchange
		seen[mode] = struct {
			tags       map[string]string
			transitive []string
			source     string
		}{call.Tags, call.TransitiveTagKeys, call.SourceIdentity}
	}
	ar, wi := seen["assume-role"], seen["web-identity"]
	if fmt.Sprint(ar.tags) != fmt.Sprint(wi.tags) || !slices.Equal(ar.transitive, wi.transitive) || ar.source != wi.source {
		t.Fatalf("the modes differ:\nassume_role  %v %v %q\nweb_identity %v %v %q", ar.tags, ar.transitive, ar.source, wi.tags, wi.transitive, wi.source)
	}
	if ar.tags["repository"] != "acme/web" || ar.tags["environment"] != "production" || ar.tags["cost-center"] != "ci-4711" ||
		strings.Join(ar.transitive, ",") != "repository,cost-center,environment" || ar.source != "gh-1339936803" {
		t.Errorf("session: %v %v %q", ar.tags, ar.transitive, ar.source)
	}
	s.stopClean()
}

// TestTemplatedTargets: one aws and one gcp mapping serve every repository
// of acme through ${repository_name}: the real binary refuses unknown
// variables and lints an unconstrained ${environment} at write time,
// resolves the target per token (STS and IAM Credentials see the
// repository's role and service account, the ledger records them), refuses
// a value outside the field's characters without calling the cloud, and
// the explainer shows the resolved target.
func TestTemplatedTargets(t *testing.T) {
	t.Parallel()
	c := newCloudsEnv(t)
	c.gcp.Allow(bridgeSA, "ci-web@acme-prod.iam.gserviceaccount.com")
	s := startServer(t, c.env)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", c.gh.URL(), "github"))
	mapping := func(name, provider, target, conditions string) string {
		return fmt.Sprintf(`{"name": %q, "issuer": "github", "conditions": %s, "provider": %q, "target": %s, "max_duration_seconds": 3600}`,
			name, conditions, provider, target)
	}
	const acme = `{"repository": "acme/*", "ref": "refs/heads/main"}`

	// Write time.
	for _, tc := range []struct{ target, field, want string }{
		{`{"role_arn": "arn:aws:iam::123456789012:role/ci-${ref}", "region": "eu-west-1"}`, "target.role_arn", "unknown variable ${ref}"},
		{`{"role_arn": "arn:aws:iam::${repository_id}:role/ci", "region": "eu-west-1"}`, "target.role_arn", `only after ":role/"`},
	} {
		r := s.call("POST", "/v1/admin/mappings", mapping("bad", "aws", tc.target, acme), adminToken)
		var e api.Error
		r.json(t, &e)
		if r.status != 400 || e.Field != tc.field || !strings.Contains(e.Message, tc.want) {
			t.Errorf("%s: %d %s", tc.target, r.status, r.body)
		}
	}
	r := s.must(201, "POST", "/v1/admin/mappings", mapping("env-roles", "aws",
		`{"role_arn": "arn:aws:iam::123456789012:role/ci-${environment}", "region": "eu-west-1"}`, `{"repository": "acme/web"}`))
	if !strings.Contains(string(r.body), `"unconstrained_template"`) {
		t.Errorf("${environment} without an environment condition drew no lint warning: %s", r.body)
	}
	r = s.must(201, "POST", "/v1/admin/mappings", mapping("repo-roles", "aws",
		`{"role_arn": "arn:aws:iam::123456789012:role/ci-${repository_name}", "region": "eu-west-1"}`, acme))
	if strings.Contains(string(r.body), `"unconstrained_template"`) {
		t.Errorf("${repository_name} under a repository condition was linted: %s", r.body)
	}
	s.must(201, "POST", "/v1/admin/mappings", mapping("repo-sa", "gcp",
		`{"service_account": "ci-${repository_name}@acme-prod.iam.gserviceaccount.com"}`, acme))

	// Exchange time.
	r = exchange(s, c.gh.Mint(t, c.gh.GitHubClaims(nil)), `{"mapping": "repo-roles", "duration_seconds": 900}`)
	if r.status != 200 {
		t.Fatalf("repo-roles: %d %s", r.status, r.body)
	}
	var resp api.ExchangeResponse
	r.json(t, &resp)
	if call := lastSTSCall(t, c.sts); call.RoleArn != "arn:aws:iam::123456789012:role/ci-web" {
		t.Errorf("STS was asked for %q", call.RoleArn)
	}
	if _, _, target, _ := auditRow(t, c.dbURL, resp.IssuanceID); !strings.Contains(target, `"arn:aws:iam::123456789012:role/ci-web"`) {
		t.Errorf("the ledger recorded target %s", target)
	}
	r = exchange(s, c.gh.Mint(t, c.gh.GitHubClaims(nil)), `{"mapping": "repo-sa", "duration_seconds": 900}`)
	if r.status != 200 {
		t.Fatalf("repo-sa: %d %s", r.status, r.body)
	}
	if calls := c.gcp.CallsTo(gcptest.IAMCredentials); len(calls) == 0 || calls[len(calls)-1].ServiceAccount != "ci-web@acme-prod.iam.gserviceaccount.com" {
		t.Errorf("IAM Credentials calls %+v", calls)
	}

	// An environment the role name cannot hold (a '/' would add a path
	// segment): refused, never escaped, and STS is not called.
	before := len(c.sts.Calls())
	r = exchange(s, c.gh.Mint(t, c.gh.GitHubClaims(map[string]any{"environment": "prod/admin"})), `{"mapping": "env-roles"}`)
	var e api.Error
	r.json(t, &e)
	if r.status != 403 || e.Error != api.CodeNoMatchingMapping || !strings.Contains(e.Message, "${environment}") ||
		strings.Contains(e.Message, "prod/admin") || e.IssuanceID == "" {
		t.Fatalf("an environment with a slash: %d %s", r.status, r.body)
	}
	if n := len(c.sts.Calls()); n != before {
		t.Errorf("STS was called %d times for a refused template", n-before)
	}
	if outcome, code, _, _ := auditRow(t, c.dbURL, e.IssuanceID); outcome != "denied" || code != api.CodeNoMatchingMapping {
		t.Errorf("the refusal's row: %s %s", outcome, code)
	}

	// The explainer shows the resolved target.
	explain, _ := json.Marshal(map[string]any{"issuer": "github", "mapping": "repo-roles",
		"claims": c.gh.GitHubClaims(map[string]any{"repository": "acme/api"})})
	r = s.must(200, "POST", "/v1/admin/explain", string(explain))
	var ex api.ExplainResponse
	r.json(t, &ex)
	if len(ex.Mappings) != 1 || !strings.Contains(string(ex.Mappings[0].ResolvedTarget), `"arn:aws:iam::123456789012:role/ci-api"`) {
		t.Errorf("explain: %s", r.body)
	}
	s.stopClean()
}

// TestDownscoping: an exchange may narrow its credential (an aws session
// policy, a subset of a gcp mapping's scopes, a shorter duration), never
// widen it: the real binary passes the narrowing to STS and IAM
// Credentials, refuses more with 400 invalid_request naming the field, and
// records what was asked in the audit row, granted or refused. The CLI's
// --session-policy and --scope send the same.
func TestDownscoping(t *testing.T) {
	t.Parallel()
	c := newCloudsEnv(t)
	s := startServer(t, c.env)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", c.gh.URL(), "github"))
	c.addMapping(s, "aws-open", "aws", `{"role_arn": "arn:aws:iam::123456789012:role/open", "region": "eu-west-1"}`)
	c.addMapping(s, "aws-wi", "aws", `{"role_arn": "arn:aws:iam::123456789012:role/wi", "region": "eu-west-1", "mode": "web_identity"}`)
	c.addMapping(s, "aws-policy", "aws", `{"role_arn": "arn:aws:iam::123456789012:role/p", "region": "eu-west-1",
		"session_policy": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"*\"}]}"}`)
	c.addMapping(s, "gcp", "gcp", fmt.Sprintf(`{"service_account": %q, "scopes": ["https://www.googleapis.com/auth/cloud-platform",
		"https://www.googleapis.com/auth/devstorage.read_only"]}`, deploySA))
	body := func(m string, extra map[string]any) string {
		req := map[string]any{"mapping": m}
		for k, v := range extra {
			req[k] = v
		}
		b, _ := json.Marshal(req)
		return string(b)
	}

	// Narrowing passes through, in both aws modes.
	for _, m := range []string{"aws-open", "aws-wi"} {
		r := exchange(s, c.gh.Mint(t, c.gh.GitHubClaims(nil)), body(m, map[string]any{"session_policy": clientPolicy, "duration_seconds": 900}))
		if r.status != 200 {
			t.Fatalf("%s: %d %s", m, r.status, r.body)
		}
		var resp api.ExchangeResponse
		r.json(t, &resp)
		if call := lastSTSCall(t, c.sts); call.Policy != clientPolicy || call.DurationSeconds != 900 {
			t.Errorf("%s: STS got policy %q, duration %d", m, call.Policy, call.DurationSeconds)
		}
		_, _, _, ds := auditRow(t, c.dbURL, resp.IssuanceID)
		var got map[string]any
		if json.Unmarshal([]byte(ds), &got) != nil || got["session_policy"] != clientPolicy || got["duration_seconds"] != float64(900) {
			t.Errorf("%s: downscope column %s", m, ds)
		}
	}
	r := exchange(s, c.gh.Mint(t, c.gh.GitHubClaims(nil)), body("gcp", map[string]any{"scopes": []string{"https://www.googleapis.com/auth/devstorage.read_only"}}))
	if r.status != 200 {
		t.Fatalf("gcp: %d %s", r.status, r.body)
	}
	if calls := c.gcp.CallsTo(gcptest.IAMCredentials); len(calls) == 0 ||
		strings.Join(calls[len(calls)-1].Scopes, " ") != "https://www.googleapis.com/auth/devstorage.read_only" {
		t.Errorf("IAM Credentials calls %+v", calls)
	}

	// More than the mapping allows: 400 on the field, recorded.
	for _, tc := range []struct {
		name, body, field string
	}{
		{"a policy over the mapping's", body("aws-policy", map[string]any{"session_policy": clientPolicy}), "session_policy"},
		{"a policy that is no policy", body("aws-open", map[string]any{"session_policy": `{"Statement": []}`}), "session_policy"},
		{"a scope the mapping lacks", body("gcp", map[string]any{"scopes": []string{"https://www.googleapis.com/auth/admin"}}), "scopes"},
		{"scopes for aws", body("aws-open", map[string]any{"scopes": []string{"https://www.googleapis.com/auth/cloud-platform"}}), "scopes"},
		{"a session policy for gcp", body("gcp", map[string]any{"session_policy": clientPolicy}), "session_policy"},
		{"a longer duration", body("aws-open", map[string]any{"duration_seconds": 7200}), "duration_seconds"},
	} {
		before := len(c.sts.Calls())
		r := exchange(s, c.gh.Mint(t, c.gh.GitHubClaims(nil)), tc.body)
		var e api.Error
		r.json(t, &e)
		if r.status != 400 || e.Error != api.CodeInvalidRequest || e.Field != tc.field {
			t.Errorf("%s: %d %s", tc.name, r.status, r.body)
			continue
		}
		if len(c.sts.Calls()) != before {
			t.Errorf("%s: STS was called", tc.name)
		}
		if e.IssuanceID != "" {
			if outcome, _, _, ds := auditRow(t, c.dbURL, e.IssuanceID); outcome != "denied" || ds == "" {
				t.Errorf("%s: row %s, downscope %q", tc.name, outcome, ds)
			}
		}
	}
	var denied int
	if err := openDB(t, c.dbURL).QueryRow(context.Background(), `SELECT count(*) FROM audit.issuances
		WHERE outcome = 'denied' AND error_code = 'invalid_request' AND downscope IS NOT NULL`).Scan(&denied); err != nil || denied != 6 {
		t.Errorf("denied rows with their downscope: %d, %v", denied, err)
	}

	// RFC 8693's own scope parameter narrows the same way at
	// POST /oauth2/token (space-delimited); a scope the mapping lacks is
	// OAuth's invalid_scope, recorded.
	const readOnly = "https://www.googleapis.com/auth/devstorage.read_only"
	te := func(scope string) reply {
		return s.callForm("/oauth2/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"subject_token": {c.gh.Mint(t, c.gh.GitHubClaims(nil))}, "subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
			"audience": {"gcp"}, "scope": {scope}})
	}
	r = te(" " + readOnly + " ")
	var teResp api.TokenExchangeResponse
	if err := json.Unmarshal(r.body, &teResp); r.status != 200 || err != nil {
		t.Fatalf("token exchange with scope: %d %v", r.status, err)
	}
	if calls := c.gcp.CallsTo(gcptest.IAMCredentials); strings.Join(calls[len(calls)-1].Scopes, " ") != readOnly {
		t.Errorf("token exchange with scope: IAM Credentials got %v", calls[len(calls)-1].Scopes)
	}
	if _, _, _, ds := auditRow(t, c.dbURL, teResp.IssuanceID); ds != `{"scopes": ["`+readOnly+`"]}` {
		t.Errorf("token exchange with scope: downscope column %s", ds)
	}
	mints := len(c.gcp.CallsTo(gcptest.IAMCredentials))
	r = te(readOnly + " https://www.googleapis.com/auth/admin")
	var oe api.OAuthError
	if err := json.Unmarshal(r.body, &oe); r.status != 400 || err != nil || oe.Error != "invalid_scope" || oe.IssuanceID == "" ||
		!strings.Contains(oe.ErrorDescription, `"https://www.googleapis.com/auth/admin"`) || len(c.gcp.CallsTo(gcptest.IAMCredentials)) != mints {
		t.Errorf("token exchange with a scope the mapping lacks: %d, error %q (%q), issuance %q", r.status, oe.Error, oe.ErrorDescription, oe.IssuanceID)
	} else if outcome, _, _, ds := auditRow(t, c.dbURL, oe.IssuanceID); outcome != "denied" || !strings.Contains(ds, "auth/admin") {
		t.Errorf("token exchange with a scope the mapping lacks: row %s, downscope %s", outcome, ds)
	}

	// The CLI.
	dir := t.TempDir()
	policyFile, tokenPath := filepath.Join(dir, "policy.json"), filepath.Join(dir, "token")
	if err := os.WriteFile(policyFile, []byte(clientPolicy+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile(t, c.gh, tokenPath, nil)
	clientEnv := []string{"OIDC_BRIDGE_URL=" + s.url}
	out, errOut, code := cli(t, clientEnv, "exchange", "--token-file", tokenPath, "--mapping", "aws-open", "--no-cache",
		"--session-policy", policyFile, "--duration", "15m", "--format", "json")
	if code != 0 {
		t.Fatalf("exchange --session-policy: exit %d\n%s\n%s", code, out, errOut)
	}
	if call := lastSTSCall(t, c.sts); call.Policy != clientPolicy || call.DurationSeconds != 900 {
		t.Errorf("CLI: STS got policy %q, duration %d", call.Policy, call.DurationSeconds)
	}
	tokenFile(t, c.gh, tokenPath, nil)
	out, errOut, code = cli(t, clientEnv, "exchange", "--token-file", tokenPath, "--mapping", "gcp", "--no-cache",
		"--scope", "https://www.googleapis.com/auth/admin", "--format", "json")
	if code == 0 || !strings.Contains(errOut, "invalid_request") {
		t.Errorf("exchange --scope beyond the mapping: exit %d\n%s\n%s", code, out, errOut)
	}
	s.stopClean()
}

// TestKeylessAgainstMoto: a templated web_identity mapping with a client's
// session policy, exchanged against moto's STS. moto's
// AssumeRoleWithWebIdentity reads RoleArn, RoleSessionName, Policy and
// DurationSeconds, and nothing of the token: neither its signature, issuer,
// audience nor subject, nor its tags or source identity claims, and no
// trust policy (the STS fake checks those, TestKeylessSessionTagsMatchAssumeRole).
// So moto shows the resolved role, the session name and the policy.
func TestKeylessAgainstMoto(t *testing.T) {
	t.Parallel()
	// IAM is not enforced: moto 5.2.1's enforcement fails on any unsigned
	// request (KeyError on the Authorization header), and
	// AssumeRoleWithWebIdentity is unsigned.
	srv := moto.Start(t)
	gh, dbURL := oidctest.New(t), pgtest.NewDatabase(t)
	env, publicURL := issuerEnv(t, pgtest.RuntimeURL(t, dbURL))
	env = append(env, "BRIDGE_MIGRATION_DATABASE_URL="+dbURL, "BRIDGE_LISTEN_ADDR="+strings.TrimPrefix(publicURL, "http://"),
		"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY=unused-in-web-identity", "AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL="+srv.URL, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PROFILE=",
		"AWS_EC2_METADATA_DISABLED=true")
	s := startServer(t, env)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", gh.URL(), "github"))
	s.must(201, "POST", "/v1/admin/mappings", `{"name": "keyless", "issuer": "github",
		"conditions": {"repository": "acme/*", "ref": "refs/heads/main"}, "provider": "aws",
		"target": {"role_arn": "arn:aws:iam::`+moto.Account+`:role/ci/${repository_name}-deploy", "region": "eu-west-1",
		           "mode": "web_identity", "session_tags": {"cost-center": "ci-4711"}, "transitive_tag_keys": ["repository"]},
		"max_duration_seconds": 3600}`)
	r := exchange(s, gh.Mint(t, gh.GitHubClaims(nil)), `{"session_policy": `+fmt.Sprintf("%q", clientPolicy)+`, "duration_seconds": 900}`)
	_, creds := awsCreds(t, r)
	var kept *moto.AssumedRole
	for _, a := range srv.AssumedRoles(t) {
		if a.AccessKeyID == creds.AccessKeyID {
			kept = &a
		}
	}
	if kept == nil || kept.RoleARN != "arn:aws:iam::"+moto.Account+":role/ci/web-deploy" || kept.Policy != clientPolicy ||
		!strings.HasPrefix(kept.SessionName, "gh-acme.web-") {
		t.Fatalf("moto kept %+v", kept)
	}
	s.stopClean()
}
