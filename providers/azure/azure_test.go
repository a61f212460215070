package azure_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/azure"
	"github.com/oidc-bridge/oidc-bridge/signing/signingtest"
	"github.com/oidc-bridge/oidc-bridge/test/entratest"
	"github.com/oidc-bridge/oidc-bridge/test/logtest"
)

const (
	tenantID = "3f1c2a9e-6b7d-4e8f-9a0b-1c2d3e4f5a6b"
	clientID = "8e7d6c5b-4a39-4827-9160-5f4e3d2c1b0a"
	mapping  = "web-prod-deploy"
)

type env struct {
	fake   *entratest.Server
	signer *signingtest.Signer
	prov   *azure.Provider
	log    *logtest.Buffer
}

// setup starts the fake with one application trusting the signer for
// mapping, and a provider aimed at it.
func setup(t *testing.T, mutate ...func(*azure.Config)) *env {
	t.Helper()
	// The fake holds the bridge's assertions to Microsoft's guidance.
	e := &env{fake: entratest.New(t, entratest.WithMaxAssertionLifetime(10*time.Minute)), signer: signingtest.New(t), log: &logtest.Buffer{}}
	e.fake.AddFederatedCredential(tenantID, clientID, entratest.FederatedCredential{
		Name: "bridge", Issuer: e.signer.Issuer(), Subject: azure.Subject(mapping),
	})
	cfg := azure.Config{
		Signer:        e.signer,
		AuthorityHost: e.fake.URL(),
		HTTPClient:    e.fake.Client(),
		Logger:        slog.New(slog.NewJSONHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	p, err := azure.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.prov = p
	return e
}

func request(name string, target string) providers.Request {
	return providers.Request{
		IssuanceID: "0193b9e2-6c1e-7c3a-9f1e-2a4b5c6d7e8f",
		Mapping:    name,
		Target:     json.RawMessage(target),
		Duration:   time.Hour,
	}
}

func target(scope string) string {
	if scope == "" {
		return fmt.Sprintf(`{"tenant_id": %q, "client_id": %q}`, tenantID, clientID)
	}
	return fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "scope": %q}`, tenantID, clientID, scope)
}

// noSecrets fails when s holds a JWT (a token or an assertion: both start
// with eyJ) or Entra's message text.
func noSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, bad := range []string{"eyJ", "client_assertion"} {
		if strings.Contains(s, bad) {
			t.Errorf("%s contains %q: %s", what, bad, s)
		}
	}
}

func providerError(t *testing.T, err error) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *providers.Error", err, err)
	}
	if pe.Provider != "azure" {
		t.Errorf("Provider = %q, want azure", pe.Provider)
	}
	noSecrets(t, "error", err.Error())
	if strings.Contains(err.Error(), "No matching") || strings.Contains(err.Error(), "Trace ID") {
		t.Errorf("error carries Entra's message: %v", err)
	}
	return pe
}

func TestName(t *testing.T) {
	e := setup(t)
	if got := e.prov.Name(); got != "azure" {
		t.Errorf("Name() = %q", got)
	}
}

func TestMint(t *testing.T) {
	for _, tc := range []struct {
		name, scope, wantScope, wantAud string
	}{
		{"default scope", "", azure.DefaultScope, "https://management.azure.com"},
		{"target scope", "api://a1b2c3d4-0000-4000-8000-000000000001/.default",
			"api://a1b2c3d4-0000-4000-8000-000000000001/.default", "api://a1b2c3d4-0000-4000-8000-000000000001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t)
			before := time.Now()
			cred, err := e.prov.Mint(t.Context(), request(mapping, target(tc.scope)))
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			body, ok := cred.Body.(providers.AzureCredentials)
			if !ok {
				t.Fatalf("Body is %T", cred.Body)
			}
			if body.AccessToken == "" {
				t.Fatal("no access token")
			}
			want := providers.AzureCredentials{
				AccessToken: body.AccessToken, TokenType: "Bearer", ExpiresAt: cred.ExpiresAt,
				TenantID: tenantID, ClientID: clientID, Scope: tc.wantScope,
			}
			if diff := cmp.Diff(want, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if cred.ID != providers.TokenID(body.AccessToken) {
				t.Errorf("ID = %q, want TokenID of the token", cred.ID)
			}
			if d := cred.ExpiresAt.Sub(before); d < entratest.DefaultTokenLifetime-5*time.Second || d > entratest.DefaultTokenLifetime+5*time.Second {
				t.Errorf("ExpiresAt %v is %v after the mint, want about %v", cred.ExpiresAt, d, entratest.DefaultTokenLifetime)
			}

			// The token is the one the fake issued for this scope.
			jws, err := jose.ParseSignedCompact(body.AccessToken, []jose.SignatureAlgorithm{jose.RS256})
			if err != nil {
				t.Fatal(err)
			}
			payload, err := jws.Verify(e.fake.JWKS())
			if err != nil {
				t.Fatalf("access token does not verify: %v", err)
			}
			var claims map[string]any
			_ = json.Unmarshal(payload, &claims)
			if claims["aud"] != tc.wantAud || claims["appid"] != clientID || claims["tid"] != tenantID {
				t.Errorf("access token claims %v", claims)
			}

			// What the fake saw: the metadata, then one token request with a
			// verified assertion; nothing else.
			calls := e.fake.Calls()
			var endpoints []string
			for _, c := range calls {
				endpoints = append(endpoints, c.Endpoint)
			}
			if diff := cmp.Diff([]string{entratest.EndpointMetadata, entratest.EndpointToken}, endpoints); diff != "" {
				t.Fatalf("calls (-want +got):\n%s", diff)
			}
			tc0 := calls[1]
			if tc0.Status != http.StatusOK || tc0.AccessToken != body.AccessToken {
				t.Errorf("token call: status %d, issued the returned token: %v", tc0.Status, tc0.AccessToken == body.AccessToken)
			}
			if tc0.ClientID != clientID || tc0.GrantType != "client_credentials" || tc0.ClientAssertionType != entratest.AssertionType {
				t.Errorf("token call %+v", tc0)
			}
			if !strings.Contains(" "+tc0.Scope+" ", " "+tc.wantScope+" ") {
				t.Errorf("scope %q does not ask for %q", tc0.Scope, tc.wantScope)
			}
			checkAssertion(t, tc0.Assertion, e.signer.Issuer(), azure.Subject(mapping), azure.DefaultAudience)
			if tc0.AssertionKeyID != "test-rsa-1" {
				t.Errorf("assertion kid %q, want the RS256 key", tc0.AssertionKeyID)
			}

			logs := e.log.String()
			noSecrets(t, "log", logs)
			if !strings.Contains(logs, cred.ID) {
				t.Errorf("debug log does not name the token id: %s", logs)
			}
		})
	}
}

func checkAssertion(t *testing.T, a map[string]any, iss, sub, aud string) {
	t.Helper()
	num := func(k string) int64 {
		f, ok := a[k].(float64)
		if !ok {
			t.Errorf("assertion has no numeric %s: %v", k, a)
		}
		return int64(f)
	}
	if a["iss"] != iss || a["sub"] != sub || a["aud"] != aud {
		t.Errorf("assertion iss/sub/aud = %v/%v/%v, want %v/%v/%v", a["iss"], a["sub"], a["aud"], iss, sub, aud)
	}
	iat, nbf, exp := num("iat"), num("nbf"), num("exp")
	if life := exp - iat; life <= 0 || life > 600 {
		t.Errorf("assertion lives %ds, want at most 10 minutes", life)
	}
	if nbf > iat || iat > time.Now().Unix()+1 {
		t.Errorf("assertion nbf %d, iat %d", nbf, iat)
	}
	if jti, _ := a["jti"].(string); len(jti) < 16 {
		t.Errorf("assertion jti %q", a["jti"])
	}
}

// Every mint is a new token from Entra, with a new assertion, even for the
// same mapping: nothing is served from a cache.
func TestMintNeverCaches(t *testing.T) {
	t.Parallel()
	e := setup(t)
	other := "web-staging"
	e.fake.AddFederatedCredential(tenantID, clientID, entratest.FederatedCredential{
		Issuer: e.signer.Issuer(), Subject: azure.Subject(other),
	})
	var tokens []string
	for _, m := range []string{mapping, mapping, other} {
		cred, err := e.prov.Mint(t.Context(), request(m, target("")))
		if err != nil {
			t.Fatalf("Mint %s: %v", m, err)
		}
		tokens = append(tokens, cred.Body.(providers.AzureCredentials).AccessToken)
	}
	if tokens[0] == tokens[1] || tokens[1] == tokens[2] || tokens[0] == tokens[2] {
		t.Error("a token was served twice")
	}
	calls := e.fake.TokenCalls()
	if len(calls) != 3 {
		t.Fatalf("%d token calls, want 3", len(calls))
	}
	jtis := map[any]bool{}
	for i, c := range calls {
		jtis[c.Assertion["jti"]] = true
		if want := azure.Subject([]string{mapping, mapping, other}[i]); c.Assertion["sub"] != want {
			t.Errorf("call %d sub %v, want %s", i, c.Assertion["sub"], want)
		}
	}
	if len(jtis) != 3 {
		t.Errorf("assertion jtis repeat: %v", jtis)
	}
}

func TestMintConcurrent(t *testing.T) {
	t.Parallel()
	e := setup(t)
	names := []string{"a", "b", "c", "d", "e", "f"}
	for _, n := range names {
		e.fake.AddFederatedCredential(tenantID, clientID, entratest.FederatedCredential{
			Issuer: e.signer.Issuer(), Subject: azure.Subject(n),
		})
	}
	var wg sync.WaitGroup
	ids := make([]string, len(names))
	for i, n := range names {
		wg.Go(func() {
			cred, err := e.prov.Mint(t.Context(), request(n, target("")))
			if err != nil {
				t.Errorf("Mint %s: %v", n, err)
				return
			}
			ids[i] = cred.ID
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("token id %s issued twice", id)
		}
		seen[id] = true
	}
}

func TestMintRefused(t *testing.T) {
	otherTenant := "0a0b0c0d-1111-4222-8333-944455556666"
	otherClient := "11111111-2222-4333-8444-555566667777"
	for _, tc := range []struct {
		name     string
		prepare  func(e *env)
		audience string
		mapping  string
		target   string
		wantCode string
	}{
		{
			name: "no credential for the issuer",
			prepare: func(e *env) {
				e.fake.AddFederatedCredential(tenantID, otherClient, entratest.FederatedCredential{
					Issuer: "https://token.actions.githubusercontent.com", Subject: azure.Subject(mapping),
				})
			},
			target:   fmt.Sprintf(`{"tenant_id": %q, "client_id": %q}`, tenantID, otherClient),
			wantCode: "AADSTS70021",
		},
		{name: "subject of another mapping", mapping: "web-dev-deploy", wantCode: "AADSTS700213"},
		{name: "wrong audience", audience: "api://AzureADTokenExchangeUSGov", wantCode: "AADSTS700212"},
		{
			name:     "unknown application",
			target:   fmt.Sprintf(`{"tenant_id": %q, "client_id": %q}`, tenantID, otherClient),
			wantCode: "AADSTS700016",
		},
		{
			name:     "unknown tenant",
			target:   fmt.Sprintf(`{"tenant_id": %q, "client_id": %q}`, otherTenant, clientID),
			wantCode: "AADSTS90002",
		},
		{
			name:     "conditional access",
			prepare:  func(e *env) { e.fake.Refuse("AADSTS53003") },
			wantCode: "AADSTS53003",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, func(c *azure.Config) { c.Audience = tc.audience })
			if tc.prepare != nil {
				tc.prepare(e)
			}
			m, tg := mapping, target("")
			if tc.mapping != "" {
				m = tc.mapping
			}
			if tc.target != "" {
				tg = tc.target
			}
			_, err := e.prov.Mint(t.Context(), request(m, tg))
			if !errors.Is(err, providers.ErrRefused) {
				t.Fatalf("Mint: %v, want ErrRefused", err)
			}
			pe := providerError(t, err)
			if pe.Code != tc.wantCode || pe.Indeterminate {
				t.Errorf("Code %q Indeterminate %v, want %q, false", pe.Code, pe.Indeterminate, tc.wantCode)
			}
			// Refusals are not retried.
			if n := len(e.fake.TokenCalls()); n > 1 {
				t.Errorf("%d token calls, want at most 1", n)
			}
			logs := e.log.String()
			noSecrets(t, "log", logs)
			if !strings.Contains(logs, tc.wantCode) || !strings.Contains(logs, "trace_id") {
				t.Errorf("log lacks the code or Entra's trace id: %s", logs)
			}
		})
	}
}

// TestMintOneCall: a failing Entra (500, 503, 429) gets one token request
// per mint, never azcore's retries: the error is unavailable (failing, not
// refusing) and definite, Entra having answered.
func TestMintOneCall(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
	}{
		{http.StatusServiceUnavailable, "AADSTS90033"},
		{http.StatusInternalServerError, "AADSTS50000"},
		{http.StatusTooManyRequests, "AADSTS90033"},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			t.Parallel()
			e := setup(t)
			e.fake.Fail(1, tc.status)
			_, err := e.prov.Mint(t.Context(), request(mapping, target("")))
			if !errors.Is(err, providers.ErrUnavailable) {
				t.Fatalf("Mint: %v, want ErrUnavailable", err)
			}
			pe := providerError(t, err)
			if pe.Code != tc.code || pe.Indeterminate {
				t.Errorf("Code %q Indeterminate %v, want %s, false", pe.Code, pe.Indeterminate, tc.code)
			}
			if calls := e.fake.TokenCalls(); len(calls) != 1 || calls[0].Status != tc.status {
				t.Errorf("token calls %+v, want one answered %d", calls, tc.status)
			}
		})
	}
}

// TestMintConnectionDrop: Entra reads the token request and the connection
// breaks before its answer: one request, and the failure is indeterminate
// (Entra may have issued a token).
func TestMintConnectionDrop(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.fake.Drop(1)
	_, err := e.prov.Mint(t.Context(), request(mapping, target("")))
	if !errors.Is(err, providers.ErrUnavailable) {
		t.Fatalf("Mint: %v, want ErrUnavailable", err)
	}
	pe := providerError(t, err)
	if pe.Code != "ConnectionError" || !pe.Indeterminate {
		t.Errorf("Code %q Indeterminate %v, want ConnectionError, true", pe.Code, pe.Indeterminate)
	}
	if calls := e.fake.TokenCalls(); len(calls) != 1 || calls[0].Error != "dropped" {
		t.Errorf("token calls %+v, want the one dropped", calls)
	}
}

// A token request that hangs may have been served: the failure is
// indeterminate, and it comes at the caller's deadline.
func TestMintHang(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.fake.Hang()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	_, err := e.prov.Mint(ctx, request(mapping, target("")))
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Mint took %v after a 1s deadline", took)
	}
	if !errors.Is(err, providers.ErrUnavailable) {
		t.Fatalf("Mint: %v, want ErrUnavailable", err)
	}
	pe := providerError(t, err)
	if pe.Code != "Timeout" || !pe.Indeterminate {
		t.Errorf("Code %q Indeterminate %v, want Timeout, true; log %s; calls %+v", pe.Code, pe.Indeterminate, e.log.String(), e.fake.Calls())
	}
}

// When the metadata hangs, no token request was sent: nothing was issued.
func TestMintHangBeforeTokenRequest(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.fake.HangMetadata()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err := e.prov.Mint(ctx, request(mapping, target("")))
	pe := providerError(t, err)
	if !errors.Is(err, providers.ErrUnavailable) || pe.Code != "Timeout" || pe.Indeterminate {
		t.Errorf("Mint: %v (Indeterminate %v), want a determinate Timeout", err, pe.Indeterminate)
	}
	if n := len(e.fake.TokenCalls()); n != 0 {
		t.Errorf("%d token calls", n)
	}
}

func TestMintConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e := setup(t, func(c *azure.Config) {
		c.AuthorityHost = "https://" + addr
	})
	_, err = e.prov.Mint(t.Context(), request(mapping, target("")))
	pe := providerError(t, err)
	if !errors.Is(err, providers.ErrUnavailable) || pe.Code != "ConnectionError" || pe.Indeterminate {
		t.Errorf("Mint: %v (Indeterminate %v), want a determinate ConnectionError", err, pe.Indeterminate)
	}
}

// garbleToken replaces the body of successful token answers.
type garbleToken struct{ base http.RoundTripper }

func (g garbleToken) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := g.base.RoundTrip(r)
	if err == nil && r.Method == http.MethodPost && resp.StatusCode == http.StatusOK {
		resp.Body.Close()
		resp.Body = io.NopCloser(strings.NewReader(`{"token_type":"Bearer","expires_in":3599}`))
		resp.ContentLength = -1
	}
	return resp, err
}

// A 200 without a readable token may have issued one.
func TestMintInvalidResponse(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *azure.Config) {
		c.HTTPClient = &http.Client{Transport: garbleToken{c.HTTPClient.Transport}}
	})
	_, err := e.prov.Mint(t.Context(), request(mapping, target("")))
	pe := providerError(t, err)
	if !errors.Is(err, providers.ErrUnavailable) || pe.Code != "InvalidResponse" || !pe.Indeterminate {
		t.Errorf("Mint: %v (Indeterminate %v), want an indeterminate InvalidResponse", err, pe.Indeterminate)
	}
}

// failingSigner has no active key.
type failingSigner struct{ *signingtest.Signer }

func (failingSigner) Sign(context.Context, map[string]any, string) (string, error) {
	return "", errors.New("signing: no active RS256 key")
}

func TestMintSigningFails(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *azure.Config) { c.Signer = failingSigner{c.Signer.(*signingtest.Signer)} })
	_, err := e.prov.Mint(t.Context(), request(mapping, target("")))
	pe := providerError(t, err)
	if !errors.Is(err, providers.ErrUnavailable) || pe.Code != "AssertionSigningFailed" || pe.Indeterminate {
		t.Errorf("Mint: %v (Indeterminate %v), want a determinate AssertionSigningFailed", err, pe.Indeterminate)
	}
	if n := len(e.fake.TokenCalls()); n != 0 {
		t.Errorf("%d token calls", n)
	}
}

func TestMintInvalidRequest(t *testing.T) {
	t.Parallel()
	e := setup(t)
	for _, tc := range []struct {
		name, mapping, target, want string
	}{
		{"not an object", mapping, `[]`, "InvalidTarget"},
		{"unknown field", mapping, fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "role": "x"}`, tenantID, clientID), "InvalidTarget"},
		{"field twice", mapping, fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "client_id": %q}`, tenantID, clientID, clientID), "InvalidTarget"},
		{"case of a field", mapping, fmt.Sprintf(`{"Tenant_ID": %q, "client_id": %q}`, tenantID, clientID), "InvalidTarget"},
		{"tenant not a GUID", mapping, fmt.Sprintf(`{"tenant_id": "contoso.onmicrosoft.com", "client_id": %q}`, clientID), "InvalidTarget"},
		{"tenant with a path", mapping, fmt.Sprintf(`{"tenant_id": "../x", "client_id": %q}`, clientID), "InvalidTarget"},
		{"client missing", mapping, fmt.Sprintf(`{"tenant_id": %q}`, tenantID), "InvalidTarget"},
		{"scope without .default", mapping, target("https://management.azure.com/user_impersonation"), "InvalidTarget"},
		{"two scopes", mapping, target("https://a.example/.default https://b.example/.default"), "InvalidTarget"},
		{"number", mapping, fmt.Sprintf(`{"tenant_id": %q, "client_id": 5}`, tenantID), "InvalidTarget"},
		{"trailing data", mapping, target("") + "{}", "InvalidTarget"},
		{"no mapping", "", target(""), "InvalidRequest"},
		{"mapping with a colon", "a:b", target(""), "InvalidRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.prov.Mint(t.Context(), request(tc.mapping, tc.target))
			if !errors.Is(err, providers.ErrRefused) {
				t.Fatalf("Mint: %v, want ErrRefused", err)
			}
			if pe := providerError(t, err); pe.Code != tc.want {
				t.Errorf("Code %q, want %q", pe.Code, tc.want)
			}
		})
	}
	if n := len(e.fake.Calls()); n != 0 {
		t.Errorf("%d calls to Entra for invalid requests", n)
	}
}

// AZURE_AUTHORITY_HOST is honoured when Config.AuthorityHost is empty.
func TestAuthorityHostFromEnvironment(t *testing.T) {
	e := setup(t)
	t.Setenv(azure.AuthorityHostEnv, e.fake.URL())
	p, err := azure.New(t.Context(), azure.Config{Signer: e.signer, HTTPClient: e.fake.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if p.AuthorityHost() != e.fake.URL() {
		t.Errorf("AuthorityHost() = %q", p.AuthorityHost())
	}
	if _, err := p.Mint(t.Context(), request(mapping, target(""))); err != nil {
		t.Fatalf("Mint: %v", err)
	}
	if n := len(e.fake.TokenCalls()); n != 1 {
		t.Errorf("%d token calls at the fake", n)
	}

	// Without either, the public cloud.
	t.Setenv(azure.AuthorityHostEnv, "")
	p, err = azure.New(t.Context(), azure.Config{Signer: e.signer})
	if err != nil {
		t.Fatal(err)
	}
	if p.AuthorityHost() != "https://login.microsoftonline.com/" {
		t.Errorf("default AuthorityHost() = %q", p.AuthorityHost())
	}
}

func TestNewRejects(t *testing.T) {
	s := signingtest.New(t)
	for _, tc := range []struct {
		name string
		cfg  azure.Config
	}{
		{"no signer", azure.Config{AuthorityHost: "https://login.microsoftonline.com/"}},
		{"http authority", azure.Config{Signer: s, AuthorityHost: "http://127.0.0.1:1"}},
		{"not a URL", azure.Config{Signer: s, AuthorityHost: "login.microsoftonline.com"}},
		{"audience over 600 characters", azure.Config{Signer: s, Audience: "api://" + strings.Repeat("a", 595)}},
		{"audience with a space", azure.Config{Signer: s, Audience: azure.DefaultAudience + " "}},
		{"issuer over 600 characters", azure.Config{Signer: longIssuer{s}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := azure.New(t.Context(), tc.cfg); err == nil || !strings.HasPrefix(err.Error(), "azure: ") {
				t.Errorf("New: %v, want an azure: error", err)
			}
		})
	}
	t.Run("http authority from the environment", func(t *testing.T) {
		t.Setenv(azure.AuthorityHostEnv, "http://127.0.0.1:1")
		if _, err := azure.New(t.Context(), azure.Config{Signer: s}); err == nil {
			t.Error("New accepted an http authority")
		}
	})
}

// longIssuer is a signer whose issuer no federated identity credential can
// hold (over 600 characters).
type longIssuer struct{ *signingtest.Signer }

func (l longIssuer) Issuer() string { return "https://bridge.example.com/" + strings.Repeat("i", 600) }

// TestAssertionLifetime: the client assertion lives 5 minutes, less when the
// requested duration is shorter, never more whatever max_duration allows
// (the fake refuses one over 10 minutes, Microsoft's guidance).
func TestAssertionLifetime(t *testing.T) {
	for _, tc := range []struct {
		dur, want time.Duration
	}{
		{90 * time.Second, 90 * time.Second},
		{time.Hour, 5 * time.Minute},
		{24 * time.Hour, 5 * time.Minute},
	} {
		t.Run(tc.dur.String(), func(t *testing.T) {
			e := setup(t)
			req := request(mapping, target(""))
			req.Duration = tc.dur
			if _, err := e.prov.Mint(t.Context(), req); err != nil {
				t.Fatal(err)
			}
			calls := e.fake.TokenCalls()
			if len(calls) != 1 {
				t.Fatalf("%d token calls", len(calls))
			}
			a := calls[0].Assertion
			exp, _ := a["exp"].(float64)
			nbf, _ := a["nbf"].(float64)
			if got := time.Duration(exp-nbf) * time.Second; got != tc.want {
				t.Errorf("assertion lives %s, want %s", got, tc.want)
			}
		})
	}
}

// The provider calls nothing but the authority's host, whatever a metadata
// document says; MSAL itself refuses a document whose issuer is elsewhere.
func TestOnlyTheAuthorityIsCalled(t *testing.T) {
	for _, tc := range []struct {
		name             string
		issuer, endpoint func(self, fake string) string
		want             string
	}{
		{
			name:     "token endpoint on another host",
			issuer:   func(self, _ string) string { return self + "/" + tenantID + "/v2.0" },
			endpoint: func(_, fake string) string { return fake + "/" + tenantID + "/oauth2/v2.0/token" },
			want:     "UnexpectedHost",
		},
		{
			name:     "issuer on another host",
			issuer:   func(_, fake string) string { return fake + "/" + tenantID + "/v2.0" },
			endpoint: func(self, _ string) string { return self + "/" + tenantID + "/oauth2/v2.0/token" },
			want:     "InvalidMetadata",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t)
			var self *httptest.Server
			self = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet {
					t.Errorf("unexpected %s %s", r.Method, r.URL)
					http.Error(w, "no", http.StatusTeapot)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]any{
					"issuer":                 tc.issuer(self.URL, e.fake.URL()),
					"token_endpoint":         tc.endpoint(self.URL, e.fake.URL()),
					"authorization_endpoint": self.URL + "/" + tenantID + "/oauth2/v2.0/authorize",
				})
			}))
			defer self.Close()
			p, err := azure.New(t.Context(), azure.Config{Signer: e.signer, AuthorityHost: self.URL, HTTPClient: self.Client()})
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Mint(t.Context(), request(mapping, target("")))
			pe := providerError(t, err)
			if !errors.Is(err, providers.ErrUnavailable) || pe.Code != tc.want || pe.Indeterminate {
				t.Errorf("Mint: %v (Indeterminate %v), want a determinate %s", err, pe.Indeterminate, tc.want)
			}
			if n := len(e.fake.Calls()); n != 0 {
				t.Errorf("%d calls reached another host", n)
			}
		})
	}
}
