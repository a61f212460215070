package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

// noOtherCI blanks the variables by which `exchange --ci auto` would find
// another CI before the one under test, whatever runs these tests.
var noOtherCI = []string{"ACTIONS_ID_TOKEN_REQUEST_URL=", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=", "OIDC_BRIDGE_ID_TOKEN=",
	"BUILDKITE=", "CIRCLECI=", "BITBUCKET_STEP_OIDC_TOKEN=", "TFC_WORKLOAD_IDENTITY_TOKEN=", "TF_BUILD=", "JENKINS_URL=",
	"KUBERNETES_SERVICE_HOST=", "RUNNER_TEMP=", "AGENT_TEMPDIRECTORY=", "OIDC_BRIDGE_CACHE_DIR="}

// TestCLIBuildkiteAgent: in a Buildkite job (BUILDKITE=true), `exchange
// --ci auto` runs buildkite-agent (a stub on PATH standing in for the
// agent) with the bridge's audience, and exchanges the Buildkite-shaped
// token it prints; each exchange asks the agent anew, so a second exchange
// gets a fresh token, not a replay. No token is in the agent's argv.
func TestCLIBuildkiteAgent(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	iss := oidctest.New(t)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("buildkite", iss.URL(), "buildkite"))
	s.must(201, "POST", "/v1/admin/mappings", `{"name": "bk-deploy", "issuer": "buildkite",
		"conditions": {"ref": "refs/heads/main", "event_name": "webhook",
		               "claims": {"organization_id": "0184990a-2a6f-4c1e-9c3d-3d7a3c4b5e6f", "pipeline_slug": "deploy-web"}},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/bk", "region": "eu-west-1"}}`)

	// The stub agent prints the next of the tokens minted here, and keeps
	// its arguments.
	dir := t.TempDir()
	var tokens []string
	for i := 1; i <= 2; i++ {
		tok := iss.Mint(t, ciClaims(t, iss, "buildkite-agent.json", nil))
		tokens = append(tokens, tok)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("tok%d", i)), []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // distinct jti
	}
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o700); err != nil {
		t.Fatal(err)
	}
	stub := `#!/bin/sh
echo "$*" >> "$STUB_DIR/argv"
[ "$1 $2 $3 $4" = "oidc request-token --audience ` + oidctest.DefaultAudience + `" ] || { echo "unexpected arguments" >&2; exit 2; }
n=$(cat "$STUB_DIR/count" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$STUB_DIR/count"
cat "$STUB_DIR/tok$n"
`
	if err := os.WriteFile(filepath.Join(bin, "buildkite-agent"), []byte(stub), 0o700); err != nil {
		t.Fatal(err)
	}
	env := append(append([]string{}, noOtherCI...), "OIDC_BRIDGE_URL="+s.url, "OIDC_BRIDGE_AUDIENCE="+oidctest.DefaultAudience,
		"BUILDKITE=true", "BUILDKITE_JOB_ID=0190-job", "STUB_DIR="+dir, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	for i := range 2 {
		out, errOut, code := cli(t, env, "exchange", "--ci", "auto", "--mapping", "bk-deploy", "--no-cache", "--format", "json")
		var resp api.ExchangeResponse
		if err := json.Unmarshal([]byte(out), &resp); code != 0 || err != nil || resp.Mapping != "bk-deploy" {
			t.Fatalf("exchange %d: exit %d\n%s\n%s", i+1, code, out, errOut)
		}
	}
	if n := x.sts.CallCount(); n != 2 {
		t.Errorf("STS saw %d calls, want 2", n)
	}
	argv, err := os.ReadFile(filepath.Join(dir, "argv"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(argv), "\n") != 2 {
		t.Errorf("the agent ran %q, want twice", argv)
	}
	for _, tok := range tokens {
		if strings.Contains(string(argv), tok) {
			t.Error("a token in the agent's arguments")
		}
	}
}

// TestCLIAzureDevOpsRequest: in an Azure Pipelines job (TF_BUILD=True),
// `exchange --ci auto` asks a stand-in of Azure DevOps' oidctoken endpoint
// (POST, api-version 7.1, the service connection, the job's access token
// as bearer) for a token, retries its 503, and exchanges the service
// connection's token (audience api://AzureADTokenExchange) at a generic
// issuer; each exchange gets a fresh token.
func TestCLIAzureDevOpsRequest(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	iss := oidctest.New(t)
	s.must(201, "POST", "/v1/admin/issuers", fmt.Sprintf(`{"name": "ado", "url": %q, "audiences": ["api://AzureADTokenExchange"], "kind": "generic"}`, iss.URL()))
	s.must(201, "POST", "/v1/admin/mappings", `{"name": "ado-deploy", "issuer": "ado",
		"conditions": {"claims": {"org_id": "5b1c2d3e-org", "prj_id": "6c2d3e4f-prj"}},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/ado", "region": "eu-west-1"}}`)
	var requests, failures atomic.Int32
	failures.Store(1)
	ado := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		q := r.URL.Query()
		if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer system-access-token" ||
			q.Get("api-version") != "7.1" || q.Get("serviceConnectionId") != "0f6e1a2b-conn" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if failures.Add(-1) >= 0 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		now := time.Now().Unix()
		tok := iss.Mint(t, map[string]any{"iss": iss.URL(), "aud": "api://AzureADTokenExchange", "sub": "sc://acme/web/deploy-prod",
			"org_id": "5b1c2d3e-org", "prj_id": "6c2d3e4f-prj", "iat": now, "nbf": now, "exp": now + 600, "jti": fmt.Sprintf("ado-%d", time.Now().UnixNano())})
		_ = json.NewEncoder(w).Encode(map[string]string{"oidcToken": tok})
	}))
	t.Cleanup(ado.Close)
	env := append(append([]string{}, noOtherCI...), "OIDC_BRIDGE_URL="+s.url, "TF_BUILD=True",
		"SYSTEM_OIDCREQUESTURI="+ado.URL+"/acme/_apis/distributedtask/hubs/build/plans/p/jobs/j/oidctoken",
		"SYSTEM_ACCESSTOKEN=system-access-token", "OIDC_BRIDGE_AZURE_SERVICE_CONNECTION_ID=0f6e1a2b-conn")
	for i := range 2 {
		out, errOut, code := cli(t, env, "exchange", "--mapping", "ado-deploy", "--no-cache", "--format", "json")
		var resp api.ExchangeResponse
		if err := json.Unmarshal([]byte(out), &resp); code != 0 || err != nil || resp.Mapping != "ado-deploy" {
			t.Fatalf("exchange %d: exit %d\n%s\n%s", i+1, code, out, errOut)
		}
		if i == 0 && !strings.Contains(errOut, "retrying") {
			t.Errorf("the 503 was not retried: %s", errOut)
		}
		if strings.Contains(errOut, "system-access-token") {
			t.Error("the access token on stderr")
		}
	}
	if requests.Load() != 3 || x.sts.CallCount() != 2 {
		t.Errorf("token requests %d (want 3), STS %d (want 2)", requests.Load(), x.sts.CallCount())
	}
}

// TestCLIFindsTokenPerCI: in each CI whose token is a variable or a file,
// `exchange --ci auto` (the real binary) finds the job's token the way the
// CI hands it over and exchanges it: CircleCI's CIRCLE_OIDC_TOKEN_V2,
// Bitbucket's BITBUCKET_STEP_OIDC_TOKEN, HCP Terraform's
// TFC_WORKLOAD_IDENTITY_TOKEN, Jenkins' credential-bound token file and
// Kubernetes' projected token file. Each CI's token carries its name in a
// claim the mapping of that CI requires, so a source that took another
// CI's token would be refused.
func TestCLIFindsTokenPerCI(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	iss := oidctest.New(t)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("ci", iss.URL(), "generic"))
	dir := t.TempDir()
	for _, tc := range []struct {
		ci  string
		env func(token string) []string
	}{
		{"circleci", func(tok string) []string { return []string{"CIRCLECI=true", "CIRCLE_OIDC_TOKEN_V2=" + tok} }},
		{"bitbucket", func(tok string) []string { return []string{"BITBUCKET_STEP_OIDC_TOKEN=" + tok} }},
		{"terraform_cloud", func(tok string) []string { return []string{"TFC_WORKLOAD_IDENTITY_TOKEN=" + tok} }},
		{"jenkins", func(tok string) []string {
			return []string{"JENKINS_URL=https://jenkins.example.com/", "OIDC_BRIDGE_TOKEN_FILE=" + writeToken(t, dir, "jenkins", tok)}
		}},
		{"kubernetes", func(tok string) []string {
			return []string{"KUBERNETES_SERVICE_HOST=10.0.0.1", "OIDC_BRIDGE_KUBERNETES_TOKEN_FILE=" + writeToken(t, dir, "kubernetes", tok)}
		}},
	} {
		s.must(201, "POST", "/v1/admin/mappings", `{"name": "`+strings.ReplaceAll(tc.ci, "_", "-")+`", "issuer": "ci",
			"conditions": {"repository": "platform/app", "claims": {"ci": "`+tc.ci+`"}},
			"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/ci", "region": "eu-west-1"}}`)
		tok := iss.Mint(t, ciClaims(t, iss, "generic-ci.json", map[string]any{"ci": tc.ci}))
		env := append(append(append([]string{}, noOtherCI...), "OIDC_BRIDGE_URL="+s.url, "OIDC_BRIDGE_AUDIENCE="+oidctest.DefaultAudience), tc.env(tok)...)
		out, errOut, code := cli(t, env, "exchange", "--ci", "auto", "--no-cache", "--format", "json")
		var resp api.ExchangeResponse
		if err := json.Unmarshal([]byte(out), &resp); code != 0 || err != nil || resp.Mapping != strings.ReplaceAll(tc.ci, "_", "-") {
			t.Errorf("%s: exit %d\n%s\n%s", tc.ci, code, out, errOut)
		}
		if strings.Contains(errOut, tok) {
			t.Errorf("%s: the token is on stderr", tc.ci)
		}
	}
	if n := x.sts.CallCount(); n != 5 {
		t.Errorf("STS saw %d calls, want 5", n)
	}
}

// writeToken writes a CI's token file (0600) into dir.
func writeToken(t *testing.T, dir, name, tok string) string {
	t.Helper()
	p := filepath.Join(dir, name+".jwt")
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
