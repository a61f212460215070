package aws_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
	"github.com/oidc-bridge/oidc-bridge/test/logtest"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// These tests set the SDK's environment with t.Setenv, so they do not run in
// parallel with each other.

// isolate points the SDK's default chain at nothing but what the test sets.
func isolate(t *testing.T) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
	t.Setenv("AWS_MAX_ATTEMPTS", "")
	t.Setenv("AWS_REGION", "us-east-1")
}

// bridgeEnv gives the bridge the fake's key pair, as e2e tests do.
func bridgeEnv(t *testing.T) {
	t.Helper()
	isolate(t)
	t.Setenv("AWS_ACCESS_KEY_ID", ststest.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", ststest.SecretAccessKey)
}

// setup starts a fake STS and a provider aimed at it through
// AWS_ENDPOINT_URL_STS.
func setup(t *testing.T, cfg aws.Config) (*ststest.Server, *aws.Provider) {
	t.Helper()
	s := ststest.New(t)
	bridgeEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_STS", s.URL())
	p, err := aws.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

func githubClaims() *identity.Claims {
	return &identity.Claims{
		Issuer:          "https://token.actions.githubusercontent.com",
		IssuerName:      "github",
		Kind:            identity.KindGitHub,
		Subject:         "repo:acme/web:environment:prod",
		JTI:             "jti-1",
		Repository:      "acme/web",
		RepositoryID:    "987654321",
		RepositoryOwner: "acme",
		Ref:             "refs/heads/main",
		RefType:         "branch",
		Environment:     "prod",
		EventName:       "push",
		WorkflowRef:     "acme/web/.github/workflows/deploy.yml@refs/heads/main",
		Actor:           "dependabot[bot]",
		RunID:           "12345678901",
		RunAttempt:      "1",
		JobID:           "555",
	}
}

func gitlabClaims() *identity.Claims {
	return &identity.Claims{
		Issuer:       "https://gitlab.com",
		IssuerName:   "gitlab",
		Kind:         identity.KindGitLab,
		Repository:   "platform/app",
		RepositoryID: "4242",
		Ref:          "refs/tags/v1.2.3",
		RefType:      "tag",
		EventName:    "push",
		Actor:        "alice",
		RunID:        "1212",
		JobID:        "77",
	}
}

func target(t *testing.T, v map[string]string) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const roleARN = "arn:aws:iam::123456789012:role/deploy"

var accessKeyID = regexp.MustCompile(`^ASIA[A-Z0-9]{16}$`)

func TestMintGitHub(t *testing.T) {
	s, p := setup(t, aws.Config{})
	if p.Name() != "aws" {
		t.Errorf("Name = %q", p.Name())
	}
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`
	start := time.Now().Truncate(time.Second)
	cred, err := p.Mint(t.Context(), providers.Request{
		IssuanceID: "0193b9e2-6c1e-7c3a-9f1e-2a4b5c6d7e8f",
		Mapping:    "web-prod-deploy",
		Target:     target(t, map[string]string{"role_arn": roleARN, "region": "eu-west-1", "session_policy": policy, "external_id": "acme-ext-1"}),
		Claims:     githubClaims(),
		Duration:   15 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	body, ok := cred.Body.(providers.AWSCredentials)
	if !ok {
		t.Fatalf("Body is %T", cred.Body)
	}
	if !accessKeyID.MatchString(cred.ID) || body.AccessKeyID != cred.ID || body.SecretAccessKey == "" || body.SessionToken == "" {
		t.Errorf("credential %q, body %q", cred.ID, body.AccessKeyID)
	}
	if !cred.ExpiresAt.Equal(body.Expiration) || body.Region != "eu-west-1" {
		t.Errorf("expires %v / %v, region %q", cred.ExpiresAt, body.Expiration, body.Region)
	}
	// The account of the role ARN, for clients' aws-account-id.
	if body.AccountID != "123456789012" {
		t.Errorf("account_id %q, want the role ARN's 123456789012", body.AccountID)
	}
	if d := cred.ExpiresAt.Sub(start); d < 15*time.Minute || d > 15*time.Minute+2*time.Second {
		t.Errorf("expires %v after the call", d)
	}

	calls := s.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls", len(calls))
	}
	got := calls[0]
	got.Params, got.Time, got.RequestID = nil, time.Time{}, ""
	got.Host = "" // the fake's address here; TestPartitions checks the hosts
	want := ststest.Call{
		Action: "AssumeRole", Version: "2011-06-15",
		Region:          "eu-west-1",         // signed for the target's region
		AccessKeyID:     ststest.AccessKeyID, // signed with the bridge's key
		RoleArn:         roleARN,
		RoleSessionName: "gh-acme.web-12345678901-1",
		DurationSeconds: 900,
		SourceIdentity:  "gh-987654321",
		Policy:          policy,
		ExternalID:      "acme-ext-1",
		Tags: map[string]string{
			"repository":    "acme/web",
			"repository_id": "987654321",
			"ref":           "refs/heads/main",
			"environment":   "prod",
			"event_name":    "push",
			"actor":         "dependabot_bot_",
			"run_id":        "12345678901",
			"run_attempt":   "1",
			"issuance_id":   "0193b9e2-6c1e-7c3a-9f1e-2a4b5c6d7e8f",
		},
		Status:            http.StatusOK,
		IssuedAccessKeyID: cred.ID,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("STS saw (-want +got):\n%s", d)
	}
}

func TestMintGitLab(t *testing.T) {
	s, p := setup(t, aws.Config{})
	cred, err := p.Mint(t.Context(), providers.Request{
		IssuanceID: "id-2",
		Mapping:    "app",
		Target:     target(t, map[string]string{"role_arn": "arn:aws:iam::210987654321:role/ci/app-deploy", "region": "us-west-2"}),
		Claims:     gitlabClaims(),
		Duration:   time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	if cred.Body.(providers.AWSCredentials).Region != "us-west-2" {
		t.Errorf("region %q", cred.Body.(providers.AWSCredentials).Region)
	}
	c := s.Calls()[0]
	if c.RoleSessionName != "gl-platform.app-1212" || c.SourceIdentity != "gl-4242" || c.DurationSeconds != 3600 || c.Region != "us-west-2" {
		t.Errorf("call = %+v", c)
	}
	wantTags := map[string]string{
		"repository": "platform/app", "repository_id": "4242", "ref": "refs/tags/v1.2.3",
		"event_name": "push", "actor": "alice", "run_id": "1212", "issuance_id": "id-2",
	}
	if d := cmp.Diff(wantTags, c.Tags); d != "" {
		t.Errorf("tags (-want +got):\n%s", d)
	}
	for _, k := range []string{"Policy", "ExternalId", "PolicyArns.member.1.arn"} {
		if _, ok := c.Params[k]; ok {
			t.Errorf("%s sent although the target has none", k)
		}
	}
}

func request(t *testing.T) providers.Request {
	return providers.Request{
		IssuanceID: "id-1",
		Mapping:    "m",
		Target:     target(t, map[string]string{"role_arn": roleARN, "region": "eu-west-1"}),
		Claims:     githubClaims(),
		Duration:   15 * time.Minute,
	}
}

// wantError checks err is a *providers.Error of aws with code, wrapping
// sentinel, and that its text tells nothing of the account or the message.
func wantError(t *testing.T, err error, sentinel error, code string) {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *providers.Error", err, err)
	}
	if pe.Provider != "aws" || pe.Code != code || !errors.Is(err, sentinel) {
		t.Errorf("error = %+v (%v), want aws/%s wrapping %v", pe, err, code, sentinel)
	}
	for _, leak := range []string{"123456789012", ststest.CallerAccount, "arn:", "not authorized", ststest.SecretAccessKey} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q contains %q", err, leak)
		}
	}
}

func TestRefusalsAreNotRetried(t *testing.T) {
	for _, code := range []string{"AccessDenied", "MalformedPolicyDocument", "PackedPolicyTooLarge", "RegionDisabledException", "ExpiredToken", "InvalidClientTokenId"} {
		t.Run(code, func(t *testing.T) {
			s, p := setup(t, aws.Config{})
			s.Refuse(code)
			_, err := p.Mint(t.Context(), request(t))
			wantError(t, err, providers.ErrRefused, code)
			if n := s.CallCount(); n != 1 {
				t.Errorf("STS called %d times, want 1", n)
			}
		})
	}
}

func TestValidationErrorIsRefusal(t *testing.T) {
	s, p := setup(t, aws.Config{})
	req := request(t)
	req.Duration = 12*time.Hour + time.Second // beyond STS; the bridge never asks this
	_, err := p.Mint(t.Context(), req)
	wantError(t, err, providers.ErrRefused, "InvalidDuration")
	if s.CallCount() != 0 {
		t.Errorf("STS called for an impossible duration")
	}
}

// TestOneCallPerMint: a failing STS (throttling, 500, 503) is called once
// per mint, whatever AWS_MAX_ATTEMPTS says; the error is typed unavailable
// (failing, not refusing) and definite: STS answered, so it issued nothing.
func TestOneCallPerMint(t *testing.T) {
	tests := []struct {
		name     string
		arrange  func(*ststest.Server)
		wantCode string
	}{
		{"500", func(s *ststest.Server) { s.Fail(1, http.StatusInternalServerError) }, "InternalFailure"},
		{"503", func(s *ststest.Server) { s.Fail(1, http.StatusServiceUnavailable) }, "ServiceUnavailable"},
		{"throttling", func(s *ststest.Server) { s.Throttle(1) }, "Throttling"},
	}
	for _, tt := range tests {
		for _, mode := range []string{"assume_role", "web_identity"} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				s, p, req := oneCallSetup(t, mode)
				tt.arrange(s)
				_, err := p.Mint(t.Context(), req)
				wantError(t, err, providers.ErrUnavailable, tt.wantCode)
				var pe *providers.Error
				if errors.As(err, &pe) && pe.Indeterminate {
					t.Errorf("STS answered %s: not indeterminate", tt.wantCode)
				}
				if n := s.CallCount(); n != 1 {
					t.Errorf("STS called %d times for one mint, want 1", n)
				}
			})
		}
	}
}

// TestConnectionDropIsIndeterminate: STS reads the request and the
// connection breaks before its answer. The mint is one call, unavailable
// and indeterminate: STS may have issued a session.
func TestConnectionDropIsIndeterminate(t *testing.T) {
	for _, mode := range []string{"assume_role", "web_identity"} {
		t.Run(mode, func(t *testing.T) {
			s, p, req := oneCallSetup(t, mode)
			s.Drop(1)
			_, err := p.Mint(t.Context(), req)
			wantError(t, err, providers.ErrUnavailable, "ConnectionError")
			var pe *providers.Error
			if !errors.As(err, &pe) || !pe.Indeterminate {
				t.Errorf("a connection lost after sending must be indeterminate: %#v", err)
			}
			calls := s.Calls()
			if len(calls) != 1 || calls[0].ErrorCode != "(dropped)" {
				t.Errorf("STS calls %+v, want the one dropped", calls)
			}
		})
	}
}

// oneCallSetup is setup for mode, with AWS_MAX_ATTEMPTS asking for retries
// that must not happen.
func oneCallSetup(t *testing.T, mode string) (*ststest.Server, *aws.Provider, providers.Request) {
	t.Helper()
	if mode == "web_identity" {
		s, signer, _ := webSetup(t, aws.Config{})
		t.Setenv("AWS_MAX_ATTEMPTS", "5")
		p, err := aws.New(t.Context(), aws.Config{Signer: signer})
		if err != nil {
			t.Fatal(err)
		}
		return s, p, webRequest(t)
	}
	s, _ := setup(t, aws.Config{})
	t.Setenv("AWS_MAX_ATTEMPTS", "5")
	p, err := aws.New(t.Context(), aws.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return s, p, request(t)
}

func TestHangTimesOut(t *testing.T) {
	s, p := setup(t, aws.Config{})
	s.Hang()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Mint(ctx, request(t))
	wantError(t, err, providers.ErrUnavailable, "Timeout")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Mint returned after %v, past its 300ms deadline", d)
	}
	var pe *providers.Error
	if !errors.As(err, &pe) || !pe.Indeterminate {
		t.Errorf("a timeout after sending must be indeterminate: %#v", err)
	}
}

// TestDefiniteFailures: errors that STS answered are not indeterminate.
func TestDefiniteFailures(t *testing.T) {
	s, p := setup(t, aws.Config{})
	for _, arm := range []func(){func() { s.Refuse("AccessDenied") }, func() { s.Fail(10, 503) }, func() { s.Throttle(10) }} {
		s.Reset()
		arm()
		_, err := p.Mint(t.Context(), request(t))
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Indeterminate {
			t.Errorf("an answered failure is indeterminate: %#v", err)
		}
	}
}

func TestEndpointFromEnvironment(t *testing.T) {
	for _, variable := range []string{"AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"} {
		t.Run(variable, func(t *testing.T) {
			s := ststest.New(t)
			bridgeEnv(t)
			t.Setenv(variable, s.URL())
			p, err := aws.New(t.Context(), aws.Config{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Mint(t.Context(), request(t)); err != nil {
				t.Fatal(err)
			}
			if c := s.Calls(); len(c) != 1 || c[0].Region != "eu-west-1" {
				t.Errorf("calls: %+v", c)
			}
		})
	}
}

// recordingTransport fails every request after noting where it went.
type recordingTransport struct {
	mu    sync.Mutex
	hosts []string
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.hosts = append(rt.hosts, r.URL.Host)
	return nil, errors.New("no network in tests")
}

func TestRegionalEndpointWithoutOverride(t *testing.T) {
	bridgeEnv(t)
	rt := &recordingTransport{}
	p, err := aws.New(t.Context(), aws.Config{HTTPClient: &http.Client{Transport: rt}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Mint(t.Context(), request(t))
	wantError(t, err, providers.ErrUnavailable, "ConnectionError")
	if d := cmp.Diff([]string{"sts.eu-west-1.amazonaws.com"}, rt.hosts); d != "" {
		t.Errorf("hosts (-want +got):\n%s", d)
	}
}

func TestBridgeCredentials(t *testing.T) {
	t.Run("wrong secret", func(t *testing.T) {
		s := ststest.New(t)
		bridgeEnv(t)
		t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong/secret/wrong/secret/wrong/secret00")
		t.Setenv("AWS_ENDPOINT_URL_STS", s.URL())
		p, err := aws.New(t.Context(), aws.Config{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Mint(t.Context(), request(t))
		wantError(t, err, providers.ErrRefused, "SignatureDoesNotMatch")
		if strings.Contains(err.Error(), "wrong/secret") {
			t.Errorf("error %q shows the secret", err)
		}
	})
	t.Run("none", func(t *testing.T) {
		s := ststest.New(t)
		isolate(t)
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		t.Setenv("AWS_ENDPOINT_URL_STS", s.URL())
		p, err := aws.New(t.Context(), aws.Config{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Mint(t.Context(), request(t))
		wantError(t, err, providers.ErrUnavailable, "CredentialsUnavailable")
		if s.CallCount() != 0 {
			t.Errorf("STS called without credentials")
		}
	})
}

func TestInvalidTargets(t *testing.T) {
	s, p := setup(t, aws.Config{})
	tests := []struct{ name, target string }{
		{"empty", ``},
		{"null", `null`},
		{"array", `[]`},
		{"string", `"arn:aws:iam::123456789012:role/deploy"`},
		{"missing role", `{"region":"eu-west-1"}`},
		{"missing region", `{"role_arn":"` + roleARN + `"}`},
		{"unknown field", `{"role_arn":"` + roleARN + `","region":"eu-west-1","duration_seconds":43200}`},
		{"field case", `{"ROLE_ARN":"` + roleARN + `","region":"eu-west-1"}`},
		{"duplicate field", `{"role_arn":"` + roleARN + `","region":"eu-west-1","role_arn":"arn:aws:iam::222222222222:role/admin"}`},
		{"number", `{"role_arn":"` + roleARN + `","region":1}`},
		{"null value", `{"role_arn":"` + roleARN + `","region":null}`},
		{"trailing", `{"role_arn":"` + roleARN + `","region":"eu-west-1"}{}`},
		{"user arn", `{"role_arn":"arn:aws:iam::123456789012:user/bob","region":"eu-west-1"}`},
		{"arn wildcard", `{"role_arn":"arn:aws:iam::*:role/deploy","region":"eu-west-1"}`},
		{"region host", `{"role_arn":"` + roleARN + `","region":"eu-west-1.evil.example"}`},
		{"region path", `{"role_arn":"` + roleARN + `","region":"eu-west-1/"}`},
		{"policy not json", `{"role_arn":"` + roleARN + `","region":"eu-west-1","session_policy":"{"}`},
		{"external id space", `{"role_arn":"` + roleARN + `","region":"eu-west-1","external_id":"a b"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(t)
			req.Target = json.RawMessage(tt.target)
			_, err := p.Mint(t.Context(), req)
			wantError(t, err, providers.ErrRefused, "InvalidTarget")
		})
	}
	if s.CallCount() != 0 {
		t.Errorf("STS called %d times for invalid targets", s.CallCount())
	}

	t.Run("other partitions and paths", func(t *testing.T) {
		req := request(t)
		req.Target = json.RawMessage(`{"role_arn":"arn:aws-us-gov:iam::123456789012:role/a/b/deploy","region":"us-gov-west-1","session_policy":"","external_id":""}`)
		if _, err := p.Mint(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no claims", func(t *testing.T) {
		req := request(t)
		req.Claims = nil
		_, err := p.Mint(t.Context(), req)
		wantError(t, err, providers.ErrRefused, "InvalidRequest")
	})
}

// TestNoSecretsInLogs logs at debug level through a success, a refusal, an
// outage and a timeout and searches the log for any secret.
func TestNoSecretsInLogs(t *testing.T) {
	var buf logtest.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, p := setup(t, aws.Config{Logger: log})

	cred, err := p.Mint(t.Context(), request(t))
	if err != nil {
		t.Fatal(err)
	}
	body := cred.Body.(providers.AWSCredentials)
	var errs []error
	s.Refuse("AccessDenied")
	_, err = p.Mint(t.Context(), request(t))
	errs = append(errs, err)
	s.Reset()
	s.Fail(10, http.StatusInternalServerError)
	_, err = p.Mint(t.Context(), request(t))
	errs = append(errs, err)
	s.Reset()
	s.Hang()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = p.Mint(ctx, request(t))
	errs = append(errs, err)

	logged := buf.String()
	for _, secret := range []string{ststest.SecretAccessKey, body.SecretAccessKey, body.SessionToken} {
		if strings.Contains(logged, secret) {
			t.Errorf("log contains a secret %.8s…", secret)
		}
		for _, err := range errs {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains a secret", err)
			}
		}
	}
	// The log does carry what an operator needs.
	for _, want := range []string{cred.ID, `"code":"AccessDenied"`, "not authorized", `"request_id"`, `"code":"InternalFailure"`, `"code":"Timeout"`} {
		if !strings.Contains(logged, want) {
			t.Errorf("log lacks %q:\n%s", want, logged)
		}
	}
}

func TestConcurrentMints(t *testing.T) {
	s, p := setup(t, aws.Config{})
	const n = 50
	var wg sync.WaitGroup
	ids := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			req := request(t)
			req.IssuanceID = "issuance-" + string(rune('a'+i%26))
			cred, err := p.Mint(t.Context(), req)
			if err != nil {
				t.Error(err)
				return
			}
			ids <- cred.ID
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("credential %s returned twice", id)
		}
		seen[id] = true
	}
	if len(seen) != n || s.CallCount() != n {
		t.Errorf("%d credentials from %d calls, want %d", len(seen), s.CallCount(), n)
	}
}
