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
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
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

// TestCLIAWSOutbound: where AWS runs the job (AWS_EXECUTION_ENV), `exchange
// --ci auto` asks STS's GetWebIdentityToken (a stand-in STS of the job's
// account, reached through AWS_ENDPOINT_URL_STS and checking the job's SigV4
// signature) for a token of the bridge's audience, signed by the account's
// issuer, and exchanges it; each exchange asks STS anew (a second exchange
// would otherwise be a replay). The token carries the account and the
// request's tags under https://sts.amazonaws.com/, which the mapping pins.
func TestCLIAWSOutbound(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	iss := oidctest.New(t)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("account", iss.URL(), "aws"))
	s.must(201, "POST", "/v1/admin/mappings", `{"name": "lambda-deploy", "issuer": "account",
		"conditions": {"claims": {"/https:~1~1sts.amazonaws.com~1/aws_account": "123456789012",
		                          "/https:~1~1sts.amazonaws.com~1/source_region": "eu-west-1"}},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/lambda-deploy", "region": "eu-west-1"}}`)

	var seq atomic.Int64
	account := ststest.New(t, ststest.WithOutboundIdentity(func(r ststest.OutboundRequest) (string, error) {
		c := ciClaims(t, iss, "aws-outbound.json", nil)
		if len(r.Audience) != 1 || r.SigningAlgorithm != "RS256" {
			return "", fmt.Errorf("unexpected request %+v", r)
		}
		now := time.Now().Unix()
		c["aud"], c["iat"], c["exp"] = r.Audience[0], now, now+int64(r.Duration/time.Second)
		c["jti"] = fmt.Sprintf("outbound-%d", seq.Add(1))
		nested := c["https://sts.amazonaws.com/"].(map[string]any)
		nested["source_region"] = r.Region
		return iss.Mint(t, c), nil
	}))
	env := append(append([]string{}, noOtherCI...), "OIDC_BRIDGE_URL="+s.url, "OIDC_BRIDGE_AUDIENCE="+oidctest.DefaultAudience,
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023", "AWS_REGION=eu-west-1", "AWS_ENDPOINT_URL_STS="+account.URL(),
		"AWS_ACCESS_KEY_ID="+ststest.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+ststest.SecretAccessKey, "AWS_SESSION_TOKEN=",
		"AWS_PROFILE=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	for i := range 2 {
		out, errOut, code := cli(t, env, "exchange", "--ci", "auto", "--no-cache", "--format", "json")
		var resp api.ExchangeResponse
		if err := json.Unmarshal([]byte(out), &resp); code != 0 || err != nil || resp.Mapping != "lambda-deploy" {
			t.Fatalf("exchange %d: exit %d\n%s\n%s", i+1, code, out, errOut)
		}
	}
	calls := account.Calls()
	if len(calls) != 2 {
		t.Fatalf("the account's STS saw %d calls, want one GetWebIdentityToken per exchange", len(calls))
	}
	for _, c := range calls {
		if c.Action != "GetWebIdentityToken" || c.Status != http.StatusOK || c.AccessKeyID != ststest.AccessKeyID || c.Region != "eu-west-1" {
			t.Errorf("account STS call %+v", c)
		}
	}

	// Outbound federation not enabled for the account: the exchange fails
	// with STS's answer, and the hint says what to check.
	off := ststest.New(t)
	env = append(env, "AWS_ENDPOINT_URL_STS="+off.URL())
	_, errOut, code := cli(t, env, "exchange", "--ci", "auto", "--no-cache", "--format", "json")
	if code == 0 || !strings.Contains(errOut, "OutboundWebIdentityFederationDisabled") || !strings.Contains(errOut, "outbound identity federation enabled") {
		t.Errorf("federation disabled: exit %d\n%s", code, errOut)
	}
}
