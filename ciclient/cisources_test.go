package ciclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/bridge/client"
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
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{CI: "teamcity"}, "use auto or one of github, gitlab, buildkite"},
		{Options{CI: "gitlab", TokenFile: "f"}, "not both"},
		{Options{CI: "buildkite", TokenEnv: "T"}, "not both"},
	} {
		if _, err := newSource(env, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &ue) {
			t.Errorf("%+v: %v, want usage %q", tc.o, err, tc.want)
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

// TestKubernetesSource: in a pod, the projected token file that
// $OIDC_BRIDGE_KUBERNETES_TOKEN_FILE names, read anew per attempt (the
// kubelet rotates it); outside a pod, or with no projected token, nothing.
func TestKubernetesSource(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "token")
	env := map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1", EnvKubernetesTokenFile: p}
	s := mustSource(t, env, Options{})
	for _, tok := range []string{"k8s-1", "k8s-2"} {
		if err := os.WriteFile(p, []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Token(context.Background(), nil); err != nil || got != tok || s.Static() {
			t.Fatalf("token %q %v, want %q", got, err, tok)
		}
	}
	if _, err := os.Stat(KubernetesTokenFile); err == nil {
		t.Fatalf("%s exists on this machine", KubernetesTokenFile)
	}
	for name, env := range map[string]map[string]string{
		"not a pod":          {EnvKubernetesTokenFile: p},
		"no projected token": {"KUBERNETES_SERVICE_HOST": "10.0.0.1"},
	} {
		if _, err := newSource(env, Options{}); err == nil || !strings.Contains(err.Error(), "no CI token") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestJenkinsSource: in a Jenkins build, the credential binding's file
// ($OIDC_BRIDGE_TOKEN_FILE), else its variable ($OIDC_BRIDGE_ID_TOKEN).
func TestJenkinsSource(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("jk-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"JENKINS_URL": "https://jenkins.example/", EnvTokenFile: p, EnvIDToken: "jk-var"}
	s := mustSource(t, env, Options{CI: "jenkins"})
	if got, err := s.Token(context.Background(), nil); err != nil || got != "jk-file" {
		t.Errorf("file: %q %v", got, err)
	}
	if s := mustSource(t, map[string]string{"JENKINS_URL": "u", EnvTokenFile: p}, Options{}); s.Describe() != "the token file "+p {
		t.Errorf("auto: %s", s.Describe())
	}
	delete(env, EnvTokenFile)
	if s := mustSource(t, env, Options{CI: "jenkins"}); s.Describe() != "$"+EnvIDToken || !s.Static() {
		t.Errorf("variable: %s", s.Describe())
	}
	if _, err := newSource(map[string]string{EnvTokenFile: p}, Options{}); err == nil {
		t.Error("$OIDC_BRIDGE_TOKEN_FILE outside Jenkins was taken")
	}
}

// TestAzureDevOpsSource: a stand-in of Azure DevOps' oidctoken endpoint
// gets a POST with the job's access token as bearer, api-version 7.1 and
// the service connection, and answers a fresh oidcToken each time; 5xx and
// 429 may pass; a job without the access token or a connection is told
// what to set.
func TestAzureDevOpsSource(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	status := atomic.Int32{}
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Method != http.MethodPost || r.URL.Path != "/org/_apis/oidctoken" || r.Header.Get("Authorization") != "Bearer sys-token" ||
			q.Get("api-version") != "7.1" || q.Get("serviceConnectionId") != "conn-1" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if s := int(status.Load()); s != http.StatusOK {
			w.WriteHeader(s)
			return
		}
		fmt.Fprintf(w, `{"oidcToken":"ado-%d"}`, calls.Add(1))
	}))
	t.Cleanup(srv.Close)
	env := map[string]string{"TF_BUILD": "True", envADORequestURI: srv.URL + "/org/_apis/oidctoken", envADOAccessToken: "sys-token",
		envAzureCLIConnection: "conn-1"}
	s := mustSource(t, env, Options{})
	hc := client.NoRedirects(srv.Client())
	for _, want := range []string{"ado-1", "ado-2"} {
		if got, err := s.Token(context.Background(), hc); err != nil || got != want {
			t.Fatalf("token %q %v, want %q", got, err, want)
		}
	}
	for code, transient := range map[int]bool{http.StatusServiceUnavailable: true, http.StatusTooManyRequests: true, http.StatusUnauthorized: false} {
		status.Store(int32(code))
		_, err := s.Token(context.Background(), hc)
		var te *client.TransientError
		if err == nil || errors.As(err, &te) != transient || strings.Contains(err.Error(), "sys-token") {
			t.Errorf("%d: %v, want transient %v", code, err, transient)
		}
	}
	if s.Static() || strings.Contains(s.Scope(), "sys-token") {
		t.Errorf("static %v, scope %q", s.Static(), s.Scope())
	}
	// $OIDC_BRIDGE_AZURE_SERVICE_CONNECTION_ID wins over the AzureCLI task's.
	env[EnvAzureConnection] = "conn-2"
	if s := mustSource(t, env, Options{}); s.(*azureDevOpsSource).conn != "conn-2" {
		t.Error("the named connection is not used")
	}
	for drop, want := range map[string]string{envADOAccessToken: "$(System.AccessToken)", "conn": EnvAzureConnection} {
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		delete(e, drop)
		if drop == "conn" {
			delete(e, EnvAzureConnection)
			delete(e, envAzureCLIConnection)
		}
		if _, err := newSource(e, Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("without %s: %v", drop, err)
		}
	}
}

// TestAWSSource: where AWS runs the job, a stand-in of STS gets a SigV4
// signed GetWebIdentityToken for the bridge's audience in the job's region
// and answers a fresh token each time; its 5xx may pass, AccessDenied does
// not; without a region the job is told to set one.
func TestAWSSource(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	status := atomic.Int32{}
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "GetWebIdentityToken" || r.Form.Get("Version") != "2011-06-15" ||
			r.Form.Get("Audience.member.1") != "https://bridge.example" || r.Form.Get("SigningAlgorithm") != "RS256" ||
			!strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDJOB/") ||
			!strings.Contains(r.Header.Get("Authorization"), "/eu-west-1/sts/aws4_request") {
			http.Error(w, "bad request "+r.Form.Encode(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		switch s := int(status.Load()); s {
		case http.StatusOK:
			fmt.Fprintf(w, `<GetWebIdentityTokenResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetWebIdentityTokenResult>`+
				`<WebIdentityToken>aws-%d</WebIdentityToken><Expiration>2030-01-01T00:00:00Z</Expiration></GetWebIdentityTokenResult>`+
				`<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetWebIdentityTokenResponse>`, calls.Add(1))
		default:
			w.WriteHeader(s)
			fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed</Message></Error><RequestId>r</RequestId></ErrorResponse>`)
		}
	}))
	t.Cleanup(srv.Close)
	env := map[string]string{"AWS_EXECUTION_ENV": "AWS_ECS_FARGATE", "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL_STS": srv.URL,
		"AWS_ACCESS_KEY_ID": "AKIDJOB", "AWS_SECRET_ACCESS_KEY": "job-secret"}
	s := mustSource(t, env, Options{Audience: "https://bridge.example"})
	hc := client.NoRedirects(srv.Client())
	for _, want := range []string{"aws-1", "aws-2"} {
		if got, err := s.Token(context.Background(), hc); err != nil || got != want {
			t.Fatalf("token %q %v, want %q", got, err, want)
		}
	}
	for code, transient := range map[int]bool{http.StatusServiceUnavailable: true, http.StatusForbidden: false} {
		status.Store(int32(code))
		_, err := s.Token(context.Background(), hc)
		var te *client.TransientError
		if err == nil || errors.As(err, &te) != transient || !strings.Contains(err.Error(), "GetWebIdentityToken") {
			t.Errorf("%d: %v, want transient %v", code, err, transient)
		}
	}
	if s.Static() || strings.Contains(s.Scope(), "job-secret") {
		t.Errorf("static %v, scope %q", s.Static(), s.Scope())
	}
	delete(env, "AWS_REGION")
	if _, err := newSource(env, Options{}); err == nil || !strings.Contains(err.Error(), "set $AWS_REGION") {
		t.Errorf("no region: %v", err)
	}
	delete(env, "AWS_EXECUTION_ENV")
	if _, err := newSource(env, Options{}); err == nil || !strings.Contains(err.Error(), "no CI token") {
		t.Errorf("not on AWS: %v", err)
	}
}
