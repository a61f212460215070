package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

func sampleExplanation() *api.ExplainResponse {
	return &api.ExplainResponse{
		Issuer:       "github",
		Verified:     true,
		IssuerPolicy: api.ExplainIssuerPolicy{Kind: "github", AudienceHint: "core.getIDToken(audience)\x1b[2J", ReplayScope: "token", MaxTokenAgeSeconds: 900, MaxTokenLifetimeSeconds: 900},
		Claims: api.ExplainClaims{Issuer: "https://token.actions.githubusercontent.com", Repository: "acme/web", RepositoryID: "1339936803",
			Ref: "refs/heads/feat/x", EventName: "push", Actor: "octocat", RunID: "42"},
		Mappings: []api.Explanation{
			{Mapping: "web", Provider: "aws", Enabled: true, Mode: "enforce", Reason: "ref",
				Detail: `ref: "refs/heads/feat/x" matches none of refs/heads/main`,
				Conditions: []api.ConditionResult{
					{Condition: "repository", Patterns: []string{"acme/web"}, Value: "acme/web", Present: true, Matched: true},
					{Condition: "ref", Patterns: []string{"refs/heads/main"}, Value: "refs/heads/feat/x", Present: true},
					{Condition: "claims.runner_environment", Patterns: []string{"github-hosted"}, Value: "self\x1b[2J", Present: true},
					{Condition: "claims.ref_protected", Patterns: []string{"true"}, Type: "boolean", Value: "true", ValueType: "string", Present: true},
					{Condition: "claims.run_number", Patterns: []string{"42"}, Type: "string", Value: "42", ValueType: "number", Present: true},
				}},
			{Mapping: "off", Provider: "gcp", Mode: "audit", Reason: "disabled", Detail: "the mapping is disabled: it admits nothing",
				Conditions: []api.ConditionResult{
					{Condition: "environment", Patterns: []string{"production", "staging"}},
				}},
			{Mapping: "any-branch", Provider: "jwt", Enabled: true, Mode: "enforce", Admitted: true,
				Conditions: []api.ConditionResult{
					{Condition: "repository_id", Patterns: []string{"1339936803"}, Value: "1339936803", Present: true, Matched: true},
				}},
		},
		Decision: api.ExplainDecision{Outcome: "would_issue", Mapping: "any-branch", Message: `mapping "any-branch" admits this token and is the only one`},
	}
}

func TestRenderExplanation(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := renderExplanation(&out, sampleExplanation()); err != nil {
		t.Fatal(err)
	}
	want := `issuer github (token verified)
  a token is exchanged once in all (replay_scope token); accepted up to 900s old, 900s long
  kind github; a job asks for the bridge's audience with: core.getIDToken(audience)\x1b[2J
  repository     acme/web
  repository_id  1339936803
  ref            refs/heads/feat/x
  environment    (absent)
  event_name     push
  workflow_ref   (absent)
  actor          octocat
  run_id         42

✗ web [aws] refused (ref): ref: "refs/heads/feat/x" matches none of refs/heads/main
    ✓ repository                 acme/web         "acme/web"
    ✗ ref                        refs/heads/main  "refs/heads/feat/x"
    ✗ claims.runner_environment  github-hosted    "self\x1b[2J"
    ✗ claims.ref_protected       true (boolean)   "true"
    ✗ claims.run_number          42               42 (number)
✗ off [gcp, disabled, audit mode] refused (disabled): the mapping is disabled: it admits nothing
    ✗ environment  production, staging  (absent)
✓ any-branch [jwt] admitted
    ✓ repository_id  1339936803  "1339936803"

decision: would_issue (any-branch): mapping "any-branch" admits this token and is the only one
`
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("rendering (-want +got):\n%s", diff)
	}
	if strings.ContainsRune(out.String(), 0x1b) {
		t.Error("a terminal escape reached the output")
	}
}

func TestClean(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"acme/web":       "acme/web",
		"café":           "café",
		"a\x1b[31mb":     `a\x1b[31mb`,
		"line\nforged":   `line\nforged`,
		"zero\u200bwide": `zero\u200bwide`,
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeBridge answers POST /v1/admin/explain with the sample, recording the
// request.
func fakeBridge(t *testing.T, status int, answer any) (*httptest.Server, *api.ExplainRequest, *http.Header) {
	t.Helper()
	var got api.ExplainRequest
	var hdr http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/admin/explain" {
			http.NotFound(w, r)
			return
		}
		hdr = r.Header.Clone()
		got = api.ExplainRequest{}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil {
			t.Errorf("request body: %v", err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(answer)
	}))
	t.Cleanup(srv.Close)
	return srv, &got, &hdr
}

func runExplain(t *testing.T, environ []string, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := &app{stdout: &out, stderr: &errOut, environ: environ}
	cmd := a.explainCmd()
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestExplainCommand(t *testing.T) {
	t.Parallel()
	srv, got, hdr := fakeBridge(t, 200, sampleExplanation())
	env := []string{"OIDC_BRIDGE_URL=" + srv.URL + "/", "OIDC_BRIDGE_ADMIN_TOKEN=admin-secret", "CI_TOKEN= eyJ.token.sig\n"}

	out, err := runExplain(t, env, "", "--token-env", "CI_TOKEN", "--mapping", "web", "--provider", "aws")
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	if want := (api.ExplainRequest{Token: "eyJ.token.sig", Mapping: "web", Provider: "aws"}); !cmp.Equal(want, *got) {
		t.Errorf("request %+v, want %+v", *got, want)
	}
	if hdr.Get("Authorization") != "Bearer admin-secret" {
		t.Errorf("Authorization %q", hdr.Get("Authorization"))
	}
	if !strings.Contains(out, "decision: would_issue (any-branch)") {
		t.Errorf("output:\n%s", out)
	}

	// --json prints the bridge's answer.
	out, err = runExplain(t, env, "eyJ.stdin.sig\n", "--token-file", "-", "--json")
	if err != nil {
		t.Fatalf("explain --json: %v", err)
	}
	var res api.ExplainResponse
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Decision.Mapping != "any-branch" || got.Token != "eyJ.stdin.sig" {
		t.Errorf("--json output %q (%v), request %+v", out, err, *got)
	}

	// Bare claims, flags over the environment.
	dir := t.TempDir()
	claims := filepath.Join(dir, "claims.json")
	if err := os.WriteFile(claims, []byte(`{"iss": "https://token.actions.githubusercontent.com", "ref": "refs/heads/main"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runExplain(t, []string{"OIDC_BRIDGE_URL=http://127.0.0.1:1"}, "",
		"--bridge-url", srv.URL, "--admin-token", "flag-secret", "--claims-file", claims, "--issuer", "github"); err != nil {
		t.Fatalf("explain claims: %v", err)
	}
	if got.Issuer != "github" || got.Token != "" || !strings.Contains(string(got.Claims), `"ref"`) || hdr.Get("Authorization") != "Bearer flag-secret" {
		t.Errorf("request %+v, Authorization %q", *got, hdr.Get("Authorization"))
	}
}

func TestExplainCommandErrors(t *testing.T) {
	t.Parallel()
	refused, _, _ := fakeBridge(t, 401, map[string]string{"error": "invalid_token", "message": "the token was refused (token_expired)"})
	env := []string{"OIDC_BRIDGE_URL=" + refused.URL, "OIDC_BRIDGE_ADMIN_TOKEN=admin-secret", "CI_TOKEN=eyJ.token.sig"}
	for _, tt := range []struct {
		name    string
		environ []string
		args    []string
		usage   bool
		in      string
	}{
		{"bridge refuses", env, []string{"--token-env", "CI_TOKEN"}, false, "401 invalid_token: the token was refused (token_expired)"},
		{"no source", env, nil, true, "exactly one"},
		{"two sources", env, []string{"--token-env", "CI_TOKEN", "--token-file", "-"}, true, "exactly one"},
		{"claims without issuer", env, []string{"--claims-file", "-"}, true, "--issuer"},
		{"issuer without claims", env, []string{"--token-env", "CI_TOKEN", "--issuer", "github"}, true, "--issuer"},
		{"no URL", []string{"OIDC_BRIDGE_ADMIN_TOKEN=x", "CI_TOKEN=t"}, []string{"--token-env", "CI_TOKEN"}, true, "OIDC_BRIDGE_URL"},
		{"no admin token", []string{"OIDC_BRIDGE_URL=" + refused.URL, "CI_TOKEN=t"}, []string{"--token-env", "CI_TOKEN"}, true, "OIDC_BRIDGE_ADMIN_TOKEN"},
		{"bad URL", []string{"OIDC_BRIDGE_URL=ftp://x", "OIDC_BRIDGE_ADMIN_TOKEN=x", "CI_TOKEN=t"}, []string{"--token-env", "CI_TOKEN"}, true, "http(s)"},
		{"empty variable", env, []string{"--token-env", "NOPE"}, false, "$NOPE"},
		{"missing file", env, []string{"--token-file", "/nonexistent/token"}, false, "no such file"},
		{"arguments", env, []string{"--token-env", "CI_TOKEN", "extra"}, true, "usage"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := runExplain(t, tt.environ, "", tt.args...)
			if err == nil {
				t.Fatal("no error")
			}
			var ue usageError
			if errors.As(err, &ue) != tt.usage {
				t.Errorf("usage error %v, want %v: %v", errors.As(err, &ue), tt.usage, err)
			}
			if !strings.Contains(err.Error(), tt.in) {
				t.Errorf("error %q does not mention %q", err, tt.in)
			}
			if strings.Contains(err.Error(), "admin-secret") {
				t.Errorf("error shows the admin token: %v", err)
			}
		})
	}
}

// TestExplainCommandAnswers: what explain prints, and the error it fails
// with, for each kind of answer of the bridge, byte for byte; it sends one
// request (no retry, even of a 429 or 503) with the CLI's headers.
func TestExplainCommandAnswers(t *testing.T) {
	t.Parallel()
	sample, err := json.Marshal(sampleExplanation())
	if err != nil {
		t.Fatal(err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, sample, "", "  "); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		status    int
		requestID string // X-Request-Id of the answer
		body      string
		json      bool
		wantOut   string
		wantErr   string
	}{
		{name: "explanation as JSON", status: 200, requestID: "r1", body: string(sample), json: true, wantOut: indented.String() + "\n"},
		{name: "malformed JSON", status: 200, body: `{"decision":`, json: true,
			wantErr: "explain: the bridge answered malformed JSON: unexpected end of JSON input"},
		{name: "malformed JSON, text", status: 200, body: `[1,`,
			wantErr: "explain: the bridge answered malformed JSON: unexpected end of JSON input"},
		{name: "refused, request id in the header only", status: 403, requestID: "r-403",
			body:    `{"error":"forbidden","message":"this admin token lacks the read scope"}`,
			wantErr: "explain: 403 forbidden: this admin token lacks the read scope"},
		{name: "internal error", status: 500, requestID: "r-500",
			body:    `{"error":"internal","message":"try again later","request_id":"r-500"}`,
			wantErr: "explain: 500 internal: try again later (request id r-500)"},
		{name: "terminal escapes cleaned", status: 400,
			body:    `{"error":"invalid_request\u001b[31m","message":"bad\u0007 claims"}`,
			wantErr: "explain: 400 " + clean("invalid_request\x1b[31m") + ": " + clean("bad\a claims")},
		{name: "not JSON", status: 502, body: "<html>bad gateway</html>", wantErr: "explain: the bridge answered 502 Bad Gateway"},
		{name: "JSON without a code", status: 503, body: `{"message":"down"}`, wantErr: "explain: the bridge answered 503 Service Unavailable"},
		{name: "too many requests", status: 429, body: `{"error":"rate_limited","message":"slow down"}`,
			wantErr: "explain: 429 rate_limited: slow down"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			var hdr http.Header
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				hdr = r.Header.Clone()
				if tt.requestID != "" {
					w.Header().Set("X-Request-Id", tt.requestID)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			args := []string{"--token-env", "CI_TOKEN"}
			if tt.json {
				args = append(args, "--json")
			}
			out, err := runExplain(t, []string{"OIDC_BRIDGE_URL=" + srv.URL, "OIDC_BRIDGE_ADMIN_TOKEN=admin-secret", "CI_TOKEN=eyJ.token.sig"}, "", args...)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if out != tt.wantOut || gotErr != tt.wantErr {
				t.Errorf("output %q, error %q\nwant %q, error %q", out, gotErr, tt.wantOut, tt.wantErr)
			}
			if calls.Load() != 1 {
				t.Errorf("%d requests, want 1", calls.Load())
			}
			for k, want := range map[string]string{"Authorization": "Bearer admin-secret", "Accept": "application/json",
				"Content-Type": "application/json", "User-Agent": "oidc-bridge-cli"} {
				if got := hdr.Get(k); got != want {
					t.Errorf("%s %q, want %q", k, got, want)
				}
			}
		})
	}
}
