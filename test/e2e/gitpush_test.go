package e2e

import (
	"bytes"
	"context"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/test/githubtest"
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

// gitHost makes the GitHub fake the git host of its repositories, as a
// GitHub Enterprise Server is on the same address as its API: git's own
// smart-HTTP server (git-http-backend, run as CGI) serves bare repositories
// acme/<name>.git under root, to whoever presents HTTP Basic with an
// installation token the fake issued, live, whose scope holds the
// repository with contents: write to push (githubtest.ServeGit).
func gitHost(t *testing.T, fake *githubtest.Server, git, backend string, names ...string) (root string) {
	t.Helper()
	root = t.TempDir()
	for _, name := range names {
		dir := filepath.Join(root, "acme", name+".git")
		for _, args := range [][]string{{"init", "-q", "--bare", dir}, {"--git-dir", dir, "config", "http.receivepack", "true"}} {
			if out, err := exec.Command(git, args...).CombinedOutput(); err != nil {
				t.Fatalf("git %v: %v\n%s", args, err, out)
			}
		}
	}
	fake.ServeGit(&cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}})
	return root
}

// TestGitCredentialHelperPush: the CLI and the real bridge, through the
// lines a job runs in a real shell. `eval "$(oidc-bridge exchange
// --git-helper)"` exchanges a GitHub Actions token for an installation
// token of acme/web and acme/infra with contents: write; the real git asks
// `oidc-bridge git-credential`, which answers the token for the GitHub
// host only, and pushes to acme/infra at the GitHub fake's git host, which
// checks the token as GitHub does; a push to acme/other, outside the
// token's scope, is refused. `oidc-bridge revoke` hands the token back: the
// fake refuses it then (the next push fails), and the ledger row has
// revoked_at. No token reaches the job's output. A mapping asking for a
// permission beyond the App's grant fails the exchange naming it.
func TestGitCredentialHelperPush(t *testing.T) {
	t.Parallel()
	git, backend := gitTool(t)
	e := newGitHubEnv(t)
	root := gitHost(t, e.fake, git, backend, "infra", "other")
	host := strings.TrimSuffix(e.fake.BaseURL(), "/api/v3/")

	home, temp, work := t.TempDir(), t.TempDir(), t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "RUNNER_TEMP=" + temp,
		"GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "GIT_SSL_CAINFO=" + e.fake.WriteCertFile(t),
		"GIT_AUTHOR_NAME=ci", "GIT_AUTHOR_EMAIL=ci@example.com", "GIT_COMMITTER_NAME=ci", "GIT_COMMITTER_EMAIL=ci@example.com",
		"OIDC_BRIDGE_URL=" + e.s.url, "OIDC_BRIDGE_ID_TOKEN=" + e.ci.Mint(t, e.ci.GitHubClaims(nil)), "ID_TOKEN_2=" + e.ci.Mint(t, e.ci.GitHubClaims(nil)),
		"CLI=" + binary, "GIT=" + git, "HOST=" + host,
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
	if out, err := run(work, `"$GIT" init -q -b main . && echo hello > README && "$GIT" add README && "$GIT" commit -qm first`); err != nil {
		t.Fatalf("work tree: %v\n%s", err, out)
	}

	// The documented lines: the job evals exchange's output, then pushes;
	// at its end it revokes the token.
	out, err := run(work, `eval "$("$CLI" exchange --token-env OIDC_BRIDGE_ID_TOKEN --mapping gh-write --no-cache --git-helper)"
"$GIT" push "$HOST/acme/infra.git" HEAD:refs/heads/main
echo "token file: $OIDC_BRIDGE_GIT_TOKEN_FILE"
if "$GIT" push "$HOST/acme/other.git" HEAD:refs/heads/main; then echo "PUSHED OUTSIDE THE TOKEN'S SCOPE"; exit 1; fi
"$CLI" revoke --token-file "$OIDC_BRIDGE_GIT_TOKEN_FILE"
echo again >> README && "$GIT" commit -qam second
if "$GIT" push "$HOST/acme/infra.git" HEAD:refs/heads/main; then echo "PUSHED WITH A REVOKED TOKEN"; exit 1; fi
echo done`)
	if err != nil || !strings.HasSuffix(out, "done\n") {
		t.Fatalf("the job: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(temp, "oidc-bridge-git-*", "token"))
	if len(files) != 1 || !strings.Contains(out, files[0]) {
		t.Fatalf("token file under RUNNER_TEMP: %v\n%s", files, out)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))
	if !strings.HasPrefix(token, "ghs_") || strings.Contains(out, token) {
		t.Fatalf("the token is %d bytes, or in the job's output:\n%s", len(token), out)
	}
	head, err := run(root, `"$GIT" --git-dir acme/infra.git rev-parse refs/heads/main`)
	want, _ := run(work, `"$GIT" rev-parse HEAD~1`)
	if err != nil || head != want {
		t.Fatalf("acme/infra's main is %q (%v), want the first commit %q", head, err, want)
	}
	if h, _ := run(root, `"$GIT" --git-dir acme/other.git rev-parse --verify -q refs/heads/main || true`); h != "" {
		t.Errorf("acme/other, outside the token's scope, has main %s", h)
	}
	if e.fake.Live(token) || e.fake.GitRefusals() < 2 {
		t.Errorf("after revoke: the fake has the token live %v, refused %d git requests", e.fake.Live(token), e.fake.GitRefusals())
	}
	m := regexp.MustCompile(`revoked credential (\S+) at (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("revoke printed no credential:\n%s", out)
	}
	var revoked *time.Time
	if err := openDB(t, e.dbURL).QueryRow(context.Background(), `SELECT revoked_at FROM audit.issuances
		WHERE credential_id = $1 AND provider = 'github'`, m[1]).Scan(&revoked); err != nil || revoked == nil ||
		revoked.UTC().Format(time.RFC3339) != m[2] {
		t.Errorf("ledger row of %s: revoked_at %v (%v), revoke said %s", m[1], revoked, err, m[2])
	}

	// Beyond the App's grant: the exchange fails naming the permission.
	e.addMapping("gh-admin", `{"contents": "write", "administration": "write"}`)
	out, err = run(work, `"$CLI" exchange --token-env ID_TOKEN_2 --mapping gh-admin --no-cache --git-helper`)
	if err == nil || !strings.Contains(out, "provider_error") || !strings.Contains(out, "administration: write") {
		t.Errorf("exchange beyond the App's permissions: %v\n%s", err, out)
	}
}
