package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
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
	"github.com/oidc-bridge/oidc-bridge/test/gcptest"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
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

func lastSTSCall(t *testing.T, s *ststest.Server) ststest.Call {
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
	account := ststest.New(t, ststest.WithKeys(ststest.Key{AccessKeyID: first.AccessKeyID,
		SecretAccessKey: first.SecretAccessKey, SessionToken: first.SessionToken}))
	client := sts.New(sts.Options{Region: "eu-west-1", Credentials: aws.NewCredentialsCache(provider),
		BaseEndpoint: aws.String(account.URL())})
	id, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	if aws.ToString(id.Account) != ststest.CallerAccount {
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
// service account with it. The jwt mapping's audience is one of the pool
// provider's allowed audiences of the bridge's own (a Google audience is
// refused for jwt targets: it would pass for the bridge's own workload
// identity assertions), and the binding names the jwt token's exact
// subject, which no pipeline claim can produce.
func TestCLIGCPExecutable(t *testing.T) {
	// Not parallel: Google's library reads the opt-in from the process
	// environment.
	t.Setenv("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")
	t.Setenv("GOOGLE_AUTH_TRUST_BOUNDARY_ENABLED", "")
	c := newCloudsEnv(t)
	s := startServer(t, c.env)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", c.gh.URL(), "github"))
	const (
		execWIP = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oidc-bridge/providers/bridge-exec"
		execAud = "https://bridge.example.com/google/acme-prod"
		execSA  = "exec-deploy@acme-prod.iam.gserviceaccount.com"
	)
	// The Google audience itself is refused for a jwt target.
	s.must(400, "POST", "/v1/admin/mappings", fmt.Sprintf(`{"name": "gcp-exec-google", "issuer": "github",
		"conditions": {"repository": "acme/web", "repository_id": "123456"}, "provider": "jwt", "target": {"audience": %q}}`, execWIP))
	c.addMapping(s, "gcp-exec", "jwt", fmt.Sprintf(`{"audience": %q}`, execAud))
	prov := gcptest.WorkloadIdentityProvider{Name: execWIP, IssuerURI: c.publicURL, AllowedAudiences: []string{execAud}}
	if err := c.gcp.AddWorkloadIdentityProvider(prov); err != nil {
		t.Fatal(err)
	}
	c.gcp.Allow(prov.Principal("oidc-bridge:jwt:mapping:gcp-exec"), execSA)

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
		"audience":                          execWIP,
		"subject_token_type":                "urn:ietf:params:oauth:token-type:jwt",
		"token_url":                         c.gcp.STSEndpoint() + "/v1/token",
		"service_account_impersonation_url": c.gcp.IAMCredentialsEndpoint() + "/v1/projects/-/serviceAccounts/" + execSA + ":generateAccessToken",
		"credential_source":                 map[string]any{"executable": map[string]any{"command": command, "timeout_millis": 30000}},
	})
	creds, err := credentials.NewCredentialsFromJSON(credentials.ExternalAccount, cfg,
		&credentials.DetectOptions{Scopes: []string{gcptest.CloudPlatformScope}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := creds.Token(context.Background())
	if err != nil {
		t.Fatalf("Google's library: %v", err)
	}
	issued, ok := c.gcp.Lookup(tok.Value)
	if !ok || issued.Principal != execSA || issued.Via != gcptest.IAMCredentials {
		t.Fatalf("access token %+v (%v)", issued, ok)
	}
	stsCalls := c.gcp.CallsTo(gcptest.STS)
	if len(stsCalls) != 1 || stsCalls[0].Status != 200 || stsCalls[0].Principal != prov.Principal("oidc-bridge:jwt:mapping:gcp-exec") {
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

// gitlabShell is how GitLab Runner starts a job's script in bash and in sh
// (dash here, busybox on alpine): pipefail where the shell has it, errexit.
const gitlabShell = "if set -o | grep pipefail > /dev/null; then set -o pipefail; fi; set -o errexit\n"

// gitlabRun describes one run of a job's before_script and script.
type gitlabRun struct {
	shell  string   // bash or sh; default bash
	noCLI  bool     // PATH without the oidc-bridge binary (the template installs it)
	path   []string // folders put first on PATH
	env    []string // more variables, last wins
	tmpdir string   // TMPDIR; default a fresh folder
}

// runGitLabJobIn runs a job's before_script and then script as GitLab's
// shell executor would: variables expanded, the id_token set. It returns
// stdout, stderr and the exit error.
func runGitLabJobIn(t *testing.T, r gitlabRun, vars map[string]string, job gitlabJob, token, script string) (string, string, error) {
	t.Helper()
	expanded := map[string]string{}
	for k, v := range vars {
		expanded[k] = os.Expand(v, func(n string) string { return vars[n] })
	}
	path := append(append([]string(nil), r.path...), os.Getenv("PATH"))
	if !r.noCLI {
		path = append([]string{filepath.Dir(binary)}, path...)
	}
	if r.tmpdir == "" {
		r.tmpdir = t.TempDir()
	}
	env := baseEnv("PATH="+strings.Join(path, ":"), "CI=true", "GITLAB_CI=true", "CI_JOB_ID=2468",
		"CI_PIPELINE_ID=1212", "CI_PROJECT_PATH=platform/app", "CI_BUILDS_DIR="+t.TempDir(), "HOME="+t.TempDir(),
		"TMPDIR="+r.tmpdir, "RUNNER_TEMP=")
	for k, v := range expanded {
		env = append(env, k+"="+v)
	}
	env = append(env, "OIDC_BRIDGE_ID_TOKEN="+token)
	env = append(env, r.env...)
	if r.shell == "" {
		r.shell = "bash"
	}
	full := gitlabShell + strings.Join(job.BeforeScript, "\n") + "\n" + script
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.shell, "-c", full)
	cmd.Dir = t.TempDir()
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	return string(out), stderr.String(), err
}

// runGitLabJob runs a job in bash with the CLI on PATH and fails the test if
// the job fails.
func runGitLabJob(t *testing.T, vars map[string]string, job gitlabJob, token, script string) string {
	t.Helper()
	out, errOut, err := runGitLabJobIn(t, gitlabRun{}, vars, job, token, script)
	if err != nil {
		t.Fatalf("job script: %v\n%s\n%s", err, out, errOut)
	}
	return out
}

// gitlabInclude reads the include-able template: its global variables and
// the hidden job.
func gitlabInclude(t *testing.T) (map[string]string, gitlabJob) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "actions", "gitlab", "oidc-bridge.gitlab-ci.yml"))
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
	return doc.Variables, doc.Job
}

// gitlabComponent reads the CI/CD component and interpolates its inputs as
// GitLab does: given, else the defaults. It returns the defaults too.
func gitlabComponent(t *testing.T, inputs map[string]string) (gitlabJob, map[string]*string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "actions", "gitlab", "templates", "credentials", "template.yml"))
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
	defaults := map[string]*string{}
	for name, in := range spec.Spec.Inputs {
		defaults[name] = in.Default
	}
	var missing []string
	text := regexp.MustCompile(`\$\[\[\s*inputs\.([a-z0-9-]+)\s*\]\]`).ReplaceAllStringFunc(body, func(m string) string {
		name := regexp.MustCompile(`inputs\.([a-z0-9-]+)`).FindStringSubmatch(m)[1]
		if v, ok := inputs[name]; ok {
			return v
		}
		if d, ok := defaults[name]; ok && d != nil {
			return *d
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
	return job, defaults
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

	t.Run("include", func(t *testing.T) {
		vars, job := gitlabInclude(t)
		// The pipeline's job: extends .oidc-bridge, sets its variables.
		vars["OIDC_BRIDGE_URL"] = s.url
		vars["OIDC_BRIDGE_AUDIENCE"] = oidctest.DefaultAudience
		vars["OIDC_BRIDGE_MAPPING"] = "app-main"
		aud := os.Expand(job.IDTokens["OIDC_BRIDGE_ID_TOKEN"].Aud, func(n string) string { return vars[n] })
		check("include", runGitLabJob(t, vars, job, mint(aud), printAWS))
	})

	t.Run("component", func(t *testing.T) {
		for _, format := range []string{"env", "dotenv"} {
			inputs := map[string]string{"bridge-url": s.url, "audience": oidctest.DefaultAudience, "mapping": "app-main", "format": format}
			job, defaults := gitlabComponent(t, inputs)
			for _, name := range []string{"bridge-url", "mapping", "audience", "format", "cli-version", "cli-url", "cli-sha256"} {
				if _, ok := defaults[name]; !ok {
					t.Fatalf("input %s missing", name)
				}
			}
			script := printAWS
			if format == "dotenv" {
				script = `printf '%s\n' "$OIDC_BRIDGE_DOTENV_FILE" "$OIDC_BRIDGE_DIR"; stat -c %a "$OIDC_BRIDGE_DIR" "$OIDC_BRIDGE_DOTENV_FILE"; cat "$OIDC_BRIDGE_DOTENV_FILE"`
			}
			tmp := t.TempDir()
			out, errOut, err := runGitLabJobIn(t, gitlabRun{tmpdir: tmp}, job.Variables, job, mint(job.IDTokens["OIDC_BRIDGE_ID_TOKEN"].Aud), script)
			if err != nil {
				t.Fatalf("%s job: %v\n%s\n%s", format, err, out, errOut)
			}
			if format == "env" {
				check("component", out)
				continue
			}
			// The file: 0600 in a fresh 0700 folder of its own, not a
			// name that another job could guess or plant.
			head := strings.SplitN(out, "\n", 5)
			file, dir, dirMode, fileMode, rest := head[0], head[1], head[2], head[3], head[4]
			if filepath.Dir(file) != dir || filepath.Dir(dir) != tmp || !strings.HasPrefix(filepath.Base(dir), "oidc-bridge.") ||
				strings.Contains(file, "2468") || dirMode != "700" || fileMode != "600" {
				t.Fatalf("dotenv file %s (mode %s) in %s (mode %s)", file, fileMode, dir, dirMode)
			}
			vars, err := godotenv.Unmarshal(rest)
			if err != nil {
				t.Fatalf("dotenv file: %v\n%s", err, rest)
			}
			check("component dotenv", strings.Join([]string{vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"],
				vars["AWS_SESSION_TOKEN"], vars["AWS_REGION"]}, "\n"))
		}
	})
}

// TestGitLabTemplateInstall: when the image has no oidc-bridge, the templates
// install it into the job's private folder, in bash and in sh (dash): a
// download runs only if its SHA-256 is the one given (none given: not even
// fetched; another: not run, no exchange), and `go install` fetches only a
// pinned release (the default is one; latest, a branch or GOSUMDB=off are
// refused) with the checksum database on.
func TestGitLabTemplateInstall(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	x.register(s, "")
	mint := func() string { return x.gl.Mint(t, x.gl.GitLabClaims(nil)) }

	// The CLI served as a release asset, and its SHA-256.
	cli, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	sum := fmt.Sprintf("%x", sha256.Sum256(cli))
	var downloads atomic.Int32
	var lastAsset atomic.Value
	assets := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		downloads.Add(1)
		lastAsset.Store(r.URL.Path)
		_, _ = w.Write(cli)
	}))
	t.Cleanup(assets.Close)
	url := assets.URL + "/releases/v1.0.0/oidc-bridge-linux-amd64"

	// A stand-in for the go command: records how it was called and
	// installs the CLI into GOBIN.
	goDir := t.TempDir()
	goLog := filepath.Join(goDir, "calls")
	goScript := "#!/bin/sh\n{ printf '%s|' \"$@\"; printf 'GOBIN=%s|GOSUMDB=%s|GONOSUMDB=%s|GOPRIVATE=%s|GOFLAGS=%s\\n' " +
		"\"$GOBIN\" \"$GOSUMDB\" \"$GONOSUMDB\" \"$GOPRIVATE\" \"$GOFLAGS\"; } >> " + shQuote(goLog) + "\n" +
		"cp " + shQuote(binary) + " \"$GOBIN/oidc-bridge\"\n"
	if err := os.WriteFile(filepath.Join(goDir, "go"), []byte(goScript), 0o700); err != nil {
		t.Fatal(err)
	}

	vars, job := gitlabInclude(t)
	if v := vars["OIDC_BRIDGE_CLI_VERSION"]; !regexp.MustCompile(`^v\d+\.\d+\.\d+$`).MatchString(v) {
		t.Fatalf("the include template's default version %q is not a pinned release", v)
	}
	if _, defaults := gitlabComponent(t, map[string]string{"bridge-url": s.url, "audience": "a"}); defaults["cli-version"] == nil ||
		*defaults["cli-version"] != vars["OIDC_BRIDGE_CLI_VERSION"] || defaults["cli-sha256"] == nil || *defaults["cli-sha256"] != "" {
		t.Fatalf("the component's cli-version/cli-sha256 defaults differ from the include template's")
	}
	vars["OIDC_BRIDGE_URL"] = s.url
	vars["OIDC_BRIDGE_AUDIENCE"] = oidctest.DefaultAudience
	vars["OIDC_BRIDGE_MAPPING"] = "app-main"
	const report = `printf '%s\n' "$OIDC_BRIDGE_DIR" "$(command -v oidc-bridge)" "$AWS_ACCESS_KEY_ID"; stat -c %a "$OIDC_BRIDGE_DIR"`

	for _, shell := range []string{"bash", "sh"} {
		t.Run(shell, func(t *testing.T) {
			// Succeeds: the job has the credentials, and the CLI it ran
			// is the one in its fresh private folder.
			ok := func(name string, r gitlabRun, v map[string]string, j gitlabJob) {
				t.Helper()
				r.shell, r.noCLI, r.tmpdir = shell, true, t.TempDir()
				before := x.sts.CallCount()
				out, errOut, err := runGitLabJobIn(t, r, v, j, mint(), report)
				lines := strings.Split(strings.TrimSpace(out), "\n")
				if err != nil || len(lines) != 4 {
					t.Fatalf("%s: %v\n%s\n%s", name, err, out, errOut)
				}
				dir, bin, key, mode := lines[0], lines[1], lines[2], lines[3]
				if filepath.Dir(dir) != r.tmpdir || !strings.HasPrefix(filepath.Base(dir), "oidc-bridge.") || mode != "700" ||
					bin != filepath.Join(dir, "bin", "oidc-bridge") || x.sts.CallCount() != before+1 || key != lastSTSCall(t, x.sts).IssuedAccessKeyID {
					t.Fatalf("%s: folder %s (mode %s), CLI %s, key %s\n%s", name, dir, mode, bin, key, errOut)
				}
			}
			// Fails before any exchange, saying want on stderr.
			refused := func(name string, r gitlabRun, v map[string]string, j gitlabJob, want string) {
				t.Helper()
				r.shell, r.noCLI = shell, true
				before := x.sts.CallCount()
				out, errOut, err := runGitLabJobIn(t, r, v, j, mint(), report)
				if err == nil || !strings.Contains(errOut, want) || out != "" || x.sts.CallCount() != before {
					t.Fatalf("%s: %v, %d STS calls\nstdout %q\nstderr %s", name, err, x.sts.CallCount()-before, out, errOut)
				}
			}
			with := func(kv ...string) map[string]string {
				v := map[string]string{}
				for k, val := range vars {
					v[k] = val
				}
				for i := 0; i < len(kv); i += 2 {
					v[kv[i]] = kv[i+1]
				}
				return v
			}

			// Download: the right checksum (any case) runs it.
			n := downloads.Load()
			ok("download", gitlabRun{}, with("OIDC_BRIDGE_CLI_URL", url, "OIDC_BRIDGE_CLI_SHA256", strings.ToUpper(sum)), job)
			if downloads.Load() != n+1 {
				t.Fatalf("downloads %d", downloads.Load()-n)
			}
			// A checksum and no URL: the release's own asset, named as
			// scripts/release.sh names it, of the pinned version.
			asset := "/download/" + vars["OIDC_BRIDGE_CLI_VERSION"] + "/oidc-bridge_" + vars["OIDC_BRIDGE_CLI_VERSION"] + "_linux_" + runtime.GOARCH
			lastAsset.Store("")
			ok("release asset", gitlabRun{}, with("OIDC_BRIDGE_CLI_SHA256", sum, "OIDC_BRIDGE_CLI_RELEASES", assets.URL+"/download"), job)
			if got := lastAsset.Load(); got != asset {
				t.Fatalf("the template downloaded %v, want the release asset %s", got, asset)
			}
			lastAsset.Store("")
			rjob, _ := gitlabComponent(t, map[string]string{"bridge-url": s.url, "audience": oidctest.DefaultAudience,
				"mapping": "app-main", "cli-sha256": sum})
			rjob.Variables["OIDC_BRIDGE_CLI_RELEASES"] = assets.URL + "/download"
			ok("component release asset", gitlabRun{}, rjob.Variables, rjob)
			if got := lastAsset.Load(); got != asset {
				t.Fatalf("the component downloaded %v, want the release asset %s", got, asset)
			}
			refused("release asset, no version", gitlabRun{}, with("OIDC_BRIDGE_CLI_SHA256", sum, "OIDC_BRIDGE_CLI_VERSION", "latest",
				"OIDC_BRIDGE_CLI_RELEASES", assets.URL+"/download"), job, "must be a release such as v1.0.0")
			// The component, configured with its inputs alone.
			cjob, _ := gitlabComponent(t, map[string]string{"bridge-url": s.url, "audience": oidctest.DefaultAudience,
				"mapping": "app-main", "cli-url": url, "cli-sha256": sum})
			ok("component download", gitlabRun{}, cjob.Variables, cjob)
			// Another checksum: fetched, never run; nothing left behind.
			other := fmt.Sprintf("%x", sha256.Sum256(append(cli, 0)))
			tmp := t.TempDir()
			refused("wrong checksum", gitlabRun{tmpdir: tmp}, with("OIDC_BRIDGE_CLI_URL", url, "OIDC_BRIDGE_CLI_SHA256", other), job,
				"does not match OIDC_BRIDGE_CLI_SHA256; not run")
			if left, _ := filepath.Glob(filepath.Join(tmp, "oidc-bridge.*", "*", "*")); len(left) != 0 {
				t.Fatalf("left after a checksum mismatch: %v", left)
			}
			// No checksum, or not one: not even fetched.
			n = downloads.Load()
			refused("no checksum", gitlabRun{}, with("OIDC_BRIDGE_CLI_URL", url), job, "a download is never run unchecked")
			refused("short checksum", gitlabRun{}, with("OIDC_BRIDGE_CLI_URL", url, "OIDC_BRIDGE_CLI_SHA256", sum[:40]), job, "64 hex digits")
			refused("not hex", gitlabRun{}, with("OIDC_BRIDGE_CLI_URL", url, "OIDC_BRIDGE_CLI_SHA256", strings.Repeat("g", 64)), job, "64 hex digits")
			if downloads.Load() != n {
				t.Fatalf("fetched without a valid checksum: %d", downloads.Load()-n)
			}

			// go install: the pinned default release, the checksum
			// database on whatever the runner's settings.
			if err := os.WriteFile(goLog, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			goRun := gitlabRun{path: []string{goDir}, env: []string{"GONOSUMDB=github.com/*", "GOPRIVATE=github.com/oidc-bridge", "GOFLAGS=-insecure"}}
			ok("go install", goRun, vars, job)
			calls, _ := os.ReadFile(goLog)
			want := "install|github.com/oidc-bridge/oidc-bridge/cmd/oidc-bridge@" + vars["OIDC_BRIDGE_CLI_VERSION"] + "|GOBIN="
			if lines := strings.Split(strings.TrimSpace(string(calls)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], want) ||
				!strings.HasSuffix(lines[0], "/bin|GOSUMDB=|GONOSUMDB=|GOPRIVATE=|GOFLAGS=") {
				t.Fatalf("go called as %q, want %s…/bin with the checksum database on", calls, want)
			}
			for _, v := range []string{"latest", "main", "", "v1", "v1.0.0;id", "$(id)"} {
				refused("version "+v, goRun, with("OIDC_BRIDGE_CLI_VERSION", v), job, "OIDC_BRIDGE_CLI_VERSION must be a release such as v1.0.0")
			}
			goRun.env = append(goRun.env, "GOSUMDB=off")
			refused("GOSUMDB=off", goRun, vars, job, "GOSUMDB=off")
			if calls, _ := os.ReadFile(goLog); strings.Count(string(calls), "\n") != 1 {
				t.Fatalf("go called for a refused version: %q", calls)
			}
		})
	}
}
