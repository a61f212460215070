package entratest_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/oidc-bridge/oidc-bridge/signing/signingtest"
	"github.com/oidc-bridge/oidc-bridge/test/entratest"
)

const (
	tenant  = "3f1c2a9e-6b7d-4e8f-9a0b-1c2d3e4f5a6b"
	client  = "8e7d6c5b-4a39-4827-9160-5f4e3d2c1b0a"
	subject = "oidc-bridge:azure:mapping:deploy"
	scope   = "https://management.azure.com/.default openid profile offline_access"
)

func setup(t *testing.T, opts ...entratest.Option) (*entratest.Server, *signingtest.Signer) {
	t.Helper()
	s := entratest.New(t, opts...)
	sg := signingtest.New(t)
	s.AddFederatedCredential(tenant, client, entratest.FederatedCredential{Issuer: sg.Issuer(), Subject: subject})
	return s, sg
}

func assertion(t *testing.T, sg *signingtest.Signer, mutate func(map[string]any)) string {
	t.Helper()
	now := time.Now()
	c := map[string]any{
		"sub": subject, "aud": entratest.DefaultAudience,
		"nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": uuid.NewString(),
	}
	if mutate != nil {
		mutate(c)
	}
	tok, err := sg.Sign(t.Context(), c, "RS256")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func form(a string) url.Values {
	return url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {client},
		"client_assertion_type": {entratest.AssertionType},
		"client_assertion":      {a},
		"scope":                 {scope},
	}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func post(t *testing.T, s *entratest.Server, tenant string, f url.Values) answer {
	t.Helper()
	resp, err := s.Client().PostForm(s.URL()+"/"+tenant+"/oauth2/v2.0/token", f)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, body}
}

func get(t *testing.T, s *entratest.Server, path string) answer {
	t.Helper()
	resp, err := s.Client().Get(s.URL() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return answer{resp.StatusCode, resp.Header, body}
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	a := get(t, s, "/"+strings.ToUpper(tenant)+"/v2.0/.well-known/openid-configuration")
	if a.status != http.StatusOK {
		t.Fatalf("status %d %v", a.status, a.body)
	}
	base := s.URL() + "/" + tenant
	for k, want := range map[string]string{
		"issuer":                 base + "/v2.0",
		"token_endpoint":         base + "/oauth2/v2.0/token",
		"authorization_endpoint": base + "/oauth2/v2.0/authorize",
		"jwks_uri":               base + "/discovery/v2.0/keys",
	} {
		if a.body[k] != want {
			t.Errorf("%s = %v, want %s", k, a.body[k], want)
		}
	}
	keys := get(t, s, "/"+tenant+"/discovery/v2.0/keys")
	if ks, _ := keys.body["keys"].([]any); keys.status != http.StatusOK || len(ks) != 1 {
		t.Errorf("keys: %d %v", keys.status, keys.body)
	}

	unknown := get(t, s, "/0a0b0c0d-1111-4222-8333-944455556666/v2.0/.well-known/openid-configuration")
	checkError(t, unknown, http.StatusBadRequest, "invalid_tenant", 90002)
}

func checkError(t *testing.T, a answer, status int, oauthErr string, code int) {
	t.Helper()
	if a.status != status || a.body["error"] != oauthErr {
		t.Errorf("answer %d %v, want %d %s", a.status, a.body["error"], status, oauthErr)
	}
	codes, _ := a.body["error_codes"].([]any)
	if len(codes) != 1 || codes[0] != float64(code) {
		t.Errorf("error_codes %v, want [%d]", a.body["error_codes"], code)
	}
	desc, _ := a.body["error_description"].(string)
	if !strings.HasPrefix(desc, "AADSTS"+itoa(code)+": ") || !strings.Contains(desc, "Trace ID: ") {
		t.Errorf("error_description %q", desc)
	}
	for _, k := range []string{"timestamp", "trace_id", "correlation_id"} {
		if s, _ := a.body[k].(string); s == "" {
			t.Errorf("no %s in %v", k, a.body)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestToken(t *testing.T) {
	t.Parallel()
	s, sg := setup(t, entratest.WithTokenLifetime(time.Hour))
	a := post(t, s, tenant, form(assertion(t, sg, nil)))
	if a.status != http.StatusOK {
		t.Fatalf("status %d %v", a.status, a.body)
	}
	if a.body["token_type"] != "Bearer" || a.body["expires_in"] != float64(3600) || a.body["ext_expires_in"] != float64(3600) {
		t.Errorf("answer %v", a.body)
	}
	tok, _ := a.body["access_token"].(string)
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(s.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	if claims["aud"] != "https://management.azure.com" || claims["appid"] != client || claims["tid"] != tenant {
		t.Errorf("claims %v", claims)
	}
	calls := s.TokenCalls()
	if len(calls) != 1 || calls[0].Status != http.StatusOK || calls[0].AccessToken != tok ||
		calls[0].Assertion["sub"] != subject || calls[0].Assertion["iss"] != sg.Issuer() {
		t.Errorf("calls %+v", calls)
	}
}

// The same assertion may be presented again, as Entra allows.
func TestTokenReusedAssertion(t *testing.T) {
	t.Parallel()
	s, sg := setup(t)
	f := form(assertion(t, sg, nil))
	for i := range 2 {
		if a := post(t, s, tenant, f); a.status != http.StatusOK {
			t.Fatalf("presentation %d: %d %v", i, a.status, a.body)
		}
	}
}

func TestTokenRefused(t *testing.T) {
	t.Parallel()
	s, sg := setup(t)
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	forged := func() string {
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: otherKey},
			(&jose.SignerOptions{}).WithHeader("kid", "test-rsa-1"))
		payload, _ := json.Marshal(map[string]any{
			"iss": sg.Issuer(), "sub": subject, "aud": entratest.DefaultAudience, "exp": time.Now().Add(time.Minute).Unix(),
		})
		jws, _ := signer.Sign(payload)
		c, _ := jws.CompactSerialize()
		return c
	}
	es256, err := sg.Sign(t.Context(), map[string]any{"sub": subject, "aud": entratest.DefaultAudience, "exp": time.Now().Add(time.Minute).Unix()}, "ES256")
	if err != nil {
		t.Fatal(err)
	}
	other := "0a0b0c0d-1111-4222-8333-944455556666"
	s.AddFederatedCredential(other, client, entratest.FederatedCredential{Issuer: "https://token.actions.githubusercontent.com", Subject: subject})
	withForm := func(k, v string) url.Values {
		f := form(assertion(t, sg, nil))
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	for _, tc := range []struct {
		name     string
		tenant   string
		form     url.Values
		status   int
		err      string
		code     int
		contains string
	}{
		{"unknown tenant", "11111111-2222-4333-8444-555566667777", form(assertion(t, sg, nil)), 400, "invalid_request", 90002, ""},
		{"unknown application", tenant, withForm("client_id", "11111111-2222-4333-8444-555566667777"), 400, "unauthorized_client", 700016, ""},
		{"no grant type", tenant, withForm("grant_type", ""), 400, "invalid_request", 900144, "'grant_type'"},
		{"other grant", tenant, withForm("grant_type", "password"), 400, "unsupported_grant_type", 70003, ""},
		{"no assertion", tenant, withForm("client_assertion", ""), 401, "invalid_client", 7000218, ""},
		{"wrong assertion type", tenant, withForm("client_assertion_type", "urn:x"), 401, "invalid_client", 7000218, ""},
		{"scope without .default", tenant, withForm("scope", "https://management.azure.com/user_impersonation"), 400, "invalid_scope", 1002012, ""},
		{"two resources", tenant, withForm("scope", "https://a.example/.default https://b.example/.default"), 400, "invalid_scope", 1002012, ""},
		{"malformed assertion", tenant, withForm("client_assertion", "not.a.jwt"), 400, "invalid_request", 50027, ""},
		{"ES256", tenant, withForm("client_assertion", es256), 400, "invalid_request", 50027, ""},
		{"issuer not federated", other, form(assertion(t, sg, nil)), 400, "invalid_request", 70021, "Assertion Issuer: '" + sg.Issuer() + "'"},
		{"forged signature", tenant, withForm("client_assertion", forged()), 401, "invalid_client", 700027, ""},
		{"wrong audience", tenant, withForm("client_assertion", assertion(t, sg, func(c map[string]any) { c["aud"] = "api://AzureADTokenExchangeChina" })), 401, "invalid_client", 700212, ""},
		{"audience list", tenant, withForm("client_assertion", assertion(t, sg, func(c map[string]any) { c["aud"] = []string{"x", "y"} })), 401, "invalid_client", 700212, ""},
		{"wrong subject", tenant, withForm("client_assertion", assertion(t, sg, func(c map[string]any) { c["sub"] = "oidc-bridge:azure:mapping:Deploy" })), 401, "invalid_client", 700213, "'oidc-bridge:azure:mapping:Deploy'"},
		{"expired", tenant, withForm("client_assertion", assertion(t, sg, func(c map[string]any) { c["exp"] = time.Now().Add(-6 * time.Minute).Unix() })), 401, "invalid_client", 700024, ""},
		{"not yet valid", tenant, withForm("client_assertion", assertion(t, sg, func(c map[string]any) { c["nbf"] = time.Now().Add(6 * time.Minute).Unix() })), 401, "invalid_client", 700024, ""},
		{"no exp", tenant, withForm("client_assertion", assertion(t, sg, func(c map[string]any) { delete(c, "exp") })), 400, "invalid_request", 50027, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := post(t, s, tc.tenant, tc.form)
			checkError(t, a, tc.status, tc.err, tc.code)
			if desc, _ := a.body["error_description"].(string); !strings.Contains(desc, tc.contains) {
				t.Errorf("error_description %q lacks %q", desc, tc.contains)
			}
		})
	}
	// Within the skew, and an audience among several, pass.
	ok := assertion(t, sg, func(c map[string]any) {
		c["exp"] = time.Now().Add(-time.Minute).Unix()
		c["aud"] = []string{"x", entratest.DefaultAudience}
	})
	if a := post(t, s, tenant, form(ok)); a.status != http.StatusOK {
		t.Errorf("assertion within the skew: %d %v", a.status, a.body)
	}
}

func TestControls(t *testing.T) {
	t.Parallel()
	s, sg := setup(t)

	s.Refuse("AADSTS53003")
	checkError(t, post(t, s, tenant, form(assertion(t, sg, nil))), 400, "access_denied", 53003)
	s.Refuse("")

	s.Fail(2, http.StatusServiceUnavailable)
	checkError(t, post(t, s, tenant, form(assertion(t, sg, nil))), 503, "temporarily_unavailable", 90033)
	checkError(t, post(t, s, tenant, form(assertion(t, sg, nil))), 503, "temporarily_unavailable", 90033)
	if a := post(t, s, tenant, form(assertion(t, sg, nil))); a.status != http.StatusOK {
		t.Errorf("after Fail(2): %d", a.status)
	}
	s.Fail(1, http.StatusTooManyRequests)
	a := post(t, s, tenant, form(assertion(t, sg, nil)))
	checkError(t, a, 429, "temporarily_unavailable", 90033)
	if a.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	s.Fail(1, http.StatusInternalServerError)
	checkError(t, post(t, s, tenant, form(assertion(t, sg, nil))), 500, "server_error", 50000)

	s.FailMetadata(1, http.StatusBadGateway)
	checkError(t, get(t, s, "/"+tenant+"/v2.0/.well-known/openid-configuration"), 502, "server_error", 50000)

	if n := len(s.Calls()); n != 7 {
		t.Errorf("%d calls recorded, want 7", n)
	}
	s.Reset()
	if n := len(s.Calls()); n != 0 {
		t.Errorf("%d calls after Reset", n)
	}
	if a := post(t, s, tenant, form(assertion(t, sg, nil))); a.status != http.StatusOK {
		t.Errorf("after Reset: %d %v", a.status, a.body)
	}
}

func TestHang(t *testing.T) {
	t.Parallel()
	s, sg := setup(t)
	s.Hang()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/"+tenant+"/oauth2/v2.0/token",
		strings.NewReader(form(assertion(t, sg, nil)).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, err := s.Client().Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hung request: %v", err)
	}
	// The metadata still answers.
	if a := get(t, s, "/"+tenant+"/v2.0/.well-known/openid-configuration"); a.status != http.StatusOK {
		t.Errorf("metadata during Hang: %d", a.status)
	}
}

func TestRefusePanicsOnNonsense(t *testing.T) {
	s, _ := setup(t)
	defer func() {
		if recover() == nil {
			t.Error("Refuse accepted a code that is not AADSTS digits")
		}
	}()
	s.Refuse("AccessDenied")
}

func TestCertificate(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CertPEM()) {
		t.Fatal("CertPEM is not a PEM certificate")
	}
	file, err := os.ReadFile(s.WriteCertFile(t))
	if err != nil || string(file) != string(s.CertPEM()) {
		t.Fatalf("WriteCertFile: %v", err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(s.URL() + "/" + tenant + "/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatalf("a client trusting CertPEM: %v", err)
	}
	resp.Body.Close()
}

// The real azidentity, instance discovery disabled, gets a token; and its
// calls are only the metadata and the token request.
func TestAzidentity(t *testing.T) {
	t.Parallel()
	s, sg := setup(t)
	var mu sync.Mutex
	var jtis []string
	cred, err := azidentity.NewClientAssertionCredential(tenant, client, func(ctx context.Context) (string, error) {
		a := assertion(t, sg, nil)
		mu.Lock()
		jtis = append(jtis, a)
		mu.Unlock()
		return a, nil
	}, &azidentity.ClientAssertionCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: s.URL()},
			Transport: s.Client(),
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	if tok.Token == "" || time.Until(tok.ExpiresOn) < 50*time.Minute {
		t.Errorf("token %v", tok.ExpiresOn)
	}
	var paths []string
	for _, c := range s.Calls() {
		paths = append(paths, c.Method+" "+c.Path)
	}
	want := []string{
		"GET /" + tenant + "/v2.0/.well-known/openid-configuration",
		"POST /" + tenant + "/oauth2/v2.0/token",
	}
	if strings.Join(paths, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(paths, "\n"), strings.Join(want, "\n"))
	}
	if tc := s.TokenCalls()[0]; tc.CorrelationID == "" {
		t.Error("MSAL's client-request-id was not recorded")
	}

	// An unknown client: azidentity reports Entra's answer.
	bad, _ := azidentity.NewClientAssertionCredential(tenant, "11111111-2222-4333-8444-555566667777",
		func(context.Context) (string, error) { return assertion(t, sg, nil), nil },
		&azidentity.ClientAssertionCredentialOptions{
			ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: s.URL()}, Transport: s.Client()},
			DisableInstanceDiscovery: true,
		})
	_, err = bad.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil || afe.RawResponse.StatusCode != 400 || !strings.Contains(err.Error(), "AADSTS700016") {
		t.Errorf("GetToken for an unknown client: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	s, sg := setup(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if i%2 == 0 {
				s.AddFederatedCredential(tenant, client, entratest.FederatedCredential{Issuer: sg.Issuer(), Subject: "x" + itoa(i)})
			}
			if a := post(t, s, tenant, form(assertion(t, sg, nil))); a.status != http.StatusOK {
				t.Errorf("status %d", a.status)
			}
			_ = s.Calls()
		})
	}
	wg.Wait()
	if n := len(s.TokenCalls()); n != 8 {
		t.Errorf("%d token calls", n)
	}
}
