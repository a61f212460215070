package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/auth/credentials"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/joho/godotenv"
	"go.yaml.in/yaml/v3"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/test/gcpfake"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/stsfake"
)

// tokenFile writes a fresh GitHub-shaped token of iss into path (0600), as a
// CI that refreshes a token file would.
func tokenFile(t *testing.T, iss *oidctest.Issuer, path string, overrides map[string]any) {
	t.Helper()
	if err := os.WriteFile(path, []byte(iss.Mint(t, iss.GitHubClaims(overrides))), 0o600); err != nil {
		t.Fatal(err)
	}
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func lastSTSCall(t *testing.T, s *stsfake.Server) stsfake.Call {
	t.Helper()
	calls := s.Calls()
	if len(calls) == 0 {
		t.Fatal("no STS call")
	}
	return calls[len(calls)-1]
}

// TestCLIFormats: `oidc-bridge exchange` prints an AWS mapping's credentials
// as env (sourced by bash), dotenv (read by godotenv) and json (decoded);
// refusals fail fast with the contract's code; a format that does not fit
// the mapping is refused before the token is spent.
func TestCLIFormats(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	x.register(s, "")
	dir := t.TempDir()
	tf := filepath.Join(dir, "job.jwt")
	env := []string{"OIDC_BRIDGE_URL=" + s.url, "HOME=" + dir, "XDG_CACHE_HOME=", "RUNNER_TEMP="}
	run := func(args ...string) (string, string, int) {
		t.Helper()
		tokenFile(t, x.gh, tf, nil)
		return cli(t, env, append([]string{"exchange", "--mapping", "web-prod", "--token-file", tf, "--no-cache"}, args...)...)
	}

	// env, sourced by a real shell.
	out, errOut, code := run("--format", "env", "--duration", "15m")
	if code != 0 {
		t.Fatalf("env: exit %d: %s", code, errOut)
	}
	envFile := filepath.Join(dir, "creds.sh")
	if err := os.WriteFile(envFile, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	sh := exec.Command("bash", "-c", `set -eu; source "$1"; printf '%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN" "$AWS_REGION" "$AWS_DEFAULT_REGION" "$OIDC_BRIDGE_ISSUANCE_ID"`, "bash", envFile)
	sh.Env = []string{"PATH=" + os.Getenv("PATH")}
	got, err := sh.Output()
	if err != nil {
		t.Fatalf("source the env output: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	call := lastSTSCall(t, x.sts)
	if len(lines) != 6 || lines[0] != call.IssuedAccessKeyID || lines[1] == "" || !strings.HasPrefix(lines[2], "IQoJ") ||
		lines[3] != "eu-west-1" || lines[4] != "eu-west-1" || lines[5] == "" || call.DurationSeconds != 900 {
		t.Fatalf("sourced variables %q (STS call %+v)", lines, call)
	}

	// dotenv, read by a dotenv reader.
	out, errOut, code = run("--format", "dotenv")
	if code != 0 {
		t.Fatalf("dotenv: exit %d: %s", code, errOut)
	}
	vars, err := godotenv.Unmarshal(out)
	if err != nil {
		t.Fatalf("godotenv: %v\n%s", err, out)
	}
	call = lastSTSCall(t, x.sts)
	if vars["AWS_ACCESS_KEY_ID"] != call.IssuedAccessKeyID || vars["AWS_SECRET_ACCESS_KEY"] == "" ||
		!strings.HasPrefix(vars["AWS_SESSION_TOKEN"], "IQoJ") || vars["AWS_REGION"] != "eu-west-1" {
		t.Fatalf("dotenv variables %v", vars)
	}
	if exp, err := time.Parse(time.RFC3339, vars["AWS_CREDENTIAL_EXPIRATION"]); err != nil || time.Until(exp) < 50*time.Minute {
		t.Fatalf("AWS_CREDENTIAL_EXPIRATION %q", vars["AWS_CREDENTIAL_EXPIRATION"])
	}

	// json: the exchange's answer.
	out, errOut, code = run("--format", "json")
	if code != 0 {
		t.Fatalf("json: exit %d: %s", code, errOut)
	}
	var resp api.ExchangeResponse
	var creds providers.AWSCredentials
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if err := json.Unmarshal(resp.Credentials, &creds); err != nil || resp.Mapping != "web-prod" || resp.Provider != "aws" ||
		creds.AccessKeyID != lastSTSCall(t, x.sts).IssuedAccessKeyID || creds.Region != "eu-west-1" {
		t.Fatalf("json answer %s", out)
	}
	if n := x.sts.CallCount(); n != 3 {
		t.Fatalf("STS calls %d, want 3", n)
	}

	// A refusal fails at once (no retry) with the contract's code.
	tokenFile(t, x.gh, tf, map[string]any{"ref": "refs/heads/feature/x"})
	start := time.Now()
	_, errOut, code = cli(t, env, "exchange", "--mapping", "web-prod", "--token-file", tf, "--no-cache", "--format", "json")
	if code != 1 || !strings.Contains(errOut, "403 no_matching_mapping") || !strings.Contains(errOut, "issuance id") ||
		strings.Contains(errOut, "retrying") || time.Since(start) > 20*time.Second {
		t.Fatalf("denied exchange: exit %d: %s", code, errOut)
	}

	// A format that needs another provider: the bridge is asked for a jwt
	// mapping and refuses without issuing; stdout is Google's failure shape.
	out, errOut, code = run("--format", "gcp-executable")
	var fail struct {
		Version int    `json:"version"`
		Success *bool  `json:"success"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(out), &fail); code != 1 || err != nil || fail.Version != 1 || fail.Success == nil || *fail.Success ||
		fail.Code != "no_matching_mapping" || !strings.Contains(errOut, "provider jwt") {
		t.Fatalf("gcp-executable for an aws mapping: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code = run("--format", "aws-credential-process", "--provider", "gcp"); code != 2 || !strings.Contains(errOut, "provider aws") {
		t.Fatalf("format/provider mismatch: exit %d: %s", code, errOut)
	}
	if n := x.sts.CallCount(); n != 3 {
		t.Fatalf("STS calls %d after refusals, want 3", n)
	}

	// No token source: a usage error.
	if _, errOut, code = cli(t, env, "exchange", "--mapping", "web-prod"); code != 2 || !strings.Contains(errOut, "--token-file") {
		t.Fatalf("no token: exit %d: %s", code, errOut)
	}
}

// TestCLIAWSCredentialProcess: the real AWS SDK's processcreds provider runs
// `oidc-bridge exchange --format aws-credential-process`, and the STS client
// signs GetCallerIdentity with the credentials; the SDK's second call is
// answered from the cache (no exchange), a --refresh-before longer than the
// credentials' life exchanges a fresh token, and a static token that cannot
// be exchanged again is said to be so.
func TestCLIAWSCredentialProcess(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	x.register(s, "")
	dir := t.TempDir()
	tf, cache := filepath.Join(dir, "job.jwt"), filepath.Join(dir, "cache")
	tokenFile(t, x.gh, tf, nil)
	command := strings.Join([]string{shQuote(binary), "exchange", "--bridge-url", shQuote(s.url), "--mapping", "web-prod",
		"--token-file", shQuote(tf), "--format", "aws-credential-process", "--duration", "900", "--cache-dir", shQuote(cache)}, " ")
	ctx := context.Background()

	provider := processcreds.NewProvider(command)
	first, err := provider.Retrieve(ctx)
	if err != nil {
		t.Fatalf("processcreds: %v", err)
	}
	if first.AccessKeyID != lastSTSCall(t, x.sts).IssuedAccessKeyID || !first.CanExpire ||
		time.Until(first.Expires) < 14*time.Minute || time.Until(first.Expires) > 16*time.Minute {
		t.Fatalf("credentials %+v", first)
	}
	// The cache: a 0700 folder of 0600 files.
	if fi, err := os.Stat(cache); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("cache dir: %v %v", fi.Mode(), err)
	}
	files, _ := filepath.Glob(filepath.Join(cache, "*.json"))
	if len(files) != 1 {
		t.Fatalf("cache files %v", files)
	}
	if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file mode %v %v", fi.Mode(), err)
	}

	// The account's STS (which knows the issued session) answers
	// GetCallerIdentity signed with the credentials; the SDK fetches them
	// anew through the command, which answers from the cache.
	account := stsfake.New(t, stsfake.WithKeys(stsfake.Key{AccessKeyID: first.AccessKeyID,
		SecretAccessKey: first.SecretAccessKey, SessionToken: first.SessionToken}))
	client := sts.New(sts.Options{Region: "eu-west-1", Credentials: aws.NewCredentialsCache(provider),
		BaseEndpoint: aws.String(account.URL())})
	id, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	if aws.ToString(id.Account) != stsfake.CallerAccount {
		t.Fatalf("caller %+v", id)
	}
	if n := x.sts.CallCount(); n != 1 {
		t.Fatalf("the bridge exchanged %d times, want 1 (the second answer from the cache)", n)
	}

	// Near expiry (a refresh window longer than the credentials' life):
	// a fresh token from the file is exchanged.
	tokenFile(t, x.gh, tf, nil)
	refreshing := processcreds.NewProvider(command + " --refresh-before 20m")
	second, err := refreshing.Retrieve(ctx)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if second.AccessKeyID == first.AccessKeyID || second.AccessKeyID != lastSTSCall(t, x.sts).IssuedAccessKeyID || x.sts.CallCount() != 2 {
		t.Fatalf("refresh gave %s (first %s, STS calls %d)", second.AccessKeyID, first.AccessKeyID, x.sts.CallCount())
	}

	// A static token (a variable) cannot be exchanged twice: near expiry
	// the still valid credentials are reused with a warning, not replayed.
	tok := x.gh.Mint(t, x.gh.GitHubClaims(nil))
	args := []string{"exchange", "--bridge-url", s.url, "--mapping", "web-prod", "--token-env", "JOB_TOKEN",
		"--format", "aws-credential-process", "--cache-dir", filepath.Join(dir, "static")}
	out1, errOut, code := cli(t, []string{"JOB_TOKEN=" + tok}, args...)
	if code != 0 {
		t.Fatalf("static token: exit %d: %s", code, errOut)
	}
	out2, errOut, code := cli(t, []string{"JOB_TOKEN=" + tok}, append(args, "--refresh-before", "2h")...)
	if code != 0 || out2 != out1 || !strings.Contains(errOut, "gives no fresh token") || x.sts.CallCount() != 3 {
		t.Fatalf("static token near expiry: exit %d, same %v, STS %d: %s", code, out1 == out2, x.sts.CallCount(), errOut)
	}
	var replays int
	if err := openDB(t, x.dbURL).QueryRow(ctx, `SELECT count(*) FROM audit.issuances WHERE error_code = 'token_replayed'`).Scan(&replays); err != nil || replays != 0 {
		t.Fatalf("replays recorded: %d %v", replays, err)
	}
}

// TestCLIGitHubRequestVariables: with GitHub Actions' request variables the
// CLI asks a stand-in of GitHub's token service for a token of --audience,
// retries its failure, and gets a fresh token for each exchange.
func TestCLIGitHubRequestVariables(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	x.register(s, "")
	var requests, failures atomic.Int32
	failures.Store(1)
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("Authorization") != "Bearer request-token-123" || r.URL.Query().Get("api-version") != "2.0" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if failures.Add(-1) >= 0 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		aud := r.URL.Query().Get("audience")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"count": 1, "value": x.gh.Mint(t, x.gh.GitHubClaims(map[string]any{"aud": aud}))})
	}))
	t.Cleanup(gh.Close)
	dir := t.TempDir()
	env := []string{"OIDC_BRIDGE_URL=" + s.url, "OIDC_BRIDGE_MAPPING=web-prod", "RUNNER_TEMP=" + dir,
		"ACTIONS_ID_TOKEN_REQUEST_URL=" + gh.URL + "/token?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=request-token-123"}

	out, errOut, code := cli(t, env, "exchange", "--audience", oidctest.DefaultAudience, "--format", "json")
	var resp api.ExchangeResponse
	if err := json.Unmarshal([]byte(out), &resp); code != 0 || err != nil || resp.Mapping != "web-prod" {
		t.Fatalf("exchange: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "retrying") || requests.Load() != 2 || x.sts.CallCount() != 1 {
		t.Fatalf("token requests %d, STS %d: %s", requests.Load(), x.sts.CallCount(), errOut)
	}
	// $RUNNER_TEMP holds the cache: the same job's next call reuses it.
	if _, err := os.Stat(filepath.Join(dir, "oidc-bridge")); err != nil {
		t.Fatal(err)
	}
	if out2, _, code := cli(t, env, "exchange", "--audience", oidctest.DefaultAudience, "--format", "json"); code != 0 || out2 != out ||
		requests.Load() != 2 || x.sts.CallCount() != 1 {
		t.Fatalf("cached: exit %d, requests %d, STS %d", code, requests.Load(), x.sts.CallCount())
	}
	// Near expiry: a fresh token, a new exchange.
	_, errOut, code = cli(t, env, "exchange", "--audience", oidctest.DefaultAudience, "--format", "env", "--refresh-before", "2h")
	if code != 0 || requests.Load() != 3 || x.sts.CallCount() != 2 {
		t.Fatalf("refresh: exit %d, requests %d, STS %d: %s", code, requests.Load(), x.sts.CallCount(), errOut)
	}
	// The wrong audience: the bridge refuses the token, without retries.
	_, errOut, code = cli(t, env, "exchange", "--audience", "https://elsewhere.example", "--no-cache")
	if code != 1 || !strings.Contains(errOut, "401 invalid_token") || strings.Contains(errOut, "retrying") {
		t.Fatalf("wrong audience: exit %d: %s", code, errOut)
	}
}

// TestCLIGCPExecutable: Google's auth library runs `oidc-bridge exchange
// --format gcp-executable` as an external account's executable source,
// exchanges the bridge-signed JWT at the GCP fake's STS and impersonates a
// service account with it.
func TestCLIGCPExecutable(t *testing.T) {
	// Not parallel: Google's library reads the opt-in from the process
	// environment.
	t.Setenv("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")
	t.Setenv("GOOGLE_AUTH_TRUST_BOUNDARY_ENABLED", "")
	c := newCloudsEnv(t)
	s := startServer(t, c.env)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", c.gh.URL(), "github"))
	c.addMapping(s, "gcp-exec", "jwt", fmt.Sprintf(`{"audience": %q}`, wip))
	const execSA = "exec-deploy@acme-prod.iam.gserviceaccount.com"
	prov := gcpfake.WorkloadIdentityProvider{Name: wip, IssuerURI: c.publicURL}
	c.gcp.Allow(prov.Principal("repo:acme/web:environment:production"), execSA)

	// Google's executable source splits its command at blanks: keep every
	// path free of them, copying the binary if its own path has any.
	dir, err := os.MkdirTemp("/tmp", "oidc-bridge-gcp-exec-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := binary
	if strings.ContainsAny(bin, " \t") {
		bin = filepath.Join(dir, "oidc-bridge")
		b, err := os.ReadFile(binary)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tf := filepath.Join(dir, "job.jwt")
	tokenFile(t, c.gh, tf, nil)
	command := strings.Join([]string{bin, "exchange", "--bridge-url", s.url, "--mapping", "gcp-exec", "--token-file", tf,
		"--format", "gcp-executable", "--cache-dir", filepath.Join(dir, "cache")}, " ")
	if len(strings.Fields(command)) != 12 {
		t.Fatalf("the executable command has blanks in a path, which Google's executable source cannot run: %s", command)
	}
	cfg, _ := json.Marshal(map[string]any{
		"type":                              "external_account",
		"audience":                          wip,
		"subject_token_type":                "urn:ietf:params:oauth:token-type:jwt",
		"token_url":                         c.gcp.STSEndpoint() + "/v1/token",
		"service_account_impersonation_url": c.gcp.IAMCredentialsEndpoint() + "/v1/projects/-/serviceAccounts/" + execSA + ":generateAccessToken",
		"credential_source":                 map[string]any{"executable": map[string]any{"command": command, "timeout_millis": 30000}},
	})
	creds, err := credentials.NewCredentialsFromJSON(credentials.ExternalAccount, cfg,
		&credentials.DetectOptions{Scopes: []string{gcpfake.CloudPlatformScope}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := creds.Token(context.Background())
	if err != nil {
		t.Fatalf("Google's library: %v", err)
	}
	issued, ok := c.gcp.Lookup(tok.Value)
	if !ok || issued.Principal != execSA || issued.Via != gcpfake.IAMCredentials {
		t.Fatalf("access token %+v (%v)", issued, ok)
	}
	stsCalls := c.gcp.CallsTo(gcpfake.STS)
	if len(stsCalls) != 1 || stsCalls[0].Status != 200 || stsCalls[0].Principal != prov.Principal("repo:acme/web:environment:production") {
		t.Fatalf("Google STS calls %+v", stsCalls)
	}
	// The executable's own output, as Google documents it.
	out, errOut, code := cli(t, nil, strings.Fields(command)[1:]...)
	var r struct {
		Version        int    `json:"version"`
		Success        bool   `json:"success"`
		TokenType      string `json:"token_type"`
		IDToken        string `json:"id_token"`
		ExpirationTime int64  `json:"expiration_time"`
	}
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || r.Version != 1 || !r.Success ||
		r.TokenType != "urn:ietf:params:oauth:token-type:jwt" || strings.Count(r.IDToken, ".") != 2 ||
		time.Until(time.Unix(r.ExpirationTime, 0)) < 50*time.Minute {
		t.Fatalf("executable response: exit %d\n%s\n%s", code, out, errOut)
	}
}

// gitlabJob is what the test reads of a GitLab job definition.
type gitlabJob struct {
	IDTokens map[string]struct {
		Aud string `yaml:"aud"`
	} `yaml:"id_tokens"`
	Variables    map[string]string `yaml:"variables"`
	BeforeScript []string          `yaml:"before_script"`
}

// runGitLabJob runs a job's before_script and then script in bash, as
// GitLab's shell executor would: variables expanded, the id_token set.
func runGitLabJob(t *testing.T, vars map[string]string, job gitlabJob, token, script string) string {
	t.Helper()
	expanded := map[string]string{}
	for k, v := range vars {
		expanded[k] = os.Expand(v, func(n string) string { return vars[n] })
	}
	env := baseEnv("PATH="+filepath.Dir(binary)+":"+os.Getenv("PATH"), "CI=true", "GITLAB_CI=true", "CI_JOB_ID=2468",
		"CI_PIPELINE_ID=1212", "CI_PROJECT_PATH=platform/app", "CI_BUILDS_DIR="+t.TempDir(), "HOME="+t.TempDir(),
		"TMPDIR="+t.TempDir(), "RUNNER_TEMP=")
	for k, v := range expanded {
		env = append(env, k+"="+v)
	}
	env = append(env, "OIDC_BRIDGE_ID_TOKEN="+token)
	full := "set -eo pipefail\n" + strings.Join(job.BeforeScript, "\n") + "\n" + script
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", full)
	cmd.Dir = t.TempDir()
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("job script: %v\n%s\n%s", err, out, stderr.String())
	}
	return string(out)
}

// TestGitLabTemplate: the include-able template and the CI/CD component,
// parsed as YAML and run in bash with the environment GitLab would give the
// job (the id_token a GitLab-shaped token for the declared audience),
// export the AWS credentials of the real bridge into the job's shell.
func TestGitLabTemplate(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	x.register(s, "")
	const printAWS = `printf '%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN" "$AWS_REGION"`
	mint := func(aud string) string {
		if aud != oidctest.DefaultAudience {
			t.Fatalf("the id_token's audience is %q", aud)
		}
		return x.gl.Mint(t, x.gl.GitLabClaims(map[string]any{"aud": aud}))
	}
	check := func(name, out string) {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(out), "\n")
		call := lastSTSCall(t, x.sts)
		if len(lines) != 4 || lines[0] != call.IssuedAccessKeyID || lines[1] == "" || lines[2] == "" || lines[3] != "us-west-2" ||
			call.RoleArn != "arn:aws:iam::210987654321:role/app" {
			t.Fatalf("%s: exported %q (STS call %+v)", name, lines, call)
		}
	}
	root := filepath.Join("..", "..", "actions", "gitlab")

	t.Run("include", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(root, "oidc-bridge.gitlab-ci.yml"))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Variables map[string]string `yaml:"variables"`
			Job       gitlabJob         `yaml:".oidc-bridge"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Job.IDTokens["OIDC_BRIDGE_ID_TOKEN"].Aud != "$OIDC_BRIDGE_AUDIENCE" || len(doc.Job.BeforeScript) == 0 {
			t.Fatalf("job %+v", doc.Job)
		}
		// The pipeline's job: extends .oidc-bridge, sets its variables.
		vars := doc.Variables
		vars["OIDC_BRIDGE_URL"] = s.url
		vars["OIDC_BRIDGE_AUDIENCE"] = oidctest.DefaultAudience
		vars["OIDC_BRIDGE_MAPPING"] = "app-main"
		aud := os.Expand(doc.Job.IDTokens["OIDC_BRIDGE_ID_TOKEN"].Aud, func(n string) string { return vars[n] })
		check("include", runGitLabJob(t, vars, doc.Job, mint(aud), printAWS))
	})

	t.Run("component", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(root, "templates", "credentials", "template.yml"))
		if err != nil {
			t.Fatal(err)
		}
		header, body, ok := strings.Cut(string(b), "\n---\n")
		if !ok {
			t.Fatal("the component has no spec header")
		}
		var spec struct {
			Spec struct {
				Inputs map[string]struct {
					Default *string `yaml:"default"`
				} `yaml:"inputs"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal([]byte(header), &spec); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"bridge-url", "mapping", "audience", "format", "cli-version"} {
			if _, ok := spec.Spec.Inputs[name]; !ok {
				t.Fatalf("input %s missing", name)
			}
		}
		for _, format := range []string{"env", "dotenv"} {
			// GitLab interpolates the inputs: given, else the defaults.
			inputs := map[string]string{"bridge-url": s.url, "audience": oidctest.DefaultAudience, "mapping": "app-main", "format": format}
			var missing []string
			text := regexp.MustCompile(`\$\[\[\s*inputs\.([a-z-]+)\s*\]\]`).ReplaceAllStringFunc(body, func(m string) string {
				name := regexp.MustCompile(`inputs\.([a-z-]+)`).FindStringSubmatch(m)[1]
				if v, ok := inputs[name]; ok {
					return v
				}
				if in, ok := spec.Spec.Inputs[name]; ok && in.Default != nil {
					return *in.Default
				}
				missing = append(missing, name)
				return ""
			})
			if len(missing) > 0 {
				t.Fatalf("inputs without value or default: %v", missing)
			}
			var doc map[string]gitlabJob
			if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
				t.Fatal(err)
			}
			job, ok := doc[".oidc-bridge-credentials"]
			if !ok || len(job.BeforeScript) == 0 {
				t.Fatalf("component jobs %v", doc)
			}
			script := printAWS
			if format == "dotenv" {
				script = `stat -c %a "$OIDC_BRIDGE_DOTENV_FILE"; cat "$OIDC_BRIDGE_DOTENV_FILE"`
			}
			out := runGitLabJob(t, job.Variables, job, mint(job.IDTokens["OIDC_BRIDGE_ID_TOKEN"].Aud), script)
			if format == "env" {
				check("component", out)
				continue
			}
			mode, rest, _ := strings.Cut(out, "\n")
			vars, err := godotenv.Unmarshal(rest)
			if err != nil || mode != "600" {
				t.Fatalf("dotenv file (mode %s): %v\n%s", mode, err, rest)
			}
			check("component dotenv", strings.Join([]string{vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"],
				vars["AWS_SESSION_TOKEN"], vars["AWS_REGION"]}, "\n"))
		}
	})
}
