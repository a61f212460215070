package gcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/gcp"
	"github.com/oidc-bridge/oidc-bridge/signing/signingtest"
	"github.com/oidc-bridge/oidc-bridge/test/gcptest"
	"github.com/oidc-bridge/oidc-bridge/test/logtest"
)

// These tests set Google's ADC environment with t.Setenv, so they do not run
// in parallel with each other.

const (
	bridgeSA  = "oidc-bridge@bridge-project.iam.gserviceaccount.com"
	deploySA  = "deploy@acme-prod.iam.gserviceaccount.com"
	middleSA  = "middle@acme-prod.iam.gserviceaccount.com"
	otherSA   = "another@acme-prod.iam.gserviceaccount.com"
	wip       = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oidc-bridge/providers/bridge"
	mapping   = "web-prod-deploy"
	issuance  = "0193b9e2-6c1e-7c3a-9f1e-2a4b5c6d7e8f"
	cloudPlat = "https://www.googleapis.com/auth/cloud-platform"
)

// isolate points ADC at nothing but what the test sets.
func isolate(t *testing.T) {
	t.Helper()
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
	t.Setenv("GCE_METADATA_HOST", "")
	t.Setenv("GOOGLE_AUTH_TRUST_BOUNDARY_ENABLED", "")
	t.Setenv("GOOGLE_CLOUD_UNIVERSE_DOMAIN", "")
	// Were the client libraries' loggers not silenced, they would print
	// request bodies now.
	t.Setenv("GOOGLE_SDK_GO_LOGGING_LEVEL", "debug")
}

type env struct {
	fake   *gcptest.Server
	signer *signingtest.Signer
	prov   gcptest.WorkloadIdentityProvider
	p      *gcp.Provider
	logs   *logtest.Buffer
}

// setup starts the fakes and a provider aimed at them: ADC is a key file of
// bridgeSA whose token_uri is the fake, which lets bridgeSA and the
// mapping's pool subject impersonate deploySA.
func setup(t *testing.T, mutate func(*gcp.Config)) *env {
	t.Helper()
	return setupFake(t, mutate)
}

// setupWith is setup with options for the fake.
func setupWith(t *testing.T, opts ...gcptest.Option) *env {
	t.Helper()
	return setupFake(t, nil, opts...)
}

func setupFake(t *testing.T, mutate func(*gcp.Config), opts ...gcptest.Option) *env {
	t.Helper()
	e := &env{fake: gcptest.New(t, opts...), signer: signingtest.New(t), logs: &logtest.Buffer{}}
	isolate(t)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", e.fake.WriteCredentialsFile(t, bridgeSA))
	e.prov = gcptest.WorkloadIdentityProvider{
		Name:      wip,
		IssuerURI: e.signer.Issuer(),
		AttributeMapping: map[string]string{
			"google.subject":       "assertion.sub",
			"attribute.mapping":    "assertion.mapping",
			"attribute.repository": "assertion.repository",
		},
	}
	if err := e.fake.AddWorkloadIdentityProvider(e.prov); err != nil {
		t.Fatal(err)
	}
	e.fake.Allow(bridgeSA, deploySA)
	e.fake.Allow(e.prov.Principal(gcp.Subject(mapping)), deploySA)
	cfg := gcp.Config{
		Signer:                 e.signer,
		IAMCredentialsEndpoint: e.fake.IAMCredentialsEndpoint(),
		STSEndpoint:            e.fake.STSEndpoint(),
		Logger:                 slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := gcp.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	return e
}

func claims() *identity.Claims {
	return &identity.Claims{
		Issuer:       "https://token.actions.githubusercontent.com",
		IssuerName:   "github",
		Kind:         identity.KindGitHub,
		Subject:      "repo:acme/web:environment:prod",
		Repository:   "acme/web",
		RepositoryID: "987654321",
		Ref:          "refs/heads/main",
		Environment:  "prod",
		EventName:    "push",
		RunID:        "12345678901",
		RunAttempt:   "1",
	}
}

func target(t *testing.T, v map[string]any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func request(t *testing.T, tgt map[string]any, d time.Duration) providers.Request {
	return providers.Request{
		IssuanceID: issuance,
		Mapping:    mapping,
		Target:     target(t, tgt),
		Claims:     claims(),
		Duration:   d,
	}
}

func wiTarget() map[string]any {
	return map[string]any{"service_account": deploySA, "mode": "workload_identity", "workload_identity_provider": wip}
}

// wantProviderError checks err's class, code and indeterminacy.
func wantProviderError(t *testing.T, err error, class error, code string, indeterminate bool) {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *providers.Error", err)
	}
	if !errors.Is(err, class) || pe.Provider != "gcp" || pe.Code != code || pe.Indeterminate != indeterminate {
		t.Fatalf("error %v (code %q, indeterminate %v), want %v, %q, %v", err, pe.Code, pe.Indeterminate, class, code, indeterminate)
	}
}

func checkCredential(t *testing.T, e *env, cred providers.Credential, start time.Time, d time.Duration) gcptest.Token {
	t.Helper()
	body, ok := cred.Body.(providers.GCPCredentials)
	if !ok {
		t.Fatalf("Body is %T", cred.Body)
	}
	if body.AccessToken == "" || body.TokenType != "Bearer" || body.ServiceAccount != deploySA {
		t.Errorf("body: token %t, type %q, account %q", body.AccessToken != "", body.TokenType, body.ServiceAccount)
	}
	if cred.ID != providers.TokenID(body.AccessToken) || !strings.HasPrefix(cred.ID, "sha256:") {
		t.Errorf("ID %q", cred.ID)
	}
	if !cred.ExpiresAt.Equal(body.ExpiresAt) {
		t.Errorf("expires %v / %v", cred.ExpiresAt, body.ExpiresAt)
	}
	if got := cred.ExpiresAt.Sub(start); got < d-time.Second || got > d+2*time.Second {
		t.Errorf("expires %v after the call, want %v", got, d)
	}
	tok, ok := e.fake.Lookup(body.AccessToken)
	if !ok || tok.Via != gcptest.IAMCredentials || tok.Principal != deploySA || !tok.Expiry.Equal(cred.ExpiresAt) {
		t.Errorf("the fake knows the token: %v, %+v", ok, tok)
	}
	return tok
}

func TestImpersonate(t *testing.T) {
	e := setup(t, nil)
	e.fake.Allow(bridgeSA, middleSA)
	e.fake.Allow(middleSA, deploySA)
	if e.p.Name() != "gcp" {
		t.Errorf("Name = %q", e.p.Name())
	}
	scopes := []string{cloudPlat, "https://www.googleapis.com/auth/devstorage.read_only"}
	start := time.Now()
	cred, err := e.p.Mint(t.Context(), request(t, map[string]any{
		"service_account": deploySA, "scopes": scopes, "delegates": []string{middleSA},
	}, 20*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	tok := checkCredential(t, e, cred, start, 20*time.Minute)
	if diff := cmp.Diff(scopes, tok.Scopes); diff != "" {
		t.Errorf("token scopes (-want +got):\n%s", diff)
	}

	// The real auth library did a JWT-bearer grant with the key file.
	oauth := e.fake.CallsTo(gcptest.OAuth)
	if len(oauth) != 1 || oauth[0].Status != http.StatusOK || oauth[0].ClientEmail != bridgeSA ||
		!cmp.Equal(oauth[0].Scopes, []string{cloudPlat}) {
		t.Fatalf("oauth calls: %+v", oauth)
	}
	iam := e.fake.CallsTo(gcptest.IAMCredentials)
	if len(iam) != 1 {
		t.Fatalf("iam calls: %+v", iam)
	}
	want := gcptest.Call{
		Endpoint:       gcptest.IAMCredentials,
		Method:         http.MethodPost,
		Path:           "/v1/projects/-/serviceAccounts/" + deploySA + ":generateAccessToken",
		Host:           strings.TrimPrefix(e.fake.URL(), "http://"),
		IAMMethod:      "generateAccessToken",
		Caller:         bridgeSA,
		CallerVia:      gcptest.OAuth,
		ServiceAccount: deploySA,
		Delegates:      []string{middleSA},
		Lifetime:       20 * time.Minute,
		Scopes:         scopes,
		Status:         http.StatusOK,
	}
	got := iam[0]
	if got.IssuedToken == "" {
		t.Error("the fake recorded no issued token")
	}
	got.Time, got.IssuedExpiry, got.IssuedToken = time.Time{}, time.Time{}, ""
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("iam call (-want +got):\n%s", diff)
	}
	if len(e.fake.CallsTo(gcptest.STS)) != 0 {
		t.Error("impersonate called STS")
	}

	// A second mint reuses the bridge's cached token.
	if _, err := e.p.Mint(t.Context(), request(t, map[string]any{"service_account": deploySA}, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := len(e.fake.CallsTo(gcptest.OAuth)); n != 1 {
		t.Errorf("%d OAuth calls for two mints", n)
	}
	last := e.fake.CallsTo(gcptest.IAMCredentials)[1]
	if !cmp.Equal(last.Scopes, []string{cloudPlat}) || last.Delegates != nil || last.Lifetime != time.Hour {
		t.Errorf("default scope call: %+v", last)
	}
}

func TestWorkloadIdentity(t *testing.T) {
	e := setup(t, nil)
	start := time.Now()
	cred, err := e.p.Mint(t.Context(), request(t, wiTarget(), 30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	checkCredential(t, e, cred, start, 30*time.Minute)

	if n := len(e.fake.CallsTo(gcptest.OAuth)); n != 0 {
		t.Errorf("workload identity used the bridge's ADC (%d OAuth calls)", n)
	}
	sts := e.fake.CallsTo(gcptest.STS)
	if len(sts) != 1 || sts[0].Status != http.StatusOK {
		t.Fatalf("sts calls: %+v", sts)
	}
	s := sts[0]
	if s.GrantType != "urn:ietf:params:oauth:grant-type:token-exchange" || s.Audience != wip ||
		s.SubjectTokenType != "urn:ietf:params:oauth:token-type:jwt" ||
		s.RequestedTokenType != "urn:ietf:params:oauth:token-type:access_token" || !cmp.Equal(s.Scopes, []string{cloudPlat}) {
		t.Errorf("sts parameters: %+v", s)
	}
	// The fake verified the JWT against signingtest's JWKS; these are the
	// claims it verified.
	c := s.SubjectClaims
	str := func(k string) string { v, _ := c[k].(string); return v }
	wantAud := "https://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oidc-bridge/providers/bridge"
	if str("iss") != e.signer.Issuer() || str("aud") != wantAud || str("sub") != "oidc-bridge:gcp:mapping:"+mapping || str("jti") == "" {
		t.Errorf("iss %q aud %q sub %q jti %q", str("iss"), str("aud"), str("sub"), str("jti"))
	}
	iat, _ := c["iat"].(json.Number).Int64()
	exp, _ := c["exp"].(json.Number).Int64()
	if exp <= iat || exp-iat > 600 {
		t.Errorf("iat %d exp %d: lifetime %ds", iat, exp, exp-iat)
	}
	for k, v := range map[string]string{
		"mapping": mapping, "service_account": deploySA, "issuance_id": issuance, "repository": "acme/web",
		"repository_id": "987654321", "ref": "refs/heads/main", "environment": "prod", "run_id": "12345678901",
		"ci_issuer": "https://token.actions.githubusercontent.com", "ci_kind": "github",
	} {
		if str(k) != v {
			t.Errorf("claim %s = %q, want %q", k, str(k), v)
		}
	}
	if _, ok := c["actor"]; ok {
		t.Error("the JWT carries actor")
	}
	wantAttrs := map[string]string{"mapping": mapping, "repository": "acme/web"}
	if s.Principal != e.prov.Principal("oidc-bridge:gcp:mapping:"+mapping) || !cmp.Equal(s.Attributes, wantAttrs) {
		t.Errorf("principal %q attributes %v", s.Principal, s.Attributes)
	}

	iam := e.fake.CallsTo(gcptest.IAMCredentials)
	if len(iam) != 1 || iam[0].Caller != s.Principal || iam[0].CallerVia != gcptest.STS || iam[0].Lifetime != 30*time.Minute {
		t.Errorf("iam calls: %+v", iam)
	}
}

// TestWorkloadIdentityAttributeBinding: a binding by attribute works as
// the docs describe, and a mapping without a binding is refused.
func TestWorkloadIdentityAttributeBinding(t *testing.T) {
	e := setup(t, nil)
	e.fake.Allow(e.prov.PrincipalSet("repository", "acme/web"), otherSA)
	tgt := wiTarget()
	tgt["service_account"] = otherSA
	if _, err := e.p.Mint(t.Context(), request(t, tgt, time.Hour)); err != nil {
		t.Fatal(err)
	}
	req := request(t, wiTarget(), time.Hour)
	req.Mapping = "another-mapping"
	_, err := e.p.Mint(t.Context(), req)
	wantProviderError(t, err, providers.ErrRefused, "PERMISSION_DENIED", false)
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name    string
		mode    string
		arrange func(e *env)
		tgt     func() map[string]any
		dur     time.Duration
		code    string
	}{
		{"permission denied", "impersonate", func(e *env) { e.fake.Refuse(gcptest.IAMCredentials, "PERMISSION_DENIED") }, nil, time.Hour, "PERMISSION_DENIED"},
		{"not found", "impersonate", func(e *env) { e.fake.Refuse(gcptest.IAMCredentials, "NOT_FOUND") }, nil, time.Hour, "NOT_FOUND"},
		{"invalid argument", "impersonate", func(e *env) { e.fake.Refuse(gcptest.IAMCredentials, "INVALID_ARGUMENT") }, nil, time.Hour, "INVALID_ARGUMENT"},
		{"unauthenticated", "impersonate", func(e *env) { e.fake.Refuse(gcptest.IAMCredentials, "UNAUTHENTICATED") }, nil, time.Hour, "UNAUTHENTICATED"},
		{"no grant", "impersonate", nil, func() map[string]any { return map[string]any{"service_account": otherSA} }, time.Hour, "PERMISSION_DENIED"},
		// The target says the org policy lists the account; Google's does not.
		{"lifetime over an hour", "impersonate", nil, func() map[string]any {
			return map[string]any{"service_account": deploySA, "allow_lifetime_extension": true}
		}, 2 * time.Hour, "INVALID_ARGUMENT"},
		{"workload identity denied", "workload_identity", func(e *env) { e.fake.Refuse(gcptest.IAMCredentials, "PERMISSION_DENIED") }, nil, time.Hour, "PERMISSION_DENIED"},
		{"sts invalid_grant", "workload_identity", func(e *env) { e.fake.Refuse(gcptest.STS, "invalid_grant") }, nil, time.Hour, "invalid_grant"},
		{"unknown pool provider", "workload_identity", nil, func() map[string]any {
			m := wiTarget()
			m["workload_identity_provider"] = strings.Replace(wip, "/providers/bridge", "/providers/other", 1)
			return m
		}, time.Hour, "invalid_target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			if tt.arrange != nil {
				tt.arrange(e)
			}
			tgt := map[string]any{"service_account": deploySA}
			if tt.mode == "workload_identity" {
				tgt = wiTarget()
			}
			if tt.tgt != nil {
				tgt = tt.tgt()
			}
			_, err := e.p.Mint(t.Context(), request(t, tgt, tt.dur))
			wantProviderError(t, err, providers.ErrRefused, tt.code, false)
			calls := e.fake.Calls()
			last := calls[len(calls)-1]
			if last.ErrorCode != tt.code {
				t.Errorf("the fake answered %q", last.ErrorCode)
			}
			for _, c := range calls {
				if c.Status == 0 || (c.Status >= 500) {
					t.Errorf("refusal retried or failed: %+v", c)
				}
			}
			if n := len(e.fake.CallsTo(last.Endpoint)); n != 1 {
				t.Errorf("%d calls to %s: a refusal was retried", n, last.Endpoint)
			}
		})
	}
}

// TestOneCallPerStep: a failing Google (429, 500, 503) is called once per
// step of a mint, never retried by the client libraries: the error is
// unavailable (failing, not refusing) and definite, Google having answered.
func TestOneCallPerStep(t *testing.T) {
	tests := []struct {
		name   string
		ep     gcptest.Endpoint
		status int
		mode   string
		code   string
	}{
		{"iam 503", gcptest.IAMCredentials, http.StatusServiceUnavailable, "impersonate", "UNAVAILABLE"},
		{"iam 429", gcptest.IAMCredentials, http.StatusTooManyRequests, "impersonate", "RESOURCE_EXHAUSTED"},
		{"iam 500", gcptest.IAMCredentials, http.StatusInternalServerError, "workload_identity", "INTERNAL"},
		{"iam 503 federated", gcptest.IAMCredentials, http.StatusServiceUnavailable, "workload_identity", "UNAVAILABLE"},
		{"sts 503", gcptest.STS, http.StatusServiceUnavailable, "workload_identity", "temporarily_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			e.fake.Fail(tt.ep, 1, tt.status)
			tgt := map[string]any{"service_account": deploySA}
			if tt.mode == "workload_identity" {
				tgt = wiTarget()
			}
			_, err := e.p.Mint(t.Context(), request(t, tgt, time.Hour))
			wantProviderError(t, err, providers.ErrUnavailable, tt.code, false)
			if n := len(e.fake.CallsTo(tt.ep)); n != 1 {
				t.Errorf("%d calls to %s for one mint, want 1", n, tt.ep)
			}
		})
	}
}

// TestConnectionDrop: Google reads the request and the connection breaks
// before its answer. One call; for generateAccessToken, which mints the
// credential, the failure is indeterminate; for STS, whose federated token
// never reaches the pipeline, it is definite.
func TestConnectionDrop(t *testing.T) {
	tests := []struct {
		name          string
		ep            gcptest.Endpoint
		mode          string
		indeterminate bool
	}{
		{"generateAccessToken", gcptest.IAMCredentials, "impersonate", true},
		{"generateAccessToken with a federated token", gcptest.IAMCredentials, "workload_identity", true},
		{"sts", gcptest.STS, "workload_identity", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			e.fake.Drop(tt.ep, 1)
			tgt := map[string]any{"service_account": deploySA}
			if tt.mode == "workload_identity" {
				tgt = wiTarget()
			}
			_, err := e.p.Mint(t.Context(), request(t, tgt, time.Hour))
			wantProviderError(t, err, providers.ErrUnavailable, "ConnectionError", tt.indeterminate)
			calls := e.fake.CallsTo(tt.ep)
			if len(calls) != 1 || calls[0].ErrorCode != "dropped" {
				t.Errorf("calls to %s: %+v, want the one dropped", tt.ep, calls)
			}
		})
	}
}

func TestHang(t *testing.T) {
	tests := []struct {
		name          string
		ep            gcptest.Endpoint
		mode          string
		indeterminate bool
	}{
		{"generateAccessToken", gcptest.IAMCredentials, "impersonate", true},
		{"generateAccessToken with a federated token", gcptest.IAMCredentials, "workload_identity", true},
		{"sts", gcptest.STS, "workload_identity", false},
		{"bridge token", gcptest.OAuth, "impersonate", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			e.fake.Hang(tt.ep)
			tgt := map[string]any{"service_account": deploySA}
			if tt.mode == "workload_identity" {
				tgt = wiTarget()
			}
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := e.p.Mint(ctx, request(t, tgt, time.Hour))
			if d := time.Since(start); d > time.Second {
				t.Errorf("returned after %v", d)
			}
			wantProviderError(t, err, providers.ErrUnavailable, "Timeout", tt.indeterminate)
		})
	}
}

func TestCanceled(t *testing.T) {
	e := setup(t, nil)
	e.fake.Hang(gcptest.IAMCredentials)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := e.p.Mint(ctx, request(t, map[string]any{"service_account": deploySA}, time.Hour))
	wantProviderError(t, err, providers.ErrUnavailable, "Canceled", true)
}

// TestEndpointOverrides: base URLs with a path prefix are honoured for both
// endpoints, and nothing goes to Google's.
func TestEndpointOverrides(t *testing.T) {
	h := gcptest.NewHandler()
	mux := http.NewServeMux()
	mux.Handle("/iam/", http.StripPrefix("/iam", h))
	mux.Handle("/sts/", http.StripPrefix("/sts", h))
	mux.Handle("/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { h.Close(); srv.Close() })
	h.SetBaseURL(srv.URL)

	signer := signingtest.New(t)
	isolate(t)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", h.WriteCredentialsFile(t, bridgeSA))
	prov := gcptest.WorkloadIdentityProvider{Name: wip, IssuerURI: signer.Issuer()}
	if err := h.AddWorkloadIdentityProvider(prov); err != nil {
		t.Fatal(err)
	}
	h.Allow(bridgeSA, deploySA)
	h.Allow(prov.Principal(gcp.Subject(mapping)), deploySA)
	// Any transport but the loopback one fails the test.
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if !strings.HasPrefix(r.URL.String(), srv.URL+"/") {
			t.Errorf("request to %s", r.URL.Redacted())
			return nil, errors.New("not the fake")
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	p, err := gcp.New(t.Context(), gcp.Config{
		Signer: signer, HTTPClient: client,
		IAMCredentialsEndpoint: srv.URL + "/iam/", STSEndpoint: srv.URL + "/sts",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tgt := range []map[string]any{{"service_account": deploySA}, wiTarget()} {
		if _, err := p.Mint(t.Context(), request(t, tgt, time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	var paths []string
	for _, c := range h.Calls() {
		paths = append(paths, string(c.Endpoint)+" "+c.Path)
	}
	want := []string{
		"oauth /token",
		"iamcredentials /v1/projects/-/serviceAccounts/" + deploySA + ":generateAccessToken",
		"sts /v1/token",
		"iamcredentials /v1/projects/-/serviceAccounts/" + deploySA + ":generateAccessToken",
	}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNewRejectsBadEndpoints(t *testing.T) {
	for _, cfg := range []gcp.Config{
		{IAMCredentialsEndpoint: "iamcredentials.example.com"},
		{STSEndpoint: "ftp://sts.example.com"},
		{STSEndpoint: "https://sts.example.com/?x=1"},
		{IAMCredentialsEndpoint: "https://user:pw@iam.example.com"},
	} {
		if _, err := gcp.New(t.Context(), cfg); err == nil || !strings.HasPrefix(err.Error(), "gcp: ") {
			t.Errorf("%+v: error %v", cfg, err)
		}
	}
}

// TestWithoutADC: the provider starts without ADC; impersonate mints fail
// with CredentialsUnavailable until ADC appears, workload identity works.
func TestWithoutADC(t *testing.T) {
	e := setup(t, nil)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	p, err := gcp.New(t.Context(), gcp.Config{
		Signer: e.signer, IAMCredentialsEndpoint: e.fake.IAMCredentialsEndpoint(), STSEndpoint: e.fake.STSEndpoint(),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Mint(t.Context(), request(t, map[string]any{"service_account": deploySA}, time.Hour))
	wantProviderError(t, err, providers.ErrUnavailable, "CredentialsUnavailable", false)
	if _, err := p.Mint(t.Context(), request(t, wiTarget(), time.Hour)); err != nil {
		t.Errorf("workload identity without ADC: %v", err)
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", e.fake.WriteCredentialsFile(t, bridgeSA))
	if _, err := p.Mint(t.Context(), request(t, map[string]any{"service_account": deploySA}, time.Hour)); err != nil {
		t.Errorf("after ADC appeared: %v", err)
	}
}

func TestADCRefused(t *testing.T) {
	e := setup(t, nil)
	e.fake.Refuse(gcptest.OAuth, "invalid_grant")
	_, err := e.p.Mint(t.Context(), request(t, map[string]any{"service_account": deploySA}, time.Hour))
	wantProviderError(t, err, providers.ErrUnavailable, "CredentialsUnavailable", false)
	if n := len(e.fake.CallsTo(gcptest.IAMCredentials)); n != 0 {
		t.Errorf("%d generateAccessToken calls without a bridge token", n)
	}
}

func TestNoSigner(t *testing.T) {
	e := setup(t, func(c *gcp.Config) { c.Signer = nil })
	_, err := e.p.Mint(t.Context(), request(t, wiTarget(), time.Hour))
	wantProviderError(t, err, providers.ErrUnavailable, "SignerUnavailable", false)
	if n := len(e.fake.Calls()); n != 0 {
		t.Errorf("%d calls", n)
	}
}

func TestInvalidRequests(t *testing.T) {
	e := setup(t, nil)
	tests := []struct {
		name string
		req  providers.Request
		code string
	}{
		{"bad target", providers.Request{Mapping: mapping, Target: json.RawMessage(`{"service_account":"nobody"}`), Duration: time.Hour}, "InvalidTarget"},
		{"short", request(t, map[string]any{"service_account": deploySA}, 59*time.Second), "InvalidDuration"},
		{"long", request(t, map[string]any{"service_account": deploySA}, 12*time.Hour+time.Second), "InvalidDuration"},
		{"no mapping", providers.Request{Target: target(t, wiTarget()), Duration: time.Hour}, "InvalidRequest"},
	}
	for _, tt := range tests {
		_, err := e.p.Mint(t.Context(), tt.req)
		wantProviderError(t, err, providers.ErrRefused, tt.code, false)
	}
	if n := len(e.fake.Calls()); n != 0 {
		t.Errorf("%d calls", n)
	}
}

// TestInvalidResponse: an answer that does not decode, or lacks the token,
// may hide an issued token.
func TestInvalidResponse(t *testing.T) {
	for name, body := range map[string]string{
		"not json":   `<html>`,
		"no token":   `{"expireTime":"2030-01-01T00:00:00Z"}`,
		"no expiry":  `{"accessToken":"ya29.x"}`,
		"bad expiry": `{"accessToken":"ya29.x","expireTime":"tomorrow"}`,
	} {
		t.Run(name, func(t *testing.T) {
			e := setup(t, nil)
			iam := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, body)
			}))
			t.Cleanup(iam.Close)
			p, err := gcp.New(t.Context(), gcp.Config{IAMCredentialsEndpoint: iam.URL})
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Mint(t.Context(), request(t, map[string]any{"service_account": deploySA}, time.Hour))
			wantProviderError(t, err, providers.ErrUnavailable, "InvalidResponse", true)
			_ = e
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	e := setup(t, nil)
	srv := httptest.NewServer(http.NotFoundHandler())
	dead := srv.URL
	srv.Close()
	p, err := gcp.New(t.Context(), gcp.Config{IAMCredentialsEndpoint: dead})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Mint(t.Context(), request(t, map[string]any{"service_account": deploySA}, time.Hour))
	// Nothing was sent: not indeterminate.
	wantProviderError(t, err, providers.ErrUnavailable, "ConnectionError", false)
	_ = e
}

// TestNoSecretsInLogsOrErrors mints and fails in every mode with a debug
// logger and checks that no token, assertion or key shows.
func TestNoSecretsInLogsOrErrors(t *testing.T) {
	e := setup(t, nil)
	var errs []string
	var tokens []string
	mint := func(tgt map[string]any) {
		cred, err := e.p.Mint(t.Context(), request(t, tgt, time.Hour))
		if err != nil {
			errs = append(errs, err.Error())
			return
		}
		tokens = append(tokens, cred.Body.(providers.GCPCredentials).AccessToken)
	}
	mint(map[string]any{"service_account": deploySA})
	mint(wiTarget())
	e.fake.Refuse(gcptest.IAMCredentials, "PERMISSION_DENIED")
	mint(map[string]any{"service_account": deploySA})
	mint(wiTarget())
	e.fake.Reset()
	e.fake.Refuse(gcptest.STS, "invalid_grant")
	mint(wiTarget())
	e.fake.Reset()
	e.fake.Fail(gcptest.IAMCredentials, 100, http.StatusServiceUnavailable)
	mint(wiTarget())
	if len(tokens) != 2 || len(errs) != 4 {
		t.Fatalf("%d tokens, %d errors", len(tokens), len(errs))
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "PERMISSION_DENIED") || !strings.Contains(logs, "credential_id") {
		t.Fatalf("the logs miss what they should say:\n%s", logs)
	}
	all := logs + strings.Join(errs, "\n")
	for _, secret := range append(tokens, "ya29.", "gcptest-federated-", "eyJ", "PRIVATE KEY", "Bearer ") {
		if strings.Contains(all, secret) {
			t.Errorf("%q appears in the logs or errors:\n%s", secret, all)
		}
	}
	for _, err := range errs {
		if strings.Contains(err, "@") || strings.Contains(err, "projects/") {
			t.Errorf("error %q names an account or project", err)
		}
	}
}

func TestConcurrentMints(t *testing.T) {
	e := setup(t, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			tgt := map[string]any{"service_account": deploySA}
			if i%2 == 1 {
				tgt = wiTarget()
			}
			if _, err := e.p.Mint(t.Context(), request(t, tgt, time.Hour)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestLifetime: the mint asks generateAccessToken for exactly the requested
// duration, at most an hour unless the target says the org policy extends
// the account's tokens (and then at most 12 hours); a longer one is refused
// before Google is called.
func TestLifetime(t *testing.T) {
	tests := []struct {
		name     string
		extend   bool // target's allow_lifetime_extension
		policy   bool // the fake's org policy lists deploySA
		dur      time.Duration
		wantCode string // "" for success
		called   bool
	}{
		{"a minute", false, false, time.Minute, "", true},
		{"half an hour", false, false, 30 * time.Minute, "", true},
		{"an hour", false, false, time.Hour, "", true},
		{"over an hour without the flag", false, true, time.Hour + time.Second, "InvalidDuration", false},
		{"two hours with the flag", true, true, 2 * time.Hour, "", true},
		{"12 hours with the flag", true, true, 12 * time.Hour, "", true},
		{"over 12 hours with the flag", true, true, 12*time.Hour + time.Second, "InvalidDuration", false},
		{"two hours, flag but no policy", true, false, 2 * time.Hour, "INVALID_ARGUMENT", true},
		{"under a minute", false, false, 59 * time.Second, "InvalidDuration", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []gcptest.Option
			if tt.policy {
				opts = append(opts, gcptest.WithLifetimeExtension(deploySA))
			}
			e := setupWith(t, opts...)
			tgt := map[string]any{"service_account": deploySA}
			if tt.extend {
				tgt["allow_lifetime_extension"] = true
			}
			start := time.Now()
			cred, err := e.p.Mint(t.Context(), request(t, tgt, tt.dur))
			calls := e.fake.CallsTo(gcptest.IAMCredentials)
			if got := len(calls) == 1; got != tt.called {
				t.Fatalf("%d calls to generateAccessToken", len(calls))
			}
			if tt.called && calls[0].Lifetime != tt.dur {
				t.Errorf("lifetime sent %s, want %s", calls[0].Lifetime, tt.dur)
			}
			if tt.wantCode != "" {
				wantProviderError(t, err, providers.ErrRefused, tt.wantCode, false)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cred.ExpiresAt.Sub(start); d < tt.dur-2*time.Second || d > tt.dur+2*time.Second {
				t.Errorf("the token lives %s, want %s", d, tt.dur)
			}
		})
	}
}
