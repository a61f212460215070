package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

// gitTool is the git that scripts/ensure-git.sh makes sure of, with its
// git-http-backend.
func gitTool(t *testing.T) (git, backend string) {
	t.Helper()
	out, err := exec.Command(filepath.Join("..", "..", "scripts", "ensure-git.sh")).Output()
	if err != nil {
		t.Fatalf("git is needed: scripts/ensure-git.sh (make test runs it) failed: %v", err)
	}
	git = strings.TrimSpace(string(out))
	execPath, err := exec.Command(git, "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	return git, filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend")
}

// gitServer is git's own smart-HTTP server (git-http-backend, run as CGI)
// over TLS, serving the bare repositories under root to whoever presents
// HTTP Basic x-access-token:<token>, as GitHub does for an installation
// token.
type gitServer struct {
	srv     *httptest.Server
	root    string
	token   atomic.Value // string
	refused atomic.Int32
	caFile  string
}

func newGitServer(t *testing.T, backend, token string) *gitServer {
	t.Helper()
	g := &gitServer{root: t.TempDir()}
	g.token.Store(token)
	h := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + g.root, "GIT_HTTP_EXPORT_ALL=1"}}
	g.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != "x-access-token" || pass != g.token.Load().(string) {
			g.refused.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="GitHub"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(g.srv.Close)
	g.caFile = filepath.Join(t.TempDir(), "ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: g.srv.Certificate().Raw})
	if err := os.WriteFile(g.caFile, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestGitCredentialHelperPush: the real git pushes to another repository
// with the installation token of an exchange, through the lines of `eval
// "$(oidc-bridge exchange --git-helper)"` in a real shell: git asks
// `oidc-bridge git-credential`, which answers x-access-token and the token
// for the token's host only. A wrong token fails the push, and neither
// token reaches git's output.
//
// The bridge here is a stand-in answering POST /v1/exchange with a github
// answer of the wire contract (bridge/api.GitHubCredentials) whose
// server_url is the git server: the github provider is another branch's.
func TestGitCredentialHelperPush(t *testing.T) {
	t.Parallel()
	git, backend := gitTool(t)
	const token = "ghs_e2eInstallationToken0123456789abcdef"
	gs := newGitServer(t, backend, token)

	bridge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req api.ExchangeRequest
		if r.URL.Path != "/v1/exchange" || json.NewDecoder(r.Body).Decode(&req) != nil || req.Provider != "github" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		creds, _ := json.Marshal(api.GitHubCredentials{Token: token, TokenType: "Bearer", ExpiresAt: exp,
			Repositories: []string{"acme/other"}, Permissions: map[string]string{"contents": "write"},
			APIURL: gs.srv.URL + "/api/v3/", ServerURL: gs.srv.URL + "/"})
		_ = json.NewEncoder(w).Encode(api.ExchangeResponse{IssuanceID: "0193b9e2-0000-7000-8000-000000000001",
			Mapping: "push-other", Provider: "github", ExpiresAt: exp, Credentials: creds})
	}))
	t.Cleanup(bridge.Close)

	home, temp, work := t.TempDir(), t.TempDir(), t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "RUNNER_TEMP=" + temp,
		"GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "GIT_SSL_CAINFO=" + gs.caFile,
		"GIT_AUTHOR_NAME=ci", "GIT_AUTHOR_EMAIL=ci@example.com", "GIT_COMMITTER_NAME=ci", "GIT_COMMITTER_EMAIL=ci@example.com",
		"OIDC_BRIDGE_URL=" + bridge.URL, "OIDC_BRIDGE_ID_TOKEN=a.b.c", "CLI=" + binary, "GIT=" + git,
	}
	run := func(dir, script string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/bin/sh", "-ec", script)
		cmd.Dir, cmd.Env = dir, env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	if out, err := run(gs.root, `"$GIT" init -q --bare other.git && "$GIT" -C other.git config http.receivepack true`); err != nil {
		t.Fatalf("bare repository: %v\n%s", err, out)
	}
	if out, err := run(work, `"$GIT" init -q -b main . && echo hello > README && "$GIT" add README && "$GIT" commit -qm first`); err != nil {
		t.Fatalf("work tree: %v\n%s", err, out)
	}

	// The documented lines: the job evals exchange's output, then pushes.
	push := `eval "$("$CLI" exchange --token-env OIDC_BRIDGE_ID_TOKEN --mapping push-other --no-cache --git-helper)"
"$GIT" push ` + gs.srv.URL + `/other.git HEAD:refs/heads/main
echo "token file: $OIDC_BRIDGE_GIT_TOKEN_FILE"`
	out, err := run(work, push)
	if err != nil {
		t.Fatalf("git push with the helper: %v\n%s", err, out)
	}
	if strings.Contains(out, token) {
		t.Fatalf("the token is in the job's output:\n%s", out)
	}
	head, err := run(gs.root, `"$GIT" --git-dir other.git rev-parse refs/heads/main`)
	want, _ := run(work, `"$GIT" rev-parse HEAD`)
	if err != nil || head != want {
		t.Fatalf("the pushed ref is %q (%v), want %q", head, err, want)
	}
	files, _ := filepath.Glob(filepath.Join(temp, "oidc-bridge-git-*", "token"))
	if len(files) != 1 || !strings.Contains(out, files[0]) {
		t.Fatalf("token file under RUNNER_TEMP: %v\n%s", files, out)
	}

	// The server now wants another token: the helper's is refused, the
	// push fails, and no token shows.
	gs.token.Store("ghs_rotatedTokenTheHelperDoesNotHave0000")
	refusedBefore := gs.refused.Load()
	out, err = run(work, `echo again >> README && "$GIT" commit -qam second
eval "$("$CLI" exchange --token-env OIDC_BRIDGE_ID_TOKEN --mapping push-other --no-cache --git-helper)"
"$GIT" push `+gs.srv.URL+`/other.git HEAD:refs/heads/main`)
	if err == nil {
		t.Fatalf("git push with a wrong token succeeded:\n%s", out)
	}
	if gs.refused.Load() == refusedBefore || strings.Contains(out, token) || strings.Contains(out, "ghs_rotated") {
		t.Errorf("wrong token: refused %d times; output:\n%s", gs.refused.Load()-refusedBefore, out)
	}
	if h, _ := run(gs.root, `"$GIT" --git-dir other.git rev-parse refs/heads/main`); h != head {
		t.Errorf("the refused push moved main: %s -> %s", head, h)
	}
}
