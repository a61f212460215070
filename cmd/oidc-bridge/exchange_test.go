package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

func awsAnswer(exp time.Time) *api.ExchangeResponse {
	creds, _ := json.Marshal(map[string]any{"access_key_id": "ASIAEXAMPLE", "secret_access_key": "s3cr3t+/=",
		"session_token": "tok'en", "expiration": exp, "region": "eu-west-1"})
	return &api.ExchangeResponse{IssuanceID: "0193b9e2", Mapping: "web", Provider: "aws", ExpiresAt: exp, Credentials: creds}
}

// fakeExchangeBridge answers POST /v1/exchange with the statuses given, then 200.
type fakeExchangeBridge struct {
	srv     *httptest.Server
	calls   atomic.Int32
	answers []func(w http.ResponseWriter)
	life    time.Duration
}

func newFakeExchangeBridge(t *testing.T, life time.Duration, answers ...func(w http.ResponseWriter)) *fakeExchangeBridge {
	f := &fakeExchangeBridge{answers: answers, life: life}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(f.calls.Add(1)) - 1
		if n < len(f.answers) {
			f.answers[n](w)
			return
		}
		_ = json.NewEncoder(w).Encode(awsAnswer(time.Now().Add(f.life).UTC().Truncate(time.Second)))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func refuse(status int, code string, header ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if len(header) == 2 {
			w.Header().Set(header[0], header[1])
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(api.Error{Error: code, Message: "because", IssuanceID: "iss-1"})
	}
}

func runExchangeCLI(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut, env)
	root.SetArgs(append([]string{"exchange"}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func TestExchangeRetries(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tf := filepath.Join(dir, "tok")
	if err := os.WriteFile(tf, []byte("tok-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// 503 and 429 (Retry-After 0) are retried; the token file is read anew.
	f := newFakeExchangeBridge(t, time.Hour, refuse(503, "unavailable"), refuse(429, "rate_limited", "Retry-After", "0"))
	out, errOut, err := runExchangeCLI(t, []string{"OIDC_BRIDGE_URL=" + f.srv.URL}, "--token-file", tf, "--no-cache", "--format", "aws-credential-process")
	if err != nil || f.calls.Load() != 3 || strings.Count(errOut, "retrying") != 2 || !strings.Contains(out, `"AccessKeyId":"ASIAEXAMPLE"`) {
		t.Fatalf("retries: %v, %d calls\n%s\n%s", err, f.calls.Load(), out, errOut)
	}
	// A refusal is not retried, and names the contract's code.
	f = newFakeExchangeBridge(t, time.Hour, refuse(403, "no_matching_mapping"))
	_, _, err = runExchangeCLI(t, []string{"OIDC_BRIDGE_URL=" + f.srv.URL}, "--token-file", tf, "--no-cache")
	if err == nil || f.calls.Load() != 1 || err.Error() != "exchange: 403 no_matching_mapping: because (issuance id iss-1)" {
		t.Fatalf("refusal: %v after %d calls", err, f.calls.Load())
	}
	// A spent quota that frees in an hour fails at once.
	f = newFakeExchangeBridge(t, time.Hour, refuse(429, "quota_exceeded", "Retry-After", "3600"))
	_, _, err = runExchangeCLI(t, []string{"OIDC_BRIDGE_URL=" + f.srv.URL}, "--token-file", tf, "--no-cache")
	if err == nil || f.calls.Load() != 1 || !strings.Contains(err.Error(), "quota_exceeded") {
		t.Fatalf("quota: %v after %d calls", err, f.calls.Load())
	}
	// A 502 without Retry-After is the cloud refusing: no retry.
	f = newFakeExchangeBridge(t, time.Hour, refuse(502, "provider_error"))
	if _, _, err = runExchangeCLI(t, []string{"OIDC_BRIDGE_URL=" + f.srv.URL}, "--token-file", tf, "--no-cache"); err == nil || f.calls.Load() != 1 {
		t.Fatalf("502 refusal: %v after %d calls", err, f.calls.Load())
	}
	// A 502 with Retry-After is the cloud failing: retried.
	f = newFakeExchangeBridge(t, time.Hour, refuse(502, "provider_error", "Retry-After", "0"))
	if _, _, err = runExchangeCLI(t, []string{"OIDC_BRIDGE_URL=" + f.srv.URL}, "--token-file", tf, "--no-cache"); err != nil || f.calls.Load() != 2 {
		t.Fatalf("502 failing cloud: %v after %d calls", err, f.calls.Load())
	}
	// --retries 0: one attempt.
	f = newFakeExchangeBridge(t, time.Hour, refuse(503, "unavailable"))
	if _, _, err = runExchangeCLI(t, []string{"OIDC_BRIDGE_URL=" + f.srv.URL}, "--token-file", tf, "--no-cache", "--retries", "0"); err == nil || f.calls.Load() != 1 {
		t.Fatalf("no retries: %v after %d calls", err, f.calls.Load())
	}
}

// TestExchangeReplayedStaticToken: a token the bridge already exchanged
// (for any mapping: once in all) from a source that holds one token is
// explained with what to do, not only the code.
func TestExchangeReplayedStaticToken(t *testing.T) {
	t.Parallel()
	f := newFakeExchangeBridge(t, time.Hour, refuse(409, "token_replayed"))
	_, _, err := runExchangeCLI(t, []string{"OIDC_BRIDGE_URL=" + f.srv.URL, "JOB_TOKEN=static-token"},
		"--token-env", "JOB_TOKEN", "--mapping", "second", "--no-cache")
	if err == nil || f.calls.Load() != 1 || !strings.Contains(err.Error(), "token_replayed") ||
		!strings.Contains(err.Error(), "once in all") || !strings.Contains(err.Error(), "one id_tokens entry per mapping") {
		t.Fatalf("replayed static token: %v after %d calls", err, f.calls.Load())
	}
}

func TestExchangeCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	f := newFakeExchangeBridge(t, 15*time.Minute)
	env := []string{"OIDC_BRIDGE_URL=" + f.srv.URL, "JOB_TOKEN=static-token", "CI_JOB_ID=7"}
	args := []string{"--token-env", "JOB_TOKEN", "--mapping", "web", "--cache-dir", cache, "--format", "json"}
	first, _, err := runExchangeCLI(t, env, args...)
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := runExchangeCLI(t, env, args...)
	if err != nil || second != first || f.calls.Load() != 1 {
		t.Fatalf("cache reuse: %v, %d calls", err, f.calls.Load())
	}
	// Another job (CI_JOB_ID) never sees this job's credentials.
	if _, _, err := runExchangeCLI(t, []string{"OIDC_BRIDGE_URL=" + f.srv.URL, "JOB_TOKEN=static-token", "CI_JOB_ID=8"}, args...); err != nil || f.calls.Load() != 2 {
		t.Fatalf("other job: %v, %d calls", err, f.calls.Load())
	}
	// Near expiry with the same static token: still valid, reused with a warning.
	_, errOut, err := runExchangeCLI(t, env, append(args, "--refresh-before", "20m")...)
	if err != nil || f.calls.Load() != 2 || !strings.Contains(errOut, "$JOB_TOKEN gives no fresh token") {
		t.Fatalf("near expiry: %v, %d calls: %s", err, f.calls.Load(), errOut)
	}
	// Expired in the cache: said clearly, no call.
	files, _ := filepath.Glob(filepath.Join(cache, "*.json"))
	for _, p := range files {
		b, _ := os.ReadFile(p)
		var e map[string]any
		_ = json.Unmarshal(b, &e)
		e["response"].(map[string]any)["expires_at"] = time.Now().Add(-time.Minute)
		b, _ = json.Marshal(e)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err = runExchangeCLI(t, env, args...)
	if err == nil || !strings.Contains(err.Error(), "token_replayed") || !strings.Contains(err.Error(), "$JOB_TOKEN") || f.calls.Load() != 2 {
		t.Fatalf("expired with a spent token: %v, %d calls", err, f.calls.Load())
	}
	// A fresh token exchanges again.
	env[1] = "JOB_TOKEN=fresh-token"
	if _, _, err = runExchangeCLI(t, env, args...); err != nil || f.calls.Load() != 3 {
		t.Fatalf("fresh token: %v, %d calls", err, f.calls.Load())
	}
	// A cache folder others may read is not used.
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	_, errOut, err = runExchangeCLI(t, env, "--token-env", "JOB_TOKEN", "--cache-dir", open)
	if err != nil || !strings.Contains(errOut, "credential cache disabled") {
		t.Fatalf("open cache dir: %v: %s", err, errOut)
	}
	if entries, _ := os.ReadDir(open); len(entries) != 0 {
		t.Fatalf("wrote into a readable cache dir: %v", entries)
	}
}

func TestExchangeUsage(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		env  []string
		args []string
		want string
	}{
		"no url":      {nil, []string{"--token-env", "T"}, "--bridge-url"},
		"bad url":     {nil, []string{"--bridge-url", "bridge.example.com", "--token-env", "T"}, "http(s) URL"},
		"no token":    {[]string{"OIDC_BRIDGE_URL=https://b.example"}, nil, "--token-file"},
		"two sources": {[]string{"OIDC_BRIDGE_URL=https://b.example"}, []string{"--token-env", "T", "--token-file", "f"}, "at most one"},
		"bad format":  {[]string{"OIDC_BRIDGE_URL=https://b.example"}, []string{"--token-env", "T", "--format", "yaml"}, "--format"},
		"format/provider": {[]string{"OIDC_BRIDGE_URL=https://b.example"},
			[]string{"--token-env", "T", "--format", "gcp-executable", "--provider", "aws"}, "provider jwt"},
	} {
		_, _, err := runExchangeCLI(t, append(c.env, "T=x"), c.args...)
		var ue usageError
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.As(err, &ue) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// filesUnder lists the files and folders below dir (dir itself excluded).
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExchangeCacheOnlyInAJobFolder: by default the cache lives only in a
// folder that the CI deletes after the job (RUNNER_TEMP,
// AGENT_TEMPDIRECTORY); with none (a bare HOME, GitLab, Jenkins) nothing is
// written anywhere and an SDK format says so on stderr; a folder named by
// --cache-dir or OIDC_BRIDGE_CACHE_DIR is used as asked.
func TestExchangeCacheOnlyInAJobFolder(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		// env: NAME=dir (a fresh folder) or NAME=value.
		dirs  []string
		vars  []string
		args  []string
		where string // the variable whose folder holds the cache; "" none
		sub   string // the cache folder inside it
		note  bool
	}{
		{name: "home only", dirs: []string{"HOME", "XDG_CACHE_HOME"}, note: true},
		{name: "gitlab", dirs: []string{"HOME", "CI_BUILDS_DIR", "CI_PROJECT_DIR", "RUNNER_TEMP_PROJECT_DIR", "TMPDIR"},
			vars: []string{"GITLAB_CI=true", "CI_JOB_ID=11"}, note: true},
		{name: "jenkins", dirs: []string{"HOME", "WORKSPACE", "WORKSPACE_TMP"}, vars: []string{"BUILD_TAG=jenkins-app-4"}, note: true},
		{name: "github", dirs: []string{"HOME", "RUNNER_TEMP"}, vars: []string{"GITHUB_RUN_ID=5"}, where: "RUNNER_TEMP", sub: "oidc-bridge"},
		{name: "azure", dirs: []string{"HOME", "AGENT_TEMPDIRECTORY"}, vars: []string{"SYSTEM_JOBID=j1"}, where: "AGENT_TEMPDIRECTORY", sub: "oidc-bridge"},
		{name: "variable", dirs: []string{"HOME", "OIDC_BRIDGE_CACHE_DIR"}, where: "OIDC_BRIDGE_CACHE_DIR"},
		{name: "flag", dirs: []string{"HOME", "RUNNER_TEMP", "ASKED"}, args: []string{"--cache-dir", "$ASKED/c"}, where: "ASKED", sub: "c"},
		{name: "no-cache", dirs: []string{"HOME", "RUNNER_TEMP"}, args: []string{"--no-cache"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			tf := filepath.Join(root, "tok")
			if err := os.WriteFile(tf, []byte("tok-1\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			f := newFakeExchangeBridge(t, time.Hour)
			dirs := map[string]string{}
			env := append([]string{"OIDC_BRIDGE_URL=" + f.srv.URL}, c.vars...)
			for _, name := range c.dirs {
				dirs[name] = filepath.Join(root, strings.ToLower(name))
				if err := os.Mkdir(dirs[name], 0o700); err != nil {
					t.Fatal(err)
				}
				env = append(env, name+"="+dirs[name])
			}
			args := []string{"--token-file", tf, "--mapping", "web", "--format", "aws-credential-process"}
			for _, a := range c.args {
				args = append(args, os.Expand(a, func(n string) string { return dirs[n] }))
			}
			for range 2 {
				_, errOut, err := runExchangeCLI(t, env, args...)
				if err != nil || strings.Contains(errOut, "credential cache off") != c.note {
					t.Fatalf("exchange: %v\n%s", err, errOut)
				}
			}
			calls := int32(2)
			if c.where != "" {
				calls = 1 // the second call answered from the cache
			}
			if f.calls.Load() != calls {
				t.Fatalf("%d exchanges, want %d", f.calls.Load(), calls)
			}
			for name, dir := range dirs {
				got := filesUnder(t, dir)
				if name != c.where {
					if len(got) != 0 {
						t.Fatalf("wrote under $%s: %v", name, got)
					}
					continue
				}
				cache := filepath.Join(dir, c.sub)
				if fi, err := os.Stat(cache); err != nil || fi.Mode().Perm() != 0o700 {
					t.Fatalf("cache folder %s: %v", cache, err)
				}
				entries, _ := filepath.Glob(filepath.Join(cache, "*.json"))
				if len(entries) != 1 {
					t.Fatalf("cache entries %v (all: %v)", entries, got)
				}
				if fi, err := os.Stat(entries[0]); err != nil || fi.Mode().Perm() != 0o600 {
					t.Fatalf("cache entry %s: %v", entries[0], err)
				}
			}
		})
	}
}

// TestExchangeCacheTwoMappings: one job that uses two mappings, or selects
// one by provider, keeps an entry for each; none answers for another, and
// none evicts another.
func TestExchangeCacheTwoMappings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tf := filepath.Join(dir, "tok")
	if err := os.WriteFile(tf, []byte("tok-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFakeExchangeBridge(t, time.Hour)
	env := []string{"OIDC_BRIDGE_URL=" + f.srv.URL, "RUNNER_TEMP=" + dir, "GITHUB_RUN_ID=9"}
	runs := [][]string{{"--mapping", "deploy"}, {"--mapping", "read"}, {}, {"--provider", "aws"}}
	for round := range 2 {
		for _, r := range runs {
			if _, errOut, err := runExchangeCLI(t, env, append([]string{"--token-file", tf, "--format", "json"}, r...)...); err != nil {
				t.Fatalf("round %d %v: %v\n%s", round, r, err, errOut)
			}
		}
		if f.calls.Load() != int32(len(runs)) {
			t.Fatalf("round %d: %d exchanges, want %d (one per mapping and selection, then all from the cache)", round, f.calls.Load(), len(runs))
		}
	}
	entries, _ := filepath.Glob(filepath.Join(dir, "oidc-bridge", "*.json"))
	if len(entries) != len(runs) {
		t.Fatalf("cache entries %v, want one per mapping and selection", entries)
	}
}
