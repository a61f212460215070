package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/test/entratest"
	"github.com/oidc-bridge/oidc-bridge/test/githubtest"
	"github.com/oidc-bridge/oidc-bridge/test/proxytest"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// actionDir is the GitHub Action's folder, from this package's directory.
var actionDir = filepath.Join("..", "..", "actions", "credentials")

// TestAction runs the bundled GitHub Action (actions/credentials/dist/index.js)
// under Node's test runner the way a runner does (INPUT_* variables, the
// GITHUB_ENV, GITHUB_OUTPUT and GITHUB_STATE files, RUNNER_TEMP), against the
// real bridge binary on a real Postgres with every cloud's fake behind it.
// This test provides what the runner and the network would: a stand-in for
// the Actions ID-token endpoint that mints GitHub-shaped tokens for the
// requested audience, a front for the bridge that fails chosen requests
// (503, 429 with Retry-After) and counts attempts, and an STS endpoint that
// also accepts the credentials the bridge issued, so the action's exported
// AWS credentials can call GetCallerIdentity with a checked SigV4 signature.
// The assertions live in actions/credentials/test/*.test.mjs.
func TestAction(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH: the GitHub Action's tests need Node.js 20 or later")
	}
	for _, p := range []string{"node_modules/@actions/core", "node_modules/@aws-sdk/client-sts", "dist/index.js"} {
		if _, err := os.Stat(filepath.Join(actionDir, p)); err != nil {
			t.Fatalf("actions/credentials/%s is missing: run `make test` (or `make action`), which installs the action's npm dependencies from its lockfile and builds it", p)
		}
	}
	tests, err := filepath.Glob(filepath.Join(actionDir, "test", "*.test.mjs"))
	if err != nil || len(tests) == 0 {
		t.Fatalf("no tests under actions/credentials/test: %v", err)
	}
	for i, f := range tests {
		tests[i] = filepath.Join("test", filepath.Base(f))
	}

	c := newCloudsEnv(t)
	sts := newSTSFront(t, c.sts)
	// GitHub's fake (TLS), with an App and the git host of acme's
	// repositories: see below.
	git, backend := gitTool(t)
	fake := githubtest.New(t)
	ghCert := fake.WriteCertFile(t)
	appKey, appPEM := rsaPEM(t)
	fake.AddKey(ghAppID, &appKey.PublicKey)
	fake.Install(ghAppID, "acme", true, map[string]string{"contents": "write", "metadata": "read"}, "web", "infra", "other")
	gitHost(t, fake, git, backend, "web", "other")
	// The bridge trusts the Entra fake's and the GitHub fake's certificates
	// (TLS both); exec keeps the last SSL_CERT_FILE.
	s := startServer(t, append(c.env, "AWS_ENDPOINT_URL_STS="+sts.srv.URL, "SSL_CERT_FILE="+c.certFile(t, fake)))
	s.must(201, "POST", "/v1/admin/issuers", fmt.Sprintf(`{"name": "github", "url": %q, "kind": "github",
		"audiences": [%q, "https://bridge.example.com"]}`, c.gh.URL(), s.url))
	c.addMapping(s, "web-aws", "aws", `{"role_arn": "arn:aws:iam::123456789012:role/web-deploy", "region": "eu-west-1"}`)
	c.addMapping(s, "web-gcp", "gcp", fmt.Sprintf(`{"service_account": %q}`, deploySA))
	c.addMapping(s, "web-gcp-id", "gcp", fmt.Sprintf(`{"service_account": %q, "token_format": "id_token",
		"id_token_audience": "https://hello-abc123-ew.a.run.app", "include_email": true}`, deploySA))
	c.addMapping(s, "web-azure", "azure", fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "scope": "https://management.azure.com/.default"}`,
		azureTenant, azureClient))
	c.entra.AddFederatedCredential(azureTenant, azureClient, entratest.FederatedCredential{Name: "oidc-bridge-action",
		Issuer: c.publicURL, Subject: "oidc-bridge:azure:mapping:web-azure", Audiences: []string{"api://AzureADTokenExchange"}})
	c.addMapping(s, "web-jwt", "jwt", `{"audience": "https://deploy.internal.example"}`)
	// A second AWS role, for `mappings:` (a profile each).
	c.addMapping(s, "web-aws-ops", "aws", `{"role_arn": "arn:aws:iam::123456789012:role/web-ops", "region": "us-east-2"}`)
	// A jwt mapping for Google's external account file (gcp-credentials-file):
	// its audience is the workload identity pool provider's allowed audience.
	c.addMapping(s, "web-gcp-wif", "jwt", `{"audience": "https://bridge.example.com/google/acme-prod"}`)
	// Session tags on both AWS paths, and downscoping by the step
	// (policy.test.mjs): the same static tag and transitive keys for
	// assume_role and web_identity; a gcp mapping of two scopes, of which
	// the step may ask for one.
	const tags = `"session_tags": {"cost-center": "ci-4711"}, "transitive_tag_keys": ["repository", "cost-center"]`
	c.addMapping(s, "web-aws-tagged", "aws", `{"role_arn": "arn:aws:iam::123456789012:role/web-tagged", "region": "eu-west-1", `+tags+`}`)
	c.addMapping(s, "web-aws-wi", "aws", `{"role_arn": "arn:aws:iam::123456789012:role/web-wi", "region": "eu-west-1", "mode": "web_identity", `+tags+`}`)
	c.gcp.Allow(bridgeSA, scopedSA)
	c.addMapping(s, "web-gcp-scoped", "gcp", fmt.Sprintf(`{"service_account": %q, "scopes": ["https://www.googleapis.com/auth/cloud-platform",
		"https://www.googleapis.com/auth/devstorage.read_only"]}`, scopedSA))
	// A mapping that never admits the job (its ref is main): a policy denial.
	s.must(201, "POST", "/v1/admin/mappings", `{"name": "web-staging", "issuer": "github",
		"conditions": {"repository": "acme/web", "ref": "refs/heads/staging"},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/staging", "region": "eu-west-1"}}`)

	requestToken := randomHex(t, 24)
	idp := newIDTokenStandIn(t, requestToken, func(aud string) string {
		return c.gh.Mint(t, c.gh.GitHubClaims(map[string]any{"aud": aud}))
	})
	front := newBridgeFront(t, s.url)
	// A corporate network: the bridge and the ID-token request over TLS by
	// a private CA, under names that only the CONNECT proxy reaches.
	tlsFront := proxytest.NewFront(t, map[string]string{"bridge.test": s.url, "token.test": idp.srv.URL})
	proxy := proxytest.NewProxy(t, map[string]string{"bridge.test:443": tlsFront.Addr(), "token.test:443": tlsFront.Addr()})

	cli, err := filepath.Abs(binary)
	if err != nil {
		t.Fatal(err)
	}
	// GitHub: an App installed on acme (contents: write on web, infra and
	// other) registered at the bridge; the fake is the git host of acme's
	// repositories too, checking the installation tokens it issued
	// (github.test.mjs). gh-push reaches infra and other with contents:
	// write, gh-read web with contents: read.
	appBody, _ := json.Marshal(api.GitHubApp{Name: "acme-app", AppID: ghAppID, BaseURL: fake.BaseURL(), PrivateKey: appPEM})
	s.must(201, "POST", "/v1/admin/github-apps", string(appBody))
	c.addMapping(s, "gh-push", "github", `{"app": "acme-app", "owner": "acme", "repositories": ["infra", "other"],
		"permissions": {"contents": "write"}}`)
	c.addMapping(s, "gh-read", "github", `{"app": "acme-app", "owner": "acme", "repositories": ["web"],
		"permissions": {"contents": "read"}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"--test", "--test-reporter=spec"}, tests...)...)
	cmd.Dir = actionDir
	env := []string{
		"OIDC_BRIDGE_TEST_BRIDGE_URL=" + s.url,
		"OIDC_BRIDGE_TEST_FRONT_URL=" + front.srv.URL,
		"OIDC_BRIDGE_TEST_ID_TOKEN_URL=" + idp.srv.URL + "/_apis/pipelines/1/idtoken?api-version=2.0",
		"OIDC_BRIDGE_TEST_ID_TOKEN_REQUEST_TOKEN=" + requestToken,
		"OIDC_BRIDGE_TEST_STS_ENDPOINT=" + sts.srv.URL,
		"OIDC_BRIDGE_TEST_DEPLOY_SA=" + deploySA,
		// Google's (the fake's) ID token keys, for the id_token test.
		"OIDC_BRIDGE_TEST_GOOGLE_CERTS_URL=" + c.gcp.URL() + "/oauth2/v3/certs",
		"OIDC_BRIDGE_TEST_AZURE_TENANT=" + azureTenant,
		"OIDC_BRIDGE_TEST_PROXY_URL=" + proxy.URL(),
		"OIDC_BRIDGE_TEST_CA_FILE=" + tlsFront.CAFile,
		// The oidc-bridge CLI, which the gcp-credentials-file test runs as
		// Google's libraries would (the file's executable source).
		"OIDC_BRIDGE_TEST_CLI=" + cli,
		"OIDC_BRIDGE_TEST_GIT_URL=" + strings.TrimSuffix(fake.BaseURL(), "/api/v3/"),
		"OIDC_BRIDGE_TEST_GIT_CA=" + ghCert,
		"OIDC_BRIDGE_TEST_GIT=" + git,
		"OIDC_BRIDGE_TEST_CALLS_URL=" + newCallsStandIn(t, c).URL,
		"OIDC_BRIDGE_TEST_SCOPED_SA=" + scopedSA,
	}
	for _, kv := range baseEnv() {
		name, _, _ := strings.Cut(kv, "=")
		// Nothing of a real runner, cloud or proxy may leak into the action.
		if strings.HasPrefix(name, "GITHUB_") || strings.HasPrefix(name, "ACTIONS_") || strings.HasPrefix(name, "RUNNER_") ||
			strings.HasPrefix(name, "INPUT_") || strings.HasPrefix(name, "STATE_") || strings.HasPrefix(name, "AWS_") ||
			strings.HasPrefix(name, "NODE_") || strings.Contains(strings.ToLower(name), "proxy") {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	t.Logf("node --test (%v):\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("node --test: %v", err)
	}

	// The exported credentials were used: GetCallerIdentity signed with a
	// key the bridge issued, and nothing the front did not expect.
	if n := sts.callerIdentities(); n == 0 {
		t.Errorf("no GetCallerIdentity with issued credentials reached the STS endpoint")
	}
	if idp.count() == 0 {
		t.Errorf("the ID-token stand-in was never asked")
	}
	if bad := idp.refused(); bad != 0 {
		t.Errorf("the ID-token stand-in refused %d requests (wrong request token or no audience)", bad)
	}
	// Every installation token the action obtained was handed back by its
	// post step: GitHub refuses each, and each ledger row has revoked_at.
	var issued, unrevoked int
	if err := openDB(t, c.dbURL).QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE revoked_at IS NULL)
		FROM audit.issuances WHERE provider = 'github'`).Scan(&issued, &unrevoked); err != nil {
		t.Fatal(err)
	}
	if issued < 3 || unrevoked != 0 || fake.LiveTokens() != 0 {
		t.Errorf("github: %d issued, %d without revoked_at on the ledger, %d live at GitHub", issued, unrevoked, fake.LiveTokens())
	}
	s.stopClean()
}

// certFile is one file of the Entra fake's and the GitHub fake's
// certificates, for SSL_CERT_FILE.
func (c *cloudsEnv) certFile(t *testing.T, fake *githubtest.Server) string {
	t.Helper()
	var out []byte
	for _, f := range []string{c.entra.WriteCertFile(t), fake.WriteCertFile(t)} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	p := filepath.Join(t.TempDir(), "certs.pem")
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// idTokenStandIn answers like the Actions runtime's ID-token endpoint:
// GET ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD with the request token as
// bearer, {"value": "<jwt>"} back.
type idTokenStandIn struct {
	srv  *httptest.Server
	mu   sync.Mutex
	n    int
	nBad int
}

func newIDTokenStandIn(t *testing.T, requestToken string, mint func(aud string) string) *idTokenStandIn {
	t.Helper()
	s := &idTokenStandIn{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		aud := q.Get("audience")
		ok := r.Method == http.MethodGet && r.URL.Path == "/_apis/pipelines/1/idtoken" && q.Get("api-version") == "2.0" &&
			r.Header.Get("Authorization") == "Bearer "+requestToken && aud != ""
		s.mu.Lock()
		s.n++
		if !ok {
			s.nBad++
		}
		s.mu.Unlock()
		if !ok {
			http.Error(w, `{"message": "bad request token or no audience"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"value": mint(aud)})
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *idTokenStandIn) count() int   { s.mu.Lock(); defer s.mu.Unlock(); return s.n }
func (s *idTokenStandIn) refused() int { s.mu.Lock(); defer s.mu.Unlock(); return s.nBad }

// bridgeFront stands before the bridge. A request to
// /s/KEY/PLAN/v1/exchange is counted under KEY and then, as PLAN says,
// answered with an error or passed to the bridge's /v1/exchange:
// "ok" always passes; "503x1" answers 503 unavailable the first time and
// passes after; "429x1" answers 429 rate_limited with Retry-After: 1 the
// first time; "503x99" always fails. GET /stats/KEY answers
// {"requests": n, "distinct_tokens": m}.
type bridgeFront struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   map[string]int
	tokens map[string]map[string]bool
}

var frontPath = regexp.MustCompile(`^/s/([A-Za-z0-9_-]+)/(ok|(503|429)x(\d+))(/v1/exchange)$`)

func newBridgeFront(t *testing.T, bridgeURL string) *bridgeFront {
	t.Helper()
	target, err := url.Parse(bridgeURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	f := &bridgeFront{reqs: map[string]int{}, tokens: map[string]map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if key, ok := strings.CutPrefix(r.URL.Path, "/stats/"); ok {
			f.mu.Lock()
			body := map[string]int{"requests": f.reqs[key], "distinct_tokens": len(f.tokens[key])}
			f.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(body)
			return
		}
		m := frontPath.FindStringSubmatch(r.URL.Path)
		if m == nil {
			http.NotFound(w, r)
			return
		}
		key := m[1]
		f.mu.Lock()
		f.reqs[key]++
		n := f.reqs[key]
		if f.tokens[key] == nil {
			f.tokens[key] = map[string]bool{}
		}
		f.tokens[key][r.Header.Get("Authorization")] = true
		f.mu.Unlock()
		if m[2] != "ok" {
			times, _ := strconv.Atoi(m[4])
			if n <= times {
				w.Header().Set("Content-Type", "application/json")
				if m[3] == "429" {
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(http.StatusTooManyRequests)
					_, _ = io.WriteString(w, `{"error": "rate_limited", "message": "too many requests from this client"}`)
				} else {
					w.WriteHeader(http.StatusServiceUnavailable)
					_, _ = io.WriteString(w, `{"error": "unavailable", "message": "the database is unavailable"}`)
				}
				return
			}
		}
		r.URL.Path = m[5]
		r.URL.RawPath = ""
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// stsFront is the bridge's STS endpoint: it passes every request to the
// STS fake, remembers the credentials the fake issues, and answers requests
// signed with one of those by a fake that knows that key, so that the
// signature of a client using issued credentials is checked as STS would.
type stsFront struct {
	srv    *httptest.Server
	mu     sync.Mutex
	issued map[string]*ststest.Handler // by access key id
	nGCI   int
}

var sigv4Credential = regexp.MustCompile(`Credential=([A-Z0-9]+)/`)

func newSTSFront(t *testing.T, fake *ststest.Server) *stsFront {
	t.Helper()
	f := &stsFront{issued: map[string]*ststest.Handler{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := sigv4Credential.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			f.mu.Lock()
			h := f.issued[m[1]]
			f.mu.Unlock()
			if h != nil {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if calls := h.Calls(); len(calls) > 0 {
					if last := calls[len(calls)-1]; last.Action == "GetCallerIdentity" && last.Status == http.StatusOK {
						f.mu.Lock()
						f.nGCI++
						f.mu.Unlock()
					}
				}
				copyRecorded(w, rec)
				return
			}
		}
		rec := httptest.NewRecorder()
		fake.ServeHTTP(rec, r)
		var resp struct {
			Creds struct {
				AccessKeyID     string `xml:"AccessKeyId"`
				SecretAccessKey string `xml:"SecretAccessKey"`
				SessionToken    string `xml:"SessionToken"`
			} `xml:"AssumeRoleResult>Credentials"`
			WICreds struct {
				AccessKeyID     string `xml:"AccessKeyId"`
				SecretAccessKey string `xml:"SecretAccessKey"`
				SessionToken    string `xml:"SessionToken"`
			} `xml:"AssumeRoleWithWebIdentityResult>Credentials"`
		}
		if rec.Code == http.StatusOK && xml.Unmarshal(rec.Body.Bytes(), &resp) == nil && resp.Creds.AccessKeyID == "" {
			resp.Creds = resp.WICreds
		}
		if rec.Code == http.StatusOK && resp.Creds.AccessKeyID != "" {
			k := ststest.Key{AccessKeyID: resp.Creds.AccessKeyID, SecretAccessKey: resp.Creds.SecretAccessKey,
				SessionToken: resp.Creds.SessionToken}
			f.mu.Lock()
			f.issued[k.AccessKeyID] = ststest.NewHandler(ststest.WithKeys(k))
			f.mu.Unlock()
		}
		copyRecorded(w, rec)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *stsFront) callerIdentities() int { f.mu.Lock(); defer f.mu.Unlock(); return f.nGCI }

func copyRecorded(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// scopedSA is the service account of mapping web-gcp-scoped.
const scopedSA = "scoped@acme-prod.iam.gserviceaccount.com"

// newCallsStandIn answers GET / with what the STS and Google fakes
// recorded of the bridge's calls, for the action's tests to check what
// reached the cloud (policy.test.mjs): per STS call its action, role,
// session tags, transitive keys, source identity, inline policy and the key
// id issued; per generateAccessToken call its service account and scopes.
// No token or secret is in it.
func newCallsStandIn(t *testing.T, c *cloudsEnv) *httptest.Server {
	t.Helper()
	type stsCall struct {
		Action            string            `json:"action"`
		RoleArn           string            `json:"role_arn"`
		Tags              map[string]string `json:"tags"`
		TransitiveTagKeys []string          `json:"transitive_tag_keys"`
		SourceIdentity    string            `json:"source_identity"`
		Policy            string            `json:"policy"`
		IssuedAccessKeyID string            `json:"issued_access_key_id"`
	}
	type gcpCall struct {
		ServiceAccount string   `json:"service_account"`
		Scopes         []string `json:"scopes"`
		Status         int      `json:"status"`
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := struct {
			STS []stsCall `json:"sts"`
			GCP []gcpCall `json:"gcp"`
		}{STS: []stsCall{}, GCP: []gcpCall{}}
		for _, call := range c.sts.Calls() {
			out.STS = append(out.STS, stsCall{call.Action, call.RoleArn, call.Tags, call.TransitiveTagKeys, call.SourceIdentity,
				call.Policy, call.IssuedAccessKeyID})
		}
		for _, call := range c.gcp.Calls() {
			if call.IAMMethod == "generateAccessToken" {
				out.GCP = append(out.GCP, gcpCall{call.ServiceAccount, call.Scopes, call.Status})
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	return srv
}
