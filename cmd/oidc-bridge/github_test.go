package main

import (
	"bytes"
	"context"
	"encoding/json"
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

const cliGHToken = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"

func runCLI(t *testing.T, env []string, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut, env)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// TestRevokeCommand: revoke posts the token, with no admin token, to
// /v1/credentials/revoke; drops it from the credential cache; refuses what
// the bridge did not issue; never shows the token.
func TestRevokeCommand(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var req api.RevokeCredentialRequest
		if r.Method != http.MethodPost || r.URL.Path != "/v1/credentials/revoke" || r.Header.Get("Authorization") != "" ||
			json.NewDecoder(r.Body).Decode(&req) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if req.Token != cliGHToken {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(api.Error{Error: "not_found", Message: "no issued credential has that id"})
			return
		}
		_ = json.NewEncoder(w).Encode(api.RevokeCredentialResponse{CredentialID: "tok_1a2b3c", RevokedAt: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)})
	}))
	t.Cleanup(srv.Close)

	temp := t.TempDir()
	cache := filepath.Join(temp, "oidc-bridge")
	if err := os.Mkdir(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	entry := func(token string) []byte {
		c, _ := json.Marshal(api.GitHubCredentials{Token: token})
		b, _ := json.Marshal(map[string]any{"version": 1, "response": api.ExchangeResponse{Provider: "github", Credentials: c}})
		return b
	}
	if err := os.WriteFile(filepath.Join(cache, "a.json"), entry(cliGHToken), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cache, "b.json"), entry("ghs_another"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"OIDC_BRIDGE_URL=" + srv.URL, "GITHUB_TOKEN=" + cliGHToken, "RUNNER_TEMP=" + temp}
	out, errOut, err := runCLI(t, env, "", "revoke")
	if err != nil || out != "revoked credential tok_1a2b3c at 2026-05-06T07:08:09Z\n" {
		t.Fatalf("revoke: %v\n%s%s", err, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(cache, "a.json")); !os.IsNotExist(err) {
		t.Errorf("the cached entry of the revoked token is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cache, "b.json")); err != nil {
		t.Errorf("another token's entry went: %v", err)
	}
	// A token file; the workflow's own token is refused (not_found).
	tf := filepath.Join(temp, "tok")
	if err := os.WriteFile(tf, []byte(cliGHToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, env, "", "revoke", "--token-file", tf); err != nil {
		t.Errorf("revoke --token-file: %v", err)
	}
	_, _, err = runCLI(t, []string{"OIDC_BRIDGE_URL=" + srv.URL, "GITHUB_TOKEN=ghs_workflowtoken"}, "", "revoke")
	if err == nil || !strings.Contains(err.Error(), "not_found") || strings.Contains(err.Error(), "ghs_workflowtoken") {
		t.Errorf("an unknown token: %v", err)
	}
	var ue usageError
	if _, _, err := runCLI(t, []string{"OIDC_BRIDGE_URL=http://bridge.example.com", "GITHUB_TOKEN=" + cliGHToken}, "", "revoke"); !asUsage(err, &ue) {
		t.Errorf("plain http off loopback: %v, want a usage error", err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}
}

func asUsage(err error, ue *usageError) bool {
	u, ok := err.(usageError)
	*ue = u
	return ok
}

// TestExchangeGitHub: a github answer as env (GITHUB_TOKEN, GH_TOKEN), json
// as the bridge sent it, and --git-helper's lines; --git-helper only with env.
func TestExchangeGitHub(t *testing.T) {
	t.Parallel()
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	creds, _ := json.Marshal(api.GitHubCredentials{Token: cliGHToken, TokenType: "Bearer", ExpiresAt: exp,
		Repositories: []string{"acme/other"}, Permissions: map[string]string{"contents": "write"},
		APIURL: "https://api.github.com/", ServerURL: "https://github.com/"})
	var provider atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req api.ExchangeRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		provider.Store(req.Provider)
		_ = json.NewEncoder(w).Encode(api.ExchangeResponse{IssuanceID: "0193b9e2", Mapping: "push", Provider: "github", ExpiresAt: exp, Credentials: creds})
	}))
	t.Cleanup(srv.Close)
	temp := t.TempDir()
	env := []string{"OIDC_BRIDGE_URL=" + srv.URL, "OIDC_BRIDGE_ID_TOKEN=a.b.c", "RUNNER_TEMP=" + temp}
	out, _, err := runCLI(t, env, "", "exchange", "--token-env", "OIDC_BRIDGE_ID_TOKEN", "--no-cache")
	if err != nil || !strings.Contains(out, "export GITHUB_TOKEN='"+cliGHToken+"'\nexport GH_TOKEN='"+cliGHToken+"'\n") || strings.Contains(out, "GIT_CONFIG") {
		t.Fatalf("env: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, env, "", "exchange", "--token-env", "OIDC_BRIDGE_ID_TOKEN", "--no-cache", "--format", "json")
	var back api.ExchangeResponse
	var gh api.GitHubCredentials
	if err != nil || json.Unmarshal([]byte(out), &back) != nil || back.Provider != "github" ||
		json.Unmarshal(back.Credentials, &gh) != nil || gh.ServerURL != "https://github.com/" || gh.Token != cliGHToken {
		t.Fatalf("json: %v\n%s", err, out)
	}
	out, errOut, err := runCLI(t, env, "", "exchange", "--token-env", "OIDC_BRIDGE_ID_TOKEN", "--no-cache", "--git-helper")
	if err != nil || provider.Load() != "github" {
		t.Fatalf("--git-helper: %v (provider asked %v)\n%s", err, provider.Load(), errOut)
	}
	for _, want := range []string{"export GIT_CONFIG_KEY_0='credential.https://github.com.helper'\n", "export GIT_CONFIG_COUNT=2\n", " git-credential --server-url ", "export OIDC_BRIDGE_GIT_TOKEN_FILE='" + temp + "/oidc-bridge-git-"} {
		if !strings.Contains(out, want) {
			t.Errorf("--git-helper: no %q in\n%s", want, out)
		}
	}
	if strings.Contains(errOut, cliGHToken) {
		t.Errorf("the token is on stderr: %s", errOut)
	}
	var ue usageError
	if _, _, err := runCLI(t, env, "", "exchange", "--token-env", "OIDC_BRIDGE_ID_TOKEN", "--git-helper", "--format", "json"); !asUsage(err, &ue) {
		t.Errorf("--git-helper --format json: %v, want a usage error", err)
	}
}
