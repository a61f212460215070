package aws_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
	"github.com/oidc-bridge/oidc-bridge/signing/signingtest"
	"github.com/oidc-bridge/oidc-bridge/test/logtest"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// webSetup starts a fake STS that trusts a signingtest issuer for
// sts.amazonaws.com, and a provider with that signer and no AWS key of its
// own.
func webSetup(t *testing.T, cfg aws.Config, opts ...ststest.Option) (*ststest.Server, *signingtest.Signer, *aws.Provider) {
	t.Helper()
	return webSetupTrusting(t, cfg, func(s *ststest.Server, issuer string) {
		s.TrustOIDCProvider(issuer, aws.WebIdentityAudience)
	}, opts...)
}

// webSetupTrusting is webSetup with the fake's IAM OIDC providers set by
// trust.
func webSetupTrusting(t *testing.T, cfg aws.Config, trust func(s *ststest.Server, issuer string), opts ...ststest.Option) (*ststest.Server, *signingtest.Signer, *aws.Provider) {
	t.Helper()
	signer := signingtest.New(t)
	s := ststest.New(t, opts...)
	trust(s, signer.Issuer())
	isolate(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_ENDPOINT_URL_STS", s.URL())
	if cfg.Signer == nil {
		cfg.Signer = signer
	}
	p, err := aws.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, signer, p
}

func webRequest(t *testing.T) providers.Request {
	t.Helper()
	return providers.Request{
		IssuanceID: "0193b9e2-6c1e-7c3a-9f1e-2a4b5c6d7e8f",
		Mapping:    "web-prod-deploy",
		Target:     target(t, map[string]string{"role_arn": roleARN, "region": "eu-west-1", "mode": "web_identity"}),
		Claims:     githubClaims(),
		Duration:   time.Hour,
	}
}

func TestWebIdentity(t *testing.T) {
	s, signer, p := webSetup(t, aws.Config{})
	// The trust policy as docs/clouds.md writes it: StringEquals on the
	// whole subject and the audience.
	s.TrustRole(roleARN, ststest.TrustPolicy{Issuer: signer.Issuer(), Audience: "sts.amazonaws.com",
		Subject: "oidc-bridge:aws:mapping:web-prod-deploy"})
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`
	req := webRequest(t)
	req.Claims.Repository = "Acme/Web"
	req.Target = target(t, map[string]string{"role_arn": roleARN, "region": "eu-west-1", "mode": "web_identity", "session_policy": policy})
	start := time.Now().Truncate(time.Second)
	cred, err := p.Mint(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	body := cred.Body.(providers.AWSCredentials)
	if !accessKeyID.MatchString(cred.ID) || body.AccessKeyID != cred.ID || body.SecretAccessKey == "" || body.SessionToken == "" || body.Region != "eu-west-1" {
		t.Errorf("credential %q, body %+v", cred.ID, body.AccessKeyID)
	}
	if body.AccountID != "123456789012" {
		t.Errorf("account_id %q, want the role ARN's 123456789012", body.AccountID)
	}
	if d := cred.ExpiresAt.Sub(start); d < time.Hour || d > time.Hour+2*time.Second {
		t.Errorf("expires %v after the call", d)
	}

	calls := s.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls", len(calls))
	}
	got := calls[0]
	var claims map[string]any
	if err := json.Unmarshal(got.WebIdentityClaims, &claims); err != nil {
		t.Fatal(err)
	}
	if tok := got.Params.Get("WebIdentityToken"); tok == "" || strings.Contains(got.Params.Encode(), "SourceIdentity=") {
		t.Errorf("params %v", got.Params)
	}
	got.Params, got.Time, got.RequestID, got.WebIdentityClaims = nil, time.Time{}, "", nil
	got.Host = "" // the fake's address here; TestPartitions checks the hosts
	want := ststest.Call{
		Action: "AssumeRoleWithWebIdentity", Version: "2011-06-15",
		// Unsigned: no AccessKeyID, no Region.
		RoleArn:         roleARN,
		RoleSessionName: "gh-Acme.Web-12345678901-1",
		DurationSeconds: 3600,
		Policy:          policy,
		SourceIdentity:  "gh-987654321",
		Tags: map[string]string{
			"repository":    "Acme/Web",
			"repository_id": "987654321",
			"ref":           "refs/heads/main",
			"environment":   "prod",
			"event_name":    "push",
			"actor":         "dependabot_bot_",
			"run_id":        "12345678901",
			"run_attempt":   "1",
			"issuance_id":   "0193b9e2-6c1e-7c3a-9f1e-2a4b5c6d7e8f",
		},
		WebIdentityIssuer:   signer.Issuer(),
		WebIdentitySubject:  "oidc-bridge:aws:mapping:web-prod-deploy",
		WebIdentityAudience: []string{"sts.amazonaws.com"},
		Status:              http.StatusOK,
		IssuedAccessKeyID:   cred.ID,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("STS saw (-want +got):\n%s", d)
	}

	// The token's other claims.
	iat, exp, nbf := claims["iat"].(float64), claims["exp"].(float64), claims["nbf"].(float64)
	if life := exp - iat; life <= 0 || life > 600 {
		t.Errorf("token lives %vs, want at most 10 min", life)
	}
	if nbf > iat {
		t.Errorf("nbf %v after iat %v", nbf, iat)
	}
	for k, v := range map[string]string{
		"jti":          "0193b9e2-6c1e-7c3a-9f1e-2a4b5c6d7e8f",
		"mapping":      "web-prod-deploy",
		"src_iss":      "https://token.actions.githubusercontent.com",
		"src_sub":      "repo:acme/web:environment:prod",
		"repository":   "Acme/Web",
		"ref":          "refs/heads/main",
		"workflow_ref": "acme/web/.github/workflows/deploy.yml@refs/heads/main",
		"actor":        "dependabot[bot]",
	} {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %q", k, claims[k], v)
		}
	}
	if signer.Signed() != 1 {
		t.Errorf("signed %d tokens", signer.Signed())
	}
}

func TestWebIdentitySubject(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ mapping, want string }{
		{"deploy", "oidc-bridge:aws:mapping:deploy"},
		{"m.1", "oidc-bridge:aws:mapping:m.1"},
		{"web-prod-deploy", "oidc-bridge:aws:mapping:web-prod-deploy"},
	} {
		if got := aws.WebIdentitySubject(tt.mapping); got != tt.want {
			t.Errorf("WebIdentitySubject(%q) = %q, want %q", tt.mapping, got, tt.want)
		}
	}
}

// TestWebIdentitySubjectIgnoresPipeline: nothing the pipeline's token says
// (its sub, its repository, crafted to look like another subject) reaches
// the web identity token's sub; a role trusting one mapping's exact subject
// refuses another mapping's token.
func TestWebIdentitySubjectIgnoresPipeline(t *testing.T) {
	s, signer, p := webSetup(t, aws.Config{})
	s.TrustRole(roleARN, ststest.TrustPolicy{Issuer: signer.Issuer(), Audience: aws.WebIdentityAudience,
		Subject: "oidc-bridge:aws:mapping:deploy"})
	req := webRequest(t)
	req.Mapping = "other"
	req.Claims.Subject = "oidc-bridge:aws:mapping:deploy"
	req.Claims.Repository = "x:mapping:deploy"
	_, err := p.Mint(t.Context(), req)
	wantError(t, err, providers.ErrRefused, "AccessDenied")
	calls := s.Calls()
	if len(calls) != 1 || calls[0].WebIdentitySubject != "oidc-bridge:aws:mapping:other" {
		t.Fatalf("STS calls %+v", calls)
	}
	req.Mapping = "deploy"
	if _, err := p.Mint(t.Context(), req); err != nil {
		t.Fatalf("the trusted mapping: %v", err)
	}
	req.Mapping = "Deploy:x"
	_, err = p.Mint(t.Context(), req)
	wantError(t, err, providers.ErrRefused, "InvalidRequest")
}

func TestWebIdentityRefusals(t *testing.T) {
	trusted := func(s *ststest.Server, iss string) { s.TrustOIDCProvider(iss, aws.WebIdentityAudience) }
	tests := []struct {
		name     string
		trust    func(s *ststest.Server, issuer string)
		refuse   string
		opts     []ststest.Option
		wantCode string
	}{
		{name: "untrusted issuer", trust: func(s *ststest.Server, _ string) {
			s.TrustOIDCProvider("https://token.actions.githubusercontent.com", aws.WebIdentityAudience)
		}, wantCode: "InvalidIdentityToken"},
		{name: "wrong audience", trust: func(s *ststest.Server, iss string) { s.TrustOIDCProvider(iss, "api://something-else") },
			wantCode: "InvalidIdentityToken"},
		{name: "trust policy", trust: trusted, refuse: "AccessDenied", wantCode: "AccessDenied"},
		{name: "idp rejected", trust: trusted, refuse: "IDPRejectedClaim", wantCode: "IDPRejectedClaim"},
		// The token lives at most 10 minutes: to an STS whose clock is 11
		// minutes ahead, it has expired.
		{name: "token lifetime", trust: trusted, wantCode: "ExpiredTokenException",
			opts: []ststest.Option{ststest.WithClock(func() time.Time { return time.Now().Add(11 * time.Minute) })}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, p := webSetupTrusting(t, aws.Config{}, tt.trust, tt.opts...)
			s.Refuse(tt.refuse)
			_, err := p.Mint(t.Context(), webRequest(t))
			wantError(t, err, providers.ErrRefused, tt.wantCode)
			var pe *providers.Error
			if errors.As(err, &pe) && pe.Indeterminate {
				t.Errorf("a refusal is indeterminate")
			}
			if n := s.CallCount(); n != 1 {
				t.Errorf("STS called %d times, want 1", n)
			}
		})
	}
}

func TestWebIdentityIdPUnreachableIsNotRetried(t *testing.T) {
	failing := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("unreachable")
	})}
	s, _, p := webSetup(t, aws.Config{}, ststest.WithOIDCHTTPClient(failing))
	_, err := p.Mint(t.Context(), webRequest(t))
	wantError(t, err, providers.ErrUnavailable, "IDPCommunicationError")
	if n := s.CallCount(); n != 1 {
		t.Errorf("STS called %d times, want 1", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestWebIdentityHangIsIndeterminate(t *testing.T) {
	s, _, p := webSetup(t, aws.Config{})
	s.Hang()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Mint(ctx, webRequest(t))
	wantError(t, err, providers.ErrUnavailable, "Timeout")
	var pe *providers.Error
	if !errors.As(err, &pe) || !pe.Indeterminate {
		t.Errorf("a timeout after sending must be indeterminate: %#v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Mint returned after %v", d)
	}
}

type failingSigner struct{ issuer string }

func (f failingSigner) Issuer() string { return f.issuer }
func (f failingSigner) Sign(context.Context, map[string]any, string) (string, error) {
	return "", errors.New("signing: no active RS256 key")
}

func TestWebIdentitySigner(t *testing.T) {
	t.Run("none", func(t *testing.T) {
		s := ststest.New(t)
		bridgeEnv(t)
		t.Setenv("AWS_ENDPOINT_URL_STS", s.URL())
		p, err := aws.New(t.Context(), aws.Config{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Mint(t.Context(), webRequest(t))
		wantError(t, err, providers.ErrUnavailable, "SignerUnavailable")
		var pe *providers.Error
		if errors.As(err, &pe) && pe.Indeterminate {
			t.Errorf("nothing was sent, yet indeterminate")
		}
		if s.CallCount() != 0 {
			t.Errorf("STS called without a token")
		}
		// assume_role does not need a signer.
		if _, err := p.Mint(t.Context(), request(t)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("failing", func(t *testing.T) {
		s, _, p := webSetup(t, aws.Config{Signer: failingSigner{"https://bridge.example"}})
		_, err := p.Mint(t.Context(), webRequest(t))
		wantError(t, err, providers.ErrUnavailable, "SignerUnavailable")
		if s.CallCount() != 0 {
			t.Errorf("STS called without a token")
		}
	})
}

func TestModes(t *testing.T) {
	s, _, p := webSetup(t, aws.Config{})
	t.Setenv("AWS_ACCESS_KEY_ID", ststest.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", ststest.SecretAccessKey)
	bad := []string{
		`{"role_arn":"` + roleARN + `","region":"eu-west-1","mode":"federation"}`,
		`{"role_arn":"` + roleARN + `","region":"eu-west-1","mode":"WEB_IDENTITY"}`,
		`{"role_arn":"` + roleARN + `","region":"eu-west-1","mode":1}`,
		`{"role_arn":"` + roleARN + `","region":"eu-west-1","mode":"web_identity","external_id":"ext-1"}`,
		`{"role_arn":"` + roleARN + `","region":"eu-west-1","mode":"web_identity","mode":"assume_role"}`,
	}
	for _, target := range bad {
		req := webRequest(t)
		req.Target = json.RawMessage(target)
		_, err := p.Mint(t.Context(), req)
		wantError(t, err, providers.ErrRefused, "InvalidTarget")
	}
	if s.CallCount() != 0 {
		t.Errorf("STS called for invalid targets")
	}
	// assume_role, named or by default, needs the bridge's key: webSetup
	// built the provider without one.
	for _, mode := range []string{"assume_role", ""} {
		req := webRequest(t)
		req.Target = target(t, map[string]string{"role_arn": roleARN, "region": "eu-west-1", "mode": mode})
		_, err := p.Mint(t.Context(), req)
		wantError(t, err, providers.ErrUnavailable, "CredentialsUnavailable")
	}
}

// TestWebIdentityNoTokenInLogs: the web identity token is a credential for
// as long as it lives; it must not reach logs or errors.
func TestWebIdentityNoTokenInLogs(t *testing.T) {
	var buf logtest.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, _, p := webSetup(t, aws.Config{Logger: log})
	cred, err := p.Mint(t.Context(), webRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	s.Refuse("AccessDenied")
	_, refusal := p.Mint(t.Context(), webRequest(t))
	logged := buf.String()
	body := cred.Body.(providers.AWSCredentials)
	secrets := []string{body.SecretAccessKey, body.SessionToken}
	for _, c := range s.Calls() {
		secrets = append(secrets, c.Params.Get("WebIdentityToken"))
	}
	for _, secret := range secrets {
		if strings.Contains(logged, secret) || strings.Contains(refusal.Error(), secret) {
			t.Errorf("a secret %.12s… was logged or returned", secret)
		}
	}
	for _, want := range []string{cred.ID, `"code":"AccessDenied"`, "oidc-bridge:aws:mapping:web-prod-deploy", "AssumeRoleWithWebIdentity"} {
		if !strings.Contains(logged, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}
