package ciclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stubTool writes an executable shell script name into a new folder and
// returns the folder (for PATH).
func stubTool(t *testing.T, name, script string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script), 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustSource(t *testing.T, env map[string]string, o Options) Source {
	t.Helper()
	s, err := newSource(env, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBuildkiteSource: a Buildkite job asks buildkite-agent for a token of
// the audience at each call (a stub agent counts the calls); a failing
// agent is an error naming it, without its output.
func TestBuildkiteSource(t *testing.T) {
	t.Parallel()
	dir := stubTool(t, "buildkite-agent", `
[ "$1 $2 $3 $4 $5 $6" = "oidc request-token --audience https://bridge.example --claim organization_id,pipeline_id" ] || { echo "bad args: $*" >&2; exit 3; }
[ -n "$FAIL" ] && { echo "agent says no" >&2; echo "secret-stdout"; exit 1; }
n=$(cat "$COUNT" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$COUNT"
echo "bk-token-$n"
`)
	env := map[string]string{"BUILDKITE": "true", "PATH": dir + ":/usr/bin:/bin", "COUNT": filepath.Join(t.TempDir(), "n"),
		"BUILDKITE_JOB_ID": "j1"}
	s := mustSource(t, env, Options{Audience: "https://bridge.example"})
	for _, want := range []string{"bk-token-1", "bk-token-2"} {
		if got, err := s.Token(context.Background(), nil); err != nil || got != want {
			t.Fatalf("token %q %v, want %q", got, err, want)
		}
	}
	if s.Static() || s.Describe() != "buildkite-agent oidc request-token" {
		t.Errorf("static %v, %s", s.Static(), s.Describe())
	}
	env["FAIL"] = "1"
	if _, err := s.Token(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "agent says no") || strings.Contains(err.Error(), "secret-stdout") {
		t.Errorf("failing agent: %v", err)
	}
	// Not a Buildkite job: not detected, unless forced.
	delete(env, "BUILDKITE")
	if _, err := newSource(env, Options{Audience: "a"}); err == nil || !strings.Contains(err.Error(), "no CI token") {
		t.Errorf("auto outside Buildkite: %v", err)
	}
	if s, err := newSource(env, Options{Audience: "a", CI: "buildkite"}); err != nil || s.Describe() != "buildkite-agent oidc request-token" {
		t.Errorf("forced: %v", err)
	}
	// A Buildkite job without the agent on PATH says so.
	if _, err := newSource(map[string]string{"BUILDKITE": "true", "PATH": t.TempDir()}, Options{}); err == nil || !strings.Contains(err.Error(), "buildkite-agent on $PATH") {
		t.Errorf("no agent: %v", err)
	}
}

// TestForcedCI: --ci NAME tries that CI only; an unknown name or a CI
// without a token on offer is an error; --ci with a token flag is refused.
func TestForcedCI(t *testing.T) {
	t.Parallel()
	env := map[string]string{envGitHubReqURL: "https://gh.example/token", envGitHubReqToken: "b", EnvIDToken: "gl"}
	if s := mustSource(t, env, Options{CI: "gitlab"}); s.Describe() != "$"+EnvIDToken {
		t.Errorf("--ci gitlab: %s", s.Describe())
	}
	if s := mustSource(t, env, Options{CI: CIAuto}); s.Describe() != "GitHub Actions' token request" {
		t.Errorf("--ci auto: %s", s.Describe())
	}
	var ue *UsageError
	for o, want := range map[Options]string{
		{CI: "teamcity"}:                 "use auto or one of github, gitlab, buildkite",
		{CI: "gitlab", TokenFile: "f"}:   "not both",
		{CI: "buildkite", TokenEnv: "T"}: "not both",
	} {
		if _, err := newSource(env, o); err == nil || !strings.Contains(err.Error(), want) || !errors.As(err, &ue) {
			t.Errorf("%+v: %v, want usage %q", o, err, want)
		}
	}
	if _, err := newSource(map[string]string{}, Options{CI: "github"}); err == nil || !strings.Contains(err.Error(), "--ci github: this job offers no github token") {
		t.Errorf("forced absent: %v", err)
	}
}

// refusingBridge answers every exchange 401 invalid_token.
func refusingBridge(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_token","message":"audience not accepted"}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestCircleCISource: with the circleci CLI, a fresh token of the bridge's
// audience per call (asked with --claims); without it, $CIRCLE_OIDC_TOKEN_V2
// before $CIRCLE_OIDC_TOKEN, static, and an invalid_token refusal says that
// its audience is the organization's id.
func TestCircleCISource(t *testing.T) {
	t.Parallel()
	dir := stubTool(t, "circleci", `
[ "$1 $2 $3 $4 $5" = 'run oidc get --claims {"aud":"https://bridge.example"}' ] || { echo "bad args: $*" >&2; exit 3; }
n=$(cat "$COUNT" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$COUNT"
echo "cc-token-$n"
`)
	env := map[string]string{"CIRCLECI": "true", "PATH": dir + ":/usr/bin:/bin", "COUNT": filepath.Join(t.TempDir(), "n"),
		envCircleTokenV2: "v2", envCircleToken: "v1"}
	s := mustSource(t, env, Options{Audience: "https://bridge.example"})
	for _, want := range []string{"cc-token-1", "cc-token-2"} {
		if got, err := s.Token(context.Background(), nil); err != nil || got != want {
			t.Fatalf("token %q %v, want %q", got, err, want)
		}
	}
	if s.Static() {
		t.Error("the CLI's tokens are fresh")
	}
	env["PATH"] = t.TempDir()
	for _, drop := range []string{"", envCircleTokenV2} {
		delete(env, drop)
		s := mustSource(t, env, Options{Audience: "https://bridge.example"})
		want := map[string]string{"": "$" + envCircleTokenV2, envCircleTokenV2: "$" + envCircleToken}[drop]
		if s.Describe() != want || !s.Static() {
			t.Errorf("without %q: %s, static %v", drop, s.Describe(), s.Static())
		}
	}
	delete(env, "CIRCLECI")
	if _, err := newSource(env, Options{}); err == nil {
		t.Error("$CIRCLE_OIDC_TOKEN outside CircleCI was taken")
	}
	// The fixed audience, said when the bridge refuses the token.
	srv := refusingBridge(t)
	env["CIRCLECI"] = "true"
	c, err := Load(env, Options{BridgeURL: srv.URL, Format: FormatJSON, NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Run(context.Background(), srv.Client(), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "invalid_token") || !strings.Contains(err.Error(), "CircleCI organization's id") {
		t.Errorf("refusal: %v", err)
	}
}

// TestBitbucketSource: $BITBUCKET_STEP_OIDC_TOKEN, static; an
// invalid_token refusal says that Bitbucket sets the audience.
func TestBitbucketSource(t *testing.T) {
	t.Parallel()
	env := map[string]string{envBitbucketToken: " bb-token\n", "BITBUCKET_BUILD_NUMBER": "7"}
	s := mustSource(t, env, Options{})
	if tok, err := s.Token(context.Background(), nil); err != nil || tok != "bb-token" || !s.Static() || s.Describe() != "$"+envBitbucketToken {
		t.Errorf("token %q %v, static %v, %s", tok, err, s.Static(), s.Describe())
	}
	srv := refusingBridge(t)
	c, err := Load(env, Options{BridgeURL: srv.URL, Format: FormatJSON, NoCache: true, CI: "bitbucket"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = c.Run(context.Background(), srv.Client(), io.Discard); err == nil || !strings.Contains(err.Error(), "Bitbucket sets its audience") {
		t.Errorf("refusal: %v", err)
	}
	if _, err := newSource(map[string]string{}, Options{CI: "bitbucket"}); err == nil {
		t.Error("--ci bitbucket without the variable")
	}
}

// TestTerraformCloudSource: the tagged token whose audience variable is
// the bridge's audience, else the untagged token.
func TestTerraformCloudSource(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		envTFCToken: "default-tok", envTFCAudience: "aws.workload.identity",
		envTFCToken + "_VAULT": "vault-tok", envTFCAudience + "_VAULT": "vault.example",
		envTFCToken + "_BRIDGE": "bridge-tok", envTFCAudience + "_BRIDGE": "https://bridge.example",
		"TFC_OB_WORKLOAD_IDENTITY_TOKEN": "prefix-tok", "TFC_OB_WORKLOAD_IDENTITY_AUDIENCE": "prefixed.example",
	}
	for aud, want := range map[string]string{"https://bridge.example": "bridge-tok", "vault.example": "vault-tok", "other": "default-tok",
		"prefixed.example": "prefix-tok"} {
		s := mustSource(t, env, Options{Audience: aud})
		if tok, err := s.Token(context.Background(), nil); err != nil || tok != want || !s.Static() {
			t.Errorf("audience %s: %q %v, want %s", aud, tok, err, want)
		}
	}
	delete(env, envTFCToken)
	if _, err := newSource(env, Options{Audience: "other"}); err == nil || !strings.Contains(err.Error(), "no CI token") {
		t.Errorf("no untagged token: %v", err)
	}
}
